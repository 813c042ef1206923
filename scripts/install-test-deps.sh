#!/usr/bin/env bash
# Installs what the tests need beyond ../shared (idempotent; does nothing when all is there):
#   - Chromium and chromedriver from the system's packages (never a downloaded browser build),
#   - playwright-core into e2e/node_modules from e2e/package-lock.json (`npm ci`; it does not
#     download browsers),
#   - the ISNet weights' npm tarball (@imgly/background-removal-data 1.4.5, `npm pack` through the
#     configured registry) into target/test-models/, the mirror the ISNet tests install from.
#   - libonnxruntime.so from the PyPI `onnxruntime` wheel into target/onnxruntime/ (the `ort` backend).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium and chromium-driver (apt)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends chromium chromium-driver
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "node and npm are needed for e2e/ (install Node.js 18 or newer, e.g. apt-get install nodejs npm)" >&2
  exit 1
fi

if [ ! -d e2e/node_modules/playwright-core ]; then
  echo "installing e2e/node_modules (npm ci)" >&2
  (cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi

# The tests check the tarball's chunks and the concatenated model against the manifest's sha256.
isnet_tgz=target/test-models/imgly-background-removal-data-1.4.5.tgz
if [ ! -f "$isnet_tgz" ]; then
  echo "fetching the ISNet npm tarball into target/test-models (npm pack, ~136 MB)" >&2
  mkdir -p target/test-models
  tmp=$(mktemp -d target/test-models/.npm-pack.XXXXXX)
  (cd "$tmp" && npm pack --silent --ignore-scripts @imgly/background-removal-data@1.4.5 >/dev/null)
  mv "$tmp/$(basename "$isnet_tgz")" "$isnet_tgz"
  rmdir "$tmp"
fi

# ONNX Runtime for the `ort` backend's tests: only `libonnxruntime.so.1.*` out of the PyPI wheel
# (`pip download`, nothing installed into Python), into target/onnxruntime/. scripts/test.sh points
# ORT_DYLIB_PATH at it.
ORT_VERSION=1.32.0
ort_dir="${CARGO_TARGET_DIR:-target}/onnxruntime"
if [ ! -f "$ort_dir/libonnxruntime.so.$ORT_VERSION" ]; then
  echo "fetching libonnxruntime $ORT_VERSION (pip download onnxruntime==$ORT_VERSION)" >&2
  mkdir -p "$ort_dir"
  wheel_dir=$(mktemp -d)
  trap 'rm -rf "$wheel_dir"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$wheel_dir"
  python3 - "$wheel_dir" "$ort_dir" <<'PY'
import glob, os, sys, zipfile
wheel_dir, out = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(wheel_dir, "onnxruntime-*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one onnxruntime wheel in {wheel_dir}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    libs = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so.1.")]
    if not libs:
        sys.exit(f"{wheels[0]}: no onnxruntime/capi/libonnxruntime.so.1.* inside")
    for name in libs:
        dest = os.path.join(out, os.path.basename(name))
        with z.open(name) as src, open(dest + ".part", "wb") as dst:
            dst.write(src.read())
        os.replace(dest + ".part", dest)
        print(f"  {dest}", file=sys.stderr)
PY
fi
