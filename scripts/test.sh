#!/usr/bin/env bash
# The test command (README, and `.ci/run` in CI): installs what the tests need (Chromium from the
# system's packages, playwright-core from e2e/package-lock.json, libonnxruntime from the PyPI
# `onnxruntime` wheel; idempotent), then runs every test with the optional ONNX Runtime backend built
# in, so both runtimes are tested (LENSBLUR_REQUIRE_ORT=1: the ort tests fail rather than skip when
# the library is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
ort_lib=$(ls "${CARGO_TARGET_DIR:-target}"/onnxruntime/libonnxruntime.so.1.* | head -n 1)
ORT_DYLIB_PATH=$(realpath "$ort_lib")
export ORT_DYLIB_PATH
export LENSBLUR_REQUIRE_ORT=1
cargo test --workspace --locked --features lensblur-cli/ort
