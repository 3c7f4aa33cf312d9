# Seed 001's server (jianshu.com/p/3a37e6572a45, /work/shared/seeds/001_*.txt), made runnable headless.
# Changed from the seed, and why:
# - cv2.VideoCapture(0) -> FakeCapture: the "camera" is the image files given on the command line,
#   read in a loop at --fps (a camera paces cap.read(); without it the loop would flood the socket).
# - host and port come from the command line; port 0 picks a free port, printed as "listening on <port>"
#   (tests run side by side and cannot share the seed's fixed 8080).
# - --sent DIR: each JPEG it sends is also written to DIR/sent-%06d.jpg, so a test can compare bytes.
# - img_encode.tostring() -> tobytes(): the same bytes; tostring() is gone from NumPy 2.
# Unchanged: struct.pack("ii", L, L) + JPEG in ONE sendall, default imencode quality (95), the
# greeting never read, one accept() only, no SO_REUSEADDR, no end of stream (it dies when sendall fails).
import argparse
import os
import socket
import struct
import time

import cv2


class FakeCapture:
    def __init__(self, files, fps):
        self.images = [cv2.imread(f) for f in files]
        self.interval = 1.0 / fps
        self.n = 0

    def read(self):
        time.sleep(self.interval)
        img = self.images[self.n % len(self.images)]
        self.n += 1
        return True, img


sent = 0


def record(data):
    global sent
    if args.sent:
        with open(os.path.join(args.sent, 'sent-%06d.jpg' % sent), 'wb') as f:
            f.write(data)
    sent += 1


def img_endecode(img):
    #获取jpg数据流
    ret, img_encode = cv2.imencode('.jpg', img)
    str_encode = img_encode.tobytes()
    record(str_encode)
    strsize = struct.pack("ii", len(str_encode), len(str_encode))
    #发送到互联网
    conn.sendall(strsize + str_encode)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8080)
    parser.add_argument('--fps', type=float, default=30)
    parser.add_argument('--sent', default=None)
    parser.add_argument('files', nargs='+')
    args = parser.parse_args()

    sk = socket.socket()
    sk.bind((args.host, args.port))
    sk.listen(5)
    print("listening on", sk.getsockname()[1])
    conn, address = sk.accept()
    print("address", address)
    cap = FakeCapture(args.files, args.fps)
    while(1):
        # get a frame
        ret, frame = cap.read()
        img_endecode(frame)
