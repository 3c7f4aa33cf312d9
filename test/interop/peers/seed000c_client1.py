# -*- coding: utf-8 -*-
# Seed 000c client 1 (udp_client_1.py: camera frames, header + 1024-byte chunks, one reply per frame), made headless for tests.
# Changed from the seed, and why:
#   - host and port come from the command line (the seed hard-codes 127.0.0.1:9999);
#   - the camera becomes the image files given on the command line: each loop
#     iteration "captures" the next file with cv2.imread instead of cap.read(),
#     and the program ends when the files run out (a camera never does);
#   - cv2.waitKey(1), which only paced the loop, becomes time.sleep(0.001);
#   - ndarray.tostring() -> tobytes() (same bytes; tostring is removed in NumPy 2);
#   - one added line `sent <length> <sha256>` per frame so the test can check
#     what the other side received byte for byte.
# Unchanged: imencode('.jpg'), struct.pack('l', len) in its own datagram, the
# chunk loop (an empty datagram after an image of a multiple of 1024 bytes),
# no pacing between datagrams, and recv(1024) with no timeout before the next frame.
import hashlib
import socket
import struct
import sys
import time

import cv2
import numpy as np

host, port, frames = sys.argv[1], int(sys.argv[2]), sys.argv[3:]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
captured = 0
while True:

    if captured < len(frames):
        img = cv2.imread(frames[captured])
        captured += 1
        img_encode = cv2.imencode('.jpg', img)[1]
        data_encode = np.array(img_encode)
        data = data_encode.tobytes()
        print('sent %d %s' % (len(data), hashlib.sha256(data).hexdigest()))
        #定义文件头
        fhead = struct.pack('l', len(data))
        # 发送文件头、数据:
        s.sendto(fhead, (host, port))
        for i in range(len(data)//1024+1):
            if 1024*(i+1) > len(data):
                s.sendto(data[1024*i:], (host, port))
            else:
                s.sendto(data[1024*i:1024*(i+1)], (host, port))
        # 接收应答:
        time.sleep(0.001)
        print(s.recv(1024).decode('utf-8'))
    else:
        break

s.close()
