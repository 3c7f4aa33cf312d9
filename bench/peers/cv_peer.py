# The seed-style Python + OpenCV peer of `npm run bench -- --peers`: what the
# seeds do (cv2.imencode -> 4-byte big-endian length + JPEG over a socket ->
# read that many bytes -> cv2.imdecode), with exact framing: the receiver
# reads whole headers and whole payloads, never one recv() taken as a frame.
#
#   cv_peer.py recv --port P --mode decode|discard [--stamp] [--skip K]
#       listens on 127.0.0.1:P, takes one sender, reads frames until it closes,
#       then prints one JSON line: {"frames": n, "bytes": b, "bad": d, "latency_ms": [...]}
#   cv_peer.py send --port P (--raw FILE --size WxH | --jpeg FILE) --frames N
#                   [--quality 80] [--fps F] [--stamp]
#       raw: the picture is read once (RGB, turned BGR once as cv2 expects) and
#       encoded with cv2.imencode for every frame; jpeg: the same bytes are sent N times.
#
# --stamp (latency runs): an 8-byte big-endian double follows the length, the
# frame's capture time in ms since the epoch (time.time(), taken just before
# the sender encodes: when a camera would hand the frame over). The receiver
# subtracts it from time.time() once the frame is decoded. Both ends run on
# the same machine, so they share the clock.
import argparse
import json
import socket
import struct
import sys
import time

import cv2
import numpy as np


def read_exact(conn, view, n):
    """Fill view[:n]; False when the peer closed before the first byte, an error when it closed midway."""
    got = 0
    while got < n:
        k = conn.recv_into(view[got:n], n - got)
        if k == 0:
            if got == 0:
                return False
            raise EOFError('connection closed inside a frame (%d of %d bytes)' % (got, n))
        got += k
    return True


def recv(args):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(('127.0.0.1', args.port))
    server.listen(1)
    conn, _ = server.accept()
    server.close()
    head_len = 12 if args.stamp else 4
    head = bytearray(head_len)
    head_view = memoryview(head)
    frames = 0
    total = 0
    bad = 0
    latency = []
    while read_exact(conn, head_view, head_len):
        (n,) = struct.unpack_from('>I', head, 0)
        payload = bytearray(n)
        if not read_exact(conn, memoryview(payload), n):
            raise EOFError('connection closed before a payload of %d bytes' % n)
        if args.mode == 'decode':
            img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
            if img is None:
                bad += 1
        if args.stamp and frames >= args.skip:
            (stamp,) = struct.unpack_from('>d', head, 4)
            latency.append(round(time.time() * 1000 - stamp, 3))
        frames += 1
        total += n
    conn.close()
    sys.stdout.write(json.dumps({'frames': frames, 'bytes': total, 'bad': bad, 'latency_ms': latency}) + '\n')


def send(args):
    params = [cv2.IMWRITE_JPEG_QUALITY, args.quality]
    if args.raw:
        width, height = (int(v) for v in args.size.split('x'))
        img = np.fromfile(args.raw, np.uint8).reshape(height, width, 3)
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        jpeg = None
    else:
        with open(args.jpeg, 'rb') as f:
            jpeg = f.read()
    conn = socket.create_connection(('127.0.0.1', args.port))
    interval = 1.0 / args.fps if args.fps > 0 else 0.0
    start = time.monotonic()
    for i in range(args.frames):
        if interval:
            wait = start + i * interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        stamp = time.time() * 1000
        if jpeg is None:
            ok, buf = cv2.imencode('.jpg', img, params)
            if not ok:
                raise RuntimeError('imencode failed')
            data = buf.tobytes()
        else:
            data = jpeg
        head = struct.pack('>Id', len(data), stamp) if args.stamp else struct.pack('>I', len(data))
        # One sendall of header + payload, as the seeds do.
        conn.sendall(head + data)
    conn.shutdown(socket.SHUT_WR)
    conn.close()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='role', required=True)
    r = sub.add_parser('recv')
    r.add_argument('--port', type=int, required=True)
    r.add_argument('--mode', choices=['decode', 'discard'], default='decode')
    r.add_argument('--stamp', action='store_true')
    r.add_argument('--skip', type=int, default=0)
    s = sub.add_parser('send')
    s.add_argument('--port', type=int, required=True)
    s.add_argument('--raw')
    s.add_argument('--size')
    s.add_argument('--jpeg')
    s.add_argument('--frames', type=int, required=True)
    s.add_argument('--quality', type=int, default=80)
    s.add_argument('--fps', type=float, default=0)
    s.add_argument('--stamp', action='store_true')
    args = parser.parse_args()
    if args.role == 'recv':
        recv(args)
    else:
        send(args)


if __name__ == '__main__':
    main()
