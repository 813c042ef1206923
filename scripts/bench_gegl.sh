#!/usr/bin/env bash
# Side-by-side with GEGL's lens blur on the same 12 MP PNG, in one run (PNG I/O included on both
# sides; lensblur also runs the subject model and matting, GEGL blurs the whole frame).
#
#   bash scripts/bench_gegl.sh [PHOTO] [MEGAPIXELS]
#
# Needs: gegl (apt-get install gegl), python3 with Pillow (installed with pip if missing), and
# ../shared for the model mirror. Prints a markdown table: radius, GEGL seconds, lensblur seconds
# (file to file) and lensblur's render stage alone, at three radii.
set -euo pipefail
cd "$(dirname "$0")/.."
photo=${1:-../shared/data/scenes/1.jpg}
mp=${2:-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
command -v gegl >/dev/null || { echo "gegl not found: apt-get install gegl" >&2; exit 1; }
python3 -c "import PIL" 2>/dev/null || python3 -m pip install --quiet pillow
cargo build --release --quiet -p lensblur-cli
bin=target/release/lensblur
export LENSBLUR_MODEL_MIRROR=${LENSBLUR_MODEL_MIRROR:-$(cd ../shared/models && pwd)}
export XDG_CACHE_HOME="$work/cache"

python3 - "$photo" "$mp" "$work/in.png" <<'EOF'
import sys, math
from PIL import Image
src, mp, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
im = Image.open(src).convert("RGB")
s = math.sqrt(mp * 1e6 / (im.width * im.height))
im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS).save(out, compress_level=1)
print(f"input: {src} upscaled to {round(im.width*s)}x{round(im.height*s)}", file=sys.stderr)
EOF

# strength whose disc radius is R px on this image (inverse of coc::blur_radius_px).
strength_for() {
  python3 - "$work/in.png" "$1" <<'EOF'
import sys, math
from PIL import Image
w, h = Image.open(sys.argv[1]).size
R = float(sys.argv[2])
frac = 0.5 * (85**2 / (1.2 * (2000 - 85))) / math.hypot(36, 24)
c = 2 * R / (frac * math.hypot(w, h))
print(f"{100 * (-1 + math.sqrt(1 + 4 * c)) / 2:.2f}")
EOF
}

"$bin" models install u2netp >/dev/null 2>&1 || true
echo "| radius (px) | strength | GEGL lens-blur (s) | lensblur file→file (s) | lensblur render stage (s) | GEGL / lensblur |"
echo "|---:|---:|---:|---:|---:|---:|"
for R in 30 60 150; do
  s=$(strength_for "$R")
  t0=$(date +%s.%N)
  gegl -i "$work/in.png" -o "$work/gegl.png" -- gegl:lens-blur radius="$R" >/dev/null 2>&1
  t1=$(date +%s.%N)
  timings=$("$bin" blur "$work/in.png" -o "$work/ours.png" -s "$s" --force --overwrite --timings 2>&1 | grep timings)
  t2=$(date +%s.%N)
  render_ms=$(sed -E 's/.*render ([0-9]+) ms.*/\1/' <<<"$timings")
  python3 -c "g=$t1-$t0; o=$t2-$t1; print(f'| $R | $s | {g:.2f} | {o:.2f} | {$render_ms/1000:.2f} | {g/o:.1f}x |')"
done
