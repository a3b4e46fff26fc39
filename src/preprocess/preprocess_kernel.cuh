// Internal to src/preprocess: the fused kernel (the work split is described in kernel_chunk.h and
// preprocess_cuda.cu).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "preprocess/frame_descriptor.h"
#include "preprocess/kernel_chunk.h"

namespace vidscan::preprocess_detail {

Status LaunchPreprocessKernel(const PreprocessParams& params, const FrameDescriptor* frames, int frame_count,
                              cudaStream_t stream);

// 3 blocks (24 warps) per SM: ptxas then takes 80 registers without spilling; left to itself it picks 64
// and spills inside the pixel loop, and 4 blocks per SM (64 registers) spill too.
template <typename Out, bool kNhwc>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 3)
    PreprocessKernel(const FrameDescriptor* __restrict__ frames, int net_width, int net_height, int chunks_per_row) {
  __shared__ __align__(16) Out tiles[kWarpsPerBlock][kTileElements];
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int chunk = blockIdx.x * kWarpsPerBlock + warp;
  if (chunk >= chunks_per_row * net_height) return;  // whole warps only: the kernel has no block barrier
  const FrameDescriptor d = frames[blockIdx.z];  // a copy: its fields stay in registers, not reloaded per pixel
  const ChunkGeometry g = LocateChunk(chunk, chunks_per_row, net_width);
  Out* tile = tiles[warp];
  ConvertChunkAnyFormat<Out, kNhwc>(d, g, lane, tile);
  __syncwarp();
  StoreChunk<Out, kNhwc>(d, g, lane, tile, net_width, net_height);
}

}  // namespace vidscan::preprocess_detail
