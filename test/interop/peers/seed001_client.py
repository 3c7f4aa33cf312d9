# Seed 001's client (jianshu.com/p/3a37e6572a45, /work/shared/seeds/001_*.txt), made runnable headless.
# Changed from the seed, and why:
# - host and port come from the command line (the seed hard-codes 127.0.0.1:8080).
# - cv2.imshow is gone; cv2.waitKey(10) becomes time.sleep(0.01) (it paced the loop); ESC is never pressed.
#   imshow(None) raised on an undecodable frame, so a None from imdecode still raises here.
# - Each JPEG it got is written to --out DIR/frame-%06d.jpg (the exact bytes it decoded) and it prints
#   "received <n>", so a test can wait for frames and compare them.
# - np.fromstring -> np.frombuffer: the same bytes; fromstring is deprecated and gone from NumPy 2.
# Unchanged: the 16-byte greeting, recv(8) for the header (no loop), the 1 ms sleep, and the body loop
# that keeps only the LAST recv piece (the seed's bug: a frame read in several pieces is lost).
import argparse
import os
import socket
import struct
import time

import cv2
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=8080)
parser.add_argument('--out', required=True)
args = parser.parse_args()

received = 0


def save(data):
    global received
    with open(os.path.join(args.out, 'frame-%06d.jpg' % received), 'wb') as f:
        f.write(data)
    received += 1
    print("received", len(data))


obj = socket.socket()
obj.connect((args.host, args.port))
# 用于双python
obj.sendall(bytes('hello Apple Cai!', encoding="utf-8"))
while(True):
    buf_size, a2 = struct.unpack("ii", obj.recv(8))
    temp_buf = b''
    time.sleep(0.001)  #不加延时就不行,不知道为什么。
    while(buf_size):
        temp_buf = obj.recv(buf_size)
        buf_size -= len(temp_buf)
    str_encode = temp_buf
    save(str_encode)
    nparr = np.frombuffer(str_encode, np.uint8)
    #解压jpg格式数据
    img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
    #显示为图片 (imshow raised on None)
    if img_decode is None:
        raise RuntimeError("imshow would fail: imdecode returned None")
    time.sleep(0.01)  # cv2.waitKey(10): 每10ms刷新一次图片
