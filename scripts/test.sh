#!/usr/bin/env bash
# Builds vidscan and runs the whole test suite. GPU tests (label gpu) skip, saying why, without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
