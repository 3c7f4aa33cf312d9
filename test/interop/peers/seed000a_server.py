# -*- coding: utf-8 -*-
# Seed 000a server (udp_sever.py: one whole JPEG per datagram), made headless for tests.
# Changed from the seed, and why:
#   - host, port and an output directory come from the command line (the seed
#     hard-codes 127.0.0.1:9999); port 0 picks a free port, printed in the Bind line;
#   - cv2.imshow / cv2.waitKey() / cv2.destroyAllWindows() are gone (no display;
#     waitKey() waited for a key press, so nothing replaces it). Instead each
#     received JPEG's exact bytes go to OUTDIR/frame-%06d.jpg and one line
#     `received <length>` is printed;
#   - np.fromstring -> np.frombuffer (same bytes; fromstring is removed in NumPy 2);
#   - imshow(None) raised when the decode failed (WIRE 000a fragility 3): an
#     explicit raise keeps that, the server dies without replying.
# Unchanged: recvfrom(400000), the reply 'get message!!!' to the datagram's sender.
import os
import socket
import sys

import cv2
import numpy as np

host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

# 绑定端口:
s.bind((host, port))

print('Bind UDP on %d...' % s.getsockname()[1])

count = 0
while True:
    # 接收数据:
    data, addr = s.recvfrom(400000)
    print('Received from %s:%s.' % addr)
    #解码
    nparr = np.frombuffer(data, np.uint8)
    #解码成图片numpy
    img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
    if img_decode is None:
        raise RuntimeError('imdecode failed (the original dies here in imshow)')
    with open(os.path.join(outdir, 'frame-%06d.jpg' % count), 'wb') as f:
        f.write(data)
    count += 1
    print('received %d' % len(data))
    reply = "get message!!!"
    s.sendto(reply.encode('utf-8'), addr)
