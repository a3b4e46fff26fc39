#!/usr/bin/env bash
# Installs what vidscan needs to build and test on Debian 12 / Ubuntu 22.04+ (run as root or with sudo).
# The CUDA toolkit is optional: with nvcc at /usr/local/cuda the GPU kernels are built too.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libffmpeg-nvenc-dev  # demux/decode, NVDEC headers
  ffmpeg                                                # test fixtures and the reference decode in tests
  libcli11-dev nlohmann-json3-dev libfmt-dev libspdlog-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-venv                   # python3-venv: .ci/run's fallback for onnx/onnxruntime
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"
