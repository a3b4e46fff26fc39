// Internal to src/preprocess: the per-frame constants both implementations read, and the sampling math
// they share (host and device), so the CPU reference and the kernel compute one function. Everything
// that needs a division or a branch on the frame's format is folded into the descriptor on the host.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "preprocess/preprocess.h"

#if defined(__CUDACC__)
#define VS_HD __host__ __device__ __forceinline__
#else
#define VS_HD inline
#endif

namespace vidscan::preprocess_detail {

struct FrameDescriptor {
  const uint8_t* luma = nullptr;
  const uint8_t* chroma = nullptr;
  void* out = nullptr;  // this frame's slot
  int pitch = 0;        // bytes, both planes
  int luma_max_x = 0, luma_max_y = 0;  // width - 1, height - 1
  // The chroma samples that cover the ROI: chroma taps stay inside them, so a ROI with an even origin
  // gives exactly what a frame cropped to it would.
  int chroma_min_x = 0, chroma_min_y = 0, chroma_max_x = 0, chroma_max_y = 0;
  int is_p016 = 0;
  int vector_store = 0;  // the slot is 16-byte aligned and every output row starts 16-byte aligned
  int chroma_pairs_aligned = 0;  // every U,V pair can be read as one 2 (NV12) or 4 (P016) byte load
  // Both planes and the pitch are 16-byte aligned: the staged kernel (v2) copies source rows in 16-byte
  // pieces, which never leave the row's pitch.
  int rows_16b_aligned = 0;
  // Sample positions are clamped to the ROI's border pixel centres.
  float clamp_x0 = 0, clamp_x1 = 0, clamp_y0 = 0, clamp_y1 = 0;
  // Sample k of output column ox is at ox * step_x + base_x + k * sub_x (pixel-centre coordinates).
  float step_x = 1, base_x = 0, sub_x = 1;
  float step_y = 1, base_y = 0, sub_y = 1;
  int taps_x = 1, taps_y = 1;
  float inv_taps = 1;  // 1 / (taps_x * taps_y)
  int content_x0 = 0, content_x1 = 0, content_y0 = 0, content_y1 = 0;  // [x0, x1) x [y0, y1)
  // Output channel c before clamping = coef[c] . (Y, U, V) + offset[c], raw sample values, 0..255 result.
  float coef[3][3] = {};
  float offset[3] = {};
  // Normalised output = clamped value * mul[c] + add[c]; padding writes pad[c] (already normalised).
  float mul[3] = {}, add[3] = {}, pad[3] = {};
  // Kernel v3 (paired_rows.h) samples Y, U, V as biased floats s' = 2^23 + 2^15 s. The same matrix for them,
  // in 0..1 units so that clamping is a saturation: channel c before clamping / 255 =
  // pair_y[c] s'_Y + pair_u[c] s'_U + pair_v[c] s'_V + pair_offset[c]; the clamped value times pair_mul[c]
  // (= 255 mul[c]) plus add[c] is the output. Folded in double on the host.
  float pair_y[3] = {}, pair_u[3] = {}, pair_v[3] = {}, pair_offset[3] = {}, pair_mul[3] = {};
};

// Builds the descriptor of a validated input whose output slot starts at `out`.
FrameDescriptor MakeFrameDescriptor(const PreprocessParams& params, const PreprocessInput& input,
                                    const LetterboxTransform& transform, void* out);

// Validates a whole Run call (params, every frame and ROI, slots unique and inside the tensor, memory
// where the implementation needs it) and returns each input's transform.
Expected<std::vector<LetterboxTransform>> ValidateBatch(const PreprocessParams& params,
                                                        std::span<const PreprocessInput> inputs,
                                                        const BatchTensor& output, MemoryKind memory,
                                                        int max_batch);

// Multiply and add rounded separately on both sides (no FMA contraction), so host and device find the
// same sample positions bit for bit: a position that differs by one ulp could pick another tap.
VS_HD float MulAddExact(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(__fmul_rn(a, b), c);
#else
  return a * b + c;
#endif
}

VS_HD float ClampF(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// Two neighbouring samples and the weight of the second.
struct Tap {
  int i0, i1;
  float w;
};

// pos must already lie in [0, max_index] (every caller clamps it first).
VS_HD Tap MakeTap(float pos, int max_index) {
  Tap t;
#if defined(__CUDA_ARCH__)
  // floor and float->int without the quarter-rate conversion units: adding 2^23 rounding down leaves
  // floor(pos) in the mantissa bits (exact for 0 <= pos < 2^23).
  const float shifted = __fadd_rd(pos, 8388608.0f);
  t.i0 = __float_as_int(shifted) & 0x7fffff;
  const float f = shifted - 8388608.0f;
#else
  const float f = floorf(pos);
  t.i0 = static_cast<int>(f);
#endif
  t.i1 = t.i0 < max_index ? t.i0 + 1 : max_index;
  t.w = pos - f;
  return t;
}

// An 8- or 16-bit sample as float; on the GPU by building 2^23 + v and subtracting 2^23 (exact, and full
// rate instead of the conversion unit's quarter rate: the kernel converts 12 samples per output pixel).
template <typename Sample>
VS_HD float SampleToFloat(Sample v) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x4b000000 | static_cast<int>(v)) - 8388608.0f;
#else
  return static_cast<float>(v);
#endif
}

// Not contracted to an FMA on the GPU either: samples (and so the sums of the area path, which may add
// thousands of them) are then bit-identical on both sides.
VS_HD float Lerp(float a, float b, float w) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, __fmul_rn(b - a, w));
#else
  return a + (b - a) * w;
#endif
}

template <typename Sample>
VS_HD float Bilinear(const uint8_t* plane, int pitch, const Tap& tx, const Tap& ty, int stride, int component) {
  const Sample* r0 = reinterpret_cast<const Sample*>(plane + static_cast<long long>(ty.i0) * pitch);
  const Sample* r1 = reinterpret_cast<const Sample*>(plane + static_cast<long long>(ty.i1) * pitch);
  const float a = SampleToFloat(r0[tx.i0 * stride + component]), b = SampleToFloat(r0[tx.i1 * stride + component]);
  const float c = SampleToFloat(r1[tx.i0 * stride + component]), d = SampleToFloat(r1[tx.i1 * stride + component]);
  return Lerp(Lerp(a, b, tx.w), Lerp(c, d, tx.w), ty.w);
}

// Luma and chroma taps of one sample position (pixel-centre coordinates, unclamped).
struct SampleTaps {
  Tap y_x, y_y, c_x, c_y;
};

VS_HD Tap LumaTapX(const FrameDescriptor& d, float sx) {
  return MakeTap(ClampF(sx, d.clamp_x0, d.clamp_x1), d.luma_max_x);
}
VS_HD Tap LumaTapY(const FrameDescriptor& d, float sy) {
  return MakeTap(ClampF(sy, d.clamp_y0, d.clamp_y1), d.luma_max_y);
}
// Chroma siting: sample i of a chroma row sits on luma column 2i; chroma row j sits between luma rows
// 2j and 2j+1. The position follows the clamped luma position.
VS_HD Tap ChromaTapX(const FrameDescriptor& d, float sx) {
  const float x = ClampF(sx, d.clamp_x0, d.clamp_x1) * 0.5f;
  return MakeTap(ClampF(x, static_cast<float>(d.chroma_min_x), static_cast<float>(d.chroma_max_x)), d.chroma_max_x);
}
VS_HD Tap ChromaTapY(const FrameDescriptor& d, float sy) {
  const float y = ClampF(sy, d.clamp_y0, d.clamp_y1) * 0.5f - 0.25f;
  return MakeTap(ClampF(y, static_cast<float>(d.chroma_min_y), static_cast<float>(d.chroma_max_y)), d.chroma_max_y);
}

#if defined(__CUDA_ARCH__)
// U and V of the 2x2 chroma neighbourhood in four loads instead of eight (same values, same arithmetic).
template <typename Sample>
__device__ __forceinline__ float2 BilinearChromaPairs(const FrameDescriptor& d, const Tap& tx, const Tap& ty) {
  using Pair = typename std::conditional<sizeof(Sample) == 1, uchar2, ushort2>::type;
  const Pair* r0 = reinterpret_cast<const Pair*>(d.chroma + static_cast<long long>(ty.i0) * d.pitch);
  const Pair* r1 = reinterpret_cast<const Pair*>(d.chroma + static_cast<long long>(ty.i1) * d.pitch);
  const Pair a = r0[tx.i0], b = r0[tx.i1], c = r1[tx.i0], e = r1[tx.i1];
  return make_float2(
      Lerp(Lerp(SampleToFloat(a.x), SampleToFloat(b.x), tx.w), Lerp(SampleToFloat(c.x), SampleToFloat(e.x), tx.w), ty.w),
      Lerp(Lerp(SampleToFloat(a.y), SampleToFloat(b.y), tx.w), Lerp(SampleToFloat(c.y), SampleToFloat(e.y), tx.w), ty.w));
}
#endif

template <typename Sample>
VS_HD void SampleYuv(const FrameDescriptor& d, const Tap& lx, const Tap& ly, const Tap& cx, const Tap& cy,
                     float yuv[3]) {
  yuv[0] = Bilinear<Sample>(d.luma, d.pitch, lx, ly, 1, 0);
#if defined(__CUDA_ARCH__)
  if (d.chroma_pairs_aligned) {
    const float2 uv = BilinearChromaPairs<Sample>(d, cx, cy);
    yuv[1] = uv.x;
    yuv[2] = uv.y;
    return;
  }
#endif
  yuv[1] = Bilinear<Sample>(d.chroma, d.pitch, cx, cy, 2, 0);
  yuv[2] = Bilinear<Sample>(d.chroma, d.pitch, cx, cy, 2, 1);
}

// Average of the taps_x * taps_y samples of output pixel (ox, oy) inside the content rectangle.
template <typename Sample>
VS_HD void AreaSampleYuv(const FrameDescriptor& d, int ox, int oy, float yuv[3]) {
  float sum[3] = {0, 0, 0};
  const float sy0 = MulAddExact(static_cast<float>(oy), d.step_y, d.base_y);
  const float sx0 = MulAddExact(static_cast<float>(ox), d.step_x, d.base_x);
  for (int ky = 0; ky < d.taps_y; ++ky) {
    const float sy = MulAddExact(static_cast<float>(ky), d.sub_y, sy0);
    const Tap ly = LumaTapY(d, sy), cy = ChromaTapY(d, sy);
    for (int kx = 0; kx < d.taps_x; ++kx) {
      const float sx = MulAddExact(static_cast<float>(kx), d.sub_x, sx0);
      float s[3];
      SampleYuv<Sample>(d, LumaTapX(d, sx), ly, ChromaTapX(d, sx), cy, s);
      sum[0] += s[0];
      sum[1] += s[1];
      sum[2] += s[2];
    }
  }
  yuv[0] = sum[0] * d.inv_taps;
  yuv[1] = sum[1] * d.inv_taps;
  yuv[2] = sum[2] * d.inv_taps;
}

// Normalised output channel c of an averaged (Y, U, V).
VS_HD float ConvertChannel(const FrameDescriptor& d, const float yuv[3], int c) {
  float v = d.coef[c][0] * yuv[0] + d.coef[c][1] * yuv[1] + d.coef[c][2] * yuv[2] + d.offset[c];
  v = ClampF(v, 0.0f, 255.0f);
  return v * d.mul[c] + d.add[c];
}

}  // namespace vidscan::preprocess_detail
