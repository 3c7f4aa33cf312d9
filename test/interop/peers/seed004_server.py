# Seed 004's server (TCP registration + UDP video with per-frame replies),
# copied from /work/shared/seeds/004_*.txt, Part1, for headless tests.
#
# Changed from the seed, and why:
# - The camera (cv2.VideoCapture(0)) is FakeCapture: it decodes the image files
#   given on the command line and hands them out in a loop, at --fps like a
#   webcam (read() blocks until the next frame is due). It is shared by all
#   client threads without a lock, as the original camera is.
# - Host, port and the log path ('week13/ServerLog.txt') are arguments; port 0
#   picks a free port, printed as "listening <port>" so the test can connect.
# - --dump DIR writes each JPEG right after it is sent, as <clientport>-%06d.jpg,
#   so the test can compare what was sent with what was received (not on the wire).
# - The Chinese prints were mojibake in the seed; the log lines are as
#   WIRE.md gives them. Everything on the wire, the recv sizes, the thread per
#   client, the ONE shared UDP socket and the order of calls are unchanged,
#   bugs included.
import argparse
import os
import time
import cv2
import sys
import numpy as np
from socket import *
from threading import Thread
from datetime import datetime

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='0.0.0.0')
parser.add_argument('--port', type=int, default=9999)
parser.add_argument('--log', default='week13/ServerLog.txt')
parser.add_argument('--dump', default='')
parser.add_argument('--fps', type=float, default=30.0)
parser.add_argument('frames', nargs='+')
ARGS = parser.parse_args()
LOG = ARGS.log


class FakeCapture:
    """Stands in for cv2.VideoCapture(0): the given images in a loop, paced like a webcam."""

    def __init__(self, paths, fps):
        self._images = [cv2.imread(p, cv2.IMREAD_COLOR) for p in paths]
        for p, img in zip(paths, self._images):
            if img is None:
                raise SystemExit(f'cannot read {p}')
        self._i = 0
        self._period = 1.0 / fps if fps > 0 else 0.0
        self._next = time.time()

    def set(self, prop, value):
        return True

    def read(self):
        if self._period:
            delay = self._next - time.time()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + self._period, time.time())
        img = self._images[self._i % len(self._images)]
        self._i += 1
        return True, img


class Server():
    def __init__(self, socket, addr, capture):
        self._socket = socket
        self._addr = addr
        self._cap = capture
        self._sent = 0  # test only: names the dump files

    def __get_cam(self):
        while True:
            ret, frame = self._cap.read()
            yield frame

    def post_cam(self):
        for frame in self.__get_cam():
            img_encode = cv2.imencode('.jpg', frame)[1]
            data_encode = np.array(img_encode)
            data = data_encode.tobytes()
            self._socket.sendto(data, self._addr)
            if ARGS.dump:  # test only
                with open(os.path.join(ARGS.dump, '%d-%06d.jpg' % (self._addr[1], self._sent)), 'wb') as f:
                    f.write(data)
            self._sent += 1
            print(f'sent {len(data)} to {self._addr}')
            reply, addr = self._socket.recvfrom(1024)
            # the client's reply: 'end' ends this thread
            if reply.decode('utf-8') == 'end':
                break
        with open(LOG, 'a', encoding='utf-8') as f:
            f.write(f'{datetime.now()} 客户端{self._addr} 退出\n')
        print(f'exit {self._addr}')


def accpet_client():
    # TCP: clients register here
    tcp_socket = socket(AF_INET, SOCK_STREAM)
    tcp_socket.bind((ARGS.host, ARGS.port))
    tcp_socket.listen(5)
    print(f'listening {tcp_socket.getsockname()[1]}')
    # UDP: the video
    udp_socket = socket(AF_INET, SOCK_DGRAM)
    capture = FakeCapture(ARGS.frames, ARGS.fps)
    capture.set(3, 160)
    capture.set(4, 90)
    while True:
        print('waiting for a new client...')
        conn, addr = tcp_socket.accept()
        client = (addr[0], int(conn.recv(1024).decode('utf-8')))
        # log
        with open(LOG, 'a', encoding='utf-8') as f:
            f.write(f'{datetime.now()} 客户端{client} 接入\n')
        print(f'join {client}')
        # a thread per client sends the video
        s = Server(udp_socket, client, capture)
        t = Thread(target=Server.post_cam, args=(s,))
        t.start()

if __name__ == "__main__":
    a = Thread(target=accpet_client)
    a.start()
    a.join()
