// Internal to src/preprocess: the per-lane work of fused kernel v3 (preprocess_paired.cuh), host/device like
// staged_rows.h, so a CPU test replays it lane by lane with the same integer and float operations (the few
// device instructions it uses, PRMT and DP2A, have exact host twins below).
//
// Why v3: v2 spends ~131 SASS instructions per output pixel (Nsight Compute on an H100: issue-bound, SM
// 84 %, DRAM 40 %), mostly on exactness with the CPU reference: every tap converted to float and
// interpolated with separately rounded multiplies and adds, the 3x3 colour matrix, two-sided clamps, one
// 2-byte store per channel. v3 computes the same function within a stated tolerance instead of bit for bit
// (docs/preprocess.md, "Kernel v3"), with about a third of the instructions:
//   - a lane makes two adjacent output columns (a "pair"): at step <= 2 their luma taps lie in 8 bytes of
//     each staged row and their chroma taps in 8 bytes of each staged chroma row, so two 4-byte shared
//     loads per row feed both pixels, and each channel is written with one 4-byte (FP16) or 8-byte (FP32)
//     store for both;
//   - the horizontal interpolation is integer: one PRMT gathers the pair's four tap bytes of a row, and
//     one DP2A per pixel computes w0 * a + w1 * b with 15-bit weights (w0 + w1 = 2^15), accumulated onto
//     0x4b000000, so the result's bits ARE the float 2^23 + 2^15 * sample (exact: the sum is < 2^23) with no
//     conversion instruction;
//   - the vertical interpolation is one FSUB + one FFMA on those biased floats (exact difference, one
//     rounding at 2^-15 of a level); the 2^23 bias, the 2^15 scale and 1/255 are folded into the colour
//     constants on the host (FrameDescriptor::pair_*), the structural zeros of the matrix are skipped (R has
//     no U term, B no V term), and the clamp to 0..255 is the free .SAT of the last FFMA.
// Error against the reference (8-bit levels before normalisation): weights quantised to 2^-15 move a
// sample by at most 255 * 2^-16 = 0.0039 levels; through the matrix (sum of |coefficients| <= 3.31 for
// BT.2020 limited) that is <= 0.013 levels, plus float rounding (~1e-4). Stated tolerance: 0.02 levels
// (FP32), FP16 adds its own rounding; the GPU and CPU-replay tests check it.
//
// Frames v3 does not specialise (P016, shrink > 2x, steps too close to 2 for the pair window, rows not
// 16-byte aligned, odd network width) go to the v2-w4 staged kernel, and from there to v1 as v2 sends them
// (PairedKernelTakes, preprocess_cuda.cu).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "preprocess/frame_descriptor.h"
#include "preprocess/kernel_chunk.h"
#include "preprocess/preprocess.h"
#include "preprocess/staged_rows.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace vidscan::preprocess_detail {

// The tuning of one v3 instantiation (docs/preprocess.md, "Kernel v3"):
//   kColumns: output columns of a strip (a multiple of 64: kColumns / 64 pairs per lane);
//   kWarps: warps per block; they share a segment's pair table and split its rows;
//   kBlocksPerSm: the __launch_bounds__ minimum (and so the register cap);
//   kMinRowsPerWarp: small launches get fewer blocks, so that a table is used for at least this many rows
//     per warp;
//   kStages: stage buffers per warp: kStages - 1 rows' copies in flight while the warp computes one (2 = v2's
//     double buffering);
//   kGridWaves: 0 = persistent grid (at most the blocks that fit at once, split statically); n > 0 = up to n
//     times that many blocks (shorter blocks, the hardware hands them out as SMs free up: no static tail);
//   kStreaming: L2 hints for data used once: the luma rows (read once at a ~2x shrink) are copied with an
//     evict-first policy and the tensor is written with st.global.cs, so neither pushes out of L2 the chroma
//     rows, which the next output row reads again.
template <int kColumns_, int kWarps_, int kBlocksPerSm_, int kMinRowsPerWarp_, int kStages_ = 2, int kGridWaves_ = 0,
          bool kStreaming_ = false>
struct PairedShape {
  static_assert(kColumns_ % 64 == 0 && kColumns_ >= 64 && kColumns_ <= 1024, "whole pairs per lane");
  static constexpr int kColumns = kColumns_;
  static constexpr int kPairs = kColumns_ / 2;
  static constexpr int kPairsPerLane = kColumns_ / 64;
  static constexpr int kWarps = kWarps_;
  static constexpr int kBlocksPerSm = kBlocksPerSm_;
  static constexpr int kMinRowsPerWarp = kMinRowsPerWarp_;
  static_assert(kStages_ >= 2 && kStages_ <= 4, "one row computed while kStages - 1 are in flight");
  static constexpr int kStages = kStages_;
  static constexpr int kGridWaves = kGridWaves_;
  static constexpr bool kStreaming = kStreaming_;
  // Bytes per staged source row: the window of kColumns outputs at step <= 2 is at most 2 kColumns + 34
  // bytes (StagedShape), and a pair's second word may reach 7 bytes past the window's last byte.
  static constexpr int kStageRowCapacity = 2 * kColumns_ + 64;
};

// The instantiations (CudaPreprocessVariant names them): 8 warps x 3 blocks = 24 warps per SM (80
// registers; at 64, i.e. 32 warps per SM, the pair loop spills).
using PairedShapeV3 = PairedShape<256, 8, 3, 4>;      // "v3": ~49.5 KB shared memory per block
using PairedShapeV3C320 = PairedShape<320, 8, 3, 4>;  // "v3-c320": ~58.8 KB per block
// The same 24 warps per SM in smaller blocks: finer-grained work split, shorter tail.
using PairedShapeV3C320W6 = PairedShape<320, 6, 4, 4>;  // "v3-c320-w6"
using PairedShapeV3C320W4 = PairedShape<320, 4, 6, 4>;  // "v3-c320-w4"
// Issue 3's last ~8 % (docs/preprocess.md, "v3: closing on 70 %"), one hypothesis each:
//   s3: latency-bound -> 3 stage buffers, 2 rows in flight per warp while it computes a third; 5 warps x 4
//       blocks = 20 warps per SM (the stages of 24 warps would not fit), 40 rows in flight per SM instead of 24,
//       ~52 KB shared memory per block, up to 102 registers;
//   cs: L2 churn -> evict-first luma copies and streaming tensor stores;
//   g4: static-split tail / uneven SMs -> a grid of 4 waves of blocks, handed out by the hardware;
//   c960: DRAM locality -> one strip as wide as the benchmark's tensor (960 = 15 pairs per lane): a warp's
//       copies are its 4 source rows whole (1,920 contiguous bytes each instead of 3 runs of ~680 read by
//       different blocks at different times), so DRAM pages are opened once per row, as in a copy. Costs
//       occupancy: ~101 KB shared memory per block of 5 warps, 2 blocks = 10 warps per SM (about the same
//       bytes in flight per SM: ~7.7 KB per warp), 15 unrolled pairs to hide latency instead of more warps.
using PairedShapeV3C320S3 = PairedShape<320, 5, 4, 4, 3>;            // "v3-c320-s3"
using PairedShapeV3C320Cs = PairedShape<320, 8, 3, 4, 2, 0, true>;   // "v3-c320-cs"
using PairedShapeV3C320G4 = PairedShape<320, 8, 3, 4, 2, 4>;         // "v3-c320-g4"
using PairedShapeV3C960 = PairedShape<960, 5, 2, 4>;                 // "v3-c960"
// The two best of those together (H200, two runs: g4 74.2 % / 67.7 %, cs 68.2 % / 67.5 %, s3 66.2 % / 66.1 %):
// hardware-scheduled waves with the L2 hints, and with the third stage buffer as well.
using PairedShapeV3C320G4Cs = PairedShape<320, 8, 3, 4, 2, 4, true>;    // "v3-c320-g4-cs"
using PairedShapeV3C320G4S3Cs = PairedShape<320, 5, 4, 4, 3, 4, true>;  // "v3-c320-g4-s3-cs"

// f(Shape{}) for the shape of a v3 variant; `otherwise` for any other variant.
template <typename R, typename F>
R VisitPairedShape(CudaPreprocessVariant variant, R otherwise, F&& f) {
  switch (variant) {
    case CudaPreprocessVariant::kStagedPairs: return f(PairedShapeV3{});
    case CudaPreprocessVariant::kStagedPairsC320: return f(PairedShapeV3C320{});
    case CudaPreprocessVariant::kStagedPairsC320W6: return f(PairedShapeV3C320W6{});
    case CudaPreprocessVariant::kStagedPairsC320W4: return f(PairedShapeV3C320W4{});
    case CudaPreprocessVariant::kStagedPairsC320S3: return f(PairedShapeV3C320S3{});
    case CudaPreprocessVariant::kStagedPairsC320Cs: return f(PairedShapeV3C320Cs{});
    case CudaPreprocessVariant::kStagedPairsC320G4: return f(PairedShapeV3C320G4{});
    case CudaPreprocessVariant::kStagedPairsC960: return f(PairedShapeV3C960{});
    case CudaPreprocessVariant::kStagedPairsC320G4Cs: return f(PairedShapeV3C320G4Cs{});
    case CudaPreprocessVariant::kStagedPairsC320G4S3Cs: return f(PairedShapeV3C320G4S3Cs{});
    default: break;
  }
  return otherwise;
}
inline bool IsPairedVariant(CudaPreprocessVariant variant) {
  return VisitPairedShape(variant, false, [](auto) { return true; });
}

// ---------------------------------------------------------------------------------------------------------
// The device instructions, with exact host twins.

// PRMT (default mode): byte n of the result is byte (selector >> 4n) & 7 of the 8 bytes {hi:lo} (lo is
// bytes 0..3); a set bit 3 of a nibble replicates the chosen byte's sign (v3's selectors never set it).
VS_HD uint32_t BytePermute(uint32_t lo, uint32_t hi, uint32_t selector) {
#if defined(__CUDA_ARCH__)
  uint32_t r;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(lo), "r"(hi), "r"(selector));
  return r;
#else
  const uint64_t bytes = static_cast<uint64_t>(lo) | static_cast<uint64_t>(hi) << 32;
  uint32_t r = 0;
  for (int n = 0; n < 4; ++n) {
    const uint32_t nibble = (selector >> (4 * n)) & 0xf;
    uint32_t byte = static_cast<uint32_t>(bytes >> (8 * (nibble & 7))) & 0xff;
    if (nibble & 8) byte = (byte & 0x80) ? 0xff : 0;
    r |= byte << (8 * n);
  }
  return r;
#endif
}

// DP2A.LO / .HI (unsigned): acc + weights.lo16 * bytes.b0 + weights.hi16 * bytes.b1 (LO), or with bytes
// b2, b3 (HI).
VS_HD uint32_t DotPairLow(uint32_t weights, uint32_t bytes, uint32_t acc) {
#if defined(__CUDA_ARCH__)
  return __dp2a_lo(weights, bytes, acc);
#else
  return acc + (weights & 0xffff) * (bytes & 0xff) + (weights >> 16) * ((bytes >> 8) & 0xff);
#endif
}
VS_HD uint32_t DotPairHigh(uint32_t weights, uint32_t bytes, uint32_t acc) {
#if defined(__CUDA_ARCH__)
  return __dp2a_hi(weights, bytes, acc);
#else
  return acc + (weights & 0xffff) * ((bytes >> 16) & 0xff) + (weights >> 16) * (bytes >> 24);
#endif
}

VS_HD float BitsToFloat(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  return std::bit_cast<float>(bits);
#endif
}

// Rounded once (device: one FFMA; host: fmaf), never re-contracted or split, so both sides agree bit for bit.
VS_HD float FusedMulAdd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
VS_HD float Subtract(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
// Clamp to [0, 1]: free on the GPU (the .SAT of the FFMA that produced x).
VS_HD float Saturate(float x) {
#if defined(__CUDA_ARCH__)
  return __saturatef(x);
#else
  return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f;
#endif
}

// ---------------------------------------------------------------------------------------------------------
// Which frames v3 takes, decided on the host from the descriptor.

// The fixed-point weight scale: 15 bits, so 255 * 2^15 + anything a DP2A adds stays below 2^23.
constexpr uint32_t kPairWeightOne = 1u << 15;
constexpr uint32_t kPairFloatBias = 0x4b000000u;  // the bits of 2^23

// Every pair's taps fit the two 4-byte words its kernel reads: needs sx(ox + 1) - sx(ox) <= 2 for the
// positions as computed (floats), not only for the exact step. With step exactly 2 and a base that is a
// multiple of 0.5, every position is exact (|sx| < 2^22). Below 2, the two roundings of each position move a
// difference by at most 4 * 2^-24 * the largest magnitude involved, which must leave it <= 2.
inline bool PairTapsFit(const FrameDescriptor& d) {
  const double step = d.step_x;
  if (!(step <= 2.0)) return false;
  const double magnitude = static_cast<double>(d.content_x1) * step + std::fabs(static_cast<double>(d.base_x)) + 2.0;
  const double base2 = 2.0 * static_cast<double>(d.base_x);
  if (step == 2.0 && base2 == std::nearbyint(base2) && magnitude < 4194304.0) return true;
  return step + 4.0 * magnitude * 0x1p-24 <= 2.0;
}

// The colour rows have the structure v3 skips zeros of: the first output channel has no U term and the
// last no V term (R and B for RGB), or the other way round for BGR.
inline bool PairColourStructure(const FrameDescriptor& d, ChannelOrder order) {
  return order == ChannelOrder::kRGB ? d.pair_u[0] == 0.0f && d.pair_v[2] == 0.0f
                                     : d.pair_v[0] == 0.0f && d.pair_u[2] == 0.0f;
}

// v3: NV12, one bilinear tap per axis, 16-byte aligned rows (the staging copies, as v2), pairs that fit
// their words, an even network width and a slot aligned for the pair stores (4 bytes FP16, 8 FP32).
inline bool PairedKernelTakes(const FrameDescriptor& d, const PreprocessParams& params) {
  const uintptr_t pair_bytes = 2 * TensorTypeBytes(params.type);
  return !d.is_p016 && d.taps_x == 1 && d.taps_y == 1 && d.rows_16b_aligned != 0 && params.width % 2 == 0 &&
         reinterpret_cast<uintptr_t>(d.out) % pair_bytes == 0 && PairTapsFit(d) &&
         PairColourStructure(d, params.order);
}

// ---------------------------------------------------------------------------------------------------------
// The pair table: per pair of output columns, where its taps are in the staged rows and their weights. The
// same for every row, so a block builds it once for all its rows. Two 16-byte halves, stored as two arrays
// so that lanes reading consecutive pairs read consecutive 16-byte pieces (no bank conflicts).
struct alignas(16) PairTapsWhere {
  uint32_t luma_offset;    // byte offset (multiple of 4) of the first of the two luma words in a staged row
  uint32_t chroma_offset;  // the same in a staged chroma row
  uint32_t luma_select;    // PRMT selector: bytes (a0, a1, b0, b1) = pixel a's and pixel b's two luma taps
  uint32_t chroma_select;  // PRMT selector of the U bytes (a0, a1, b0, b1); V is selector | 0x1111
};
struct alignas(16) PairTapsWeights {
  uint32_t luma[2];    // per pixel: (2^15 - W) | W << 16, W = round(w * 2^15), w the weight of the second tap
  uint32_t chroma[2];
};

VS_HD uint32_t PackPairWeights(float w) {
  // w * 2^15 is exact; rounding to nearest even on both sides.
#if defined(__CUDA_ARCH__)
  const uint32_t second = static_cast<uint32_t>(__float2int_rn(w * 32768.0f));
#else
  const uint32_t second = static_cast<uint32_t>(std::lrint(w * 32768.0f));
#endif
  return (kPairWeightOne - second) | second << 16;
}

// Where a pair's four taps (byte offsets in a staged row: first/second tap of pixel a, then of pixel b)
// lie relative to the 4-byte word below the first: the offset and the PRMT selector. Returns false if a
// tap falls outside the two words (cannot happen for frames PairedKernelTakes accepts).
VS_HD bool PairWords(int a0, int a1, int b0, int b1, uint32_t* offset, uint32_t* selector) {
  const int lowest = a0 < b0 ? a0 : b0;
  const int base = lowest & ~3;
  const int n0 = a0 - base, n1 = a1 - base, n2 = b0 - base, n3 = b1 - base;
  *offset = static_cast<uint32_t>(base);
  *selector = static_cast<uint32_t>(n0 | n1 << 4 | n2 << 8 | n3 << 12);
  return n0 >= 0 && n1 >= 0 && n2 >= 0 && n3 >= 0 && n0 < 8 && n1 < 8 && n2 < 8 && n3 < 8;
}

// Entry `pair` (output columns x_begin + 2 pair and the next) of the table of the window `w`. A column
// outside the content borrows its partner's taps (the kernel writes padding there); a pair with both
// outside reads byte 0 with weight 0. Returns false where a pair does not fit its words.
VS_HD bool MakePairTaps(const FrameDescriptor& d, const StagedWindow& w, int x_begin, int pair,
                        PairTapsWhere* where, PairTapsWeights* weights) {
  const int ox = x_begin + 2 * pair;
  const bool inside_a = ox >= w.xa && ox < w.xb, inside_b = ox + 1 >= w.xa && ox + 1 < w.xb;
  if (!inside_a && !inside_b) {
    *where = PairTapsWhere{0, 0, 0, 0};
    *weights = PairTapsWeights{{kPairWeightOne, kPairWeightOne}, {kPairWeightOne, kPairWeightOne}};
    return true;
  }
  const float sx_a = MulAddExact(static_cast<float>(inside_a ? ox : ox + 1), d.step_x, d.base_x);
  const float sx_b = MulAddExact(static_cast<float>(inside_b ? ox + 1 : ox), d.step_x, d.base_x);
  const Tap la = LumaTapX(d, sx_a), lb = LumaTapX(d, sx_b);
  const Tap ca = ChromaTapX(d, sx_a), cb = ChromaTapX(d, sx_b);
  PairTapsWhere t;
  const bool luma_fits = PairWords(la.i0 - w.luma_begin, la.i1 - w.luma_begin, lb.i0 - w.luma_begin,
                                   lb.i1 - w.luma_begin, &t.luma_offset, &t.luma_select);
  const bool chroma_fits = PairWords(2 * ca.i0 - w.chroma_begin, 2 * ca.i1 - w.chroma_begin, 2 * cb.i0 - w.chroma_begin,
                                     2 * cb.i1 - w.chroma_begin, &t.chroma_offset, &t.chroma_select);
  *where = t;
  *weights = PairTapsWeights{{PackPairWeights(la.w), PackPairWeights(lb.w)},
                             {PackPairWeights(ca.w), PackPairWeights(cb.w)}};
  // The V bytes sit one above the U bytes: U nibbles are even and at most 6.
  return luma_fits && chroma_fits && (t.chroma_select & 0x1111) == 0;
}

// ---------------------------------------------------------------------------------------------------------
// The work split: a unit is one output row of one column range of one frame, numbered
// u = (frame * ranges_per_row + range) * net_height + oy, so that consecutive units are consecutive rows of
// one "strip" (a frame's column range). Block b of a grid of B takes units [U b / B, U (b + 1) / B): every
// block gets the same number of rows to within one, whatever the batch (no partly filled last wave), and its
// units are at most a few strip segments, each of which needs the pair table built once.
VS_HD long long PairedUnitsBegin(long long units, int block, int blocks) { return units * block / blocks; }

struct PairedSegment {
  int frame = 0, range = 0, oy_begin = 0, rows = 0;
};
// f(segment) for the segments of block `block` of `blocks`, in order (one 64-bit division per block).
template <typename F>
VS_HD void ForEachPairedSegment(long long units, int block, int blocks, int ranges_per_row, int net_height, F&& f) {
  const long long begin = PairedUnitsBegin(units, block, blocks);
  long long left = PairedUnitsBegin(units, block + 1, blocks) - begin;
  if (left <= 0) return;
  int strip = static_cast<int>(begin / net_height);  // < 65536 frames * 256 ranges
  int oy = static_cast<int>(begin - static_cast<long long>(strip) * net_height);
  for (; left > 0; ++strip, oy = 0) {
    PairedSegment s;
    s.frame = strip / ranges_per_row;
    s.range = strip - s.frame * ranges_per_row;
    s.oy_begin = oy;
    s.rows = static_cast<int>(left < net_height - oy ? left : net_height - oy);
    left -= s.rows;
    f(s);
  }
}
// Warp `warp` of kWarps takes rows [first, first + count) of a segment's rows (balanced to within one).
VS_HD void PairedWarpRows(int rows, int warp, int warps, int* first, int* count) {
  *first = rows * warp / warps;
  *count = rows * (warp + 1) / warps - *first;
}

// ---------------------------------------------------------------------------------------------------------
// One output row of a warp.

// The row's vertical taps: byte offsets of the four source rows (row * pitch + the window's begin: luma
// i0, luma i1, chroma i0, chroma i1) and the weights of the second rows; `inside` = the row has content
// pixels in the window. Lane j of a warp computes row j of the next (up to) 32 rows.
struct alignas(16) PairedRowTaps {
  int source[4] = {0, 0, 0, 0};
  float luma_w = 0.0f, chroma_w = 0.0f;
  int inside = 0;
  int unused = 0;
};
VS_HD PairedRowTaps MakePairedRowTaps(const FrameDescriptor& d, const StagedWindow& w, int oy) {
  const StagedRowTaps t = MakeStagedRowTaps(d, w, oy);
  PairedRowTaps r;
  r.inside = t.inside ? 1 : 0;
  if (t.inside) {
    // Frames are at most 16384 rows of at most a few 10^4 bytes: the offsets fit 31 bits.
    r.source[0] = t.luma.i0 * d.pitch + w.luma_begin;
    r.source[1] = t.luma.i1 * d.pitch + w.luma_begin;
    r.source[2] = t.chroma.i0 * d.pitch + w.chroma_begin;
    r.source[3] = t.chroma.i1 * d.pitch + w.chroma_begin;
    r.luma_w = t.luma.w;
    r.chroma_w = t.chroma.w;
  }
  return r;
}

// Staging one output row's four source rows (bytes [begin, end) of each window row, in 16-byte pieces):
// lanes 8 g .. 8 g + 7 copy source row g (luma i0, i1, chroma i0, i1) into stage row g, lane l piece
// (l & 7) + 8 i. One source pointer per lane and piece offsets known at compile time: a few instructions
// per piece.
template <int kCapacity>
struct PairedStager {
  static constexpr int kPieces = (kCapacity + 127) / 128;  // per lane and row
  const uint8_t* plane;  // luma or chroma, plus this lane's first piece
  int row;               // which source row (0..3)
  int stage_offset;      // where this lane's first piece goes in a stage buffer
  int bytes;             // the window row's length

  VS_HD PairedStager(const FrameDescriptor& d, const StagedWindow& w, int lane) {
    row = lane >> 3;
    const int first = 16 * (lane & 7);
    plane = (row < 2 ? d.luma : d.chroma) + first;
    stage_offset = row * kCapacity + first;
    bytes = (row < 2 ? w.luma_end - w.luma_begin : w.chroma_end - w.chroma_begin) - first;
  }
  // copy16(dst, src): one 16-byte copy (cp.async on the GPU).
  template <typename Copy16>
  VS_HD void Stage(const PairedRowTaps& t, uint8_t* stage, Copy16&& copy16) const {
    const uint8_t* src = plane + t.source[row];
    uint8_t* dst = stage + stage_offset;
VS_UNROLL
    for (int i = 0; i < kPieces; ++i) {
      if (128 * i < bytes) copy16(dst + 128 * i, src + 128 * i);
    }
  }
};

// The four staged rows of one output row: luma row i0 at 0, i1 at kCapacity, chroma row i0 at 2 kCapacity,
// i1 at 3 kCapacity, each holding bytes [begin, end) of its window row.
VS_HD uint32_t LoadStagedWord(const uint8_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const uint32_t*>(p);  // offsets are multiples of 4, rows 16-byte aligned
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

// Two adjacent tensor elements from two floats (FP16: one F2FP and a 4-byte store; FP32: an 8-byte store).
// kStreaming: st.global.cs (the tensor is not read again by this kernel: evict it from L2 first).
template <typename Out, bool kStreaming = false>
VS_HD void StorePair(Out* p, float a, float b) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(Out) == 2) {
    if constexpr (kStreaming) {
      __stcs(reinterpret_cast<__half2*>(p), __floats2half2_rn(a, b));
    } else {
      *reinterpret_cast<__half2*>(p) = __floats2half2_rn(a, b);
    }
  } else if constexpr (kStreaming) {
    __stcs(reinterpret_cast<float2*>(p), make_float2(a, b));
  } else {
    *reinterpret_cast<float2*>(p) = make_float2(a, b);
  }
#else
  p[0] = FromFloat<Out>(a);
  p[1] = FromFloat<Out>(b);
#endif
}

// Where a lane's pairs go in one output row: NCHW the three planes' elements of the lane's first pair,
// NHWC channel 0 of the lane's first pixel (all three pointers).
template <typename Out, bool kNhwc, bool kStreaming = false>
struct PairedRowOut {
  Out* channel[3];

  VS_HD PairedRowOut(const FrameDescriptor& d, int net_width, int net_height, int oy, int x_begin, int lane) {
    Out* out = static_cast<Out*>(d.out);
    const size_t pixel = static_cast<size_t>(oy) * net_width + x_begin + 2 * lane;
    if (kNhwc) {
      channel[0] = channel[1] = channel[2] = out + pixel * 3;
    } else {
      const size_t plane = static_cast<size_t>(net_width) * net_height;
      channel[0] = out + pixel;
      channel[1] = out + plane + pixel;
      channel[2] = out + 2 * plane + pixel;
    }
  }
  VS_HD void NextRow(int net_width) {
VS_UNROLL
    for (int c = 0; c < 3; ++c) channel[c] += kNhwc ? 3 * net_width : net_width;
  }
  // Pixel a's and pixel b's three channel values into pair k of the lane (pixels x_begin + 2 (lane + 32 k)
  // and the next).
  VS_HD void Store(int k, const float a[3], const float b[3]) const {
    if (kNhwc) {
      Out* p = channel[0] + 6 * 32 * k;
      StorePair<Out, kStreaming>(p, a[0], a[1]);
      StorePair<Out, kStreaming>(p + 2, a[2], b[0]);
      StorePair<Out, kStreaming>(p + 4, b[1], b[2]);
    } else {
      StorePair<Out, kStreaming>(channel[0] + 2 * 32 * k, a[0], b[0]);
      StorePair<Out, kStreaming>(channel[1] + 2 * 32 * k, a[1], b[1]);
      StorePair<Out, kStreaming>(channel[2] + 2 * 32 * k, a[2], b[2]);
    }
  }
};

// Whether a column range meets the content's left or right edge: only then does each pixel check whether
// it is padding (PairedRowPixels' kMasked).
VS_HD bool PairedRangeMasked(const StagedWindow& w, int x_begin, int count) {
  return !(w.xa <= x_begin && x_begin + count <= w.xb);
}

// A row outside the content (or whose window has none): padding.
template <typename Out, bool kNhwc, int kPairsPerLane, bool kStreaming>
VS_HD void PairedPadRow(const FrameDescriptor& d, const PairedRowOut<Out, kNhwc, kStreaming>& o, int pairs, int lane) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k = 0; k < kPairsPerLane; ++k) {
    if (lane + 32 * k >= pairs) break;
    o.Store(k, d.pad, d.pad);
  }
}

// Lane `lane`'s pairs of one output row inside the content: taps from the table, samples from the staged
// rows (`stage`: this row's buffer). kBgr: the first output channel is B (its chroma term is U) instead of
// R (V). kMasked: the column range meets the content's left or right edge, so each pixel checks whether it
// is padding. kFull: the range has all kPairsPerLane * 32 pairs (no bounds check).
template <typename Out, bool kNhwc, bool kBgr, bool kMasked, bool kFull, int kPairsPerLane, int kCapacity,
          bool kStreaming>
VS_HD void PairedRowPixels(const FrameDescriptor& d, const StagedWindow& w, const PairedRowTaps& t,
                           const uint8_t* stage, const PairTapsWhere* where, const PairTapsWeights* weights,
                           const PairedRowOut<Out, kNhwc, kStreaming>& o, int x_begin, int pairs, int lane) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int k = 0; k < kPairsPerLane; ++k) {
    const int pair = lane + 32 * k;
    if (!kFull && pair >= pairs) break;
    const PairTapsWhere at = where[pair];
    const PairTapsWeights wt = weights[pair];
    const uint8_t* luma = stage + at.luma_offset;
    const uint8_t* chroma = stage + 2 * kCapacity + at.chroma_offset;
    // Row i0 and row i1 of each plane: the pair's tap bytes gathered into one register per row.
    const uint32_t l0 = BytePermute(LoadStagedWord(luma), LoadStagedWord(luma + 4), at.luma_select);
    const uint32_t l1 =
        BytePermute(LoadStagedWord(luma + kCapacity), LoadStagedWord(luma + kCapacity + 4), at.luma_select);
    const uint32_t c0lo = LoadStagedWord(chroma), c0hi = LoadStagedWord(chroma + 4);
    const uint32_t c1lo = LoadStagedWord(chroma + kCapacity), c1hi = LoadStagedWord(chroma + kCapacity + 4);
    const uint32_t v_select = at.chroma_select | 0x1111u;
    const uint32_t u0 = BytePermute(c0lo, c0hi, at.chroma_select), v0 = BytePermute(c0lo, c0hi, v_select);
    const uint32_t u1 = BytePermute(c1lo, c1hi, at.chroma_select), v1 = BytePermute(c1lo, c1hi, v_select);
    // Horizontal taps: biased floats 2^23 + 2^15 * sample (exact). Vertical: one rounding.
    auto vertical = [](uint32_t top, uint32_t bottom, float wv) {
      const float a = BitsToFloat(top), b = BitsToFloat(bottom);
      return FusedMulAdd(Subtract(b, a), wv, a);
    };
    float yuv_a[3], yuv_b[3];
    yuv_a[0] = vertical(DotPairLow(wt.luma[0], l0, kPairFloatBias), DotPairLow(wt.luma[0], l1, kPairFloatBias), t.luma_w);
    yuv_b[0] = vertical(DotPairHigh(wt.luma[1], l0, kPairFloatBias), DotPairHigh(wt.luma[1], l1, kPairFloatBias), t.luma_w);
    yuv_a[1] = vertical(DotPairLow(wt.chroma[0], u0, kPairFloatBias), DotPairLow(wt.chroma[0], u1, kPairFloatBias), t.chroma_w);
    yuv_b[1] = vertical(DotPairHigh(wt.chroma[1], u0, kPairFloatBias), DotPairHigh(wt.chroma[1], u1, kPairFloatBias), t.chroma_w);
    yuv_a[2] = vertical(DotPairLow(wt.chroma[0], v0, kPairFloatBias), DotPairLow(wt.chroma[0], v1, kPairFloatBias), t.chroma_w);
    yuv_b[2] = vertical(DotPairHigh(wt.chroma[1], v0, kPairFloatBias), DotPairHigh(wt.chroma[1], v1, kPairFloatBias), t.chroma_w);
    // Colour: channel 0 has only its own chroma term (V for R, U for B), channel 2 the other, channel 1
    // both; .SAT clamps to 0..1 (0..255 levels), then the normalisation.
    constexpr int kFirst = kBgr ? 1 : 2, kLast = kBgr ? 2 : 1;
    auto colour = [&](const float yuv[3], float out[3]) {
      out[0] = Saturate(FusedMulAdd(kBgr ? d.pair_u[0] : d.pair_v[0], yuv[kFirst],
                                    FusedMulAdd(d.pair_y[0], yuv[0], d.pair_offset[0])));
      out[1] = Saturate(FusedMulAdd(d.pair_v[1], yuv[2],
                                    FusedMulAdd(d.pair_u[1], yuv[1], FusedMulAdd(d.pair_y[1], yuv[0], d.pair_offset[1]))));
      out[2] = Saturate(FusedMulAdd(kBgr ? d.pair_v[2] : d.pair_u[2], yuv[kLast],
                                    FusedMulAdd(d.pair_y[2], yuv[0], d.pair_offset[2])));
VS_UNROLL
      for (int c = 0; c < 3; ++c) out[c] = FusedMulAdd(out[c], d.pair_mul[c], d.add[c]);
    };
    float a[3], b[3];
    colour(yuv_a, a);
    colour(yuv_b, b);
    if (kMasked) {
      const int ox = x_begin + 2 * pair;
      const bool inside_a = ox >= w.xa && ox < w.xb, inside_b = ox + 1 >= w.xa && ox + 1 < w.xb;
VS_UNROLL
      for (int c = 0; c < 3; ++c) {
        a[c] = inside_a ? a[c] : d.pad[c];
        b[c] = inside_b ? b[c] : d.pad[c];
      }
    }
    o.Store(k, a, b);
  }
}

}  // namespace vidscan::preprocess_detail
