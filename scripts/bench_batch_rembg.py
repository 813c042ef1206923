#!/usr/bin/env python3
"""The do-it-yourself batch loop lensblur is compared with (issue 4): rembg's u2netp session made
once, then per photo: mask (rembg `remove(only_mask=True)`), Pillow GaussianBlur, composite, JPEG
q92. One Python process, files in sorted order.

    U2NET_HOME=DIR_WITH_u2netp.onnx python3 bench_batch_rembg.py IN_DIR OUT_DIR STRENGTH

The Gaussian's sigma is half lensblur's disc radius for the same strength (strength 100 = a disc
of 3.63 % of the diagonal), so both blur about as much; Pillow's blur costs the same at any radius.
"""
import math
import os
import sys
import time

from PIL import Image, ImageFilter
from rembg import new_session, remove


def main():
    src, dst, strength = sys.argv[1], sys.argv[2], float(sys.argv[3])
    os.makedirs(dst, exist_ok=True)
    t0 = time.time()
    session = new_session("u2netp")
    names = sorted(n for n in os.listdir(src) if n.lower().endswith((".jpg", ".jpeg", ".png")))
    t1 = time.time()
    for n in names:
        img = Image.open(os.path.join(src, n)).convert("RGB")
        mask = remove(img, session=session, only_mask=True)
        diag = math.hypot(*img.size)
        radius = strength / 100 * 0.0363 * diag / 2
        blurred = img.filter(ImageFilter.GaussianBlur(radius / 2))
        out = Image.composite(img, blurred, mask)
        out.save(os.path.join(dst, os.path.splitext(n)[0] + ".blur.jpg"), quality=92)
    t2 = time.time()
    print(f"RESULT rembg photos={len(names)} load_s={t1 - t0:.2f} run_s={t2 - t1:.2f} "
          f"per_min={len(names) / (t2 - t1) * 60:.1f}")


if __name__ == "__main__":
    main()
