// IoU of two boxes and the NMS sort key, shared by the CPU reference NMS and the CUDA kernel so that both decide every pair
// identically: the device path uses explicitly rounded intrinsics because nvcc would otherwise contract
// `a * b + c` into an FMA and round differently from the host for the same inputs.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VS_IOU_HD __host__ __device__
#else
#define VS_IOU_HD
#endif

namespace vidscan {

VS_IOU_HD inline float VsMax(float a, float b) { return a > b ? a : b; }
VS_IOU_HD inline float VsMin(float a, float b) { return a < b ? a : b; }

#if defined(__CUDA_ARCH__)
#define VS_IOU_MUL(a, b) __fmul_rn((a), (b))
#define VS_IOU_ADD(a, b) __fadd_rn((a), (b))
#define VS_IOU_SUB(a, b) __fsub_rn((a), (b))
#define VS_IOU_DIV(a, b) __fdiv_rn((a), (b))
#else
#define VS_IOU_MUL(a, b) ((a) * (b))
#define VS_IOU_ADD(a, b) ((a) + (b))
#define VS_IOU_SUB(a, b) ((a) - (b))
#define VS_IOU_DIV(a, b) ((a) / (b))
#endif

// Boxes as (x1, y1, x2, y2); a box with x2 < x1 or y2 < y1 has no area. Two empty boxes have IoU 0.
VS_IOU_HD inline float BoxIou(float ax1, float ay1, float ax2, float ay2, float bx1, float by1, float bx2,
                              float by2) {
  const float iw = VsMax(0.0f, VS_IOU_SUB(VsMin(ax2, bx2), VsMax(ax1, bx1)));
  const float ih = VsMax(0.0f, VS_IOU_SUB(VsMin(ay2, by2), VsMax(ay1, by1)));
  const float inter = VS_IOU_MUL(iw, ih);
  const float area_a = VS_IOU_MUL(VsMax(0.0f, VS_IOU_SUB(ax2, ax1)), VsMax(0.0f, VS_IOU_SUB(ay2, ay1)));
  const float area_b = VS_IOU_MUL(VsMax(0.0f, VS_IOU_SUB(bx2, bx1)), VsMax(0.0f, VS_IOU_SUB(by2, by1)));
  const float uni = VS_IOU_SUB(VS_IOU_ADD(area_a, area_b), inter);
  return uni > 0.0f ? VS_IOU_DIV(inter, uni) : 0.0f;
}

// The GPU sort key of a candidate: ascending key order = the CPU's CandidateBefore (higher score first,
// then lower index). The score's bits become an unsigned order-preserving integer (after turning -0 into
// +0, which the CPU treats as equal) and are inverted for descending order; the index is offset so that
// negative indices also sort in order. NaN scores are not supported (the heads never emit them).
VS_IOU_HD inline uint64_t NmsSortKey(float score, int32_t index) {
  const float normalised = score + 0.0f;
#if defined(__CUDA_ARCH__)
  uint32_t bits = __float_as_uint(normalised);
#else
  uint32_t bits;
  std::memcpy(&bits, &normalised, sizeof(bits));
#endif
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  const uint32_t descending = ~bits;
  const uint32_t ordered_index = static_cast<uint32_t>(index) ^ 0x80000000u;
  return (static_cast<uint64_t>(descending) << 32) | ordered_index;
}

}  // namespace vidscan
