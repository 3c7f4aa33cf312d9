# -*- coding: utf-8 -*-
# Test helper for the seed 000 peers (not from the seed): write a deterministic
# synthetic 160x120 picture as PNG, so a peer's cv2.imread gives exact pixels
# and its cv2.imencode('.jpg') gives a known length. With --multiple-of N the
# picture is varied until that length is a multiple of N (1024: the 000b
# client then sends an empty datagram after the image).
# Usage: seed000_image.py OUT.png SEED [--multiple-of N]
# Prints: image <path> <length of imencode('.jpg')>
import sys

import cv2
import numpy as np

out, seed = sys.argv[1], int(sys.argv[2])
multiple = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == '--multiple-of' else 1

y, x = np.mgrid[0:120, 0:160]
base = np.dstack([(x * 255 // 159), (y * 255 // 119), ((x + y + seed * 37) % 256)]).astype(np.uint8)
rng = np.random.RandomState(seed)
unit = rng.randint(0, 100, size=base.shape)


def encoded_length(img):
    return len(cv2.imencode('.jpg', img)[1].tobytes())


# Coarse: the length grows with the noise strength; stop a little below a multiple.
for strength in range(101):
    img = (base + unit * strength // 100).astype(np.uint8)
    length = encoded_length(img)
    if length % multiple == 0 or multiple - length % multiple <= 120:
        break
# Fine: random pixels add a few bytes each; a step past the multiple is undone.
target = length if length % multiple == 0 else (length // multiple + 1) * multiple
for k in range(20000):
    if length == target:
        break
    r, c = rng.randint(120), rng.randint(160)
    old = img[r, c].copy()
    img[r, c] = rng.randint(0, 256, 3)
    new = encoded_length(img)
    if new > target:
        img[r, c] = old
    else:
        length = new
else:
    raise SystemExit('no image of a length multiple of %d found' % multiple)
cv2.imwrite(out, img)
print('image %s %d' % (out, length))
