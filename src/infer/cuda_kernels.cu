// The CUDA executor's own kernels. Storage is float or __half, arithmetic float32; each kernel mirrors the
// CPU kernel of the same op in cpu_ops.cpp (same formulas, same summation order where it matters), and the
// GPU test compares the two on every single-operator model.
#include "infer/cuda_kernels.cuh"

#include <cfloat>

namespace vidscan::infer::cuda {
namespace {

__device__ __forceinline__ float Load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float Load(const __half* p, int64_t i) { return __half2float(p[i]); }
__device__ __forceinline__ void Store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void Store(__half* p, int64_t i, float v) { p[i] = __float2half(v); }

__device__ __forceinline__ float SigmoidOf(float x) { return 1.0f / (1.0f + expf(-x)); }

unsigned Blocks(int64_t count, int threads) {
  const int64_t blocks = (count + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 1048576 ? 1048576 : blocks));
}

// Index is uint32_t when the element count allows: 64-bit division is emulated and would dominate.
template <typename TOut, typename TIn, typename Index>
__global__ void StridedKernel(ElementOp op, StridedParams p, TOut* out, const TIn* a, const TIn* b, const TIn* c) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < p.count;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    Index rest = static_cast<Index>(index);
    int64_t out_at = p.out_offset, a_at = p.in_offset[0], b_at = p.in_offset[1], c_at = p.in_offset[2];
    for (int d = p.rank - 1; d >= 0; --d) {
      const Index dim = static_cast<Index>(p.dims[d]);
      const int64_t coord = static_cast<int64_t>(rest % dim);
      rest /= dim;
      out_at += coord * p.out_strides[d];
      a_at += coord * p.in_strides[0][d];
      b_at += coord * p.in_strides[1][d];
      c_at += coord * p.in_strides[2][d];
    }
    const float x = Load(a, a_at);
    float v = x;
    switch (op) {
      case ElementOp::kCopy: break;
      case ElementOp::kRelu: v = x > 0.0f ? x : 0.0f; break;
      case ElementOp::kLeakyRelu: v = x >= 0.0f ? x : p.alpha * x; break;
      case ElementOp::kSigmoid: v = SigmoidOf(x); break;
      case ElementOp::kSilu: v = x * SigmoidOf(x); break;
      case ElementOp::kAdd: v = x + Load(b, b_at); break;
      case ElementOp::kSub: v = x - Load(b, b_at); break;
      case ElementOp::kMul: v = x * Load(b, b_at); break;
      case ElementOp::kDiv: v = x / Load(b, b_at); break;
      case ElementOp::kMulAdd: v = x * Load(b, b_at) + Load(c, c_at); break;
    }
    Store(out, out_at, v);
  }
}

template <typename T>
__global__ void EpilogueKernel(T* y, const T* bias, const T* residual, int64_t count, int channels, EpilogueActivation act,
                               float alpha) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float v = Load(y, i);
    if (bias) {
      // 32-bit modulo where it fits (64-bit integer division is emulated).
      const int64_t ch = count <= static_cast<int64_t>(UINT32_MAX) ? static_cast<uint32_t>(i) % static_cast<uint32_t>(channels) : i % channels;
      v += Load(bias, ch);
    }
    if (residual) v += Load(residual, i);
    switch (act) {
      case EpilogueActivation::kNone: break;
      case EpilogueActivation::kRelu: v = v > 0.0f ? v : 0.0f; break;
      case EpilogueActivation::kLeakyRelu: v = v >= 0.0f ? v : alpha * v; break;
      case EpilogueActivation::kSigmoid: v = SigmoidOf(v); break;
      case EpilogueActivation::kSilu: v = v * SigmoidOf(v); break;
    }
    Store(y, i, v);
  }
}

template <typename T>
__global__ void PoolKernel(PoolParams p, const T* x, T* y) {
  const int64_t total = static_cast<int64_t>(p.n) * p.out_h * p.out_w * p.c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(i % p.c);
    int64_t rest = i / p.c;
    const int ox = static_cast<int>(rest % p.out_w);
    rest /= p.out_w;
    const int oy = static_cast<int>(rest % p.out_h);
    const int n = static_cast<int>(rest / p.out_h);
    const T* plane = x + static_cast<int64_t>(n) * p.in_h * p.in_w * p.c + ch;
    float best = -FLT_MAX, sum = 0.0f;
    bool any = false;
    int inside = 0;
    for (int ky = 0; ky < p.kh; ++ky) {
      const int iy = oy * p.sh - p.pad_top + ky * p.dh;
      if (iy < 0 || iy >= p.in_h) continue;
      for (int kx = 0; kx < p.kw; ++kx) {
        const int ix = ox * p.sw - p.pad_left + kx * p.dw;
        if (ix < 0 || ix >= p.in_w) continue;
        const float v = Load(plane, (static_cast<int64_t>(iy) * p.in_w + ix) * p.c);
        best = any ? fmaxf(best, v) : v;
        any = true;
        sum += v;
        ++inside;
      }
    }
    float value;
    if (p.is_max) {
      value = any ? best : -INFINITY;
    } else {
      // As the CPU kernel: count_include_pad counts the window clipped to the padded input.
      int count = inside;
      if (p.count_include_pad) {
        const int y0 = oy * p.sh - p.pad_top, x0 = ox * p.sw - p.pad_left;
        const int y1 = min(y0 + p.kh, p.in_h + p.pad_bottom), x1 = min(x0 + p.kw, p.in_w + p.pad_right);
        count = (y1 - y0) * (x1 - x0);
      }
      value = count ? sum / static_cast<float>(count) : 0.0f;
    }
    Store(y, i, value);
  }
}

// One thread per (image, channel); consecutive threads read consecutive channels.
template <typename T>
__global__ void GlobalAveragePoolKernel(const T* x, T* y, int n, int hw, int c) {
  const int64_t total = static_cast<int64_t>(n) * c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t image = i / c, ch = i % c;
    const T* src = x + image * hw * c + ch;
    double sum = 0;  // the CPU kernel sums in double too
    for (int k = 0; k < hw; ++k) sum += Load(src, static_cast<int64_t>(k) * c);
    Store(y, i, hw ? static_cast<float>(sum / hw) : 0.0f);
  }
}

template <typename T>
__global__ void ResizeKernel(const T* x, T* y, int n, int c, int in_h, int in_w, int out_h, int out_w,
                             const ResizeTapDevice* rows, const ResizeTapDevice* cols) {
  const int64_t total = static_cast<int64_t>(n) * out_h * out_w * c;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int ch = static_cast<int>(i % c);
    int64_t rest = i / c;
    const int ox = static_cast<int>(rest % out_w);
    rest /= out_w;
    const int oy = static_cast<int>(rest % out_h);
    const int64_t image = rest / out_h;
    const ResizeTapDevice r = rows[oy], col = cols[ox];
    const T* base = x + image * in_h * in_w * c + ch;
    auto at = [&](int iy, int ix) { return Load(base, (static_cast<int64_t>(iy) * in_w + ix) * c); };
    const float a = at(r.i0, col.i0), b = at(r.i0, col.i1), cc = at(r.i1, col.i0), d = at(r.i1, col.i1);
    const float top = a + (b - a) * col.w1;
    const float bottom = cc + (d - cc) * col.w1;
    Store(y, i, top + (bottom - top) * r.w1);
  }
}

template <typename T>
__global__ void SoftmaxKernel(const T* x, T* y, int64_t outer, int64_t length, int64_t inner) {
  const int64_t total = outer * inner;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t o = i / inner, in = i % inner;
    const int64_t base = o * length * inner + in;
    float peak = -INFINITY;
    for (int64_t k = 0; k < length; ++k) peak = fmaxf(peak, Load(x, base + k * inner));
    float sum = 0.0f;
    for (int64_t k = 0; k < length; ++k) sum += expf(Load(x, base + k * inner) - peak);
    for (int64_t k = 0; k < length; ++k) Store(y, base + k * inner, expf(Load(x, base + k * inner) - peak) / sum);
  }
}

constexpr int kThreads = 256;

}  // namespace

template <typename TOut, typename TIn>
cudaError_t LaunchStrided(ElementOp op, const StridedParams& params, TOut* out, const TIn* a, const TIn* b, const TIn* c,
                          cudaStream_t stream) {
  if (params.count == 0) return cudaSuccess;
  if (params.count <= static_cast<int64_t>(UINT32_MAX))
    StridedKernel<TOut, TIn, uint32_t><<<Blocks(params.count, kThreads), kThreads, 0, stream>>>(op, params, out, a, b, c);
  else
    StridedKernel<TOut, TIn, uint64_t><<<Blocks(params.count, kThreads), kThreads, 0, stream>>>(op, params, out, a, b, c);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchConvEpilogue(T* y, const T* bias, const T* residual, int64_t count, int channels, EpilogueActivation act,
                               float alpha, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  EpilogueKernel<T><<<Blocks(count, kThreads), kThreads, 0, stream>>>(y, bias, residual, count, channels, act, alpha);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchPool(const PoolParams& params, const T* x, T* y, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(params.n) * params.out_h * params.out_w * params.c;
  if (total == 0) return cudaSuccess;
  PoolKernel<T><<<Blocks(total, kThreads), kThreads, 0, stream>>>(params, x, y);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchGlobalAveragePool(const T* x, T* y, int n, int hw, int c, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n) * c;
  if (total == 0) return cudaSuccess;
  GlobalAveragePoolKernel<T><<<Blocks(total, kThreads), kThreads, 0, stream>>>(x, y, n, hw, c);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchResize(const T* x, T* y, int n, int c, int in_h, int in_w, int out_h, int out_w, const ResizeTapDevice* rows,
                         const ResizeTapDevice* cols, cudaStream_t stream) {
  const int64_t total = static_cast<int64_t>(n) * out_h * out_w * c;
  if (total == 0) return cudaSuccess;
  ResizeKernel<T><<<Blocks(total, kThreads), kThreads, 0, stream>>>(x, y, n, c, in_h, in_w, out_h, out_w, rows, cols);
  return cudaGetLastError();
}

template <typename T>
cudaError_t LaunchSoftmax(const T* x, T* y, int64_t outer, int64_t length, int64_t inner, cudaStream_t stream) {
  if (outer * inner == 0) return cudaSuccess;
  SoftmaxKernel<T><<<Blocks(outer * inner, kThreads), kThreads, 0, stream>>>(x, y, outer, length, inner);
  return cudaGetLastError();
}

#define VS_INSTANTIATE_STRIDED(TOut, TIn)                                                                          \
  template cudaError_t LaunchStrided<TOut, TIn>(ElementOp, const StridedParams&, TOut*, const TIn*, const TIn*, \
                                                const TIn*, cudaStream_t);
VS_INSTANTIATE_STRIDED(float, float)
VS_INSTANTIATE_STRIDED(__half, __half)
VS_INSTANTIATE_STRIDED(__half, float)
VS_INSTANTIATE_STRIDED(float, __half)

#define VS_INSTANTIATE_TYPED(T)                                                                                      \
  template cudaError_t LaunchConvEpilogue<T>(T*, const T*, const T*, int64_t, int, EpilogueActivation, float,        \
                                             cudaStream_t);                                                          \
  template cudaError_t LaunchPool<T>(const PoolParams&, const T*, T*, cudaStream_t);                                \
  template cudaError_t LaunchGlobalAveragePool<T>(const T*, T*, int, int, int, cudaStream_t);                       \
  template cudaError_t LaunchResize<T>(const T*, T*, int, int, int, int, int, int, const ResizeTapDevice*,          \
                                       const ResizeTapDevice*, cudaStream_t);                                       \
  template cudaError_t LaunchSoftmax<T>(const T*, T*, int64_t, int64_t, int64_t, cudaStream_t);
VS_INSTANTIATE_TYPED(float)
VS_INSTANTIATE_TYPED(__half)

}  // namespace vidscan::infer::cuda
