# -*- coding: utf-8 -*-
# Seed 000b client (udp_client.py: 8-byte length datagram, then 1024-byte chunks), made headless for tests.
# Changed from the seed, and why:
#   - host, port and the image file come from the command line (the seed
#     hard-codes 127.0.0.1:9999 and /home/xbw/jupyter_notebook/0.jpg);
#   - ndarray.tostring() -> tobytes() (same bytes; tostring is removed in NumPy 2);
#   - one added line `sent <length> <sha256>` so the test can check what the
#     other side received byte for byte.
# Unchanged: struct.pack('l', len) in its own datagram, the chunk loop
# `for i in range(len(data)//1024+1)` (so an empty datagram follows an image of
# a multiple of 1024 bytes), no pacing, then recv(1024) with no timeout.
import hashlib
import socket
import struct
import sys

import cv2
import numpy as np

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
#读取图片,编码成二进制 bytes格式
img = cv2.imread(path)
img_encode = cv2.imencode('.jpg', img)[1]
data_encode = np.array(img_encode)
data = data_encode.tobytes()
print('sent %d %s' % (len(data), hashlib.sha256(data).hexdigest()))
#定义文件头,打包成结构体
fhead = struct.pack('l', len(data))
# 发送文件头:
s.sendto(fhead, (host, port))
#循环发送图片码流
for i in range(len(data)//1024+1):
    if 1024*(i+1) > len(data):
        s.sendto(data[1024*i:], (host, port))
    else:
        s.sendto(data[1024*i:1024*(i+1)], (host, port))
# 接收应答数据:
print(s.recv(1024).decode('utf-8'))
#关闭
s.close()
