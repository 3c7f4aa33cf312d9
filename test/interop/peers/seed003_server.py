# Seed 003's camera server (/work/shared/seeds/003_*.txt), made runnable headless.
# Changed from the seed, and why:
# - `import lockzhiner_vision_module.cv2 as cv2` -> `import cv2` (the vision module is that board's OpenCV).
# - cv2.VideoCapture() -> FakeCapture: the "camera" is the image files given on the command line, read in a
#   loop; read() sleeps 1/--fps as a camera does (without it, stream mode would flood the socket).
# - HOST/PORT come from the command line (the seed binds 172.32.0.144:6810); port 0 picks a free port,
#   printed as "listening on <port>" (tests run side by side).
# - --sent DIR: each JPEG it sends is also written to DIR/sent-%06d.jpg so a test can compare bytes.
# - the send thread's idle loop sleeps 1 ms: the seed busy-loops there, which would take a whole core
#   of the 2-core test machine away from the other tests. Nothing on the wire changes.
# Unchanged, bugs included: two threads per connection sharing module-global events, each recv(1024)
# taken as one command after decode().strip(), 'Unknown command' written into the image stream, '0'
# reading (and discarding) a frame, the [len BE32] and JPEG sent with TWO sendall calls, FPS prints.
import argparse
import os
import socket
import threading
import time
from threading import Thread, Event

import cv2


class FakeCapture:
    def __init__(self, files, fps):
        self.files = files
        self.interval = 1.0 / fps
        self.images = []
        self.n = 0

    def open(self, index):
        self.images = [cv2.imread(f) for f in self.files]
        return all(img is not None for img in self.images)

    def read(self):
        time.sleep(self.interval)
        img = self.images[self.n % len(self.images)]
        self.n += 1
        return True, img

    def release(self):
        pass


sent_lock = threading.Lock()
sent = 0


def record(data):
    global sent
    with sent_lock:
        if args.sent:
            with open(os.path.join(args.sent, 'sent-%06d.jpg' % sent), 'wb') as f:
                f.write(data)
        sent += 1


def send_image(conn, frame):
    try:
        ret, img_encode = cv2.imencode('.jpg', frame)
        if not ret:
            print("Failed to encode image")
            return
        data = img_encode
        record(data.tobytes())
        conn.sendall(len(data).to_bytes(4, byteorder='big'))
        conn.sendall(data)
        print("Image sent.")
    except (ConnectionResetError, OSError) as e:
        print(f"Error sending image: {e}")


def handle_client_send(conn, start_event, shutdown_event, confirm_event, streaming_event, cap):
    frame_counter = 0
    start_time = time.time()
    while not shutdown_event.is_set():
        if start_event.is_set() or streaming_event.is_set():
            ret, frame = cap.read()
            if ret:
                send_image(conn, frame)
                frame_counter += 1
            if not streaming_event.is_set():
                confirm_event.wait()
                confirm_event.clear()
                start_event.clear()
            elapsed_time = time.time() - start_time
            if elapsed_time >= 1:
                fps = frame_counter / elapsed_time
                print(f"FPS: {fps}")
                frame_counter = 0
                start_time = time.time()
        else:
            time.sleep(0.001)  # headless: the seed busy-loops here


def handle_client_receive(conn, addr, cap, start_event, shutdown_event, confirm_event, streaming_event):
    print(f"Connected by {addr}")
    try:
        while not shutdown_event.is_set():
            try:
                data = conn.recv(1024)
            except ConnectionResetError:
                print("Connection reset by peer.")
                break
            if not data or shutdown_event.is_set():
                print("Connection closed.")
                break
            command = data.decode().strip()
            print(f"Received command: {command}")
            if command == '0':
                ret, frame = cap.read()
                if ret:
                    if streaming_event.is_set():
                        pass
                    else:
                        start_event.set()
            elif command == '1':
                confirm_event.set()
            elif command == '2':
                shutdown_event.set()
                break
            elif command == '3':
                streaming_event.set()
                print("Video stream mode started.")
            elif command == 'q':
                streaming_event.clear()
                print("Video stream mode stopped.")
            else:
                conn.sendall("Unknown command".encode())
    finally:
        conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=6810)
    parser.add_argument('--fps', type=float, default=30)
    parser.add_argument('--sent', default=None)
    parser.add_argument('files', nargs='+')
    args = parser.parse_args()

    HOST = args.host
    PORT = args.port
    cap = FakeCapture(args.files, args.fps)
    if cap.open(0) is False:
        print("Failed to open capture")
        exit(1)
    print("video is all ready")
    start_event = Event()
    shutdown_event = Event()
    confirm_event = Event()
    streaming_event = Event()

    server_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_socket.bind((HOST, PORT))
    server_socket.listen()
    print("listening on", server_socket.getsockname()[1])
    print("Server started, waiting for connections...")
    try:
        while not shutdown_event.is_set():
            conn, addr = server_socket.accept()
            client_send_thread = Thread(target=handle_client_send,
                                        args=(conn, start_event, shutdown_event, confirm_event, streaming_event, cap))
            client_receive_thread = Thread(target=handle_client_receive,
                                           args=(conn, addr, cap, start_event, shutdown_event, confirm_event, streaming_event))
            client_send_thread.start()
            client_receive_thread.start()
    except KeyboardInterrupt:
        print("Server interrupted.")
    finally:
        cap.release()
        server_socket.close()
        print("Server stopped and resources released.")
