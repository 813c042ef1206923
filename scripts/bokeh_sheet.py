#!/usr/bin/env python3
"""Contact sheet of bokeh variants of one photo, for looking at (issue 3's "done means").

    python3 scripts/bokeh_sheet.py PHOTO OUT.png [--strength 70] [--crop x,y,w,h]

Renders PHOTO with the release `lensblur` binary (build it first) in eight variants — disc, hexagon,
9-blade curved, cat's eye; highlights off / full; grain off / strong — and tiles a 100 % crop of each
with its label. Needs Pillow; model from LENSBLUR_MODEL_MIRROR or the cache.
"""
import argparse
import os
import subprocess
import tempfile

from PIL import Image, ImageDraw

VARIANTS = [
    ("disc", []),
    ("hexagon", ["--aperture", "hexagon"]),
    ("9 blades, curvature 0.5", ["--aperture", "nonagon", "--aperture-curvature", "0.5"]),
    ("disc, cat's eye 1", ["--cats-eye", "1"]),
    ("highlights 0", ["--highlights", "0"]),
    ("highlights 1", ["--highlights", "1"]),
    ("grain off", ["--grain", "off"]),
    ("grain 6 levels", ["--grain", "6"]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("photo")
    ap.add_argument("out")
    ap.add_argument("--strength", default="70")
    ap.add_argument("--crop", default=None, help="x,y,w,h of the 100 %% crop")
    ap.add_argument("--bin", default="target/release/lensblur")
    args = ap.parse_args()
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, extra) in enumerate(VARIANTS):
            out = os.path.join(tmp, f"{i}.png")
            cmd = [args.bin, "-q", "blur", args.photo, "-o", out, "-s", args.strength, "--force"]
            subprocess.run(cmd + extra, check=True)
            im = Image.open(out).convert("RGB")
            if args.crop:
                x, y, w, h = (int(v) for v in args.crop.split(","))
                im = im.crop((x, y, x + w, y + h))
            d = ImageDraw.Draw(im)
            d.rectangle((0, 0, 8 * len(label) + 12, 22), fill=(0, 0, 0))
            d.text((6, 5), label, fill=(255, 255, 255))
            tiles.append(im)
    w, h = tiles[0].size
    sheet = Image.new("RGB", (4 * w, 2 * h))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % 4) * w, (i // 4) * h))
    sheet.save(args.out)


if __name__ == "__main__":
    main()
