// Single-precision matrix multiply for the CPU executor's convolutions: packed panels, a register tile
// (AVX-512 12x32, AVX2+FMA 6x16), cache blocking, blocks spread over a ThreadPool. The variant is chosen
// by CPU features at run time, with a baseline SSE2 4x8 fallback, so a binary carried to another machine runs.
#pragma once

#include <cstdint>

namespace vidscan::infer {

class ThreadPool;

// C[M x N] = A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc; on the best
// instruction set this CPU has.
void Gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
          int64_t ldc, ThreadPool* pool);

// The instruction-set variants, so tests can check each one this CPU can run.
enum class GemmIsa { kBaseline, kAvx2, kAvx512 };
bool GemmIsaSupported(GemmIsa isa);
void GemmWithIsa(GemmIsa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float* C, int64_t ldc, ThreadPool* pool);

}  // namespace vidscan::infer
