#!/usr/bin/env bash
# The test command (README, and `.ci/run` in CI): installs what the browser test needs (Chromium from
# the system's packages, playwright-core from e2e/package-lock.json; idempotent), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --locked
