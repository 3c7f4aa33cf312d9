# -*- coding: utf-8 -*-
# Seed 000b server (udp_sever.py: 8-byte length datagram, then 1024-byte chunks), made headless for tests.
# Changed from the seed, and why:
#   - host, port and an output directory come from the command line (the seed
#     hard-codes 127.0.0.1:9999); port 0 picks a free port, printed in the Bind line;
#   - cv2.imshow / cv2.waitKey() / cv2.destroyAllWindows() are gone (no display;
#     waitKey() waited for a key press, so nothing replaces it). Instead each
#     image's exact bytes go to OUTDIR/frame-%06d.jpg and one line
#     `received <length>` is printed;
#   - np.fromstring -> np.frombuffer (same bytes; fromstring is removed in NumPy 2);
#   - a failed decode raises, as imshow(None) did.
# Unchanged, because that is what a sender must be compatible with: recvfrom(8)
# for the header, `if buf:` around the whole exchange (an empty datagram is
# ignored), recvfrom(1024) per chunk, `recvd_size = data_size` when 1024 or fewer
# bytes remain, and the reply to the address of the last chunk.
import os
import socket
import struct
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
    # 接收文件头,文件头的长度由calcsize函数确定
    fhead_size = struct.calcsize('l')
    buf, addr = s.recvfrom(fhead_size)
    if buf:
        #这里结果是一个元组,所以把值取出来
        data_size = struct.unpack('l', buf)[0]
        #接收图片码流长度的码流
        recvd_size = 0
        data_total = b''
        while not recvd_size == data_size:
            if data_size - recvd_size > 1024:
                data, addr = s.recvfrom(1024)
                recvd_size += len(data)
            else:
                data, addr = s.recvfrom(1024)
                recvd_size = data_size
            data_total += data
        print('Received')
        #把接到的码流解码成numpy数组
        nparr = np.frombuffer(data_total, np.uint8)
        img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
        if img_decode is None:
            raise RuntimeError('imdecode failed (the original dies here in imshow)')
        with open(os.path.join(outdir, 'frame-%06d.jpg' % count), 'wb') as f:
            f.write(data_total)
        count += 1
        print('received %d' % len(data_total))
        #应答
        reply = "get message!!!"
        s.sendto(reply.encode('utf-8'), addr)
