#!/usr/bin/env bash
# Batch throughput benchmark (issue 4): lensblur's batch mode against the do-it-yourself Python loop
# (rembg u2netp + Pillow GaussianBlur + composite), on the same photos, in the same run, interleaved.
#
#   scripts/bench_batch.sh [WORK_DIR]          (default /tmp/lensblur-bench-batch)
#
# Needs: a release build (cargo build --release -p lensblur-cli), python3 with `rembg[cpu]` and
# Pillow ($PYTHON, default python3), ../shared beside the checkout. The photos are made in WORK_DIR
# from ../shared/data (100 of 2.5 MP, 20 of 12 MP) and never enter the repository. rembg gets the
# model from ../shared/models through U2NET_HOME (it never downloads). Prints images/minute and peak
# RSS (GNU time) per run. Set JOBS_SWEEP=1 to also time --jobs 1..4 on 20 of the small photos.
# RUNTIMES="rten ort" times lensblur once per `--runtime` (default: auto; `ort` needs a build with
# `--features ort` and ORT_DYLIB_PATH, see scripts/install-test-deps.sh); SETS="small" limits the sets.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
shared="$here/../shared"
work="${1:-/tmp/lensblur-bench-batch}"
py="${PYTHON:-python3}"
bin="$here/target/release/lensblur"
mkdir -p "$work/u2net" "$work/cache"
[ -f "$work/u2net/u2netp.onnx" ] || cp "$shared/models/u2netp.onnx" "$work/u2net/"
[ -d "$work/small" ] || "$py" "$here/scripts/bench_batch_data.py" "$shared/data" "$work/small" 100 2.5
[ -d "$work/large" ] || "$py" "$here/scripts/bench_batch_data.py" "$shared/data" "$work/large" 20 12
export XDG_CACHE_HOME="$work/cache" LENSBLUR_MODEL_MIRROR="$shared/models" U2NET_HOME="$work/u2net"
"$bin" models install >/dev/null 2>&1
# rembg's first import compiles its modules: do it once outside the timed runs.
"$py" -c "import rembg" >/dev/null 2>&1 || true

row() { # name count dir cmd...
  local name=$1 n=$2 out=$3; shift 3
  rm -rf "$out"
  local t0 t1 rss
  t0=$(date +%s.%N)
  /usr/bin/time -o "$work/time.txt" -f "%M" "$@" >/dev/null 2>"$work/err.txt" || true
  t1=$(date +%s.%N)
  rss=$(tail -1 "$work/time.txt")
  local wall; wall=$(echo "$t1 - $t0" | bc -l)
  local made; made=$(find "$out" -name '*.blur.jpg' | wc -l)
  printf "| %-28s | %3d | %6.1f | %7.1f | %6.0f |\n" "$name" "$made" "$wall" "$(echo "$made / $wall * 60" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}

echo "| run | photos | wall s | photos/min | peak RSS MB |"
echo "|---|---|---|---|---|"
for set in ${SETS:-small large}; do
  n=$(ls "$work/$set" | wc -l)
  for rt in ${RUNTIMES:-auto}; do
    row "lensblur $set ($rt)" "$n" "$work/out-lb-$set" "$bin" blur "$work/$set" --out-dir "$work/out-lb-$set" -q --runtime "$rt"
  done
  row "rembg loop $set" "$n" "$work/out-py-$set" "$py" "$here/scripts/bench_batch_rembg.py" "$work/$set" "$work/out-py-$set" 30
done
if [ "${JOBS_SWEEP:-0}" = 1 ]; then
  mkdir -p "$work/small20" && cp -n "$work"/small/photo_00*.jpg "$work"/small/photo_01[0-9].jpg "$work/small20/" 2>/dev/null || true
  for j in 1 2 3 4; do
    row "lensblur 20 small -j $j" 20 "$work/out-j$j" "$bin" blur "$work/small20" --out-dir "$work/out-j$j" -q -j "$j"
  done
  row "rembg loop 20 small" 20 "$work/out-py20" "$py" "$here/scripts/bench_batch_rembg.py" "$work/small20" "$work/out-py20" 30
fi
