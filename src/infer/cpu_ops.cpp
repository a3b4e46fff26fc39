// Plain, obviously-correct float32 kernels (ONNX semantics, numpy broadcasting), with the two hot paths
// made fast enough for a ResNet-34 at 960x544: convolution as im2col + blocked GEMM (direct loops for
// depthwise), and fused conv epilogues.
#include "infer/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <new>
#include <numeric>
#include <stdexcept>

#include "infer/gemm.h"
#include "infer/infer.h"
#include "infer/thread_pool.h"

namespace vidscan::infer {
namespace {

using Shape = std::vector<int64_t>;

Status Bad(const Node& node, const std::string& what) {
  return MakeError(StatusCode::kInvalidArgument, node.Describe() + ": " + what);
}
Status Unsupported(const Node& node, const std::string& what) {
  return MakeError(StatusCode::kUnsupported, node.Describe() + ": " + what);
}

std::string ShapeString(const Shape& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? "," : "") + std::to_string(shape[k]);
  return s + "]";
}

int64_t Product(const Shape& shape, size_t begin = 0, size_t end = SIZE_MAX) {
  int64_t p = 1;
  for (size_t k = begin; k < std::min(end, shape.size()); ++k) p *= shape[k];
  return p;
}

// The running op's allocation cap (OpContext::max_elements), set by RunCpuOp for the kernels below.
thread_local int64_t g_max_elements = kMaxTensorElements;
// Shape-only mode (OpContext::shape_only) for an op whose float inputs are not all small and present:
// Prepare sets the output shape without allocating and the kernel returns before computing.
thread_local bool g_skip_compute = false;

// Element count of `shape` within the running op's cap.
Expected<int64_t> CappedCount(const Node& node, const Shape& shape) {
  auto count = CheckedElementCount(shape);
  if (!count.ok()) return count.status().WithContext(node.Describe());
  if (*count > g_max_elements)
    return MakeError(StatusCode::kOutOfMemory, node.Describe() + ": a tensor of " + ShapeString(shape) + " exceeds the cap of " + std::to_string(g_max_elements) + " elements");
  return count;
}

// Resizes `t` to `shape` (checked against the element cap) keeping its buffers' capacity.
Status Prepare(const Node& node, Tensor* t, DType dtype, Shape shape) {
  VS_ASSIGN_OR_RETURN(int64_t count, CappedCount(node, shape));
  t->dtype = dtype;
  t->shape = std::move(shape);
  if (g_skip_compute) {
    t->f.clear();
    t->i.clear();
    return Status::Ok();
  }
  if (dtype == DType::kFloat32) {
    t->f.resize(static_cast<size_t>(count));
    t->i.clear();
  } else {
    t->i.resize(static_cast<size_t>(count));
    t->f.clear();
  }
  return Status::Ok();
}

template <typename T> const T* Data(const Tensor& t);
template <> const float* Data<float>(const Tensor& t) { return t.f.data(); }
template <> const int64_t* Data<int64_t>(const Tensor& t) { return t.i.data(); }
template <typename T> T* MutableData(Tensor* t);
template <> float* MutableData<float>(Tensor* t) { return t->f.data(); }
template <> int64_t* MutableData<int64_t>(Tensor* t) { return t->i.data(); }

// Calls fn(T{}) with T the C++ type of `dtype`, for kernels that only move data.
template <typename Fn>
auto Dispatch(DType dtype, Fn&& fn) {
  return dtype == DType::kFloat32 ? fn(float{}) : fn(int64_t{});
}

std::vector<int64_t> AsInts(const Tensor& t) {
  if (t.dtype == DType::kInt64) return t.i;
  std::vector<int64_t> v(t.f.size());
  for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<int64_t>(t.f[k]);
  return v;
}

std::vector<float> AsFloats(const Tensor& t) {
  if (t.dtype == DType::kFloat32) return t.f;
  return std::vector<float>(t.i.begin(), t.i.end());
}

Expected<int> NormalizeAxis(const Node& node, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return Bad(node, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Shape Strides(const Shape& shape) {
  Shape strides(shape.size(), 1);
  for (int d = static_cast<int>(shape.size()) - 2; d >= 0; --d) strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

// out[multi-index i] = in[base + sum(i[d] * in_strides[d])]: Slice, Transpose and broadcasting share it.
template <typename T>
void StridedCopy(const T* in, int64_t base, const Shape& out_shape, const Shape& in_strides, T* out) {
  const int rank = static_cast<int>(out_shape.size());
  if (rank == 0) {
    out[0] = in[base];
    return;
  }
  const int64_t total = Product(out_shape);
  const int64_t inner = out_shape[rank - 1];
  if (total == 0) return;
  const int64_t step = in_strides[rank - 1];
  Shape index(rank, 0);
  int64_t offset = base;
  for (int64_t o = 0; o < total; o += inner) {
    const T* p = in + offset;
    if (step == 1) {
      std::copy(p, p + inner, out + o);
    } else {
      for (int64_t j = 0; j < inner; ++j) out[o + j] = p[j * step];
    }
    for (int d = rank - 2; d >= 0; --d) {
      offset += in_strides[d];
      if (++index[d] < out_shape[d]) break;
      offset -= index[d] * in_strides[d];
      index[d] = 0;
    }
  }
}

// ---- element-wise ------------------------------------------------------------------------------------

inline float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

inline float Activate(Activation activation, float alpha, float x) {
  switch (activation) {
    case Activation::kNone: return x;
    case Activation::kRelu: return x > 0 ? x : 0.0f;
    case Activation::kLeakyRelu: return x >= 0 ? x : alpha * x;
    case Activation::kSigmoid: return Sigmoid(x);
    case Activation::kSilu: return x * Sigmoid(x);
  }
  return x;
}

Status RunUnary(const Node& node, const Tensor& x, Tensor* y, Activation activation, float alpha, ThreadPool* pool) {
  if (x.dtype != DType::kFloat32) return Bad(node, "expects a float32 input");
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, x.shape));
  if (g_skip_compute) return Status::Ok();
  const int64_t n = x.size();
  constexpr int64_t kChunk = 1 << 16;
  auto chunk = [&](int64_t c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t k = c * kChunk; k < end; ++k) y->f[k] = Activate(activation, alpha, x.f[k]);
  };
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  if (pool) pool->ParallelFor(chunks, chunk); else for (int64_t c = 0; c < chunks; ++c) chunk(c);
  return Status::Ok();
}

Expected<Shape> BroadcastShape(const Node& node, const Shape& a, const Shape& b) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t da = k < rank - a.size() ? 1 : a[k - (rank - a.size())];
    const int64_t db = k < rank - b.size() ? 1 : b[k - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return Bad(node, "shapes " + ShapeString(a) + " and " + ShapeString(b) + " do not broadcast");
    out[k] = da == 1 ? db : da;
  }
  return out;
}

// Strides of `shape` read as broadcast to `out` (0 where a dim is stretched).
Shape BroadcastStrides(const Shape& shape, const Shape& out) {
  Shape strides(out.size(), 0);
  const Shape own = Strides(shape);
  const size_t lead = out.size() - shape.size();
  for (size_t k = 0; k < shape.size(); ++k) strides[lead + k] = shape[k] == 1 ? 0 : own[k];
  return strides;
}

template <typename T, typename Op>
void BinaryLoop(const T* a, const Shape& sa, const T* b, const Shape& sb, const Shape& out_shape, T* out, Op op) {
  const int64_t total = Product(out_shape);
  if (total == 0) return;
  if (sa == sb) {
    for (int64_t k = 0; k < total; ++k) out[k] = op(a[k], b[k]);
    return;
  }
  const int rank = static_cast<int>(out_shape.size());
  const Shape stride_a = BroadcastStrides(sa, out_shape), stride_b = BroadcastStrides(sb, out_shape);
  const int64_t inner = rank ? out_shape[rank - 1] : 1;
  const int64_t ia = rank ? stride_a[rank - 1] : 0, ib = rank ? stride_b[rank - 1] : 0;
  Shape index(rank, 0);
  int64_t oa = 0, ob = 0;
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t j = 0; j < inner; ++j) out[o + j] = op(a[oa + j * ia], b[ob + j * ib]);
    for (int d = rank - 2; d >= 0; --d) {
      oa += stride_a[d];
      ob += stride_b[d];
      if (++index[d] < out_shape[d]) break;
      oa -= index[d] * stride_a[d];
      ob -= index[d] * stride_b[d];
      index[d] = 0;
    }
  }
}

Status RunBinary(const Node& node, const Tensor& a, const Tensor& b, Tensor* out) {
  if (a.dtype != b.dtype) return Bad(node, "inputs have different element types");
  VS_ASSIGN_OR_RETURN(Shape shape, BroadcastShape(node, a.shape, b.shape));
  VS_RETURN_IF_ERROR(Prepare(node, out, a.dtype, shape));
  if (g_skip_compute) return Status::Ok();
  const std::string& op = node.op_type;
  return Dispatch(a.dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    const T* pa = Data<T>(a);
    const T* pb = Data<T>(b);
    T* po = MutableData<T>(out);
    // Integers wrap (computed unsigned) instead of overflowing, which C++ leaves undefined.
    using Wide = std::conditional_t<std::is_same_v<T, float>, float, uint64_t>;
    auto wrap = [](auto op) { return [op](T x, T y) { return static_cast<T>(op(static_cast<Wide>(x), static_cast<Wide>(y))); }; };
    if (op == "Add") BinaryLoop(pa, a.shape, pb, b.shape, shape, po, wrap(std::plus<Wide>()));
    else if (op == "Sub") BinaryLoop(pa, a.shape, pb, b.shape, shape, po, wrap(std::minus<Wide>()));
    else if (op == "Mul") BinaryLoop(pa, a.shape, pb, b.shape, shape, po, wrap(std::multiplies<Wide>()));
    else if constexpr (std::is_same_v<T, float>) BinaryLoop(pa, a.shape, pb, b.shape, shape, po, std::divides<T>());
    else {
      // Integer division by zero is undefined in C++; ONNX leaves it undefined too, so refuse it.
      for (int64_t k = 0; k < b.size(); ++k) if (pb[k] == 0) return Bad(node, "integer division by zero");
      // x / -1 as a wrapping negation: INT64_MIN / -1 overflows otherwise.
      BinaryLoop(pa, a.shape, pb, b.shape, shape, po,
                 [](T x, T y) { return y == -1 ? static_cast<T>(Wide{0} - static_cast<Wide>(x)) : static_cast<T>(x / y); });
    }
    return Status::Ok();
  });
}

// ---- convolution and pooling -------------------------------------------------------------------------

}  // namespace

Expected<Window> ComputeWindow(const Node& node, int64_t in_h, int64_t in_w, std::vector<int64_t> kernel, bool allow_ceil) {
  Window w;
  if (kernel.size() != 2) return Unsupported(node, "only 2-D windows are supported, kernel_shape is " + ShapeString(kernel));
  w.kh = kernel[0];
  w.kw = kernel[1];
  Shape strides = node.Ints("strides"), dilations = node.Ints("dilations"), pads = node.Ints("pads");
  if (!strides.empty()) { if (strides.size() != 2) return Bad(node, "strides must have 2 values"); w.sh = strides[0]; w.sw = strides[1]; }
  if (!dilations.empty()) { if (dilations.size() != 2) return Bad(node, "dilations must have 2 values"); w.dh = dilations[0]; w.dw = dilations[1]; }
  if (w.kh < 1 || w.kw < 1 || w.sh < 1 || w.sw < 1 || w.dh < 1 || w.dw < 1) return Bad(node, "kernel, strides and dilations must be positive");
  // Far beyond any real network; keeps the window arithmetic below from overflowing.
  constexpr int64_t kMaxWindowValue = int64_t{1} << 24;
  for (int64_t v : {w.kh, w.kw, w.sh, w.sw, w.dh, w.dw})
    if (v > kMaxWindowValue) return Bad(node, "kernel, stride or dilation " + std::to_string(v) + " is implausibly large");
  for (int64_t v : pads)
    if (v > kMaxWindowValue) return Bad(node, "pad " + std::to_string(v) + " is implausibly large");
  const int64_t eff_h = (w.kh - 1) * w.dh + 1, eff_w = (w.kw - 1) * w.dw + 1;
  const std::string auto_pad = node.String("auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    w.out_h = (in_h + w.sh - 1) / w.sh;
    w.out_w = (in_w + w.sw - 1) / w.sw;
    const int64_t total_h = std::max<int64_t>(0, (w.out_h - 1) * w.sh + eff_h - in_h);
    const int64_t total_w = std::max<int64_t>(0, (w.out_w - 1) * w.sw + eff_w - in_w);
    const bool upper = auto_pad == "SAME_UPPER";
    w.pad_top = upper ? total_h / 2 : total_h - total_h / 2;
    w.pad_bottom = total_h - w.pad_top;
    w.pad_left = upper ? total_w / 2 : total_w - total_w / 2;
    w.pad_right = total_w - w.pad_left;
    return w;
  }
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return Unsupported(node, "auto_pad " + auto_pad);
  if (auto_pad == "NOTSET" && !pads.empty()) {
    if (pads.size() != 4) return Bad(node, "pads must have 4 values");
    w.pad_top = pads[0];
    w.pad_left = pads[1];
    w.pad_bottom = pads[2];
    w.pad_right = pads[3];
    if (*std::min_element(pads.begin(), pads.end()) < 0) return Bad(node, "negative pads");
  }
  const int64_t span_h = in_h + w.pad_top + w.pad_bottom - eff_h;
  const int64_t span_w = in_w + w.pad_left + w.pad_right - eff_w;
  if (span_h < 0 || span_w < 0) return Bad(node, "the window is larger than the padded input");
  const bool ceil_mode = allow_ceil && node.Int("ceil_mode", 0) != 0;
  w.out_h = (ceil_mode ? (span_h + w.sh - 1) / w.sh : span_h / w.sh) + 1;
  w.out_w = (ceil_mode ? (span_w + w.sw - 1) / w.sw : span_w / w.sw) + 1;
  // With ceil_mode a last window that would start in the end padding is dropped (as PyTorch and ORT do).
  if (ceil_mode && (w.out_h - 1) * w.sh >= in_h + w.pad_top) --w.out_h;
  if (ceil_mode && (w.out_w - 1) * w.sw >= in_w + w.pad_left) --w.out_w;
  return w;
}

namespace {

// Integer division rounding up / down, for numerators of either sign and a positive divisor.
inline int64_t CeilDiv(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
inline int64_t FloorDiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Calls tap(input offset, kernel offset) for every in-bounds tap of output pixel (oy, ox); padding taps
// are skipped, which is zero padding for a convolution and "ignore" for the pools.
template <typename Tap>
inline void ForEachTap(const Window& w, int64_t in_h, int64_t in_w, int64_t oy, int64_t ox, Tap&& tap) {
  for (int64_t ky = 0; ky < w.kh; ++ky) {
    const int64_t iy = oy * w.sh - w.pad_top + ky * w.dh;
    if (iy < 0 || iy >= in_h) continue;
    for (int64_t kx = 0; kx < w.kw; ++kx) {
      const int64_t ix = ox * w.sw - w.pad_left + kx * w.dw;
      if (ix >= 0 && ix < in_w) tap(iy * in_w + ix, ky * w.kw + kx);
    }
  }
}

// Rows (c, ky, kx) by columns (oy, ox) of one image's receptive fields.
void Im2Col(const float* x, int64_t channels, int64_t in_h, int64_t in_w, const Window& w, float* col, ThreadPool* pool) {
  const int64_t rows = channels * w.kh * w.kw;
  const int64_t cols = w.out_h * w.out_w;
  auto row_fn = [&](int64_t r) {
    const int64_t c = r / (w.kh * w.kw), ky = (r / w.kw) % w.kh, kx = r % w.kw;
    const float* plane = x + c * in_h * in_w;
    float* dst = col + r * cols;
    for (int64_t oy = 0; oy < w.out_h; ++oy) {
      const int64_t iy = oy * w.sh - w.pad_top + ky * w.dh;
      float* out_row = dst + oy * w.out_w;
      if (iy < 0 || iy >= in_h) {
        std::fill(out_row, out_row + w.out_w, 0.0f);
        continue;
      }
      const float* in_row = plane + iy * in_w;
      const int64_t x0 = kx * w.dw - w.pad_left;
      for (int64_t ox = 0; ox < w.out_w; ++ox) {
        const int64_t ix = ox * w.sw + x0;
        out_row[ox] = (ix >= 0 && ix < in_w) ? in_row[ix] : 0.0f;
      }
    }
  };
  if (pool) pool->ParallelFor(rows, row_fn); else for (int64_t r = 0; r < rows; ++r) row_fn(r);
}

Status RunConv(const Node& node, const OpContext& ctx, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor* x = in[0];
  const Tensor* weight = in.size() > 1 ? in[1] : nullptr;
  const Tensor* bias = in.size() > 2 ? in[2] : nullptr;
  const Tensor* residual = node.fused_residual && in.size() > 3 ? in[3] : nullptr;
  if (!weight) return Bad(node, "has no weight input");
  if (x->dtype != DType::kFloat32 || weight->dtype != DType::kFloat32) return Bad(node, "expects float32 tensors");
  if (x->rank() != 4 || weight->rank() != 4) return Unsupported(node, "only 2-D convolution (rank-4 NCHW) is supported, input is " + ShapeString(x->shape));
  const int64_t batch = x->shape[0], channels = x->shape[1], in_h = x->shape[2], in_w = x->shape[3];
  const int64_t out_channels = weight->shape[0];
  const int64_t group = node.Int("group", 1);
  if (group < 1 || channels % group || out_channels % group || weight->shape[1] != channels / group)
    return Bad(node, "input " + ShapeString(x->shape) + ", weight " + ShapeString(weight->shape) + " and group " + std::to_string(group) + " do not agree");
  if (bias && bias->size() != out_channels) return Bad(node, "bias has " + std::to_string(bias->size()) + " values for " + std::to_string(out_channels) + " output channels");
  Shape kernel = node.Ints("kernel_shape");
  if (kernel.empty()) kernel = {weight->shape[2], weight->shape[3]};
  if (kernel != Shape{weight->shape[2], weight->shape[3]}) return Bad(node, "kernel_shape disagrees with the weight");
  VS_ASSIGN_OR_RETURN(Window w, ComputeWindow(node, in_h, in_w, kernel, false));
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, {batch, out_channels, w.out_h, w.out_w}));
  if (g_skip_compute) return Status::Ok();

  const int64_t in_group = channels / group, out_group = out_channels / group;
  const int64_t plane_in = in_h * in_w, plane_out = w.out_h * w.out_w;
  const int64_t k_size = in_group * w.kh * w.kw;
  const float* xd = x->f.data();
  const float* wd = weight->f.data();
  float* yd = y->f.data();
  if (in_group == 1 && out_group == 1) {
    // Depthwise: a GEMM with one row per group wastes the tile. Direct loops per (image, channel), one
    // tap at a time over the run of output columns whose input column is inside the image (a loop the
    // compiler vectorises); each output still sums its taps in (ky, kx) order.
    auto plane_fn = [&](int64_t nc) {
      const int64_t c = nc % channels;
      const float* src = xd + nc * plane_in;
      const float* kern = wd + c * w.kh * w.kw;
      float* dst = yd + nc * plane_out;
      std::fill(dst, dst + plane_out, 0.0f);
      for (int64_t oy = 0; oy < w.out_h; ++oy) {
        float* out_row = dst + oy * w.out_w;
        for (int64_t ky = 0; ky < w.kh; ++ky) {
          const int64_t iy = oy * w.sh - w.pad_top + ky * w.dh;
          if (iy < 0 || iy >= in_h) continue;
          const float* in_row = src + iy * in_w;
          for (int64_t kx = 0; kx < w.kw; ++kx) {
            const int64_t offset = kx * w.dw - w.pad_left;  // input column = ox * sw + offset
            const int64_t begin = std::max<int64_t>(0, CeilDiv(-offset, w.sw));
            const int64_t end = std::min<int64_t>(w.out_w, FloorDiv(in_w - 1 - offset, w.sw) + 1);
            const float weight = kern[ky * w.kw + kx];
            if (w.sw == 1) {
              const float* in = in_row + offset;
              for (int64_t ox = begin; ox < end; ++ox) out_row[ox] += in[ox] * weight;
            } else {
              for (int64_t ox = begin; ox < end; ++ox) out_row[ox] += in_row[ox * w.sw + offset] * weight;
            }
          }
        }
      }
    };
    if (ctx.pool) ctx.pool->ParallelFor(batch * channels, plane_fn); else for (int64_t k = 0; k < batch * channels; ++k) plane_fn(k);
  } else {
    const bool pointwise = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.pad_top == 0 && w.pad_left == 0 &&
                           w.pad_bottom == 0 && w.pad_right == 0;
    thread_local std::vector<float> columns;  // reused across calls: sized by the largest conv
    if (!pointwise) {
      VS_ASSIGN_OR_RETURN(int64_t column_count, CappedCount(node, {k_size, plane_out}));
      columns.resize(static_cast<size_t>(column_count));
    }
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t g = 0; g < group; ++g) {
        const float* image = xd + (n * channels + g * in_group) * plane_in;
        const float* b_matrix = image;
        if (!pointwise) {
          Im2Col(image, in_group, in_h, in_w, w, columns.data(), ctx.pool);
          b_matrix = columns.data();
        }
        Gemm(out_group, plane_out, k_size, wd + g * out_group * k_size, k_size, b_matrix, plane_out,
             yd + (n * out_channels + g * out_group) * plane_out, plane_out, ctx.pool);
      }
  }

  // Epilogue: bias, residual, activation, one pass per output plane.
  const bool residual_inline = residual && residual->shape == y->shape && residual->dtype == DType::kFloat32;
  const Activation act = residual && !residual_inline ? Activation::kNone : node.fused_activation;
  const float alpha = node.fused_alpha;
  auto epilogue = [&](int64_t nm) {
    const int64_t m = nm % out_channels;
    const float b = bias ? bias->f[m] : 0.0f;
    float* dst = yd + nm * plane_out;
    const float* res = residual_inline ? residual->f.data() + nm * plane_out : nullptr;
    for (int64_t k = 0; k < plane_out; ++k) dst[k] = Activate(act, alpha, dst[k] + b + (res ? res[k] : 0.0f));
  };
  if (bias || residual_inline || act != Activation::kNone) {
    if (ctx.pool) ctx.pool->ParallelFor(batch * out_channels, epilogue); else for (int64_t k = 0; k < batch * out_channels; ++k) epilogue(k);
  }
  if (residual && !residual_inline) {
    // A residual that broadcasts: the general Add, then the activation.
    if (residual->dtype != DType::kFloat32) return Bad(node, "residual input is not float32");
    Tensor sum;
    Node add = node;
    add.op_type = "Add";
    VS_RETURN_IF_ERROR(RunBinary(add, *y, *residual, &sum));
    if (sum.shape != y->shape) return Bad(node, "residual " + ShapeString(residual->shape) + " changes the output shape " + ShapeString(y->shape));
    for (size_t k = 0; k < sum.f.size(); ++k) y->f[k] = Activate(node.fused_activation, alpha, sum.f[k]);
  }
  return Status::Ok();
}

Status RunPool(const Node& node, const OpContext& ctx, const Tensor& x, Tensor* y) {
  if (x.dtype != DType::kFloat32) return Bad(node, "expects a float32 input");
  if (x.rank() != 4) return Unsupported(node, "only 2-D pooling (rank-4 NCHW) is supported, input is " + ShapeString(x.shape));
  const bool is_max = node.op_type == "MaxPool";
  const int64_t in_h = x.shape[2], in_w = x.shape[3];
  VS_ASSIGN_OR_RETURN(Window w, ComputeWindow(node, in_h, in_w, node.Ints("kernel_shape"), true));
  if (!is_max && (w.dh != 1 || w.dw != 1)) return Unsupported(node, "AveragePool with dilations");
  if (node.Int("storage_order", 0) != 0) return Unsupported(node, "storage_order 1");
  const bool count_pad = node.Int("count_include_pad", 0) != 0;
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, {x.shape[0], x.shape[1], w.out_h, w.out_w}));
  if (g_skip_compute) return Status::Ok();
  auto plane_fn = [&](int64_t nc) {
    const float* src = x.f.data() + nc * in_h * in_w;
    float* dst = y->f.data() + nc * w.out_h * w.out_w;
    for (int64_t oy = 0; oy < w.out_h; ++oy)
      for (int64_t ox = 0; ox < w.out_w; ++ox) {
        float best = -std::numeric_limits<float>::infinity(), sum = 0;
        int64_t inside = 0;
        ForEachTap(w, in_h, in_w, oy, ox, [&](int64_t at, int64_t) {
          best = std::max(best, src[at]);
          sum += src[at];
          ++inside;
        });
        float value = best;
        if (!is_max) {
          // count_include_pad counts the window clipped to the padded input (not to the ceil-mode overhang).
          int64_t count = inside;
          if (count_pad) {
            const int64_t y0 = oy * w.sh - w.pad_top, x0 = ox * w.sw - w.pad_left;
            const int64_t y1 = std::min(y0 + w.kh, in_h + w.pad_bottom), x1 = std::min(x0 + w.kw, in_w + w.pad_right);
            count = (y1 - y0) * (x1 - x0);
          }
          value = count ? sum / static_cast<float>(count) : 0.0f;
        }
        dst[oy * w.out_w + ox] = value;
      }
  };
  const int64_t planes = x.shape[0] * x.shape[1];
  if (ctx.pool) ctx.pool->ParallelFor(planes, plane_fn); else for (int64_t k = 0; k < planes; ++k) plane_fn(k);
  return Status::Ok();
}

Status RunGlobalAveragePool(const Node& node, const Tensor& x, Tensor* y) {
  if (x.dtype != DType::kFloat32 || x.rank() < 3) return Bad(node, "expects a float32 tensor of rank >= 3");
  Shape shape = x.shape;
  std::fill(shape.begin() + 2, shape.end(), 1);
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, shape));
  if (g_skip_compute) return Status::Ok();
  const int64_t planes = x.shape[0] * x.shape[1], plane = Product(x.shape, 2);
  for (int64_t p = 0; p < planes; ++p) {
    double sum = 0;
    for (int64_t k = 0; k < plane; ++k) sum += x.f[p * plane + k];
    y->f[p] = plane ? static_cast<float>(sum / static_cast<double>(plane)) : 0.0f;
  }
  return Status::Ok();
}

Status RunBatchNorm(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  for (size_t k = 0; k < 5; ++k)
    if (k >= in.size() || !in[k] || in[k]->dtype != DType::kFloat32) return Bad(node, "needs 5 float32 inputs");
  const Tensor& x = *in[0];
  if (x.rank() < 2) return Bad(node, "input rank must be >= 2");
  const int64_t channels = x.shape[1];
  for (size_t k = 1; k < 5; ++k)
    if (in[k]->size() != channels) return Bad(node, "parameter " + std::to_string(k) + " does not have one value per channel");
  const float epsilon = node.Float("epsilon", 1e-5f);
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, x.shape));
  if (g_skip_compute) return Status::Ok();
  const int64_t plane = Product(x.shape, 2);
  for (int64_t n = 0; n < x.shape[0]; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const float scale = in[1]->f[c] / std::sqrt(in[4]->f[c] + epsilon);
      const float shift = in[2]->f[c] - in[3]->f[c] * scale;
      const int64_t base = (n * channels + c) * plane;
      for (int64_t k = 0; k < plane; ++k) y->f[base + k] = x.f[base + k] * scale + shift;
    }
  return Status::Ok();
}

// ---- resize ------------------------------------------------------------------------------------------

// Source coordinate of output coordinate `o` under an ONNX coordinate_transformation_mode.
Expected<float> SourceCoordinate(const Node& node, const std::string& mode, int64_t o, float scale, int64_t in, int64_t out) {
  const float x = static_cast<float>(o);
  if (mode == "half_pixel") return (x + 0.5f) / scale - 0.5f;
  if (mode == "pytorch_half_pixel") return out > 1 ? (x + 0.5f) / scale - 0.5f : 0.0f;
  if (mode == "align_corners") return out == 1 ? 0.0f : x * static_cast<float>(in - 1) / static_cast<float>(out - 1);
  if (mode == "asymmetric") return x / scale;
  return Unsupported(node, "coordinate_transformation_mode " + mode);
}

Expected<int64_t> NearestIndex(const Node& node, const std::string& mode, float x, int64_t in) {
  int64_t index = 0;
  if (mode == "round_prefer_floor") index = (x == std::floor(x) + 0.5f) ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
  else if (mode == "round_prefer_ceil") index = static_cast<int64_t>(std::round(x));
  else if (mode == "floor") index = static_cast<int64_t>(std::floor(x));
  else if (mode == "ceil") index = static_cast<int64_t>(std::ceil(x));
  else return Unsupported(node, "nearest_mode " + mode);
  return std::clamp<int64_t>(index, 0, in - 1);
}

}  // namespace

Expected<ResizePlan> ComputeResize(const Node& node, std::span<const Tensor* const> in, const std::vector<int64_t>& x_shape) {
  if (x_shape.size() != 4) return Unsupported(node, "only rank-4 float32 Resize is supported");
  const Tensor* scales_t = in.size() > 2 ? in[2] : nullptr;
  const Tensor* sizes_t = in.size() > 3 ? in[3] : nullptr;
  std::vector<float> scales(4, 1.0f);
  Shape out_shape = x_shape;
  if (sizes_t && sizes_t->size() > 0) {
    Shape sizes = AsInts(*sizes_t);
    if (sizes.size() != 4) return Bad(node, "sizes must have 4 values");
    for (int d = 0; d < 4; ++d) {
      if (sizes[d] < 0) return Bad(node, "negative output size");
      out_shape[d] = sizes[d];
      scales[d] = x_shape[d] ? static_cast<float>(sizes[d]) / static_cast<float>(x_shape[d]) : 1.0f;
    }
  } else if (scales_t && scales_t->size() > 0) {
    scales = AsFloats(*scales_t);
    if (scales.size() != 4) return Bad(node, "scales must have 4 values");
    for (int d = 0; d < 4; ++d) {
      if (!(scales[d] > 0) || scales[d] > 1e6f) return Bad(node, "scale " + std::to_string(scales[d]) + " is not positive and sane");
      out_shape[d] = static_cast<int64_t>(std::floor(static_cast<double>(x_shape[d]) * scales[d]));
    }
  } else {
    return Bad(node, "needs scales or sizes");
  }
  if (out_shape[0] != x_shape[0] || out_shape[1] != x_shape[1]) return Unsupported(node, "resizing the batch or channel axis");
  const std::string mode = node.String("mode", "nearest");
  const std::string coordinates = node.String("coordinate_transformation_mode", "half_pixel");
  const std::string nearest_mode = node.String("nearest_mode", "round_prefer_floor");
  if (mode != "nearest" && mode != "linear") return Unsupported(node, "mode " + mode);
  ResizePlan plan;
  plan.out_shape = out_shape;
  const int64_t in_h = x_shape[2], in_w = x_shape[3], out_h = out_shape[2], out_w = out_shape[3];
  if (Product(out_shape) == 0) return plan;
  if (in_h == 0 || in_w == 0) return Bad(node, "empty input");
  // Per output row/column: source indices and linear weights, computed once.
  auto taps = [&](int64_t out, int64_t inn, float scale, std::vector<ResizeTap>* result) -> Status {
    result->resize(out);
    for (int64_t o = 0; o < out; ++o) {
      VS_ASSIGN_OR_RETURN(float src, SourceCoordinate(node, coordinates, o, scale, inn, out));
      if (mode == "nearest") {
        VS_ASSIGN_OR_RETURN(int64_t idx, NearestIndex(node, nearest_mode, src, inn));
        (*result)[o] = {idx, idx, 0.0f};
      } else {
        src = std::clamp(src, 0.0f, static_cast<float>(inn - 1));
        const int64_t i0 = static_cast<int64_t>(std::floor(src));
        const int64_t i1 = std::min(i0 + 1, inn - 1);
        (*result)[o] = {i0, i1, src - static_cast<float>(i0)};
      }
    }
    return Status::Ok();
  };
  VS_RETURN_IF_ERROR(taps(out_h, in_h, scales[2], &plan.rows));
  VS_RETURN_IF_ERROR(taps(out_w, in_w, scales[3], &plan.cols));
  return plan;
}

namespace {

Status RunResize(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor& x = *in[0];
  if (x.dtype != DType::kFloat32 || x.rank() != 4) return Unsupported(node, "only rank-4 float32 Resize is supported");
  VS_ASSIGN_OR_RETURN(ResizePlan plan, ComputeResize(node, in, x.shape));
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, plan.out_shape));
  if (g_skip_compute || y->size() == 0) return Status::Ok();
  const int64_t in_h = x.shape[2], in_w = x.shape[3], out_h = plan.out_shape[2], out_w = plan.out_shape[3];
  const int64_t planes = x.shape[0] * x.shape[1];
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.f.data() + p * in_h * in_w;
    float* dst = y->f.data() + p * out_h * out_w;
    for (int64_t oy = 0; oy < out_h; ++oy) {
      const ResizeTap& r = plan.rows[oy];
      const float* row0 = src + r.i0 * in_w;
      const float* row1 = src + r.i1 * in_w;
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const ResizeTap& c = plan.cols[ox];
        const float top = row0[c.i0] + (row0[c.i1] - row0[c.i0]) * c.w1;
        const float bottom = row1[c.i0] + (row1[c.i1] - row1[c.i0]) * c.w1;
        dst[oy * out_w + ox] = top + (bottom - top) * r.w1;
      }
    }
  }
  return Status::Ok();
}

// ---- data movement -----------------------------------------------------------------------------------

Status RunConcat(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  if (in.empty() || !in[0]) return Bad(node, "has no inputs");
  const Tensor& first = *in[0];
  VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, node.Int("axis", 0), first.rank()));
  Shape shape = first.shape;
  shape[axis] = 0;
  for (const Tensor* t : in) {
    if (!t || t->rank() != first.rank() || t->dtype != first.dtype) return Bad(node, "inputs differ in rank or type");
    for (int d = 0; d < first.rank(); ++d)
      if (d != axis && t->shape[d] != first.shape[d]) return Bad(node, "input shapes " + ShapeString(first.shape) + " and " + ShapeString(t->shape) + " differ off the axis");
    shape[axis] += t->shape[axis];
  }
  VS_RETURN_IF_ERROR(Prepare(node, y, first.dtype, shape));
  if (g_skip_compute) return Status::Ok();
  const int64_t outer = Product(shape, 0, axis), inner = Product(shape, axis + 1);
  return Dispatch(first.dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    T* dst = MutableData<T>(y);
    const int64_t out_row = shape[axis] * inner;
    int64_t offset = 0;
    for (const Tensor* t : in) {
      const int64_t row = t->shape[axis] * inner;
      const T* src = Data<T>(*t);
      for (int64_t o = 0; o < outer; ++o) std::copy(src + o * row, src + (o + 1) * row, dst + o * out_row + offset);
      offset += row;
    }
    return Status::Ok();
  });
}

// Copies the sub-box [starts, starts + out.shape) with `steps` of `x` into `out` (already prepared).
void CopyBox(const Tensor& x, const Shape& starts, const Shape& steps, Tensor* out) {
  const Shape strides = Strides(x.shape);
  int64_t base = 0;
  Shape in_strides(x.rank());
  for (int d = 0; d < x.rank(); ++d) {
    base += starts[d] * strides[d];
    in_strides[d] = steps[d] * strides[d];
  }
  Dispatch(x.dtype, [&](auto zero) {
    using T = decltype(zero);
    StridedCopy(Data<T>(x), base, out->shape, in_strides, MutableData<T>(out));
    return 0;
  });
}

Status RunSplit(const Node& node, const OpContext& ctx, std::span<const Tensor* const> in, std::span<Tensor* const> out) {
  const Tensor& x = *in[0];
  VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, node.Int("axis", 0), x.rank()));
  Shape sizes = ctx.opset >= 13 ? (in.size() > 1 && in[1] ? AsInts(*in[1]) : Shape{}) : node.Ints("split");
  const int64_t parts = static_cast<int64_t>(out.size());
  if (sizes.empty()) {
    if (x.shape[axis] % parts) return Bad(node, "axis of size " + std::to_string(x.shape[axis]) + " does not split evenly into " + std::to_string(parts));
    sizes.assign(parts, x.shape[axis] / parts);
  }
  if (static_cast<int64_t>(sizes.size()) != parts) return Bad(node, "split sizes do not match the number of outputs");
  int64_t start = 0;
  for (int64_t p = 0; p < parts; ++p) {
    if (sizes[p] < 0 || sizes[p] > x.shape[axis] - start) return Bad(node, "split sizes are negative or exceed the axis");
    Shape shape = x.shape, starts(x.rank(), 0), steps(x.rank(), 1);
    shape[axis] = sizes[p];
    starts[axis] = start;
    start += sizes[p];
    if (!out[p]) continue;
    VS_RETURN_IF_ERROR(Prepare(node, out[p], x.dtype, shape));
    if (g_skip_compute) continue;
    CopyBox(x, starts, steps, out[p]);
  }
  if (start != x.shape[axis]) return Bad(node, "split sizes do not sum to the axis");
  return Status::Ok();
}

}  // namespace

Expected<SliceBox> ComputeSlice(const Node& node, std::span<const Tensor* const> in, const std::vector<int64_t>& x_shape) {
  const int x_rank = static_cast<int>(x_shape.size());
  if (in.size() < 3 || !in[1] || !in[2]) return Bad(node, "needs starts and ends inputs (opset >= 10)");
  const Shape starts = AsInts(*in[1]), ends = AsInts(*in[2]);
  Shape axes = in.size() > 3 && in[3] ? AsInts(*in[3]) : Shape{};
  Shape steps = in.size() > 4 && in[4] ? AsInts(*in[4]) : Shape{};
  if (axes.empty()) { axes.resize(starts.size()); std::iota(axes.begin(), axes.end(), 0); }
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) return Bad(node, "starts, ends, axes and steps differ in length");
  Shape out_shape = x_shape, first(x_rank, 0), step(x_rank, 1);
  for (size_t k = 0; k < starts.size(); ++k) {
    VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, axes[k], x_rank));
    const int64_t dim = x_shape[axis];
    if (steps[k] == 0) return Bad(node, "step 0");
    // Any |step| beyond the dim takes one element; clamping keeps -step and the counts below from overflowing.
    steps[k] = std::clamp<int64_t>(steps[k], -dim - 1, dim + 1);
    if (steps[k] == 0) steps[k] = 1;
    auto clamp_index = [&](int64_t v, int64_t lo, int64_t hi) {
      if (v < 0) v = v < -dim ? lo : v + dim;  // keep int64 extremes from overflowing
      return std::clamp(v, lo, hi);
    };
    int64_t s, e;
    if (steps[k] > 0) {
      s = clamp_index(starts[k], 0, dim);
      e = clamp_index(ends[k], 0, dim);
    } else {
      s = clamp_index(starts[k], -1, dim - 1);
      e = ends[k] < -dim ? -1 : clamp_index(ends[k], -1, dim - 1);
    }
    const int64_t count = steps[k] > 0 ? (e > s ? (e - s + steps[k] - 1) / steps[k] : 0)
                                       : (s > e ? (s - e + (-steps[k]) - 1) / (-steps[k]) : 0);
    out_shape[axis] = count;
    first[axis] = count ? s : 0;
    step[axis] = steps[k];
  }
  return SliceBox{out_shape, first, step};
}

namespace {

Status RunSlice(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor& x = *in[0];
  VS_ASSIGN_OR_RETURN(SliceBox box, ComputeSlice(node, in, x.shape));
  VS_RETURN_IF_ERROR(Prepare(node, y, x.dtype, box.out_shape));
  if (g_skip_compute) return Status::Ok();
  if (y->size()) CopyBox(x, box.first, box.step, y);
  return Status::Ok();
}

Status RunTranspose(const Node& node, const Tensor& x, Tensor* y) {
  Shape perm = node.Ints("perm");
  if (perm.empty()) { perm.resize(x.rank()); for (int d = 0; d < x.rank(); ++d) perm[d] = x.rank() - 1 - d; }
  if (static_cast<int>(perm.size()) != x.rank()) return Bad(node, "perm length differs from the rank");
  Shape sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (int d = 0; d < x.rank(); ++d) if (sorted[d] != d) return Bad(node, "perm is not a permutation");
  const Shape strides = Strides(x.shape);
  Shape out_shape(x.rank()), in_strides(x.rank());
  for (int d = 0; d < x.rank(); ++d) {
    out_shape[d] = x.shape[perm[d]];
    in_strides[d] = strides[perm[d]];
  }
  VS_RETURN_IF_ERROR(Prepare(node, y, x.dtype, out_shape));
  if (g_skip_compute) return Status::Ok();
  Dispatch(x.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (y->size()) StridedCopy(Data<T>(x), 0, out_shape, in_strides, MutableData<T>(y));
    return 0;
  });
  return Status::Ok();
}

Status Relabel(const Node& node, const Tensor& x, Shape shape, Tensor* y) {
  auto count = CheckedElementCount(shape);
  if (!count.ok()) return count.status().WithContext(node.Describe());
  if (*count != Product(x.shape)) return Bad(node, "cannot view " + ShapeString(x.shape) + " as " + ShapeString(shape));
  VS_RETURN_IF_ERROR(Prepare(node, y, x.dtype, std::move(shape)));
  if (g_skip_compute) return Status::Ok();
  if (x.dtype == DType::kFloat32) std::copy(x.f.begin(), x.f.end(), y->f.begin());
  else std::copy(x.i.begin(), x.i.end(), y->i.begin());
  return Status::Ok();
}

Status RunReshape(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor& x = *in[0];
  if (in.size() < 2 || !in[1]) return Bad(node, "needs a shape input");
  Shape shape = AsInts(*in[1]);
  const bool allow_zero = node.Int("allowzero", 0) != 0;
  int infer = -1;
  int64_t known = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0 && !allow_zero) {
      if (d >= x.shape.size()) return Bad(node, "0 in the shape copies a dim the input lacks");
      shape[d] = x.shape[d];
    }
    if (shape[d] == -1) {
      if (infer >= 0) return Bad(node, "more than one -1 in the shape");
      infer = static_cast<int>(d);
    } else if (shape[d] < 0) {
      return Bad(node, "negative dim in the shape");
    } else {
      if (shape[d] > 0 && known > kMaxTensorElements / shape[d]) return Bad(node, "shape " + ShapeString(shape) + " is too large");
      known *= shape[d];
    }
  }
  if (infer >= 0) {
    if (known == 0 || Product(x.shape) % known) return Bad(node, "cannot infer the -1 dim of " + ShapeString(shape) + " from " + ShapeString(x.shape));
    shape[infer] = Product(x.shape) / known;
  }
  return Relabel(node, x, std::move(shape), y);
}

Status RunSqueezeUnsqueeze(const Node& node, const OpContext& ctx, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor& x = *in[0];
  Shape axes = ctx.opset >= 13 ? (in.size() > 1 && in[1] ? AsInts(*in[1]) : Shape{}) : node.Ints("axes");
  if (node.op_type == "Squeeze") {
    Shape shape;
    std::vector<bool> drop(x.rank(), axes.empty());
    if (axes.empty()) for (int d = 0; d < x.rank(); ++d) drop[d] = x.shape[d] == 1;
    for (int64_t a : axes) {
      VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, a, x.rank()));
      if (x.shape[axis] != 1) return Bad(node, "cannot squeeze axis " + std::to_string(axis) + " of " + ShapeString(x.shape));
      drop[axis] = true;
    }
    for (int d = 0; d < x.rank(); ++d) if (!drop[d]) shape.push_back(x.shape[d]);
    return Relabel(node, x, shape, y);
  }
  const int out_rank = x.rank() + static_cast<int>(axes.size());
  std::vector<bool> inserted(out_rank, false);
  for (int64_t a : axes) {
    VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, a, out_rank));
    if (inserted[axis]) return Bad(node, "repeated axis");
    inserted[axis] = true;
  }
  Shape shape;
  size_t next = 0;
  for (int d = 0; d < out_rank; ++d) shape.push_back(inserted[d] ? 1 : x.shape[next++]);
  return Relabel(node, x, shape, y);
}

Status RunFlatten(const Node& node, const Tensor& x, Tensor* y) {
  int64_t axis = node.Int("axis", 1);
  if (axis < -x.rank() || axis > x.rank()) return Bad(node, "axis out of range");
  if (axis < 0) axis += x.rank();
  return Relabel(node, x, {Product(x.shape, 0, axis), Product(x.shape, axis)}, y);
}

Status RunSoftmax(const Node& node, const OpContext& ctx, const Tensor& x, Tensor* y) {
  if (x.dtype != DType::kFloat32 || x.rank() == 0) return Bad(node, "expects a float32 tensor of rank >= 1");
  VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, node.Int("axis", ctx.opset >= 13 ? -1 : 1), x.rank()));
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kFloat32, x.shape));
  if (g_skip_compute) return Status::Ok();
  // Before opset 13 the input is read as 2-D [outer, everything from axis on]; from 13, one axis only.
  const int64_t outer = Product(x.shape, 0, axis);
  const int64_t length = ctx.opset >= 13 ? x.shape[axis] : Product(x.shape, axis);
  const int64_t inner = ctx.opset >= 13 ? Product(x.shape, axis + 1) : 1;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float* src = x.f.data() + o * length * inner + i;
      float* dst = y->f.data() + o * length * inner + i;
      float peak = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < length; ++k) peak = std::max(peak, src[k * inner]);
      float sum = 0;
      for (int64_t k = 0; k < length; ++k) sum += dst[k * inner] = std::exp(src[k * inner] - peak);
      for (int64_t k = 0; k < length; ++k) dst[k * inner] /= sum;
    }
  return Status::Ok();
}

Status RunGather(const Node& node, std::span<const Tensor* const> in, Tensor* y) {
  const Tensor& x = *in[0];
  if (in.size() < 2 || !in[1]) return Bad(node, "needs indices");
  const Shape indices = AsInts(*in[1]);
  VS_ASSIGN_OR_RETURN(int axis, NormalizeAxis(node, node.Int("axis", 0), x.rank()));
  Shape shape(x.shape.begin(), x.shape.begin() + axis);
  shape.insert(shape.end(), in[1]->shape.begin(), in[1]->shape.end());
  shape.insert(shape.end(), x.shape.begin() + axis + 1, x.shape.end());
  VS_RETURN_IF_ERROR(Prepare(node, y, x.dtype, shape));
  if (g_skip_compute) return Status::Ok();
  const int64_t outer = Product(x.shape, 0, axis), dim = x.shape[axis], inner = Product(x.shape, axis + 1);
  for (int64_t idx : indices)
    if (idx < -dim || idx >= dim) return Bad(node, "index " + std::to_string(idx) + " out of range for a dim of " + std::to_string(dim));
  return Dispatch(x.dtype, [&](auto zero) -> Status {
    using T = decltype(zero);
    const T* src = Data<T>(x);
    T* dst = MutableData<T>(y);
    const int64_t count = static_cast<int64_t>(indices.size());
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < count; ++k) {
        const int64_t idx = indices[k] < 0 ? indices[k] + dim : indices[k];
        const T* from = src + (o * dim + idx) * inner;
        std::copy(from, from + inner, dst + (o * count + k) * inner);
      }
    return Status::Ok();
  });
}

Status RunShape(const Node& node, const Tensor& x, Tensor* y) {
  const int64_t rank = x.rank();
  int64_t start = node.Int("start", 0), end = node.Int("end", rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = std::clamp<int64_t>(start, 0, rank);
  end = std::clamp<int64_t>(end, start, rank);
  VS_RETURN_IF_ERROR(Prepare(node, y, DType::kInt64, {end - start}));
  std::copy(x.shape.begin() + start, x.shape.begin() + end, y->i.begin());
  return Status::Ok();
}

Status RunCast(const Node& node, const Tensor& x, Tensor* y) {
  const int64_t to = node.Int("to", 0);
  // ONNX types: 1 float, 11 double -> float32; integer and bool types -> int64 (shape arithmetic only).
  const bool to_float = to == 1 || to == 11;
  const bool to_int = to == 2 || to == 3 || to == 4 || to == 5 || to == 6 || to == 7 || to == 9 || to == 12 || to == 13;
  if (!to_float && !to_int) return Unsupported(node, "cast to ONNX type " + std::to_string(to));
  VS_RETURN_IF_ERROR(Prepare(node, y, to_float ? DType::kFloat32 : DType::kInt64, x.shape));
  if (g_skip_compute) return Status::Ok();
  if (to_float) y->f = AsFloats(x);
  else if (to == 9) for (int64_t k = 0; k < x.size(); ++k) y->i[k] = x.dtype == DType::kFloat32 ? x.f[k] != 0 : x.i[k] != 0;
  else y->i = AsInts(x);
  return Status::Ok();
}

Status RunConstantOfShape(const Node& node, const Tensor& shape_tensor, Tensor* y) {
  const Attribute* value = node.Find("value");
  const Tensor fill = value && value->kind == Attribute::Kind::kTensor ? value->t : Tensor::Float({1}, {0.0f});
  if (fill.size() != 1) return Bad(node, "value must hold one element");
  VS_RETURN_IF_ERROR(Prepare(node, y, fill.dtype, AsInts(shape_tensor)));
  if (g_skip_compute) return Status::Ok();
  if (fill.dtype == DType::kFloat32) std::fill(y->f.begin(), y->f.end(), fill.f[0]);
  else std::fill(y->i.begin(), y->i.end(), fill.i[0]);
  return Status::Ok();
}

Status RunConstant(const Node& node, Tensor* y) {
  if (const Attribute* a = node.Find("value"); a && a->kind == Attribute::Kind::kTensor) {
    *y = a->t;
    return Status::Ok();
  }
  if (const Attribute* a = node.Find("value_float")) { *y = Tensor::Float({}, {a->f}); return Status::Ok(); }
  if (const Attribute* a = node.Find("value_floats")) { *y = Tensor::Float({static_cast<int64_t>(a->floats.size())}, a->floats); return Status::Ok(); }
  if (const Attribute* a = node.Find("value_int")) { *y = Tensor::Int64({}, {a->i}); return Status::Ok(); }
  if (const Attribute* a = node.Find("value_ints")) { *y = Tensor::Int64({static_cast<int64_t>(a->ints.size())}, a->ints); return Status::Ok(); }
  return Unsupported(node, "Constant without a tensor, float or int value");
}

Status RunIdentity(const Node& node, const Tensor& x, Tensor* y) { return Relabel(node, x, x.shape, y); }

using Kernel = std::function<Status(const Node&, const OpContext&, std::span<const Tensor* const>, std::span<Tensor* const>)>;

const std::map<std::string, Kernel>& Kernels() {
  static const std::map<std::string, Kernel> kernels = [] {
    std::map<std::string, Kernel> k;
    auto binary = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) {
      return RunBinary(n, *in[0], *in[1], out[0]);
    };
    for (const char* op : {"Add", "Sub", "Mul", "Div"}) k[op] = binary;
    auto unary = [](Activation a) {
      return [a](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) {
        return RunUnary(n, *in[0], out[0], a, n.Float("alpha", 0.01f), c.pool);
      };
    };
    k["Relu"] = unary(Activation::kRelu);
    k["LeakyRelu"] = unary(Activation::kLeakyRelu);
    k["Sigmoid"] = unary(Activation::kSigmoid);
    k["Conv"] = [](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunConv(n, c, in, out[0]); };
    k["BatchNormalization"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunBatchNorm(n, in, out[0]); };
    auto pool = [](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) {
      if (out.size() > 1 && out[1]) return Unsupported(n, "the MaxPool indices output");
      return RunPool(n, c, *in[0], out[0]);
    };
    k["MaxPool"] = pool;
    k["AveragePool"] = pool;
    k["GlobalAveragePool"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunGlobalAveragePool(n, *in[0], out[0]); };
    k["Resize"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunResize(n, in, out[0]); };
    k["Concat"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunConcat(n, in, out[0]); };
    k["Split"] = [](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunSplit(n, c, in, out); };
    k["Slice"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunSlice(n, in, out[0]); };
    k["Transpose"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunTranspose(n, *in[0], out[0]); };
    k["Reshape"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunReshape(n, in, out[0]); };
    k["Flatten"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunFlatten(n, *in[0], out[0]); };
    auto squeeze = [](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunSqueezeUnsqueeze(n, c, in, out[0]); };
    k["Squeeze"] = squeeze;
    k["Unsqueeze"] = squeeze;
    k["Softmax"] = [](const Node& n, const OpContext& c, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunSoftmax(n, c, *in[0], out[0]); };
    k["Gather"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunGather(n, in, out[0]); };
    k["Shape"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunShape(n, *in[0], out[0]); };
    k["Cast"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunCast(n, *in[0], out[0]); };
    k["ConstantOfShape"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunConstantOfShape(n, *in[0], out[0]); };
    k["Constant"] = [](const Node& n, const OpContext&, std::span<const Tensor* const>, std::span<Tensor* const> out) { return RunConstant(n, out[0]); };
    k["Identity"] = [](const Node& n, const OpContext&, std::span<const Tensor* const> in, std::span<Tensor* const> out) { return RunIdentity(n, *in[0], out[0]); };
    return k;
  }();
  return kernels;
}

// Inputs every op needs present (the rest are optional).
int RequiredInputs(const std::string& op) {
  if (op == "Constant") return 0;
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Conv" || op == "Gather" || op == "Reshape") return 2;
  if (op == "Slice") return 3;
  if (op == "BatchNormalization") return 5;
  return 1;
}

}  // namespace

bool IsSupportedOp(const std::string& op_type) { return Kernels().count(op_type) > 0; }

Status RunCpuOp(const Node& node, const OpContext& context, std::span<const Tensor* const> inputs,
                std::span<Tensor* const> outputs) {
  auto it = Kernels().find(node.op_type);
  if (it == Kernels().end()) return Unsupported(node, "operator " + node.op_type + " is not supported");
  const int required = RequiredInputs(node.op_type);
  if (static_cast<int>(inputs.size()) < required) return Bad(node, "needs " + std::to_string(required) + " inputs");
  for (int k = 0; k < required; ++k)
    if (!inputs[k]) return Bad(node, "input " + std::to_string(k) + " is missing");
  if (outputs.empty() || !outputs[0]) return Bad(node, "has no output");
  g_max_elements = context.max_elements;
  g_skip_compute = false;
  if (context.shape_only && node.op_type != "Shape") {
    for (const Tensor* t : inputs) {
      if (!t || t->dtype != DType::kFloat32) continue;
      const int64_t count = Product(t->shape);
      if (count > kShapeOnlyMaterializeLimit || static_cast<int64_t>(t->f.size()) != count) g_skip_compute = true;
    }
  }
  try {
    Status status = it->second(node, context, inputs, outputs);
    if (status.ok() && g_skip_compute)
      for (const Tensor* t : outputs)
        if (t && t->dtype == DType::kInt64)
          return Unsupported(node, "shape inference: this shape value depends on image data");
    return status;
  } catch (const std::bad_alloc&) {
    return MakeError(StatusCode::kOutOfMemory, node.Describe() + ": out of memory");
  } catch (const std::length_error&) {
    return MakeError(StatusCode::kOutOfMemory, node.Describe() + ": allocation too large");
  }
}

}  // namespace vidscan::infer
