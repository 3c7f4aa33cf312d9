# -*- coding: utf-8 -*-
# Seed 000a client (udp_client.py: one whole JPEG in one datagram), made headless for tests.
# Changed from the seed, and why:
#   - host, port and the image file come from the command line (the seed
#     hard-codes 127.0.0.1:9999 and /home/xbw/jupyter_notebook/0.jpg);
#   - ndarray.tostring() -> tobytes() (same bytes; tostring is removed in NumPy 2);
#   - one added line `sent <length> <sha256>` so the test can check what the
#     other side received byte for byte.
# Unchanged: imread + imencode('.jpg'), one sendto, then recv(1024) with no timeout.
import hashlib
import socket
import sys

import cv2
import numpy as np

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

img = cv2.imread(path)
img_encode = cv2.imencode('.jpg', img)[1]
data_encode = np.array(img_encode)
data = data_encode.tobytes()
print('sent %d %s' % (len(data), hashlib.sha256(data).hexdigest()))

# 发送数据:
s.sendto(data, (host, port))
# 接收数据:
print(s.recv(1024).decode('utf-8'))

s.close()
