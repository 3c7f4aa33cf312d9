# Seed 002's sender, the "lower machine" TCP client (/work/shared/seeds/002_*.txt), made runnable headless.
# Changed from the seed, and why:
# - the server address comes from the command line (the seed hard-codes 192.168.1.1:1919).
# - self.pic_data: the seed does not show where it comes from; here each file on the command line is
#   one image, sent in order with send_msg() on the one connection.
# - --pause (default 1, as the seed's time.sleep(1)) only to show what a shorter pause does to a receiver.
# - the debugging imshow + waitKey(0) at the end of send_msg are gone: waitKey(0) waits for a key
#   that never comes headless; the script exits after the last image, which closes the socket.
# - np.fromstring -> np.frombuffer: the same bytes; fromstring is deprecated and gone from NumPy 2.
# Unchanged: str(len).encode() with send(), the sleep, then the JPEG with send() (not sendall).
import argparse
import socket
import time

import cv2
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=1919)
parser.add_argument('--pause', type=float, default=1)
parser.add_argument('files', nargs='+')
args = parser.parse_args()

# 服务端的IP地址 + 建立TCP客户端
Server_Host = args.host
ListenSocket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ListenSocket.connect((Server_Host, args.port))


class Sender:
    def __init__(self, pic_data):
        self.pic_data = pic_data

    def send_msg(self):
        """发送身份信息到上位机"""
        # 图片数据帧的长度
        encode_len = str(len(self.pic_data)).encode()
        print(len(encode_len))

        # 发送图片数据帧的长度
        ListenSocket.send(encode_len)
        time.sleep(args.pause)
        # 发送图片数据帧
        ListenSocket.send(self.pic_data)

        # 下面是用来防差错测试的（可以不写）
        # 验证发送的图片 是否正确
        nparr = np.frombuffer(self.pic_data, dtype='uint8')
        img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
        print("sent", len(self.pic_data), "decodable" if img_decode is not None else "undecodable")


for name in args.files:
    with open(name, 'rb') as f:
        Sender(f.read()).send_msg()
