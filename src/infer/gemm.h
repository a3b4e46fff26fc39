// Single-precision matrix multiply for the CPU executor's convolutions: packed panels, a 6x16 register
// tile, cache blocking, tiles spread over a ThreadPool. Built for AVX2+FMA with a portable fallback chosen
// at run time, so the binary carried to another machine still runs.
#pragma once

#include <cstdint>

namespace vidscan::infer {

class ThreadPool;

// C[M x N] = A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc.
void Gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, ThreadPool* pool);

}  // namespace vidscan::infer
