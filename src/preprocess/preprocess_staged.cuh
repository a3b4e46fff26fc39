// Internal to src/preprocess: the staged fused kernel (variant v2). Same function as PreprocessKernel
// (v1), bit for bit: same taps (LumaTapX/ChromaTapX/...), same Lerp order, same ConvertChannel and
// FromFloat; only where the samples are read from and who computes which pixel differ.
//
// Why: v1 reads every tap straight from global memory, pixel after pixel, so a warp has one pixel's loads
// in flight at a time and spends most of its life waiting on DRAM latency (0.85 TB/s measured on an H100).
// Here a warp first copies every source byte its output row needs (2 luma rows, 2 chroma rows, the
// columns its 256 output pixels cover: ~2 KB for 1080p NV12 -> 960 wide) into shared memory with
// 16-byte cp.async copies, all in flight together, then samples from shared memory (~30-cycle loads
// instead of ~600). A warp does 4 successive output rows of one 256-column range, so the descriptor,
// the column window and the per-block set-up are paid once per 1024 pixels.
//
// Work split: warp w of the frame covers columns [256 c, 256 c + 256) of rows 4 r .. 4 r + 3 (c = w mod
// chunks_per_row, r = w / chunks_per_row); lane l computes pixels l, l + 32, ... of each row and stores
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

// Launches v2 over frames[0, frame_count) (device descriptors; host_frames: the same, on the host).
Status LaunchStagedKernel(const PreprocessParams& params, const FrameDescriptor* frames,
                          const FrameDescriptor* host_frames, int frame_count, cudaStream_t stream);

// Dynamic shared memory of one v2 block: its descriptor, then per warp 2 luma and 2 chroma rows.
constexpr size_t kStagedDescriptorBytes = (sizeof(FrameDescriptor) + 15) / 16 * 16;  // rows start 16-byte aligned
inline size_t StagedSharedBytes(int sample_bytes) {
  return kStagedDescriptorBytes + static_cast<size_t>(kStagedWarps) * 4 * kStageRowCapacityPerSampleByte * sample_bytes;
}

// Copies bytes [begin, end) (16-byte aligned) of a plane row into shared memory, lane by lane, without
// waiting: every lane's copies of all four rows are in flight together.
__device__ __forceinline__ void StageRow(uint8_t* dst, const uint8_t* row, int begin, int end, int lane) {
  for (int i = begin + lane * 16; i < end; i += 32 * 16) __pipeline_memcpy_async(dst + (i - begin), row + i, 16);
}

template <typename Sample, typename Out, bool kNhwc>
__device__ __forceinline__ void StagedRows(const FrameDescriptor& d, int x_begin, int count, int oy_begin,
                                           int net_width, int net_height, int lane, uint8_t* stage) {
  constexpr int kCapacity = kStageRowCapacityPerSampleByte * sizeof(Sample);
  uint8_t* luma0 = stage;
  uint8_t* luma1 = stage + kCapacity;
  uint8_t* chroma0 = stage + 2 * kCapacity;
  uint8_t* chroma1 = stage + 3 * kCapacity;
  const StagedRowsView view{luma0, luma1, chroma0, chroma1};
  const StagedWindow w = MakeStagedWindow<Sample>(d, x_begin, count);
  // Cannot fail for step <= 2 (see kStageRowCapacityPerSampleByte): an invariant, not an input error.
  if (!w.Fits(kCapacity)) __trap();
  for (int r = 0; r < kStagedRowsPerWarp; ++r) {
    const int oy = oy_begin + r;
    if (oy >= net_height) break;
    const StagedRowTaps t = MakeStagedRowTaps(d, w, oy);
    if (t.inside) {
      StageRow(luma0, d.luma + static_cast<long long>(t.luma.i0) * d.pitch, w.luma_begin, w.luma_end, lane);
      StageRow(luma1, d.luma + static_cast<long long>(t.luma.i1) * d.pitch, w.luma_begin, w.luma_end, lane);
      StageRow(chroma0, d.chroma + static_cast<long long>(t.chroma.i0) * d.pitch, w.chroma_begin, w.chroma_end, lane);
      StageRow(chroma1, d.chroma + static_cast<long long>(t.chroma.i1) * d.pitch, w.chroma_begin, w.chroma_end, lane);
      __pipeline_commit();
      __pipeline_wait_prior(0);
      __syncwarp();
    }
    // Unrolled by 2: 64 registers (4 blocks, 32 warps per SM) without spilling; 4 or 8 spill.
    StagedRowPixels<Sample, Out, kNhwc, 2>(d, w, t, view, x_begin, count, oy, net_width, net_height, lane);
    __syncwarp();  // every lane is done with this row's stage before the next row's copies overwrite it
  }
}

template <typename Out, bool kNhwc>
__global__ void __launch_bounds__(kStagedWarps * 32, 4)
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
  const FrameDescriptor& d = *shared_descriptor;
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int warp_index = blockIdx.x * kStagedWarps + warp;
  const int column_chunk = warp_index % chunks_per_row;
  const int oy_begin = (warp_index / chunks_per_row) * kStagedRowsPerWarp;
  if (oy_begin >= net_height) return;  // whole warps only: no block barrier follows
  const int x_begin = column_chunk * kChunkPixels;
  const int count = min(kChunkPixels, net_width - x_begin);
  const int sample_bytes = d.is_p016 ? 2 : 1;
  uint8_t* stage = staged_shared + kStagedDescriptorBytes +
                   static_cast<size_t>(warp) * 4 * kStageRowCapacityPerSampleByte * sample_bytes;
  if (d.is_p016) {
    StagedRows<uint16_t, Out, kNhwc>(d, x_begin, count, oy_begin, net_width, net_height, lane, stage);
  } else {
    StagedRows<uint8_t, Out, kNhwc>(d, x_begin, count, oy_begin, net_width, net_height, lane, stage);
  }
}

}  // namespace vidscan::preprocess_detail
