#!/usr/bin/env bash
# The parsers that read untrusted files, under AddressSanitizer + UndefinedBehaviorSanitizer: the ONNX
# import's malformed-model tests (truncated, garbage, huge dims, unknown ops, cycles, 20,000 mutants) and the
# demuxer's bad-file tests. CPU-only build in build-asan/ of the library and the two test files that hold
# these tests (vidscan_parser_tests), not of every test file.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIDSCAN_ENABLE_CUDA=OFF -DVIDSCAN_ASAN=ON >/dev/null
cmake --build build-asan -j"$(nproc)" --target vidscan_parser_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/tests/vidscan_parser_tests --gtest_brief=1 \
  --gtest_filter='ProtoReader*:OnnxImport*:GraphPasses*:Demuxer.ClearErrorsForFilesThatAreNotVideo'
