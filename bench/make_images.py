"""Writes N face-like test JPEGs (250x250, quality 90, like LFW) for the
pipeline benchmark: a noisy two-colour gradient background, a skin-tone
head ellipse with eyes, brows, nose and mouth at random places, blurred and
with sensor-like noise, so that the JPEGs have realistic entropy.

    python bench/make_images.py DIR [N]
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def face(rng, side=250):
    y, x = np.mgrid[0:side, 0:side] / side
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    t = np.clip(np.cos(a) * x + np.sin(a) * y, 0, 1)[..., None]
    bg = c0 * (1 - t) + c1 * t + rng.normal(0, 12, (side, side, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy = side * rng.uniform(0.4, 0.6), side * rng.uniform(0.4, 0.6)
    w, h = side * rng.uniform(0.25, 0.35), side * rng.uniform(0.32, 0.42)
    skin = tuple(int(v) for v in rng.uniform([120, 80, 60], [255, 210, 180]))
    hair = tuple(int(v) for v in rng.uniform(0, 120, 3))
    d.ellipse([cx - w * 1.05, cy - h * 1.1, cx + w * 1.05, cy + h * 0.2], fill=hair)
    d.ellipse([cx - w, cy - h, cx + w, cy + h], fill=skin)
    for s in (-1, 1):
        ex, ey = cx + s * w * 0.4, cy - h * 0.15
        d.ellipse([ex - w * 0.15, ey - h * 0.06, ex + w * 0.15, ey + h * 0.06], fill=(240, 240, 240))
        d.ellipse([ex - w * 0.06, ey - h * 0.06, ex + w * 0.06, ey + h * 0.06], fill=(40, 30, 20))
        d.line([ex - w * 0.2, ey - h * 0.15, ex + w * 0.2, ey - h * 0.18], fill=hair, width=4)
    d.polygon([(cx, cy - h * 0.05), (cx - w * 0.12, cy + h * 0.25), (cx + w * 0.12, cy + h * 0.25)],
              fill=tuple(max(0, v - 30) for v in skin))
    d.chord([cx - w * 0.4, cy + h * 0.3, cx + w * 0.4, cy + h * 0.6], 0, 180, fill=(150, 50, 60))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    arr = np.asarray(img).astype(np.float32) + rng.normal(0, 4, (side, side, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def main():
    out, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = os.path.join(out, f"{i % 10:02d}")
        os.makedirs(sub, exist_ok=True)
        face(rng).save(os.path.join(sub, f"{i:05d}.jpg"), quality=90)


if __name__ == "__main__":
    main()
