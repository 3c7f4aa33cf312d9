# -*- coding: utf-8 -*-
# Seed 000c client 2 (udp_client_2.py: a JSON list every 10 ms, one reply each), made headless for tests.
# Changed from the seed, and why:
#   - host and port come from the command line (the seed hard-codes 127.0.0.1:6666).
# Unchanged: json.dumps([0,0,0,1]).encode() (12 bytes `[0, 0, 0, 1]`), sleep
# 10 ms, recv(1024) with no timeout, loop forever (the test kills it).
import json
import socket
import sys
import time

#定义套接字
send_msg = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
#设置目标IP地址、端口号
target_ip = sys.argv[1]
target_port = int(sys.argv[2])
#发送数据,等待应答
while True:
    data = [0, 0, 0, 1]
    data_str = json.dumps(data)
    send_msg.sendto(data_str.encode(), (target_ip, target_port))
    time.sleep(0.01)
    print(send_msg.recv(1024).decode('utf-8'))
