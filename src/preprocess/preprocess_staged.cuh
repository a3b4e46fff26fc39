// Internal to src/preprocess: the staged fused kernel (variant v2). Same function as PreprocessKernel
// (v1), bit for bit: same taps (LumaTapX/ChromaTapX/...), same Lerp order, same ConvertChannel and
// FromFloat; only where the samples are read from and who computes which pixel differ.
//
// Why: v1 reads every tap straight from global memory, pixel after pixel, so a warp has one pixel's loads
// in flight at a time and spends most of its life waiting on DRAM latency (0.85 TB/s measured on an H100).
// Here a warp first copies every source byte its output row needs (2 luma rows, 2 chroma rows, the
// columns its 256 output pixels cover: ~2 KB for 1080p NV12 -> 960 wide) into shared memory with
// 16-byte cp.async copies, all in flight together, then samples from shared memory (~30-cycle loads
// instead of ~600). A warp does 4 successive output rows of one 256-column range, double-buffered (the
// next row's copies fly while this row is computed), so the descriptor, the column window and the
// per-block set-up are paid once per 1024 pixels.
//
// Work split (shown for the "v2" shape; StagedShape sets the numbers): warp w of the frame covers columns
// [256 c, 256 c + 256) of rows 4 r .. 4 r + 3 (c = w mod chunks_per_row, r = w / chunks_per_row); lane l computes pixels l, l + 32, ... of each row and stores
// them directly (adjacent lanes write adjacent elements: 64 or 128 contiguous bytes per NCHW store, whole
// 32-byte sectors, no shared tile needed). Frames without a single bilinear tap per axis (shrink > 2x)
// or whose planes/pitch are not 16-byte aligned are not sent here (the launcher gives them to v1); a row
// whose source window would not fit the staging buffer cannot occur for step <= 2 (traps if it did).
#pragma once

#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <cuda_runtime.h>

#include "preprocess/frame_descriptor.h"
#include "preprocess/kernel_chunk.h"
#include "preprocess/staged_rows.h"

namespace vidscan::preprocess_detail {

// Launches v2 over frames[0, frame_count) (device descriptors; host_frames: the same, on the host). The
// kernels' dynamic shared memory limit is raised once by CreateCudaPreprocessor.
Status LaunchStagedKernel(CudaPreprocessVariant variant, const PreprocessParams& params,
                          const FrameDescriptor* frames, const FrameDescriptor* host_frames, int frame_count,
                          cudaStream_t stream);

// Dynamic shared memory of one v2 block: its descriptor, per warp its column table (256 x 16 bytes), then
// per warp two buffers (double buffering) of 2 luma and 2 chroma rows.
constexpr size_t kStagedDescriptorBytes = (sizeof(FrameDescriptor) + 15) / 16 * 16;  // rows start 16-byte aligned
template <typename Shape>
__host__ __device__ constexpr size_t StagedColumnBytes() {
  return Shape::kColumns * sizeof(StagedColumnTaps);
}
template <typename Shape>
__host__ __device__ constexpr size_t StagedWarpStageBytes(int sample_bytes) {
  return static_cast<size_t>(2) * 4 * Shape::kStageRowCapacityPerSampleByte * sample_bytes;
}
template <typename Shape>
__host__ __device__ constexpr size_t StagedSharedBytes(int sample_bytes) {
  return kStagedDescriptorBytes + Shape::kWarps * (StagedColumnBytes<Shape>() + StagedWarpStageBytes<Shape>(sample_bytes));
}
// v2 (256 columns, 8 warps, 3 blocks = 24 warps per SM): 80 registers, pixel loop unrolled by 4, no
// spills; shared memory allows 3 blocks anyway (~69 KiB a block for NV12). With double buffering 24
// warps keep ~48 KB of reads in flight per SM, about twice what the H100's bandwidth x latency needs.
constexpr int kStagedUnroll = 4;

// Copies bytes [begin, end) (16-byte aligned) of a plane row into shared memory, lane by lane, without
// waiting: every lane's copies of all four rows are in flight together.
__device__ __forceinline__ void StageRow(uint8_t* dst, const uint8_t* row, int begin, int end, int lane) {
  for (int i = begin + lane * 16; i < end; i += 32 * 16) __pipeline_memcpy_async(dst + (i - begin), row + i, 16);
}

// Issues (does not wait for) the copies of the four source rows output row oy needs, into stage buffer
// `rows`, and commits them as one cp.async group (an empty group when the row has no content).
template <typename Shape, typename Sample>
__device__ __forceinline__ void PrefetchRow(const FrameDescriptor& d, const StagedWindow& w, int oy, int lane,
                                            uint8_t* rows) {
  constexpr int kCapacity = Shape::kStageRowCapacityPerSampleByte * sizeof(Sample);
  const StagedRowTaps t = MakeStagedRowTaps(d, w, oy);
  if (t.inside) {
    StageRow(rows, d.luma + static_cast<long long>(t.luma.i0) * d.pitch, w.luma_begin, w.luma_end, lane);
    StageRow(rows + kCapacity, d.luma + static_cast<long long>(t.luma.i1) * d.pitch, w.luma_begin, w.luma_end, lane);
    StageRow(rows + 2 * kCapacity, d.chroma + static_cast<long long>(t.chroma.i0) * d.pitch, w.chroma_begin,
             w.chroma_end, lane);
    StageRow(rows + 3 * kCapacity, d.chroma + static_cast<long long>(t.chroma.i1) * d.pitch, w.chroma_begin,
             w.chroma_end, lane);
  }
  __pipeline_commit();
}

// The warp's rows, double-buffered: row r + 1's copies are in flight while row r is computed, so every
// warp keeps ~2 KB (NV12) of reads outstanding nearly all the time.
template <typename Shape, typename Sample, typename Out, bool kNhwc>
__device__ __forceinline__ void StagedRows(const FrameDescriptor& d, int x_begin, int count, int oy_begin,
                                           int net_width, int net_height, int lane, uint8_t* stage,
                                           StagedColumnTaps* columns) {
  constexpr int kCapacity = Shape::kStageRowCapacityPerSampleByte * sizeof(Sample);
  constexpr int kUnroll = Shape::kPixelsPerLane < kStagedUnroll ? Shape::kPixelsPerLane : kStagedUnroll;
  const StagedWindow w = MakeStagedWindow<Sample>(d, x_begin, count);
  // Cannot fail for step <= 2 (see StagedShape::kStageRowCapacityPerSampleByte): an invariant, not an input error.
  if (!w.Fits(kCapacity)) __trap();
  const int rows = min(Shape::kRowsPerWarp, net_height - oy_begin);
  PrefetchRow<Shape, Sample>(d, w, oy_begin, lane, stage);
  MakeStagedColumnTaps<Sample, Shape::kPixelsPerLane, 2>(d, w, x_begin, count, lane, columns);  // while the first rows fly
  for (int r = 0; r < rows; ++r) {
    const int oy = oy_begin + r;
    uint8_t* next = stage + ((r + 1) & 1) * 4 * kCapacity;
    if (r + 1 < rows) {
      PrefetchRow<Shape, Sample>(d, w, oy + 1, lane, next);  // its buffer was last read in row r - 1 (synced below)
    } else {
      __pipeline_commit();  // empty group: "all but the newest group" below still means row r's copies
    }
    __pipeline_wait_prior(1);
    __syncwarp();  // every lane's copies of row r have landed
    const uint8_t* current = stage + (r & 1) * 4 * kCapacity;
    const StagedRowsView view{current, current + kCapacity, current + 2 * kCapacity, current + 3 * kCapacity};
    StagedRowPixels<Sample, Out, kNhwc, Shape::kPixelsPerLane, kUnroll>(d, w, MakeStagedRowTaps(d, w, oy), view,
                                                                      columns, x_begin, count, oy, net_width,
                                                                      net_height, lane);
    __syncwarp();  // every lane is done reading this buffer before row r + 2's copies overwrite it
  }
}

template <typename Shape, typename Out, bool kNhwc>
__global__ void __launch_bounds__(Shape::kWarps * 32, Shape::kBlocksPerSm)
    PreprocessStagedKernel(const FrameDescriptor* __restrict__ frames, int net_width, int net_height,
                           int chunks_per_row) {
  extern __shared__ __align__(16) uint8_t staged_shared[];
  // The frame's descriptor once per block in shared memory, instead of a register copy per thread.
  auto* shared_descriptor = reinterpret_cast<FrameDescriptor*>(staged_shared);
  {
    const auto* src = reinterpret_cast<const uint32_t*>(frames + blockIdx.z);
    auto* dst = reinterpret_cast<uint32_t*>(shared_descriptor);
    for (int i = threadIdx.x; i < static_cast<int>(sizeof(FrameDescriptor) / 4); i += blockDim.x) dst[i] = src[i];
  }
  __syncthreads();
  // A register copy (read from shared memory once): the colour matrix and normalisation constants stay in
  // registers instead of ~20 shared loads per pixel; unused fields cost nothing.
  const FrameDescriptor d = *shared_descriptor;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int warp_index = blockIdx.x * Shape::kWarps + warp;
  const int column_chunk = warp_index % chunks_per_row;
  const int oy_begin = (warp_index / chunks_per_row) * Shape::kRowsPerWarp;
  if (oy_begin >= net_height) return;  // whole warps only: no block barrier follows
  const int x_begin = column_chunk * Shape::kColumns;
  const int count = min(Shape::kColumns, net_width - x_begin);
  const int sample_bytes = d.is_p016 ? 2 : 1;
  auto* columns = reinterpret_cast<StagedColumnTaps*>(staged_shared + kStagedDescriptorBytes +
                                                      warp * StagedColumnBytes<Shape>());
  uint8_t* stage = staged_shared + kStagedDescriptorBytes + Shape::kWarps * StagedColumnBytes<Shape>() +
                   warp * StagedWarpStageBytes<Shape>(sample_bytes);
  if (d.is_p016) {
    StagedRows<Shape, uint16_t, Out, kNhwc>(d, x_begin, count, oy_begin, net_width, net_height, lane, stage, columns);
  } else {
    StagedRows<Shape, uint8_t, Out, kNhwc>(d, x_begin, count, oy_begin, net_width, net_height, lane, stage, columns);
  }
}

}  // namespace vidscan::preprocess_detail
