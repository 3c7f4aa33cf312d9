# Seed 004's client (registers its UDP port over TCP, receives one JPEG per
# datagram, replies continue/end), copied from /work/shared/seeds/004_*.txt,
# Part2, for headless tests.
#
# Changed from the seed, and why:
# - cv2.imshow/destroyAllWindows are gone; cv2.waitKey(50) becomes
#   time.sleep(0.05), and the ESC key becomes "stop after N frames"
#   (argv[5]; 0 = never), after which it sends continue + end exactly as the
#   original does.
# - cv2.VideoWriter is replaced by writing each received JPEG's exact bytes to
#   a directory (argv[4]) as frame-%06d.jpg; where the original would open a
#   new AVI (every 15 s), it prints "new file <path>". The period is argv[6]
#   (default 15) so a test can use a short one. argv[7] is the UDP bind
#   address (default the original's 0.0.0.0; tests use 127.0.0.1).
# - It prints "received <bytes>" per frame so the test can wait for it.
# Everything else is unchanged, bugs included: it registers BEFORE binding its
# UDP port (the race), recvfrom(400000), replies with the module-global
# udp_socket to the frame's source address.
import os
import cv2
import sys
import time
import numpy as np
from socket import *
from datetime import datetime

rsize = 400000
fourcc = cv2.VideoWriter_fourcc(*'XVID')
OUT = sys.argv[4]
STOP_AFTER = int(sys.argv[5])
SAVETIME = float(sys.argv[6]) if len(sys.argv) > 6 else 15
BIND = sys.argv[7] if len(sys.argv) > 7 else '0.0.0.0'


class Receiver:
    def __init__(self, socket, addr, savetime=15, savepath=os.path.join(OUT, 'camera')):
        self._socket = socket
        self._addr = addr
        self._time = savetime
        self._path = savepath
        self._count = 0  # test only: frame file names and the ESC stand-in

    def __save_cam(self, frame, data):
        # a new video file every self._time seconds
        if time.time() - self._start > self._time:
            self._start = time.time()
            path = self._path + (datetime.now().strftime('%H-%M-%S')) + '.avi'
            print(f'new file {path}')  # was: self._out = cv2.VideoWriter(path, fourcc, 10.0, (160,120))
        with open(os.path.join(OUT, 'frame-%06d.jpg' % self._count), 'wb') as f:  # was: self._out.write(frame)
            f.write(data)
        self._count += 1

    def receive_cam(self):
        self._socket.bind(self._addr)
        self._start = time.time()
        path = self._path + (datetime.now().strftime('%H-%M-%S')) + '.avi'
        print(f'new file {path}')  # was: self._out = cv2.VideoWriter(path, fourcc, 10.0, (160,120))
        while True:
            data, addr = self._socket.recvfrom(rsize)
            nparr = np.frombuffer(data, np.uint8)
            img_decode = cv2.imdecode(nparr, cv2.IMREAD_COLOR)
            # cv2.imshow('receive', img_decode)
            self.__save_cam(img_decode, data)
            print(f'received {len(data)}')
            time.sleep(0.05)  # was: c = cv2.waitKey(50)
            c = 27 if STOP_AFTER and self._count >= STOP_AFTER else -1
            udp_socket.sendto('continue'.encode('utf-8'), addr)
            if c == 27:         # ESC: quit
                # cv2.destroyAllWindows()
                udp_socket.sendto('end'.encode('utf-8'), addr)
                break
        print('bye')

if __name__ == "__main__":
    # register with the server: our UDP port, over TCP
    # sys.argv[1], sys.argv[2]: server ip and port
    # sys.argv[3]: the UDP port to receive the video on
    tcp_socket = socket(AF_INET, SOCK_STREAM)
    tcp_socket.connect((sys.argv[1], int(sys.argv[2])))
    tcp_socket.send((sys.argv[3]).encode('utf-8'))
    udp_socket = socket(AF_INET, SOCK_DGRAM)
    r = Receiver(udp_socket, (BIND, int(sys.argv[3])), SAVETIME)
    r.receive_cam()
