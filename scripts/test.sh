#!/usr/bin/env bash
# Builds vidscan and runs the whole test suite. GPU tests (label gpu) skip, saying why, without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The reference tools the tests compare with (motmetrics, onnx, onnxruntime), in a venv in the build tree.
bash scripts/setup-eval-env.sh
export VIDSCAN_PYTHON=${VIDSCAN_PYTHON:-$PWD/${BUILD_DIR:-build}/eval-venv/bin/python}
cd "${BUILD_DIR:-build}"
ctest --output-on-failure -j"$(nproc)" "$@"
