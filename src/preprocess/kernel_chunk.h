// Internal to src/preprocess: what one warp of the fused kernel does with one chunk of output pixels,
// written per lane and host/device, so the kernel runs it on the GPU and tests can replay the exact same
// work split (chunks, shared tile, 16-byte stores, tails) lane by lane on the CPU.
//
// A chunk is kChunkPixels consecutive output pixels of one row. Lane l converts pixels l, l+32, ...
// (coalesced source reads) into a tile in tensor order; after the warp synchronises, every lane stores
// 16-byte groups of consecutive tile elements (coalesced 16-byte writes).
#pragma once

#include <cstring>

#include "preprocess/frame_descriptor.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif
#if !defined(__CUDA_ARCH__)
#include "preprocess/float16.h"
#endif

#if defined(__CUDACC__)
#define VS_UNROLL _Pragma("unroll")
#else
#define VS_UNROLL
#endif

namespace vidscan::preprocess_detail {

constexpr int kChunkPixels = 256;  // output pixels per warp: 8 per lane
constexpr int kPixelsPerLane = kChunkPixels / 32;
constexpr int kWarpsPerBlock = 8;
constexpr int kTileElements = kChunkPixels * 3;

// Tensor element types: float, and FP16 as __half on the GPU or its bits (uint16_t) on the host.
template <typename Out>
VS_HD Out FromFloat(float v);
template <>
VS_HD float FromFloat<float>(float v) { return v; }
#if defined(__CUDACC__)
template <>
VS_HD __half FromFloat<__half>(float v) { return __float2half_rn(v); }
#endif
#if !defined(__CUDA_ARCH__)
template <>
inline uint16_t FromFloat<uint16_t>(float v) { return FloatToHalfBits(v); }
#endif

// Which row and columns chunk `chunk` of a width x height output covers.
struct ChunkGeometry {
  int oy, x_begin, count;
};
VS_HD ChunkGeometry LocateChunk(int chunk, int chunks_per_row, int width) {
  ChunkGeometry g;
  g.oy = chunk / chunks_per_row;
  g.x_begin = (chunk - g.oy * chunks_per_row) * kChunkPixels;
  g.count = width - g.x_begin < kChunkPixels ? width - g.x_begin : kChunkPixels;
  return g;
}

VS_HD void Copy16Bytes(void* dst, const void* src) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
#else
  std::memcpy(dst, src, 16);
#endif
}

// Lane `lane`'s share of copying n consecutive elements from the tile to the tensor; with `vector` both
// sides are 16-byte aligned at element 0, and whole 16-byte groups go in single stores.
template <typename Out>
VS_HD void StoreSegment(Out* __restrict__ dst, const Out* __restrict__ src, int n, int lane, bool vector) {
  constexpr int kVec = 16 / sizeof(Out);
  if (vector) {
    for (int i = lane * kVec; i < n; i += 32 * kVec) {
      if (i + kVec <= n) {
        Copy16Bytes(dst + i, src + i);
      } else {
        for (int j = i; j < n; ++j) dst[j] = src[j];
      }
    }
  } else {
    for (int i = lane; i < n; i += 32) dst[i] = src[i];
  }
}

// Lane `lane`'s pixels of the chunk, converted into the tile (NCHW: 3 planes of kChunkPixels; NHWC:
// interleaved).
template <typename Sample, typename Out, bool kNhwc>
VS_HD void ConvertChunk(const FrameDescriptor& d, const ChunkGeometry& g, int lane, Out* tile) {
  const bool row_inside = g.oy >= d.content_y0 && g.oy < d.content_y1;
  const bool single_tap = d.taps_x == 1 && d.taps_y == 1;
  // Bilinear (no shrink beyond 2x): the row's taps are shared by every pixel of the chunk.
  Tap luma_y{0, 0, 0.0f}, chroma_y{0, 0, 0.0f};
  if (row_inside && single_tap) {
    const float sy = MulAddExact(static_cast<float>(g.oy), d.step_y, d.base_y);
    luma_y = LumaTapY(d, sy);
    chroma_y = ChromaTapY(d, sy);
  }
VS_UNROLL
  for (int k = 0; k < kPixelsPerLane; ++k) {
    const int p = k * 32 + lane;
    if (p >= g.count) break;
    const int ox = g.x_begin + p;
    float value[3];
    if (row_inside && ox >= d.content_x0 && ox < d.content_x1) {
      float yuv[3];
      if (single_tap) {
        const float sx = MulAddExact(static_cast<float>(ox), d.step_x, d.base_x);
        SampleYuv<Sample>(d, LumaTapX(d, sx), luma_y, ChromaTapX(d, sx), chroma_y, yuv);
      } else {
        AreaSampleYuv<Sample>(d, ox, g.oy, yuv);
      }
VS_UNROLL
      for (int c = 0; c < 3; ++c) value[c] = ConvertChannel(d, yuv, c);
    } else {
VS_UNROLL
      for (int c = 0; c < 3; ++c) value[c] = d.pad[c];
    }
VS_UNROLL
    for (int c = 0; c < 3; ++c) tile[kNhwc ? p * 3 + c : c * kChunkPixels + p] = FromFloat<Out>(value[c]);
  }
}

template <typename Out, bool kNhwc>
VS_HD void ConvertChunkAnyFormat(const FrameDescriptor& d, const ChunkGeometry& g, int lane, Out* tile) {
  if (d.is_p016) {
    ConvertChunk<uint16_t, Out, kNhwc>(d, g, lane, tile);
  } else {
    ConvertChunk<uint8_t, Out, kNhwc>(d, g, lane, tile);
  }
}

// Lane `lane`'s share of writing the converted chunk into the frame's slot.
template <typename Out, bool kNhwc>
VS_HD void StoreChunk(const FrameDescriptor& d, const ChunkGeometry& g, int lane, const Out* tile, int width,
                      int height) {
  Out* out = static_cast<Out*>(d.out);
  const bool vector = d.vector_store != 0;
  const size_t row_start = static_cast<size_t>(g.oy) * width + g.x_begin;
  if (kNhwc) {
    StoreSegment(out + row_start * 3, tile, g.count * 3, lane, vector);
  } else {
    const size_t plane = static_cast<size_t>(width) * height;
VS_UNROLL
    for (int c = 0; c < 3; ++c) StoreSegment(out + c * plane + row_start, tile + c * kChunkPixels, g.count, lane, vector);
  }
}

}  // namespace vidscan::preprocess_detail
