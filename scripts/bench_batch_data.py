#!/usr/bin/env python3
"""Makes the batch benchmark's photos from the real ones in ../shared/data (never committed):
N photos of about MP megapixels, each a different crop/flip of a portrait or animal photo, upscaled
with Lanczos and saved as JPEG q92.

    python3 bench_batch_data.py SHARED_DATA OUT_DIR COUNT MEGAPIXELS
"""
import os
import sys

from PIL import Image, ImageOps


def main():
    data, out, count, mp = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    os.makedirs(out, exist_ok=True)
    sources = []
    for sub in ("portraits", "animals"):
        d = os.path.join(data, sub)
        sources += [os.path.join(d, n) for n in sorted(os.listdir(d)) if n.endswith(".jpg")]
    for i in range(count):
        img = Image.open(sources[i % len(sources)]).convert("RGB")
        variant = i // len(sources)
        w, h = img.size
        # A different 90 % crop (and a mirror on odd rounds) for every repeat of a source.
        cx = (variant * 37) % 11 / 100
        cy = (variant * 53) % 11 / 100
        img = img.crop((int(w * cx), int(h * cy), int(w * (cx + 0.9)), int(h * (cy + 0.9))))
        if variant % 2:
            img = ImageOps.mirror(img)
        scale = (mp * 1e6 / (img.width * img.height)) ** 0.5
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        img.save(os.path.join(out, f"photo_{i:03d}.jpg"), quality=92)


if __name__ == "__main__":
    main()
