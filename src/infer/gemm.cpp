#include "infer/gemm.h"

#include <algorithm>
#include <vector>

#include "infer/thread_pool.h"

namespace vidscan::infer {
namespace {

// Cache blocking shared by every tile: a packed A block (kMC x kKC) stays in L2, a B panel (kKC x NR) in L1.
// kMC is a multiple of both tiles' MR, kNC of both NRs.
constexpr int64_t kMC = 120, kNC = 256, kKC = 256;

typedef float Vec4 __attribute__((vector_size(16)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));

// A register tile of MR rows by NR = 2 vectors of columns: AVX-512 12x32 (24 of 32 zmm registers hold the
// accumulators), AVX2 6x16 (12 of 16 ymm), baseline SSE2 4x8 (8 of 16 xmm).
template <int64_t MR_, typename Vec_>
struct Tile {
  static constexpr int64_t MR = MR_;
  static constexpr int64_t kLanes = sizeof(Vec_) / sizeof(float);
  static constexpr int64_t NR = 2 * kLanes;
  using Vec = Vec_;
};
using TileSse = Tile<4, Vec4>;
using TileAvx2 = Tile<6, Vec8>;
using TileAvx512 = Tile<12, Vec16>;

// Unaligned vector load and store (memcpy compiles to one vmovups). Out-parameters, not return values:
// a vector returned by value from a baseline-ISA function trips GCC's ABI warning.
template <typename Vec>
inline __attribute__((always_inline)) void Load(Vec* v, const float* p) {
  __builtin_memcpy(v, p, sizeof(Vec));
}
template <typename Vec>
inline __attribute__((always_inline)) void Store(float* p, const Vec& v) {
  __builtin_memcpy(p, &v, sizeof(Vec));
}

template <typename T>
inline __attribute__((always_inline)) void PackA(const float* A, int64_t lda, int64_t mc, int64_t kc, float* out) {
  for (int64_t p = 0; p < mc; p += T::MR) {
    const int64_t rows = std::min(T::MR, mc - p);
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = 0; r < T::MR; ++r) *out++ = r < rows ? A[(p + r) * lda + k] : 0.0f;
  }
}

template <typename T>
inline __attribute__((always_inline)) void PackB(const float* B, int64_t ldb, int64_t kc, int64_t nc, float* out) {
  for (int64_t j = 0; j < nc; j += T::NR) {
    const int64_t cols = std::min(T::NR, nc - j);
    for (int64_t k = 0; k < kc; ++k) {
      const float* row = B + k * ldb + j;
      if (cols == T::NR) {
        std::copy(row, row + T::NR, out);
      } else {
        for (int64_t c = 0; c < T::NR; ++c) out[c] = c < cols ? row[c] : 0.0f;
      }
      out += T::NR;
    }
  }
}

// The MR x NR tile of C at `c` (rows x cols valid) += or = packed A panel times packed B panel.
template <typename T>
inline __attribute__((always_inline)) void MicroKernel(int64_t kc, const float* ap, const float* bp, float* c, int64_t ldc,
                                                       int64_t rows, int64_t cols, bool accumulate) {
  using Vec = typename T::Vec;
  Vec acc[T::MR][2] = {};
  for (int64_t k = 0; k < kc; ++k) {
    Vec b0, b1;
    Load(&b0, bp);
    Load(&b1, bp + T::kLanes);
    for (int64_t r = 0; r < T::MR; ++r) {
      acc[r][0] += ap[r] * b0;
      acc[r][1] += ap[r] * b1;
    }
    ap += T::MR;
    bp += T::NR;
  }
  if (rows == T::MR && cols == T::NR) {
    for (int64_t r = 0; r < T::MR; ++r) {
      float* row = c + r * ldc;
      if (accumulate) {
        Vec c0, c1;
        Load(&c0, row);
        Load(&c1, row + T::kLanes);
        Store<Vec>(row, c0 + acc[r][0]);
        Store<Vec>(row + T::kLanes, c1 + acc[r][1]);
      } else {
        Store<Vec>(row, acc[r][0]);
        Store<Vec>(row + T::kLanes, acc[r][1]);
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* row = c + r * ldc;
    for (int64_t j = 0; j < cols; ++j) {
      const float v = acc[r][j / T::kLanes][j % T::kLanes];
      row[j] = accumulate ? row[j] + v : v;
    }
  }
}

// One (kMC x kNC) block of C over the whole K, with its own packing buffers.
template <typename T>
inline __attribute__((always_inline)) void GemmBlockBody(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda,
                                                         const float* B, int64_t ldb, float* C, int64_t ldc, float* packed_a,
                                                         float* packed_b) {
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    PackB<T>(B + pc * ldb, ldb, kc, nc, packed_b);
    PackA<T>(A + pc, lda, mc, kc, packed_a);
    for (int64_t jr = 0; jr < nc; jr += T::NR) {
      const float* bp = packed_b + (jr / T::NR) * kc * T::NR;
      for (int64_t ir = 0; ir < mc; ir += T::MR) {
        const float* ap = packed_a + (ir / T::MR) * kc * T::MR;
        MicroKernel<T>(kc, ap, bp, C + ir * ldc + jr, ldc, std::min(T::MR, mc - ir), std::min(T::NR, nc - jr), pc > 0);
      }
    }
  }
}

// The body compiled for AVX-512, AVX2+FMA and baseline x86-64, chosen by CPU features at run time (GCC's
// target_clones "arch=" tests the CPU model, not its features, and took the slow path on this Xeon).
// All sum over k in the same order: AVX-512 and AVX2 (both fused multiply-add) give identical results; the
// baseline, without FMA, rounds each product separately.
__attribute__((target("avx512f,avx2,fma"))) void GemmBlockAvx512(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda,
                                                                 const float* B, int64_t ldb, float* C, int64_t ldc,
                                                                 float* packed_a, float* packed_b) {
  GemmBlockBody<TileAvx512>(mc, nc, K, A, lda, B, ldb, C, ldc, packed_a, packed_b);
}

__attribute__((target("avx2,fma"))) void GemmBlockAvx2(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda,
                                                       const float* B, int64_t ldb, float* C, int64_t ldc, float* packed_a,
                                                       float* packed_b) {
  GemmBlockBody<TileAvx2>(mc, nc, K, A, lda, B, ldb, C, ldc, packed_a, packed_b);
}

void GemmBlockBaseline(int64_t mc, int64_t nc, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                       int64_t ldc, float* packed_a, float* packed_b) {
  GemmBlockBody<TileSse>(mc, nc, K, A, lda, B, ldb, C, ldc, packed_a, packed_b);
}

using GemmBlockFn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, float*, float*);

GemmBlockFn BlockFor(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kAvx512: return GemmBlockAvx512;
    case GemmIsa::kAvx2: return GemmBlockAvx2;
    case GemmIsa::kBaseline: break;
  }
  return GemmBlockBaseline;
}

GemmIsa BestIsa() {
  if (GemmIsaSupported(GemmIsa::kAvx512)) return GemmIsa::kAvx512;
  if (GemmIsaSupported(GemmIsa::kAvx2)) return GemmIsa::kAvx2;
  return GemmIsa::kBaseline;
}

}  // namespace

bool GemmIsaSupported(GemmIsa isa) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  switch (isa) {
    case GemmIsa::kAvx512: return avx2 && __builtin_cpu_supports("avx512f");
    case GemmIsa::kAvx2: return avx2;
    case GemmIsa::kBaseline: return true;
  }
  return false;
}

void GemmWithIsa(GemmIsa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                 float* C, int64_t ldc, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
    return;
  }
  const GemmBlockFn gemm_block = BlockFor(isa);
  const int64_t m_blocks = (M + kMC - 1) / kMC;
  const int64_t n_blocks = (N + kNC - 1) / kNC;
  auto block = [&](int64_t index) {
    // Per-thread packing buffers, sized once for the largest block.
    thread_local std::vector<float> packed_a, packed_b;
    packed_a.resize(kMC * kKC);
    packed_b.resize(kKC * kNC);
    const int64_t ic = (index / n_blocks) * kMC;
    const int64_t jc = (index % n_blocks) * kNC;
    gemm_block(std::min(kMC, M - ic), std::min(kNC, N - jc), K, A + ic * lda, lda, B + jc, ldb, C + ic * ldc + jc, ldc,
               packed_a.data(), packed_b.data());
  };
  if (pool) {
    pool->ParallelFor(m_blocks * n_blocks, block);
  } else {
    for (int64_t i = 0; i < m_blocks * n_blocks; ++i) block(i);
  }
}

void Gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
          ThreadPool* pool) {
  static const GemmIsa best = BestIsa();
  GemmWithIsa(best, M, N, K, A, lda, B, ldb, C, ldc, pool);
}

}  // namespace vidscan::infer
