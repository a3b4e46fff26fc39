// Internal to src/preprocess: the fused kernel (see preprocess_cuda.cu for the work split).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "preprocess/frame_descriptor.h"

namespace vidscan::preprocess_detail {

constexpr int kChunkPixels = 256;  // output pixels per warp: 8 per lane
constexpr int kPixelsPerLane = kChunkPixels / 32;
constexpr int kWarpsPerBlock = 8;

Status LaunchPreprocessKernel(const PreprocessParams& params, const FrameDescriptor* frames, int frame_count,
                              cudaStream_t stream);

template <typename Out>
__device__ __forceinline__ Out FromFloat(float v);
template <>
__device__ __forceinline__ float FromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half FromFloat<__half>(float v) { return __float2half_rn(v); }

// Copies n consecutive elements from the warp's shared tile to global memory; with `vector` both sides
// are 16-byte aligned at element 0, and whole 16-byte groups go in single stores.
template <typename Out>
__device__ __forceinline__ void StoreSegment(Out* __restrict__ dst, const Out* __restrict__ src, int n, int lane,
                                             bool vector) {
  constexpr int kVec = 16 / sizeof(Out);
  if (vector) {
    for (int i = lane * kVec; i < n; i += 32 * kVec) {
      if (i + kVec <= n) {
        *reinterpret_cast<uint4*>(dst + i) = *reinterpret_cast<const uint4*>(src + i);
      } else {
        for (int j = i; j < n; ++j) dst[j] = src[j];
      }
    }
  } else {
    for (int i = lane; i < n; i += 32) dst[i] = src[i];
  }
}

template <typename Sample, typename Out, bool kNhwc>
__device__ __forceinline__ void ConvertChunk(const FrameDescriptor& d, int oy, int x_begin, int count, int lane,
                                             Out* tile) {
  const bool row_inside = oy >= d.content_y0 && oy < d.content_y1;
  const bool single_tap = d.taps_x == 1 && d.taps_y == 1;
  // Bilinear (no shrink beyond 2x): the row's taps are shared by every pixel of the chunk.
  Tap luma_y{0, 0, 0.0f}, chroma_y{0, 0, 0.0f};
  if (row_inside && single_tap) {
    const float sy = MulAddExact(static_cast<float>(oy), d.step_y, d.base_y);
    luma_y = LumaTapY(d, sy);
    chroma_y = ChromaTapY(d, sy);
  }
#pragma unroll
  for (int k = 0; k < kPixelsPerLane; ++k) {
    const int p = k * 32 + lane;
    if (p >= count) break;
    const int ox = x_begin + p;
    float value[3];
    if (row_inside && ox >= d.content_x0 && ox < d.content_x1) {
      float yuv[3];
      if (single_tap) {
        const float sx = MulAddExact(static_cast<float>(ox), d.step_x, d.base_x);
        SampleYuv<Sample>(d, LumaTapX(d, sx), luma_y, ChromaTapX(d, sx), chroma_y, yuv);
      } else {
        AreaSampleYuv<Sample>(d, ox, oy, yuv);
      }
#pragma unroll
      for (int c = 0; c < 3; ++c) value[c] = ConvertChannel(d, yuv, c);
    } else {
#pragma unroll
      for (int c = 0; c < 3; ++c) value[c] = d.pad[c];
    }
#pragma unroll
    for (int c = 0; c < 3; ++c) tile[kNhwc ? p * 3 + c : c * kChunkPixels + p] = FromFloat<Out>(value[c]);
  }
}

// 3 blocks (24 warps) per SM: ptxas then takes 80 registers without spilling; left to itself it picks 64
// and spills inside the pixel loop, and 4 blocks per SM (64 registers) spill too.
template <typename Out, bool kNhwc>
__global__ void __launch_bounds__(kWarpsPerBlock * 32, 3)
    PreprocessKernel(const FrameDescriptor* __restrict__ frames, int net_width, int net_height, int chunks_per_row) {
  __shared__ __align__(16) Out tiles[kWarpsPerBlock][kChunkPixels * 3];
  const int warp = threadIdx.x >> 5;
  const int lane = threadIdx.x & 31;
  const int chunk = blockIdx.x * kWarpsPerBlock + warp;
  if (chunk >= chunks_per_row * net_height) return;  // whole warps only: the kernel has no block barrier
  const FrameDescriptor d = frames[blockIdx.z];  // a copy: its fields stay in registers, not reloaded per pixel
  const int oy = chunk / chunks_per_row;
  const int x_begin = (chunk - oy * chunks_per_row) * kChunkPixels;
  const int count = min(kChunkPixels, net_width - x_begin);
  Out* tile = tiles[warp];

  if (d.is_p016) {
    ConvertChunk<uint16_t, Out, kNhwc>(d, oy, x_begin, count, lane, tile);
  } else {
    ConvertChunk<uint8_t, Out, kNhwc>(d, oy, x_begin, count, lane, tile);
  }
  __syncwarp();

  Out* out = static_cast<Out*>(d.out);
  const bool vector = d.vector_store != 0;
  const size_t row_start = static_cast<size_t>(oy) * net_width + x_begin;
  if (kNhwc) {
    StoreSegment(out + row_start * 3, tile, count * 3, lane, vector);
  } else {
    const size_t plane = static_cast<size_t>(net_width) * net_height;
#pragma unroll
    for (int c = 0; c < 3; ++c) StoreSegment(out + c * plane + row_start, tile + c * kChunkPixels, count, lane, vector);
  }
}

}  // namespace vidscan::preprocess_detail
