// Internal to src/preprocess: the per-lane work of the staged fused kernel (variant v2, see
// preprocess_staged.cuh), host/device like kernel_chunk.h, so a CPU test replays it lane by lane: the
// source window a warp stages, the row taps, and each lane's pixels sampled from the staged rows.
// Same function as the reference bit for bit: same taps (LumaTapX/ChromaTapX/...), the same Lerp order as
// Bilinear, ConvertChannel and FromFloat; only where the samples are read from differs.
#pragma once

#include "preprocess/frame_descriptor.h"
#include "preprocess/kernel_chunk.h"
#include "preprocess/preprocess.h"

namespace vidscan::preprocess_detail {

// The tuning of one v2 instantiation, fixed at compile time (docs/preprocess.md, "v2 variants"):
//   kColumns: output columns per warp range (a multiple of 32: kColumns / 32 pixels per lane);
//   kRowsPerWarp: successive output rows a warp makes of its range (set-up and the first row's unhidden
//     latency paid once per kColumns x kRowsPerWarp pixels);
//   kWarps: warps per block; kBlocksPerSm: the __launch_bounds__ minimum (caps registers at
//     65536 / (kWarps * 32 * kBlocksPerSm)).
template <int kColumns_, int kRowsPerWarp_, int kWarps_, int kBlocksPerSm_>
struct StagedShape {
  static_assert(kColumns_ % 32 == 0 && kColumns_ >= 32 && kColumns_ <= 256, "whole lanes; 16-bit table offsets");
  static constexpr int kColumns = kColumns_;
  static constexpr int kPixelsPerLane = kColumns_ / 32;
  static constexpr int kRowsPerWarp = kRowsPerWarp_;
  static constexpr int kWarps = kWarps_;
  static constexpr int kBlocksPerSm = kBlocksPerSm_;
  // Staging bytes per source row, per byte of sample: kColumns outputs at step <= 2 span at most
  // 2 kColumns + 1 luma samples or kColumns + 2 chroma pairs (2 kColumns + 4 samples), plus up to 15
  // bytes of 16-byte alignment at each end: 2 kColumns + 34 < 2 kColumns + 64 (576 for 256 columns).
  static constexpr int kStageRowCapacityPerSampleByte = 2 * kColumns_ + 64;
};

// The instantiations (CudaPreprocessVariant names them; each is built, benchmarked and tested):
using StagedShapeV2 = StagedShape<256, 4, 8, 3>;       // "v2": the original tuning
using StagedShapeR2 = StagedShape<256, 2, 8, 3>;       // "v2-r2": twice the warps, near-whole last wave
using StagedShapeR8 = StagedShape<256, 8, 8, 3>;       // "v2-r8": set-up amortised over 8 rows
using StagedShapeW4 = StagedShape<256, 4, 4, 6>;       // "v2-w4": same 24 warps/SM in 4-warp blocks
using StagedShapeC192 = StagedShape<192, 4, 8, 3>;     // "v2-c192": 960 = 5 x 192, every lane busy
using StagedShapeC192R3B4 = StagedShape<192, 3, 8, 4>;  // "v2-c192-r3-b4": 32 warps/SM (64 registers), 3 rows

// f(Shape{}) for the shape of a staged variant; `otherwise` for a variant that is not staged (v1).
template <typename R, typename F>
R VisitStagedShape(CudaPreprocessVariant variant, R otherwise, F&& f) {
  switch (variant) {
    case CudaPreprocessVariant::kStagedRows: return f(StagedShapeV2{});
    case CudaPreprocessVariant::kStagedRowsR2: return f(StagedShapeR2{});
    case CudaPreprocessVariant::kStagedRowsR8: return f(StagedShapeR8{});
    case CudaPreprocessVariant::kStagedRowsW4: return f(StagedShapeW4{});
    case CudaPreprocessVariant::kStagedRowsC192: return f(StagedShapeC192{});
    case CudaPreprocessVariant::kStagedRowsC192R3B4: return f(StagedShapeC192R3B4{});
    case CudaPreprocessVariant::kChunkTile:
    case CudaPreprocessVariant::kStagedPairs:
    case CudaPreprocessVariant::kStagedPairsC320:
    case CudaPreprocessVariant::kStagedPairsC320W6:
    case CudaPreprocessVariant::kStagedPairsC320W4:
    case CudaPreprocessVariant::kStagedPairsC320S3:
    case CudaPreprocessVariant::kStagedPairsC320Cs:
    case CudaPreprocessVariant::kStagedPairsC320G4:
    case CudaPreprocessVariant::kStagedPairsC960:
    case CudaPreprocessVariant::kStagedPairsC320G4Cs:
    case CudaPreprocessVariant::kStagedPairsC320G4S3Cs: break;
  }
  return otherwise;
}
inline bool IsStagedVariant(CudaPreprocessVariant variant) {
  return VisitStagedShape(variant, false, [](auto) { return true; });
}

// Whether the v2 kernel takes this frame (decided on the host from the descriptor): one bilinear tap per
// axis, at most 2x horizontal shrink (the staging window's capacity assumes it; without antialiasing a
// bigger shrink still has one tap per axis, e.g. YOLOX's 1280x720 -> 416, and would overflow it) and
// 16-byte aligned rows for the 16-byte copies.
inline bool StagedKernelTakes(const FrameDescriptor& d) {
  return d.taps_x == 1 && d.taps_y == 1 && d.step_x <= 2.0f && d.rows_16b_aligned != 0;
}

// The columns [xa, xb) of a column range that lie in the content, and the byte ranges (16-byte
// aligned, relative to the row start) of a luma and a chroma row their taps reach. Taps grow with ox, so
// the first pixel's i0 and the last one's i1 bound them.
struct StagedWindow {
  int xa = 0, xb = 0;
  int luma_begin = 0, luma_end = 0, chroma_begin = 0, chroma_end = 0;
  VS_HD bool Fits(int capacity) const { return luma_end - luma_begin <= capacity && chroma_end - chroma_begin <= capacity; }
};

template <typename Sample>
VS_HD StagedWindow MakeStagedWindow(const FrameDescriptor& d, int x_begin, int count) {
  constexpr int kBytes = sizeof(Sample);
  StagedWindow w;
  w.xa = x_begin > d.content_x0 ? x_begin : d.content_x0;
  w.xb = x_begin + count < d.content_x1 ? x_begin + count : d.content_x1;
  if (w.xa < w.xb) {
    const float sx_first = MulAddExact(static_cast<float>(w.xa), d.step_x, d.base_x);
    const float sx_last = MulAddExact(static_cast<float>(w.xb - 1), d.step_x, d.base_x);
    w.luma_begin = (LumaTapX(d, sx_first).i0 * kBytes) & ~15;
    w.luma_end = ((LumaTapX(d, sx_last).i1 + 1) * kBytes + 15) & ~15;
    w.chroma_begin = (ChromaTapX(d, sx_first).i0 * 2 * kBytes) & ~15;
    w.chroma_end = ((ChromaTapX(d, sx_last).i1 + 1) * 2 * kBytes + 15) & ~15;
  }
  return w;
}

// The vertical taps of output row oy, and whether the row has content pixels in the window.
struct StagedRowTaps {
  bool inside = false;
  Tap luma{0, 0, 0.0f}, chroma{0, 0, 0.0f};
};
VS_HD StagedRowTaps MakeStagedRowTaps(const FrameDescriptor& d, const StagedWindow& w, int oy) {
  StagedRowTaps t;
  t.inside = oy >= d.content_y0 && oy < d.content_y1 && w.xa < w.xb;
  if (t.inside) {
    const float sy = MulAddExact(static_cast<float>(oy), d.step_y, d.base_y);
    t.luma = LumaTapY(d, sy);
    t.chroma = ChromaTapY(d, sy);
  }
  return t;
}

// Rows t.luma.i0, t.luma.i1 (bytes [luma_begin, luma_end)) and t.chroma.i0, t.chroma.i1 (bytes
// [chroma_begin, chroma_end)) copied to luma0, luma1, chroma0, chroma1.
struct StagedRowsView {
  const uint8_t *luma0, *luma1, *chroma0, *chroma1;
};

template <typename Sample>
VS_HD float StagedSample(const uint8_t* row, int byte_offset) {
#if defined(__CUDA_ARCH__)
  return SampleToFloat(*reinterpret_cast<const Sample*>(row + byte_offset));  // offsets are multiples of the size
#else
  Sample v;
  std::memcpy(&v, row + byte_offset, sizeof(Sample));
  return SampleToFloat(v);
#endif
}

// U and V of one staged chroma pair (adjacent samples). On the GPU one 2-byte (NV12) or 4-byte (P016)
// shared load instead of two byte or half-word loads (the compiler does not merge them: it cannot know
// the alignment); a pair's offset is a multiple of 2 * sizeof(Sample), since chroma_begin is 16-byte
// aligned. Same values as two StagedSample calls, so the arithmetic after it is unchanged.
struct StagedChromaPair {
  float u, v;
};
template <typename Sample>
VS_HD StagedChromaPair LoadStagedChromaPair(const uint8_t* row, int byte_offset) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(Sample) == 1) {
    const uchar2 p = *reinterpret_cast<const uchar2*>(row + byte_offset);
    return {SampleToFloat(static_cast<uint8_t>(p.x)), SampleToFloat(static_cast<uint8_t>(p.y))};
  } else {
    const ushort2 p = *reinterpret_cast<const ushort2*>(row + byte_offset);
    return {SampleToFloat(static_cast<uint16_t>(p.x)), SampleToFloat(static_cast<uint16_t>(p.y))};
  }
#else
  return {StagedSample<Sample>(row, byte_offset), StagedSample<Sample>(row, byte_offset + static_cast<int>(sizeof(Sample)))};
#endif
}

// The horizontal taps of one output column as byte offsets into the staged rows, with their weights:
// the same for every row, so a warp computes them once for all its rows (one 16-byte shared-memory load per
// pixel and row instead of ~25 instructions of position math).
struct alignas(16) StagedColumnTaps {
  uint16_t luma0, luma1, chroma0, chroma1;
  float luma_w, chroma_w;
};

// Lane `lane`'s entries (its pixels lane, lane + 32, ...) of the column table of [x_begin, x_begin +
// count); a lane reads back only its own entries, so no synchronisation is needed.
template <typename Sample, int kLanePixels, int kUnroll>
VS_HD void MakeStagedColumnTaps(const FrameDescriptor& d, const StagedWindow& w, int x_begin, int count, int lane,
                                StagedColumnTaps* columns) {
  constexpr int kBytes = sizeof(Sample);
#if defined(__CUDA_ARCH__)
#pragma unroll kUnroll
#endif
  for (int k = 0; k < kLanePixels; ++k) {
    const int p = k * 32 + lane;
    const int ox = x_begin + p;
    if (p >= count) break;
    if (ox < w.xa || ox >= w.xb) continue;  // padding: never read
    const float sx = MulAddExact(static_cast<float>(ox), d.step_x, d.base_x);
    const Tap lx = LumaTapX(d, sx), cx = ChromaTapX(d, sx);
    StagedColumnTaps c;
    c.luma0 = static_cast<uint16_t>(lx.i0 * kBytes - w.luma_begin);
    c.luma1 = static_cast<uint16_t>(lx.i1 * kBytes - w.luma_begin);
    c.chroma0 = static_cast<uint16_t>(cx.i0 * 2 * kBytes - w.chroma_begin);
    c.chroma1 = static_cast<uint16_t>(cx.i1 * 2 * kBytes - w.chroma_begin);
    c.luma_w = lx.w;
    c.chroma_w = cx.w;
    columns[p] = c;
  }
}

// Lane `lane`'s pixels (lane, lane + 32, ...) of output row oy, columns [x_begin, x_begin + count),
// sampled from the staged rows and written straight into the frame's slot.
template <typename Sample, typename Out, bool kNhwc, int kLanePixels, int kUnroll>
VS_HD void StagedRowPixels(const FrameDescriptor& d, const StagedWindow& w, const StagedRowTaps& t,
                           const StagedRowsView& s, const StagedColumnTaps* columns, int x_begin, int count, int oy,
                           int net_width, int net_height, int lane) {
  Out* out = static_cast<Out*>(d.out);
  const size_t plane = static_cast<size_t>(net_width) * net_height;
  const size_t row_start = static_cast<size_t>(oy) * net_width;
#if defined(__CUDA_ARCH__)
#pragma unroll kUnroll
#endif
  for (int k = 0; k < kLanePixels; ++k) {
    const int p = k * 32 + lane;
    if (p >= count) break;
    const int ox = x_begin + p;
    const bool inside = t.inside && ox >= w.xa && ox < w.xb;
    float yuv[3] = {0.0f, 0.0f, 0.0f};
    if (inside) {
      const StagedColumnTaps c = columns[p];
      yuv[0] = Lerp(Lerp(StagedSample<Sample>(s.luma0, c.luma0), StagedSample<Sample>(s.luma0, c.luma1), c.luma_w),
                    Lerp(StagedSample<Sample>(s.luma1, c.luma0), StagedSample<Sample>(s.luma1, c.luma1), c.luma_w),
                    t.luma.w);
      const StagedChromaPair a = LoadStagedChromaPair<Sample>(s.chroma0, c.chroma0);
      const StagedChromaPair b = LoadStagedChromaPair<Sample>(s.chroma0, c.chroma1);
      const StagedChromaPair e = LoadStagedChromaPair<Sample>(s.chroma1, c.chroma0);
      const StagedChromaPair f = LoadStagedChromaPair<Sample>(s.chroma1, c.chroma1);
      yuv[1] = Lerp(Lerp(a.u, b.u, c.chroma_w), Lerp(e.u, f.u, c.chroma_w), t.chroma.w);
      yuv[2] = Lerp(Lerp(a.v, b.v, c.chroma_w), Lerp(e.v, f.v, c.chroma_w), t.chroma.w);
    }
VS_UNROLL
    for (int c = 0; c < 3; ++c) {
      const float value = inside ? ConvertChannel(d, yuv, c) : d.pad[c];  // padding outside the content
      out[kNhwc ? (row_start + ox) * 3 + c : c * plane + row_start + ox] = FromFloat<Out>(value);
    }
  }
}

}  // namespace vidscan::preprocess_detail
