// Internal to src/preprocess: fused kernel v3 ("paired", CudaPreprocessVariant::kStagedPairs and
// kStagedPairsC320, one PairedShape each). The
// per-lane arithmetic and why it is cheaper are in paired_rows.h; this file is the work split.
//
// Work split (256-column strips for "v3", 320 for "v3-c320"): a grid of at most as many blocks as fit on the GPU at once; block b takes the units (output
// rows of one column range of one frame) [U b / B, U (b + 1) / B), i.e. one or a few "segments" of
// consecutive rows of one strip. Per segment the block copies the frame's descriptor to shared memory and
// builds the strip's pair table there (one pair per thread), and its warps split the segment's rows
// (balanced to within one row). Each warp computes the vertical taps of up to 32 of its rows at once (one
// row per lane), then stages each row's four source rows with 16-byte cp.async copies (8 lanes per
// source row), double-buffered as in v2 (row r + 1 in flight while row r is computed), and lane l makes
// pairs l, l + 32, ... of each row (adjacent lanes write adjacent 4- or 8-byte pieces: coalesced).
//
// (Shapes with kGridWaves > 0 use up to that many times more blocks, each with fewer rows; kStages > 2 keeps
// more rows' copies in flight per warp; kStreaming adds L2 hints: paired_rows.h.)
//
// Why persistent: with the table built per block, short blocks pay it too often and long ones leave a
// partly filled last wave (v2's 5.49 waves for the benchmark); here every block has the same number of
// rows to within one and builds a table about once per 66 rows (benchmark on 132 SMs).
//
// Frames v3 does not take (PairedKernelTakes: P016, shrink > 2x, ...) go to kPairedFallbackVariant (v2-w4),
// which in turn leaves its own exceptions to v1 (preprocess_cuda.cu).
#pragma once

#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include <utility>

#include "preprocess/paired_rows.h"
#include "preprocess/preprocess_staged.cuh"

namespace vidscan::preprocess_detail {

// The staged variant that takes the frames v3 leaves.
constexpr CudaPreprocessVariant kPairedFallbackVariant = CudaPreprocessVariant::kStagedRowsW4;

// Launches v3 variant `variant` over frames[0, frame_count) (device descriptors, every one accepted by
// PairedKernelTakes) with at most `max_blocks` blocks (what PreparePairedKernel returned).
Status LaunchPairedKernel(CudaPreprocessVariant variant, const PreprocessParams& params, const FrameDescriptor* frames,
                          int frame_count, int max_blocks, cudaStream_t stream);
// Raises the dynamic shared memory limit of the variant's kernel for `params`, and returns how many of its
// blocks fit on the current GPU at once (SMs x resident blocks per SM).
Expected<int> PreparePairedKernel(CudaPreprocessVariant variant, const PreprocessParams& params);

// Dynamic shared memory of one v3 block: its descriptor, the pair table (two arrays), per warp the taps of
// 32 rows, then per warp two buffers of 2 luma and 2 chroma rows.
template <typename Shape>
__host__ __device__ constexpr size_t PairedTableBytes() {
  return Shape::kPairs * (sizeof(PairTapsWhere) + sizeof(PairTapsWeights));
}
template <typename Shape>
__host__ __device__ constexpr size_t PairedRowTapsBytes() {
  return static_cast<size_t>(Shape::kWarps) * 32 * sizeof(PairedRowTaps);
}
template <typename Shape>
__host__ __device__ constexpr size_t PairedWarpStageBytes() {
  return static_cast<size_t>(Shape::kStages) * 4 * Shape::kStageRowCapacity;
}
template <typename Shape>
__host__ __device__ constexpr size_t PairedSharedBytes() {
  return kStagedDescriptorBytes + PairedTableBytes<Shape>() + PairedRowTapsBytes<Shape>() +
         Shape::kWarps * PairedWarpStageBytes<Shape>();
}

// One 16-byte cp.async of piece `kOffset` / 128 of a lane, if it lies in the window row (bytes > kOffset).
template <int kOffset>
__device__ __forceinline__ void StagePairedPiece(uint32_t dst, const uint8_t* src, int bytes) {
  asm volatile(
      "{\n"
      "  .reg .pred p;\n"
      "  setp.gt.s32 p, %2, %3;\n"
      "  @p cp.async.cg.shared.global [%0+%3], [%1+%3], 16;\n"
      "}\n" ::"r"(dst),
      "l"(src), "r"(bytes), "n"(kOffset)
      : "memory");
}
// The same with an L2 cache policy (createpolicy) for the source bytes.
template <int kOffset>
__device__ __forceinline__ void StagePairedPieceWithPolicy(uint32_t dst, const uint8_t* src, int bytes,
                                                           uint64_t policy) {
  asm volatile(
      "{\n"
      "  .reg .pred p;\n"
      "  setp.gt.s32 p, %2, %3;\n"
      "  @p cp.async.cg.shared.global.L2::cache_hint [%0+%3], [%1+%3], 16, %4;\n"
      "}\n" ::"r"(dst),
      "l"(src), "r"(bytes), "n"(kOffset), "l"(policy)
      : "memory");
}
template <int... kPiece>
__device__ __forceinline__ void StagePairedPieces(uint32_t dst, const uint8_t* src, int bytes,
                                                  std::integer_sequence<int, kPiece...>) {
  (StagePairedPiece<128 * kPiece>(dst, src, bytes), ...);
}
template <int... kPiece>
__device__ __forceinline__ void StagePairedPiecesWithPolicy(uint32_t dst, const uint8_t* src, int bytes,
                                                            uint64_t policy, std::integer_sequence<int, kPiece...>) {
  (StagePairedPieceWithPolicy<128 * kPiece>(dst, src, bytes, policy), ...);
}

// The L2 policy of a lane's copies in the streaming shapes: evict-first for the luma rows (lanes 0..15; at a
// ~2x vertical shrink each luma row is read by one output row), normal for the chroma rows (each read by
// two consecutive output rows of the same warp, so they should stay in L2 until the second read).
__device__ __forceinline__ uint64_t PairedCopyPolicy(bool luma) {
  uint64_t first, normal;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(first));
  asm("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(normal));
  return luma ? first : normal;
}

// Issues the copies of one output row's four source rows into `stage` and commits them as one group (an
// empty group for a row without content). The same pieces as PairedStager::Stage (which the CPU replay
// runs), written in PTX so that every piece is one predicate and one cp.async addressed [base + constant]
// (the compiler's own version recomputed a 64-bit address per predicated piece: ~60 instructions a row).
// kStreaming: with the lane's L2 policy (PairedCopyPolicy).
template <bool kStreaming, int kCapacity>
__device__ __forceinline__ void PrefetchPairedRow(const PairedStager<kCapacity>& stager, const PairedRowTaps& t,
                                                  uint8_t* stage, uint64_t policy) {
  if (t.inside) {
    const uint32_t dst = static_cast<uint32_t>(__cvta_generic_to_shared(stage + stager.stage_offset));
    const uint8_t* src = stager.plane + t.source[stager.row];
    constexpr auto kPieces = std::make_integer_sequence<int, PairedStager<kCapacity>::kPieces>{};
    if constexpr (kStreaming) {
      StagePairedPiecesWithPolicy(dst, src, stager.bytes, policy, kPieces);
    } else {
      StagePairedPieces(dst, src, stager.bytes, kPieces);
    }
  }
  __pipeline_commit();
}

// Rows [0, rows) of `row_taps` (consecutive output rows from oy_begin) through Shape::kStages stage buffers:
// row r is staged in buffer r % kStages, and the copies of rows r + 1 .. r + kStages - 1 are in flight while
// row r is computed (kStages = 2: double-buffered like v2's StagedRows).
template <typename Shape, typename Out, bool kNhwc, bool kBgr, bool kMasked, bool kFull>
__device__ __forceinline__ void PairedRowSequence(const FrameDescriptor& d, const StagedWindow& w,
                                                  const PairedStager<Shape::kStageRowCapacity>& stager,
                                                  uint64_t policy, const PairedRowTaps* row_taps,
                                                  const PairTapsWhere* where, const PairTapsWeights* weights,
                                                  uint8_t* stage, int x_begin, int pairs, int oy_begin, int rows,
                                                  int net_width, int net_height, int lane) {
  constexpr int kCapacity = Shape::kStageRowCapacity;
  constexpr int kStages = Shape::kStages;
  constexpr bool kStreaming = Shape::kStreaming;
  PairedRowOut<Out, kNhwc, kStreaming> o(d, net_width, net_height, oy_begin, x_begin, lane);
  // One commit group per row (empty past the last row), so that "all but the newest kStages - 1 groups"
  // below always means row r's copies.
VS_UNROLL
  for (int ahead = 0; ahead < kStages - 1; ++ahead) {
    if (ahead < rows) {
      PrefetchPairedRow<kStreaming>(stager, row_taps[ahead], stage + ahead * 4 * kCapacity, policy);
    } else {
      __pipeline_commit();
    }
  }
  for (int r = 0; r < rows; ++r) {
    const int ahead = r + kStages - 1;
    if (ahead < rows) {
      // Its buffer, (r - 1) % kStages, was last read in row r - 1 (synchronised below).
      PrefetchPairedRow<kStreaming>(stager, row_taps[ahead], stage + (ahead % kStages) * 4 * kCapacity, policy);
    } else {
      __pipeline_commit();
    }
    __pipeline_wait_prior(kStages - 1);
    __syncwarp();  // every lane's copies of row r have landed
    const PairedRowTaps t = row_taps[r];
    if (t.inside) {
      PairedRowPixels<Out, kNhwc, kBgr, kMasked, kFull, Shape::kPairsPerLane, kCapacity>(
          d, w, t, stage + (r % kStages) * 4 * kCapacity, where, weights, o, x_begin, pairs, lane);
    } else {
      PairedPadRow<Out, kNhwc, Shape::kPairsPerLane>(d, o, pairs, lane);
    }
    o.NextRow(net_width);
    __syncwarp();  // every lane is done reading this buffer before row r + kStages's copies overwrite it
  }
}

// One warp's rows [oy_begin, oy_begin + rows) of a segment, in groups of up to 32 (one row's taps per lane).
template <typename Shape, typename Out, bool kNhwc, bool kBgr>
__device__ __forceinline__ void PairedWarpSegment(const FrameDescriptor& d, const StagedWindow& w,
                                                  const PairTapsWhere* where, const PairTapsWeights* weights,
                                                  PairedRowTaps* row_taps, uint8_t* stage, int x_begin, int count,
                                                  int oy_begin, int rows, int net_width, int net_height, int lane) {
  const int pairs = count / 2;  // the width is even (PairedKernelTakes)
  const PairedStager<Shape::kStageRowCapacity> stager(d, w, lane);
  uint64_t policy = 0;
  if constexpr (Shape::kStreaming) policy = PairedCopyPolicy(stager.row < 2);
  const bool masked = PairedRangeMasked(w, x_begin, count);
  for (int group = 0; group < rows; group += 32) {
    const int n = min(32, rows - group);
    __syncwarp();  // the previous group's taps are no longer read
    if (lane < n) row_taps[lane] = MakePairedRowTaps(d, w, oy_begin + group + lane);
    __syncwarp();
    if (masked) {
      PairedRowSequence<Shape, Out, kNhwc, kBgr, true, false>(d, w, stager, policy, row_taps, where, weights, stage, x_begin,
                                                              pairs, oy_begin + group, n, net_width, net_height, lane);
    } else if (pairs == Shape::kPairs) {
      PairedRowSequence<Shape, Out, kNhwc, kBgr, false, true>(d, w, stager, policy, row_taps, where, weights, stage, x_begin,
                                                              pairs, oy_begin + group, n, net_width, net_height, lane);
    } else {
      PairedRowSequence<Shape, Out, kNhwc, kBgr, false, false>(d, w, stager, policy, row_taps, where, weights, stage, x_begin,
                                                               pairs, oy_begin + group, n, net_width, net_height, lane);
    }
  }
}

template <typename Shape, typename Out, bool kNhwc, bool kBgr>
__global__ void __launch_bounds__(Shape::kWarps * 32, Shape::kBlocksPerSm)
    PreprocessPairedKernel(const FrameDescriptor* __restrict__ frames, int net_width, int net_height,
                           int ranges_per_row, long long units) {
  extern __shared__ __align__(16) uint8_t paired_shared[];
  auto* shared_descriptor = reinterpret_cast<FrameDescriptor*>(paired_shared);
  auto* where = reinterpret_cast<PairTapsWhere*>(paired_shared + kStagedDescriptorBytes);
  auto* weights = reinterpret_cast<PairTapsWeights*>(where + Shape::kPairs);
  auto* row_taps = reinterpret_cast<PairedRowTaps*>(weights + Shape::kPairs);
  uint8_t* stages = reinterpret_cast<uint8_t*>(row_taps + Shape::kWarps * 32);
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  ForEachPairedSegment(units, blockIdx.x, gridDim.x, ranges_per_row, net_height, [&](const PairedSegment& s) {
    __syncthreads();  // every warp is done with the previous segment's descriptor and table
    {
      const auto* src = reinterpret_cast<const uint32_t*>(frames + s.frame);
      auto* dst = reinterpret_cast<uint32_t*>(shared_descriptor);
      for (int i = threadIdx.x; i < static_cast<int>(sizeof(FrameDescriptor) / 4); i += blockDim.x) dst[i] = src[i];
    }
    __syncthreads();
    // A register copy (read from shared memory once): the stores through d.out could alias shared memory
    // as far as the compiler knows, which would reload every constant after every store.
    const FrameDescriptor d = *shared_descriptor;
    const int x_begin = s.range * Shape::kColumns;
    const int count = min(Shape::kColumns, net_width - x_begin);
    const StagedWindow w = MakeStagedWindow<uint8_t>(d, x_begin, count);
    // Invariants for the frames PairedKernelTakes accepts (step <= 2, pairs fit their words), not input
    // errors: a pair's second word reaches up to 7 bytes past the window.
    if (!w.Fits(Shape::kStageRowCapacity - 8)) __trap();
    for (int pair = threadIdx.x; pair < count / 2; pair += blockDim.x) {
      if (!MakePairTaps(d, w, x_begin, pair, where + pair, weights + pair)) __trap();
    }
    __syncthreads();  // the table is written
    int first, rows;
    PairedWarpRows(s.rows, warp, Shape::kWarps, &first, &rows);
    if (rows > 0) {
      PairedWarpSegment<Shape, Out, kNhwc, kBgr>(d, w, where, weights, row_taps + warp * 32,
                                                 stages + warp * PairedWarpStageBytes<Shape>(), x_begin, count,
                                                 s.oy_begin + first, rows, net_width, net_height, lane);
    }
  });
}

}  // namespace vidscan::preprocess_detail
