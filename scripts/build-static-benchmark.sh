#!/usr/bin/env bash
# Builds Google Benchmark as a static library from Debian's source package, so the bench_* executables
# carried to a GPU machine need no libbenchmark.so there (Debian's libbenchmark-dev ships only the shared
# library). Link it with -Dbenchmark_DIR=PREFIX/lib/cmake/benchmark (scripts/build-gpu-bundle.sh does).
#
#   scripts/build-static-benchmark.sh [PREFIX]   default PREFIX: third_party_build/benchmark-static
#
# Idempotent: does nothing when PREFIX/lib/libbenchmark.a exists with the same recorded configuration.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=$(realpath -m "${1:-$ROOT/third_party_build/benchmark-static}")
WORK=$(realpath -m "${VIDSCAN_BENCHMARK_WORK:-$ROOT/third_party_build/benchmark-work}")
SOURCE_SPEC=benchmark${VIDSCAN_BENCHMARK_VERSION:+=$VIDSCAN_BENCHMARK_VERSION}
log() { echo "build-static-benchmark: $*"; }
. "$ROOT/scripts/lib/debian-source.sh"

FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  # Static and position independent: linked into vidscan's PIE executables.
  -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  # Only the library: its own tests would need GoogleTest sources and double the build time.
  -DBENCHMARK_ENABLE_TESTING=OFF -DBENCHMARK_ENABLE_GTEST_TESTS=OFF -DBENCHMARK_ENABLE_INSTALL=ON
  # A newer compiler's warning must not break a vendored build.
  -DBENCHMARK_ENABLE_WERROR=OFF
  # No libpfm (perf counters): one more library the GPU machine would need.
  -DBENCHMARK_ENABLE_LIBPFM=OFF
  # lib/ rather than lib/x86_64-linux-gnu/, so the prefix layout is predictable.
  -DCMAKE_INSTALL_LIBDIR=lib
)
CONFIG_RECORD="$PREFIX/vidscan-benchmark-config.txt"
# (GIT_VERSION, added below once the source is unpacked, follows from the source spec.)
CONFIG=$(printf 'source: %s\nflags: %s' "$SOURCE_SPEC" "${FLAGS[*]}")
build_is_current "$PREFIX/lib/libbenchmark.a" "$CONFIG_RECORD" "$CONFIG" && exit 0

start=$(date +%s)
SRC_DIR=$(fetch_debian_source "$SOURCE_SPEC" "$WORK/src")
VERSION=$(debian_source_version "$SRC_DIR")
# The tarball has no git tags to read its version from; debian/rules passes it the same way.
FLAGS+=(-DGIT_VERSION="$(sed -E 's/^[0-9]+://; s/-[^-]*$//' <<<"$VERSION")")
rm -rf "$WORK/build" "$PREFIX"
GEN=(); command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S "$SRC_DIR" -B "$WORK/build" "${GEN[@]}" -DCMAKE_INSTALL_PREFIX="$PREFIX" "${FLAGS[@]}" \
  >"$WORK/configure.out" 2>&1 || { tail -n 30 "$WORK/configure.out" >&2; exit 1; }
cmake --build "$WORK/build" -j"$(nproc)" >"$WORK/build.out" 2>&1 || { tail -n 40 "$WORK/build.out" >&2; exit 1; }
cmake --install "$WORK/build" >"$WORK/install.out" 2>&1 || { tail -n 20 "$WORK/install.out" >&2; exit 1; }
write_build_record "$CONFIG_RECORD" "$CONFIG" "$VERSION"
log "built Debian benchmark $VERSION into $PREFIX in $(( $(date +%s) - start ))s"
