#include "infer/gemm.h"

#include <algorithm>
#include <vector>

#include "infer/thread_pool.h"

namespace vidscan::infer {
namespace {

// Register tile kMR x kNR (12 accumulators of 8 floats: fits the 16 AVX2 registers with the two B loads
// and a broadcast), blocked so a packed A block (kMC x kKC) stays in L2 and a B panel (kKC x kNR) in L1.
constexpr int64_t kMR = 6, kNR = 16, kMC = 120, kNC = 256, kKC = 256;

typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec8Unaligned __attribute__((vector_size(32), aligned(4)));

void PackA(const float* A, int64_t lda, int64_t mc, int64_t kc, float* out) {
  for (int64_t p = 0; p < mc; p += kMR) {
    const int64_t rows = std::min(kMR, mc - p);
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < kMR; ++r) *out++ = r < rows ? A[(p + r) * lda + k] : 0.0f;
  }
}

void PackB(const float* B, int64_t ldb, int64_t kc, int64_t nc, float* out) {
  for (int64_t j = 0; j < nc; j += kNR) {
    const int64_t cols = std::min(kNR, nc - j);
    for (int64_t k = 0; k < kc; ++k) {
      const float* row = B + k * ldb + j;
      if (cols == kNR) {
        std::copy(row, row + kNR, out);
      } else {
        for (int64_t c = 0; c < kNR; ++c) out[c] = c < cols ? row[c] : 0.0f;
      }
      out += kNR;
    }
  }
}

// The 6x16 tile of C at `c` (rows x cols valid) += or = packed A panel times packed B panel.
inline __attribute__((always_inline)) void MicroKernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                       int64_t rows, int64_t cols, bool accumulate) {
  Vec8 acc[kMR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const Vec8 b0 = *reinterpret_cast<const Vec8Unaligned*>(bp);
    const Vec8 b1 = *reinterpret_cast<const Vec8Unaligned*>(bp + 8);
    for (int64_t r = 0; r < kMR; ++r) {
      acc[r][0] += ap[r] * b0;
      acc[r][1] += ap[r] * b1;
    }
    ap += kMR;
    bp += kNR;
  }
  if (rows == kMR && cols == kNR) {
    for (int64_t r = 0; r < kMR; ++r) {
      Vec8Unaligned* row = reinterpret_cast<Vec8Unaligned*>(c + r * ldc);
      if (accumulate) {
        row[0] += acc[r][0];
        row[1] += acc[r][1];
      } else {
        row[0] = acc[r][0];
        row[1] = acc[r][1];
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = acc[r][j / 8][j % 8];
      row[j] = accumulate ? row[j] + v : v;
    }
  }
}

// One (kMC x kNC) block of C over the whole K, with its own packing buffers.
inline __attribute__((always_inline)) void GemmBlockBody(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda,
                                                         const float* B, int64_t ldb, float* C, int64_t ldc, float* packed_a,
                                                         float* packed_b) {
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    PackB(B + pc * ldb, ldb, kc, nc, packed_b);
    PackA(A + pc, lda, mc, kc, packed_a);
    for (int64_t jr = 0; jr < nc; jr += kNR) {
      const float* bp = packed_b + (jr / kNR) * kc * kNR;
      for (int64_t ir = 0; ir < mc; ir += kMR) {
        const float* ap = packed_a + (ir / kMR) * kc * kMR;
        MicroKernel(kc, ap, bp, C + ir * ldc + jr, ldc, std::min(kMR, mc - ir), std::min(kNR, nc - jr), pc > 0);
      }
    }
  }
}

// The same body compiled twice: for AVX2+FMA (16 ymm registers hold the tile) and for baseline x86-64.
// Chosen by CPU features at run time (GCC's target_clones "arch=" tests the CPU model, not its features).
__attribute__((target("avx2,fma"))) void GemmBlockAvx2(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda,
                                                       const float* B, int64_t ldb, float* C, int64_t ldc, float* packed_a,
                                                       float* packed_b) {
  GemmBlockBody(mc, nc, K, A, lda, B, ldb, C, ldc, packed_a, packed_b);
}

void GemmBlockBaseline(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                       int64_t ldc, float* packed_a, float* packed_b) {
  GemmBlockBody(mc, nc, K, A, lda, B, ldb, C, ldc, packed_a, packed_b);
}

using GemmBlockFn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float*, float*);

GemmBlockFn SelectGemmBlock() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? GemmBlockAvx2 : GemmBlockBaseline;
}

}  // namespace

void Gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
          ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
    return;
  }
  const int64_t m_blocks = (M + kMC - 1) / kMC;
  const int64_t n_blocks = (N + kNC - 1) / kNC;
  auto block = [&](int64_t index) {
    // Per-thread packing buffers, sized once for the largest block.
    thread_local std::vector<float> packed_a, packed_b;
    packed_a.resize(kMC * kKC);
    packed_b.resize(kKC * kNC);
    const int64_t ic = (index / n_blocks) * kMC;
    const int64_t jc = (index % n_blocks) * kNC;
    static const GemmBlockFn gemm_block = SelectGemmBlock();
    gemm_block(std::min(kMC, M - ic), std::min(kNC, N - jc), K, A + ic * lda, lda, B + jc, ldb, C + ic * ldc + jc, ldc,
              packed_a.data(), packed_b.data());
  };
  if (pool) {
    pool->ParallelFor(m_blocks * n_blocks, block);
  } else {
    for (int64_t i = 0; i < m_blocks * n_blocks; ++i) block(i);
  }
}

}  // namespace vidscan::infer
