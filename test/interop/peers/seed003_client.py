# Seed 003's client (/work/shared/seeds/003_*.txt), made runnable headless.
# Changed from the seed, and why:
# - HOST/PORT come from the command line (the seed connects to 172.32.0.144:6810).
# - input() reads the next word of a command script given on the command line (e.g. `0 1 3 q 2`); when
#   the script is used up it raises EOFError, as input() does on a closed stdin.
# - no window: cv2.imshow/destroyAllWindows are gone; cv2.waitKey(3000) (showing a single image) becomes
#   time.sleep(--show, default 3 as in the seed); in stream mode cv2.waitKey(1) becomes time.sleep(0.001)
#   and "presses" q once --stream-frames frames went to the video, taking the script's next word if it is q.
# - receive_image also writes the exact JPEG bytes it received to --out DIR/frame-%06d.jpg and prints
#   "received <n>"; cv2.VideoWriter is replaced by one that writes the JPEG bytes of each frame it is given
#   to DIR/video-%06d.jpg and prints "written <n>" (the AVI itself is another issue).
# Unchanged: every sendall and its order ('3' then '0' back to back, '1' after every single image,
# '2' twice), receive_image's recv(4) (not a loop) and recv(min(1024, remaining)) with its timeouts,
# the sizing frame that is not written, "No new frame received. Waiting..." + sleep(1) forever.
import argparse
import os
import socket
import time

import cv2
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument('--host', default='127.0.0.1')
parser.add_argument('--port', type=int, default=6810)
parser.add_argument('--out', required=True)
parser.add_argument('--show', type=float, default=3.0)
parser.add_argument('--stream-frames', type=int, default=5)
parser.add_argument('script', nargs='*')
args = parser.parse_args()
script = list(args.script)

received = 0
last_image = b''
written = 0


def input(prompt):
    if not script:
        raise EOFError('EOF when reading a line')
    command = script.pop(0)
    print(prompt + command)
    return command


def wait_key_q():
    """cv2.waitKey(1) & 0xFF in stream mode: q once enough frames are in the video."""
    time.sleep(0.001)
    if written >= args.stream_frames and script and script[0] == 'q':
        script.pop(0)
        return ord('q')
    return 0xFF


class VideoWriter:
    def __init__(self, filename, fourcc, fps, size):
        print("video", filename, fps, size)

    def write(self, frame):
        global written
        with open(os.path.join(args.out, 'video-%06d.jpg' % written), 'wb') as f:
            f.write(last_image)
        written += 1
        print("written", len(last_image))

    def release(self):
        pass


def keep(image_data):
    global received, last_image
    if not image_data:
        return
    with open(os.path.join(args.out, 'frame-%06d.jpg' % received), 'wb') as f:
        f.write(image_data)
    received += 1
    last_image = image_data
    print("received", len(image_data))


def receive_image(conn, timeout=5):
    conn.settimeout(timeout)
    try:
        data_length = int.from_bytes(conn.recv(4), byteorder='big')
        image_data = b''
        received = 0
        while received < data_length:
            packet = conn.recv(min(1024, data_length - received))
            if not packet:
                break
            image_data += packet
            received += len(packet)
        keep(image_data)
        image_np = np.frombuffer(image_data, dtype=np.uint8)
        frame = cv2.imdecode(image_np, cv2.IMREAD_COLOR)
        return frame
    except socket.timeout:
        print("Timeout waiting for image from server.")
        return None
    except Exception as e:
        print(f"Error receiving image: {e}")
        return None


def main():
    HOST = args.host
    PORT = args.port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.connect((HOST, PORT))
            video_writer = None
            while True:
                command = input("Enter command (0 to request image, 1 to do nothing, 2 to exit, 3 for video stream): ")
                s.sendall(command.encode())
                if command == '2':
                    s.sendall(b'2')
                    break
                elif command == '3':
                    print("Starting video stream mode. Press 'q' to stop.")
                    timestamp = int(time.time() * 1000)
                    video_filename = f"video_stream_{timestamp}.avi"
                    fourcc = cv2.VideoWriter_fourcc(*'XVID')
                    video_writer = None
                    s.sendall(b'0')
                    frame = receive_image(s, timeout=5)
                    if frame is None:
                        print("Failed to receive first image frame.")
                        continue
                    height, width, _ = frame.shape
                    video_writer = VideoWriter(video_filename, fourcc, 20.0, (width, height))
                    while True:
                        if video_writer is None:
                            break
                        frame = receive_image(s, timeout=1)
                        if frame is None:
                            print("No new frame received. Waiting...")
                            time.sleep(1)
                            continue
                        video_writer.write(frame)
                        key = wait_key_q()
                        if key == ord('q'):
                            print("Stopping video stream and saving video.")
                            s.sendall(b'q')
                            break
                    if video_writer is not None:
                        video_writer.release()
                        print(f"Video saved as {video_filename}")
                elif command == '0':
                    frame = receive_image(s, timeout=5)
                    if frame is not None:
                        time.sleep(args.show)  # cv2.imshow + cv2.waitKey(3000)
                    else:
                        print("No image received.")
                    s.sendall(b'1')
        except Exception as e:
            print(f"Socket error occurred: {e}")
            if video_writer is not None:
                video_writer.release()


if __name__ == "__main__":
    main()
