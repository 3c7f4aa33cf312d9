# Seed 002's receiver, the "upper machine" TCP server (/work/shared/seeds/002_*.txt), made runnable headless.
# Changed from the seed, and why:
# - the address comes from the command line (the seed binds 192.168.137.1:1919); port 0 picks a free
#   port, printed as "listening on <port>" (tests run side by side).
# - the image it got is written to --out DIR/frame-000000.jpg (the exact bytes) and it prints
#   "received <n>"; imshow + waitKey(0) are gone (no window, and no key would ever come), so the
#   function returns and the script exits, closing the socket as the seed does when recv_img returns.
# - np.fromstring -> np.frombuffer: the same bytes; fromstring is deprecated and gone from NumPy 2.
# - the seed does not show who calls recv_img(); here the script does, once.
# Unchanged: one accept(), the length read with ONE recv(1024) and int() of its text, my_recv's loop,
# one image per run, never a reply.
import argparse
import os
import socket

import cv2
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=1919)
parser.add_argument('--out', required=True)
args = parser.parse_args()

# TCP服务端
Server_Host = args.host  # 填写上位机的 IP地址

tcpServer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcpServer.bind((Server_Host, args.port))
tcpServer.listen(10)
print("listening on", tcpServer.getsockname()[1])

img_decode = None


class recvTCP_thread():
    def my_recv(self, sock, count):
        """利用接收的图片长度把图片数据帧加起来"""
        data = b''
        while count:
            recvData = sock.recv(count)
            if not recvData:
                return None
            data += recvData
            count -= len(recvData)
        return data

    def recv_img(self):
        """主函数"""
        client, address = tcpServer.accept()
        while True:
            # 接收二进制图片数据帧长度
            tempdata_len = client.recv(1024).decode()
            print(int(tempdata_len))
            # 使用my_recv函数来 接收二进制图片数据帧
            data = self.my_recv(client, int(tempdata_len))
            # 把二进制图片转换格式
            nparr = np.frombuffer(data, dtype='uint8')
            img = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
            break

        # 显示图片 (headless: keep the bytes instead)
        with open(os.path.join(args.out, 'frame-000000.jpg'), 'wb') as f:
            f.write(data)
        print("received", len(data), "decodable" if img is not None else "undecodable")


recvTCP_thread().recv_img()
