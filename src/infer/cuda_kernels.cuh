// The CUDA executor's own kernels (everything but convolution, which is cuDNN's). Float32 or float16
// storage, float32 arithmetic. Internal to src/infer; include only from .cu files.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace vidscan::infer::cuda {

inline constexpr int kMaxStridedRank = 6;
inline constexpr int kMaxStridedInputs = 3;

// Element-wise operations over strided views. Every data-movement op (layout conversion, Concat, Slice,
// Split, Transpose, Reshape, broadcasting) is one of these with suitable strides.
enum class ElementOp : int {
  kCopy,       // out = a
  kRelu,
  kLeakyRelu,  // alpha
  kSigmoid,
  kSilu,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMulAdd,     // out = a * b + c (inference BatchNormalization with per-channel b, c)
};

// Iterates `dims` (outermost first, the output's memory order, so writes are coalesced); element k of the
// iteration reads input i at in_offset[i] + sum(coord[d] * in_strides[i][d]) and writes out likewise.
// A broadcast dim has stride 0.
struct StridedParams {
  int rank = 0;
  int inputs = 1;
  int64_t count = 0;
  int dims[kMaxStridedRank] = {};
  int64_t out_strides[kMaxStridedRank] = {};
  int64_t out_offset = 0;
  int64_t in_strides[kMaxStridedInputs][kMaxStridedRank] = {};
  int64_t in_offset[kMaxStridedInputs] = {};
  float alpha = 0;
};

template <typename TOut, typename TIn>
cudaError_t LaunchStrided(ElementOp op, const StridedParams& params, TOut* out, const TIn* a, const TIn* b, const TIn* c,
                          cudaStream_t stream);

// Conv epilogue in place over an NHWC tensor (C innermost): y = act(y + bias[c] + residual).
enum class EpilogueActivation : int { kNone, kRelu, kLeakyRelu, kSigmoid, kSilu };
template <typename T>
cudaError_t LaunchConvEpilogue(T* y, const T* bias, const T* residual, int64_t count, int channels, EpilogueActivation act,
                               float alpha, cudaStream_t stream);

// 2-D max/average pooling, NHWC in and out.
struct PoolParams {
  int n = 0, c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool is_max = true;
  bool count_include_pad = false;
};
template <typename T>
cudaError_t LaunchPool(const PoolParams& params, const T* x, T* y, cudaStream_t stream);

// GlobalAveragePool: NHWC [n, hw, c] -> [n, c].
template <typename T>
cudaError_t LaunchGlobalAveragePool(const T* x, T* y, int n, int hw, int c, cudaStream_t stream);

// Resize (nearest or bilinear through per-row/column tap tables), NHWC in and out.
struct ResizeTapDevice {
  int i0, i1;
  float w1;
};
template <typename T>
cudaError_t LaunchResize(const T* x, T* y, int n, int c, int in_h, int in_w, int out_h, int out_w, const ResizeTapDevice* rows,
                         const ResizeTapDevice* cols, cudaStream_t stream);

// Softmax over a contiguous [outer, length, inner] tensor along the middle axis.
template <typename T>
cudaError_t LaunchSoftmax(const T* x, T* y, int64_t outer, int64_t length, int64_t inner, cudaStream_t stream);

}  // namespace vidscan::infer::cuda
