#!/usr/bin/env bash
# Builds the portable vidscan bundle for a GPU machine that has no FFmpeg (and none of the -dev packages):
# Release build with a static minimal FFmpeg and a static Google Benchmark, CUDA for sm_90, into
# build-gpu/; then .gpu/bin/ (stripped executables) and .gpu/data/ (a copy of ../shared/data), checked to
# need nothing but glibc and the GCC runtime. docs/GPU_MACHINE.md says how to carry and run it.
#
#   scripts/build-gpu-bundle.sh
#
# Environment: BUILD_DIR (build-gpu), BUNDLE_DIR (.gpu), BUNDLE_TARGETS (all executables), BUNDLE_DATA_SRC (../shared/data),
#              VIDSCAN_FFMPEG_PREFIX (third_party_build/ffmpeg-static), JOBS (2: the machine is shared),
#              CUDA_ARCHS (90).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build-gpu}
BUNDLE_DIR=${BUNDLE_DIR:-.gpu}
DATA_SRC=${BUNDLE_DATA_SRC:-$ROOT/../shared/data}
FFMPEG_PREFIX=$(realpath -m "${VIDSCAN_FFMPEG_PREFIX:-$ROOT/third_party_build/ffmpeg-static}")
BENCHMARK_PREFIX=$(realpath -m "${VIDSCAN_BENCHMARK_PREFIX:-$ROOT/third_party_build/benchmark-static}")
JOBS=${JOBS:-2}
CUDA_ARCHS=${CUDA_ARCHS:-90}
MAX_BUNDLE_MIB=60  # travels with the working tree; the device tool takes 64 MiB in all per call
log() { echo "build-gpu-bundle: $*"; }
start=$(date +%s)

bash scripts/build-static-ffmpeg.sh "$FFMPEG_PREFIX"
# Debian ships Google Benchmark only as a shared library; the bench_* executables link a static one.
bash scripts/build-static-benchmark.sh "$BENCHMARK_PREFIX"

configure_out=$(cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DVIDSCAN_FFMPEG_PREFIX="$FFMPEG_PREFIX" -Dbenchmark_DIR="$BENCHMARK_PREFIX/lib/cmake/benchmark" \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCHS" ${CMAKE_ARGS:-} 2>&1) || { echo "$configure_out" >&2; exit 1; }
# A bundle without the CUDA kernels would make every GPU test skip on the GPU machine: refuse.
if ! grep -q "vidscan: CUDA kernels ON" <<<"$configure_out"; then
  echo "$configure_out" | grep 'vidscan:' >&2
  log "nvcc not found (expected /usr/local/cuda/bin/nvcc): the GPU bundle needs the CUDA kernels"; exit 1
fi

# BUNDLE_TARGETS narrows what is built and carried (the CPU test binary and the CPU-only benchmarks are not
# needed on the GPU machine, and every binary is ~14 MB of the 64 MiB a call may carry).
if [ -n "${BUNDLE_TARGETS:-}" ]; then
  read -r -a TARGETS <<<"$BUNDLE_TARGETS"
else
  TARGETS=(vidscan vidscan_tests vidscan_gpu_tests)
  for src in bench/bench_*.cpp; do [ -e "$src" ] && TARGETS+=("$(basename "$src" .cpp)"); done
fi
log "building ${TARGETS[*]} in $BUILD_DIR (-j$JOBS)"
cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TARGETS[@]}"

rm -rf "$BUNDLE_DIR/bin" "$BUNDLE_DIR/data"
mkdir -p "$BUNDLE_DIR/bin"
for t in "${TARGETS[@]}"; do
  built=$(find "$BUILD_DIR" -type f -name "$t" -perm -u+x | head -n1)
  [ -n "$built" ] || { log "built target $t not found under $BUILD_DIR"; exit 1; }
  strip -o "$BUNDLE_DIR/bin/$t" "$built"
done

# Only the C/C++ runtime may be dynamic; the NVIDIA driver libraries (libcuda, libnvcuvid,
# libnvidia-ml) are dlopen'ed at run time and never appear here.
allowed='^(linux-vdso\.so\.1|/lib64/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2|libc\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1)$'
# cuDNN (the inference engine, once it exists) stays dynamic: the GPU machine has its own (and a newer
# one inside PyTorch, see docs/GPU_MACHINE.md); it is reported, not refused.
provided='^libcudnn[a-z_]*\.so\.9$'
bad=0
for bin in "$BUNDLE_DIR"/bin/*; do
  libs=$(ldd "$bin" | awk '{print $1}')
  extra=$(grep -Ev "$allowed" <<<"$libs" | grep -Ev "$provided" || true)
  if [ -n "$extra" ]; then log "$bin needs more than the C/C++ runtime: $(echo $extra)"; bad=1; fi
  from_gpu_machine=$(grep -E "$provided" <<<"$libs" || true)
  [ -z "$from_gpu_machine" ] || log "$(basename "$bin") uses the GPU machine's $(echo $from_gpu_machine)"
done
[ "$bad" -eq 0 ] || exit 1
glibc_max=$(objdump -T "$BUNDLE_DIR"/bin/* | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -n1)
glibcxx_max=$(objdump -T "$BUNDLE_DIR"/bin/* | grep -o 'GLIBCXX_[0-9.]*' | sort -Vu | tail -n1)
log "dynamic dependencies: only the C/C++ runtime (newest symbol versions: $glibc_max, $glibcxx_max)"

if [ -d "$DATA_SRC" ]; then
  mkdir -p "$BUNDLE_DIR/data"
  # Same sub-paths (videos/, models/, mot/), so tests run there with VIDSCAN_DATA_DIR=.gpu/data. The
  # shared data is read-only; the copy must not be, so the next bundle can replace it.
  cp -R --no-preserve=mode,ownership "$DATA_SRC"/. "$BUNDLE_DIR/data/"
else
  log "WARNING: no test data at $DATA_SRC; tests on the GPU machine will skip the data-bound cases"
fi
# The single-op ONNX models the CPU test suite generates (build/test_models/ops, with Python's onnx): the
# GPU executor's tests read them through VIDSCAN_MODELS_DIR=.gpu/models, as the GPU machine cannot make them.
rm -rf "$BUNDLE_DIR/models"
if [ -d "$ROOT/build/test_models/ops" ]; then
  mkdir -p "$BUNDLE_DIR/models" && cp -R "$ROOT/build/test_models/ops" "$BUNDLE_DIR/models/"
else
  log "WARNING: build/test_models/ops is absent (run scripts/test.sh first); the GPU executor's op tests will skip"
fi

# Sets the paths the tests need relative to the bundle, wherever it was carried to.
cat >"$BUNDLE_DIR/run.sh" <<'EOF'
#!/usr/bin/env bash
# Runs a bundled binary with the bundle's test data and `vidscan`: .gpu/run.sh vidscan_gpu_tests [args]
here=$(cd "$(dirname "$0")" && pwd)
export VIDSCAN_DATA_DIR=${VIDSCAN_DATA_DIR:-$here/data} VIDSCAN_BIN=${VIDSCAN_BIN:-$here/bin/vidscan}
exe=$1; shift
exec "$here/bin/$exe" "$@"
EOF
chmod +x "$BUNDLE_DIR/run.sh"

{
  echo "vidscan GPU bundle"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!.gpu' 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "built: $(date -u +%Y-%m-%dT%H:%MZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cuda: $(/usr/local/cuda/bin/nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo '?') sm_$CUDA_ARCHS"
  echo "ffmpeg: static, Debian $(grep '^version:' "$FFMPEG_PREFIX/vidscan-ffmpeg-config.txt" | cut -d' ' -f2)"
  echo "needs: glibc >= ${glibc_max#GLIBC_}, libstdc++ with $glibcxx_max, NVIDIA driver (libcuda, libnvcuvid, libnvidia-ml)"
  echo "binaries: ${TARGETS[*]}"
} >"$BUNDLE_DIR/BUILD_INFO.txt"

du -ah "$BUNDLE_DIR" | sort -k2
size_kib=$(du -sk "$BUNDLE_DIR" | cut -f1)
log "bundle $BUNDLE_DIR: $((size_kib / 1024)) MiB in all, built in $(( $(date +%s) - start ))s"
if [ "$size_kib" -gt $((MAX_BUNDLE_MIB * 1024)) ]; then
  log "bundle exceeds ${MAX_BUNDLE_MIB} MiB: too large to carry"; exit 1
fi
