#!/usr/bin/env bash
# Installs what the tests need beyond ../shared (idempotent; does nothing when all is there):
#   - Chromium and chromedriver from the system's packages (never a downloaded browser build),
#   - playwright-core into e2e/node_modules from e2e/package-lock.json (`npm ci`; it does not
#     download browsers),
#   - the ISNet weights' npm tarball (@imgly/background-removal-data 1.4.5, `npm pack` through the
#     configured registry) into target/test-models/, the mirror the ISNet tests install from.
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
