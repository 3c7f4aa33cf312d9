# -*- coding: utf-8 -*-
# Seed 000c server (udp_server.py: image port + JSON message port, one thread each), made headless for tests.
# Changed from the seed, and why:
#   - host, both ports and an output directory come from the command line (the
#     seed hard-codes 127.0.0.1, 9999 and 6666); port 0 picks a free port, and
#     one added line `ports <image port> <message port>` says which;
#   - cv2.imshow is gone (no display) and cv2.waitKey(100), which paced the
#     image loop, becomes time.sleep(0.1). Each image's exact bytes go to
#     OUTDIR/frame-%06d.jpg and one line `received <length>` is printed;
#   - np.fromstring -> np.frombuffer (same bytes; fromstring is removed in NumPy 2);
#   - a failed decode raises, as imshow(None) did: the image thread dies.
# Unchanged, quirks included: only `data_size = ...` and print(data_size) are
# inside `if buf:` (WIRE.md 000b/c fragility 5, the reconstruction of the
# flattened blog code), so an empty datagram reuses the previous size; the
# message thread decodes UTF-8 and json.loads every datagram, dying on the
# first bad one, and answers 'get the msg'.
import json
import os
import socket
import struct
import sys
import threading
import time

import cv2
import numpy as np

#设置IP地址、两个服务器端口号
dest_ip = sys.argv[1]
img_port = int(sys.argv[2])
msg_port = int(sys.argv[3])
outdir = sys.argv[4]

#服务器1的处理、应答函数,接收图片、显示、应答
def receive_img(rec_img):
    count = 0
    while True:
        # 接收数据:
        fhead_size = struct.calcsize('l')
        buf, addr = rec_img.recvfrom(fhead_size)
        if buf:
            data_size = struct.unpack('l', buf)[0]
            print(data_size)
        recvd_size = 0
        data_total = b''
        while not recvd_size == data_size:
            if data_size - recvd_size > 1024:
                data, addr = rec_img.recvfrom(1024)
                recvd_size += len(data)
            else:
                data, addr = rec_img.recvfrom(1024)
                recvd_size = data_size
            data_total += data
        print('Received')

        nparr = np.frombuffer(data_total, np.uint8)
        img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
        if img_decode is None:
            raise RuntimeError('imdecode failed (the original dies here in imshow)')
        with open(os.path.join(outdir, 'frame-%06d.jpg' % count), 'wb') as f:
            f.write(data_total)
        count += 1
        print('received %d' % len(data_total))
        time.sleep(0.1)
        reply = "get message!!!"
        rec_img.sendto(reply.encode('utf-8'), addr)

#服务器2函数,接收消息、输出、应答
def receive_msg(rec_msg):
    while True:
        msg_data, msg_addr = rec_msg.recvfrom(1024)
        msg_str = msg_data.decode('utf-8')
        msg = json.loads(msg_str)
        print(msg)
        reply = 'get the msg'
        rec_msg.sendto(reply.encode('utf-8'), msg_addr)
    rec_msg.close()

#主函数 创建服务器、绑定端口、创建运行两个进程、调用上面两个函数
def main():
    #创建套接字
    rec_img = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rec_msg = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    #绑定本地地址端口
    rec_img.bind((dest_ip, img_port))
    rec_msg.bind((dest_ip, msg_port))
    print('ports %d %d' % (rec_img.getsockname()[1], rec_msg.getsockname()[1]))
    #创建进程
    t_recimg = threading.Thread(target=receive_img, args=(rec_img,))
    t_recmsg = threading.Thread(target=receive_msg, args=(rec_msg,))
    #开始进程
    t_recimg.start()
    t_recmsg.start()
    print('程序正常运行!!!')


if __name__ == '__main__':
    main()
