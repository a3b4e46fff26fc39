// The CUDA executor: the optimised graph (CpuExecutor's passes) on one GPU. Convolutions go to cuDNN (NHWC,
// FP16 tensor cores or FP32 FMA), everything else to cuda_kernels.cu. Design (docs/inference-cuda.md):
//   - Rank-4 activations are stored NHWC; other ranks, and the outputs of layout-sensitive ops (Reshape,
//     Flatten, Transpose, Softmax...), in logical ONNX order. Every layout change is an explicit strided
//     copy, so each op sees the layout it needs and graph outputs come back in ONNX order as float32.
//   - All activations live in one arena planned at Create for max_batch (first-fit by size over value
//     lifetimes); weights are converted (KRSC, FP16 when asked) and uploaded once.
//   - Int64 shape arithmetic stays on the host: InferShapesAndSmallValues evaluates it per batch size.
//   - A batch size's first Run plans it (shapes, cuDNN descriptors and algorithms) and runs op by op; the
//     second captures the same launches into a CUDA graph; later runs replay it.
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <set>

#include "infer/algorithm_table.h"
#include "infer/cpu_ops.h"
#include "infer/cuda_kernels.cuh"
#include "infer/infer.h"
#include "preprocess/cuda_buffers.h"

namespace vidscan::infer {
namespace {

using Shape = std::vector<int64_t>;

Status CudnnStatus(cudnnStatus_t status, const char* call) {
  if (status == CUDNN_STATUS_SUCCESS) return Status::Ok();
  const StatusCode code = status == CUDNN_STATUS_ALLOC_FAILED ? StatusCode::kOutOfMemory
                          : status == CUDNN_STATUS_NOT_SUPPORTED ? StatusCode::kUnsupported
                                                                 : StatusCode::kInternal;
  return MakeError(code, std::string(call) + ": " + cudnnGetErrorString(status));
}
#define VS_CUDNN_RETURN_IF_ERROR(call) VS_RETURN_IF_ERROR(CudnnStatus((call), #call))

// A cuDNN handle or descriptor, destroyed with its owner.
template <typename H, cudnnStatus_t (*CreateFn)(H*), cudnnStatus_t (*DestroyFn)(H)>
class CudnnObject {
 public:
  CudnnObject() = default;
  static Expected<CudnnObject> Make() {
    CudnnObject o;
    VS_RETURN_IF_ERROR(CudnnStatus(CreateFn(&o.handle_), "cudnnCreate"));
    return Expected<CudnnObject>(std::move(o));
  }
  CudnnObject(CudnnObject&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)) {}
  CudnnObject& operator=(CudnnObject&& o) noexcept {
    if (this != &o) {
      Reset();
      handle_ = std::exchange(o.handle_, nullptr);
    }
    return *this;
  }
  CudnnObject(const CudnnObject&) = delete;
  CudnnObject& operator=(const CudnnObject&) = delete;
  ~CudnnObject() { Reset(); }
  H get() const { return handle_; }

 private:
  void Reset() {
    if (handle_) DestroyFn(handle_);
    handle_ = nullptr;
  }
  H handle_ = nullptr;
};
using CudnnHandle = CudnnObject<cudnnHandle_t, cudnnCreate, cudnnDestroy>;
using TensorDesc = CudnnObject<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDesc = CudnnObject<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvDesc = CudnnObject<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;
using ActivationDesc = CudnnObject<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor, cudnnDestroyActivationDescriptor>;

// An instantiated CUDA graph.
class GraphExec {
 public:
  GraphExec() = default;
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  ~GraphExec() { Reset(); }
  cudaGraphExec_t get() const { return exec_; }
  cudaGraphExec_t* out() { return &exec_; }

 private:
  void Reset() {
    if (exec_) cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
  }
  cudaGraphExec_t exec_ = nullptr;
};

std::string ShapeText(const Shape& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? "," : "") + std::to_string(shape[k]);
  return s + "]";
}

int64_t Count(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// Strides of each logical dim for a tensor stored logically (row-major) or, rank 4 only, NHWC.
Shape StridesOf(const Shape& shape, bool nhwc) {
  const int rank = static_cast<int>(shape.size());
  Shape strides(rank, 1);
  if (nhwc) {
    const int64_t c = shape[1], h = shape[2], w = shape[3];
    return {h * w * c, 1, w * c, c};
  }
  for (int d = rank - 2; d >= 0; --d) strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

// Logical dims from outermost to innermost in memory.
std::vector<int> MemoryOrder(int rank, bool nhwc) {
  if (nhwc) return {0, 2, 3, 1};
  std::vector<int> order(rank);
  std::iota(order.begin(), order.end(), 0);
  return order;
}

// Input strides broadcast to `out` (numpy rules: right-aligned, size-1 dims read with stride 0).
Shape BroadcastStrides(const Shape& in_shape, const Shape& in_strides, const Shape& out) {
  Shape result(out.size(), 0);
  const size_t offset = out.size() - in_shape.size();
  for (size_t d = 0; d < in_shape.size(); ++d)
    result[offset + d] = in_shape[d] == 1 && out[offset + d] != 1 ? 0 : in_strides[d];
  return result;
}

enum class Where {
  kDevice,    // in the arena
  kConstant,  // an initializer, uploaded at Create
  kHost,      // computed on the host per batch size (shape arithmetic made float), uploaded per plan
  kNone,      // int64 shape arithmetic: never on the device
};

struct Value {
  std::string name;  // "" for values the executor adds (layout copies, padded inputs, staging)
  Where where = Where::kNone;
  bool nhwc = false;
  bool float32 = false;  // staging buffers for graph inputs/outputs hold float32; everything else the precision
  int same_shape_as = -1;  // for added values: the value whose shape this one has
  int64_t pad_h = 0, pad_w = 0;  // padded copies: extra rows and columns
  int64_t offset = 0, bytes = 0;  // arena placement, bytes at max_batch
  int first_step = -1, last_step = -1;
  DeviceBuffer constant;  // Where::kConstant
};

enum class StepKind { kStageIn, kStageOut, kCopy, kPad, kConv, kElementwise, kBatchNorm, kConcat, kSlice, kSplit, kTranspose,
                      kRelabel, kPool, kGlobalAveragePool, kResize, kSoftmax };

struct Step {
  StepKind kind = StepKind::kCopy;
  const Node* node = nullptr;
  std::vector<int> in, out;
  cuda::ElementOp op = cuda::ElementOp::kCopy;
  float alpha = 0;
  int conv = -1;
  int axis = 0;  // Concat, Split
};

struct ConvLayer {
  const Node* node = nullptr;
  int64_t out_channels = 0, in_per_group = 0, kh = 0, kw = 0, group = 1;
  Window window;      // from the model; pads already applied by a kPad step when asymmetric
  bool padded = false;
  DeviceBuffer weight, bias;  // KRSC in the precision; bias in the precision (null when absent)
  FilterDesc filter;
  cuda::EpilogueActivation activation = cuda::EpilogueActivation::kNone;
  float alpha = 0;
  bool residual = false;
  bool fused_call_failed = false;  // cudnnConvolutionBiasActivationForward refused: conv + own epilogue
};

// An algorithm-table key: the prefix (GPU, cuDNN, precision, workspace) and everything about the
// convolution a choice depends on.
std::string ConvTableKey(const std::string& prefix, const Shape& xs, const ConvLayer& layer, int pad_h, int pad_w,
                         const Window& w, const Shape& ys) {
  auto dims = [](const Shape& s) {
    std::string t;
    for (size_t i = 0; i < s.size(); ++i) t += (i ? "x" : "") + std::to_string(s[i]);
    return t;
  };
  return prefix + "|x" + dims(xs) + "|y" + dims(ys) + "|k" + std::to_string(layer.out_channels) + "x" +
         std::to_string(layer.in_per_group) + "x" + std::to_string(layer.kh) + "x" + std::to_string(layer.kw) + "|g" +
         std::to_string(layer.group) + "|p" + std::to_string(pad_h) + "," + std::to_string(pad_w) + "|s" + std::to_string(w.sh) +
         "," + std::to_string(w.sw) + "|d" + std::to_string(w.dh) + "," + std::to_string(w.dw);
}

struct ConvPlan {
  TensorDesc x, y, bias;
  ConvDesc conv;
  ActivationDesc relu;
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace = 0;
};

// Kernel launches of one step at one batch size.
struct Launch {
  enum class Kind { kStrided, kMemset, kConv, kPool, kGlobalAveragePool, kResize, kSoftmax } kind = Kind::kStrided;
  int step = 0;
  cuda::ElementOp op = cuda::ElementOp::kCopy;
  cuda::StridedParams strided;
  int out = -1;
  int in[3] = {-1, -1, -1};
  cuda::PoolParams pool;
  int64_t a = 0, b = 0, c = 0;  // GlobalAveragePool n, hw, c; Softmax outer, length, inner; memset bytes
  int resize_table = -1;        // into BatchPlan::resize_tables
  int resize_dims[6] = {};      // n, c, in_h, in_w, out_h, out_w
};

struct BatchPlan {
  int batch = 0;
  std::vector<Shape> shapes;            // per value
  std::map<int, DeviceBuffer> host_values;
  std::vector<ConvPlan> convs;          // per ConvLayer
  std::vector<DeviceBuffer> resize_tables;
  std::vector<Launch> launches;
  int runs = 0;
  GraphExec graph;
  bool graph_failed = false;
  double conv_flops = 0;
};

}  // namespace

struct CudaExecutor::Impl {
  Model model;
  int max_batch = 1;
  CudaExecutorOptions options;
  size_t element_bytes = 2;
  CudnnHandle cudnn;
  CudaStream own_stream;  // RunHost's, and Run's when the caller passes the legacy default stream
  std::vector<Value> values;
  std::map<std::string, int> value_index;
  std::vector<Step> steps;
  std::vector<ConvLayer> convs;
  std::vector<int> input_staging, output_staging;  // float32 logical buffers, per graph input / output
  DeviceBuffer arena;
  DeviceBuffer workspace;
  // z for fused relu convs without a residual (alpha2 = 0): zeros, so that nothing in z can leak into y
  // even if cuDNN reads it (0 * NaN would), sized for the largest such output at max_batch.
  DeviceBuffer zeros;
  std::map<int, std::unique_ptr<BatchPlan>> plans;
  std::map<std::pair<int, bool>, int> layout_copies;
  ConvAlgorithmChoices choices;

  bool fp16() const { return options.precision == Precision::kFloat16; }
  // What every algorithm-table key of this executor starts with: GPU, cuDNN version, precision, workspace.
  std::string table_prefix;

  int AddValue(Value v) {
    values.push_back(std::move(v));
    return static_cast<int>(values.size()) - 1;
  }
  int Named(const std::string& name) const {
    auto it = value_index.find(name);
    return it == value_index.end() ? -1 : it->second;
  }

  // Host floats -> device buffer in the precision.
  Expected<DeviceBuffer> Upload(const std::vector<float>& data) {
    VS_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::Allocate(std::max<size_t>(data.size(), 1) * element_bytes));
    if (data.empty()) return std::move(buffer);
    if (fp16()) {
      std::vector<__half> half(data.size());
      for (size_t k = 0; k < data.size(); ++k) half[k] = __float2half(data[k]);
      VS_CUDA_RETURN_IF_ERROR(cudaMemcpy(buffer.data(), half.data(), half.size() * sizeof(__half), cudaMemcpyHostToDevice));
    } else {
      VS_CUDA_RETURN_IF_ERROR(cudaMemcpy(buffer.data(), data.data(), data.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    return std::move(buffer);
  }

  // The value `v` in the wanted layout (rank 4 only may be NHWC): v itself, or a copy made by a new step.
  int InLayout(int v, bool nhwc, const Shape& shape_at_max) {
    const bool can_nhwc = shape_at_max.size() == 4;
    nhwc = nhwc && can_nhwc;
    if (values[v].nhwc == nhwc || values[v].where == Where::kNone) return v;
    auto it = layout_copies.find({v, nhwc});
    if (it != layout_copies.end()) return it->second;
    Value copy;
    copy.where = Where::kDevice;
    copy.nhwc = nhwc;
    copy.same_shape_as = v;
    const int c = AddValue(std::move(copy));
    Step step;
    step.kind = StepKind::kCopy;
    step.in = {v};
    step.out = {c};
    steps.push_back(step);
    layout_copies[{v, nhwc}] = c;
    return c;
  }

  Status BuildSteps(const std::map<std::string, Tensor>& at_max);
  Status PlanArena();
  Expected<BatchPlan*> PlanFor(int batch);
  Status PlanLaunches(BatchPlan* plan, const std::map<std::string, Tensor>& known);
  void* Pointer(int v, const BatchPlan& plan) const;
  Status Execute(BatchPlan& plan, cudaStream_t stream, bool eager);
  Status Enqueue(BatchPlan& plan, cudaStream_t stream);
};

namespace {

cuda::EpilogueActivation ToEpilogue(Activation a) {
  switch (a) {
    case Activation::kNone: return cuda::EpilogueActivation::kNone;
    case Activation::kRelu: return cuda::EpilogueActivation::kRelu;
    case Activation::kLeakyRelu: return cuda::EpilogueActivation::kLeakyRelu;
    case Activation::kSigmoid: return cuda::EpilogueActivation::kSigmoid;
    case Activation::kSilu: return cuda::EpilogueActivation::kSilu;
  }
  return cuda::EpilogueActivation::kNone;
}

Status Unsupported(const Node& node, const std::string& why) {
  return MakeError(StatusCode::kUnsupported, "CUDA executor: " + node.Describe() + ": " + why);
}

}  // namespace

Status CudaExecutor::Impl::BuildSteps(const std::map<std::string, Tensor>& at_max) {
  const Graph& graph = model.graph;
  auto shape_at_max = [&](const std::string& name) -> Shape {
    auto it = at_max.find(name);
    if (it != at_max.end()) return it->second.shape;
    auto c = graph.initializers.find(name);
    return c != graph.initializers.end() ? c->second.shape : Shape{};
  };
  auto dtype_of = [&](const std::string& name) {
    auto it = at_max.find(name);
    if (it != at_max.end()) return it->second.dtype;
    auto c = graph.initializers.find(name);
    return c != graph.initializers.end() ? c->second.dtype : DType::kFloat32;
  };
  auto named = [&](const std::string& name, Where where, bool nhwc) {
    Value v;
    v.name = name;
    v.where = where;
    v.nhwc = nhwc;
    const int index = AddValue(std::move(v));
    value_index[name] = index;
    return index;
  };
  // Uploads a float initializer the first time a device step reads it.
  auto constant = [&](const std::string& name) -> Expected<int> {
    const int existing = Named(name);
    if (existing >= 0) return existing;
    const Tensor& t = graph.initializers.at(name);
    if (t.dtype != DType::kFloat32) return MakeError(StatusCode::kUnsupported, "CUDA executor: int64 initializer '" + name + "' read as data");
    const int v = named(name, Where::kConstant, false);
    VS_ASSIGN_OR_RETURN(values[v].constant, Upload(t.f));
    return v;
  };
  // A node input as a value index: device/host values as they are, initializers uploaded.
  auto input_value = [&](const std::string& name) -> Expected<int> {
    const int v = Named(name);
    if (v >= 0) return v;
    if (graph.initializers.count(name)) return constant(name);
    return MakeError(StatusCode::kInternal, "CUDA executor: value '" + name + "' is read before it is produced");
  };

  for (const ValueInfo& input : graph.inputs) {
    if (input.dtype != DType::kFloat32) return MakeError(StatusCode::kUnsupported, "CUDA executor: input '" + input.name + "' is not float32");
    Value staging;
    staging.where = Where::kDevice;
    staging.float32 = true;
    const int s = AddValue(std::move(staging));
    input_staging.push_back(s);
    const Shape shape = shape_at_max(input.name);
    const int v = named(input.name, Where::kDevice, shape.size() == 4);
    values[v].same_shape_as = -1;
    values[s].same_shape_as = v;
    Step step;
    step.kind = StepKind::kStageIn;
    step.in = {s};
    step.out = {v};
    steps.push_back(step);
  }

  for (const Node& node : graph.nodes) {
    bool device_input = false;
    for (const std::string& name : node.inputs) {
      const int v = name.empty() ? -1 : Named(name);
      if (v >= 0 && values[v].where == Where::kDevice) device_input = true;
    }
    bool float_output = false;
    for (const std::string& name : node.outputs)
      if (!name.empty() && dtype_of(name) == DType::kFloat32) float_output = true;
    if (!device_input) {  // shape arithmetic and what is computed from it: the host knows it per batch
      for (const std::string& name : node.outputs)
        if (!name.empty()) named(name, dtype_of(name) == DType::kFloat32 ? Where::kHost : Where::kNone, false);
      continue;
    }
    if (!float_output) {
      if (node.op_type != "Shape") return Unsupported(node, "turns image data into integers (only Shape may)");
      for (const std::string& name : node.outputs) if (!name.empty()) named(name, Where::kNone, false);
      continue;
    }
    const std::string& op = node.op_type;
    const Shape out_shape = shape_at_max(node.outputs[0]);
    const bool out4 = out_shape.size() == 4;
    Step step;
    step.node = &node;
    auto data_input = [&](size_t k) -> Expected<int> {
      if (k >= node.inputs.size() || node.inputs[k].empty()) return MakeError(StatusCode::kInvalidArgument, node.Describe() + " lacks input " + std::to_string(k));
      return input_value(node.inputs[k]);
    };
    auto add_output = [&](size_t k, bool nhwc) {
      const int v = named(node.outputs[k], Where::kDevice, nhwc && shape_at_max(node.outputs[k]).size() == 4);
      step.out.push_back(v);
    };
    auto unary = [&](cuda::ElementOp element_op, float alpha) -> Status {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kElementwise;
      step.op = element_op;
      step.alpha = alpha;
      step.in = {x};
      add_output(0, values[x].nhwc);
      return Status::Ok();
    };

    if (op == "Conv") {
      if (node.inputs.size() < 2 || !graph.initializers.count(node.inputs[1]))
        return Unsupported(node, "the weight must be a constant");
      const Tensor& w = graph.initializers.at(node.inputs[1]);
      const Shape x_shape = shape_at_max(node.inputs[0]);
      if (w.rank() != 4 || x_shape.size() != 4) return Unsupported(node, "only 2-D convolution");
      ConvLayer layer;
      layer.node = &node;
      layer.out_channels = w.shape[0];
      layer.in_per_group = w.shape[1];
      layer.kh = w.shape[2];
      layer.kw = w.shape[3];
      layer.group = node.Int("group", 1);
      VS_ASSIGN_OR_RETURN(layer.window, ComputeWindow(node, x_shape[2], x_shape[3], {layer.kh, layer.kw}, false));
      layer.activation = ToEpilogue(node.fused_activation);
      layer.alpha = node.fused_alpha;
      layer.residual = node.fused_residual && node.inputs.size() > 3 && !node.inputs[3].empty();
      // KRSC (NHWC filter): what cuDNN's NHWC tensor-core kernels read.
      std::vector<float> krsc(w.f.size());
      for (int64_t k = 0; k < layer.out_channels; ++k)
        for (int64_t c = 0; c < layer.in_per_group; ++c)
          for (int64_t r = 0; r < layer.kh; ++r)
            for (int64_t s = 0; s < layer.kw; ++s)
              krsc[((k * layer.kh + r) * layer.kw + s) * layer.in_per_group + c] = w.f[((k * layer.in_per_group + c) * layer.kh + r) * layer.kw + s];
      VS_ASSIGN_OR_RETURN(layer.weight, Upload(krsc));
      if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
        if (!graph.initializers.count(node.inputs[2])) return Unsupported(node, "the bias must be a constant");
        VS_ASSIGN_OR_RETURN(layer.bias, Upload(graph.initializers.at(node.inputs[2]).f));
      } else {
        VS_ASSIGN_OR_RETURN(layer.bias, Upload(std::vector<float>(static_cast<size_t>(layer.out_channels), 0.0f)));
      }
      VS_ASSIGN_OR_RETURN(layer.filter, FilterDesc::Make());
      VS_CUDNN_RETURN_IF_ERROR(cudnnSetFilter4dDescriptor(layer.filter.get(), fp16() ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC,
                                                          static_cast<int>(layer.out_channels), static_cast<int>(layer.in_per_group),
                                                          static_cast<int>(layer.kh), static_cast<int>(layer.kw)));
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      x = InLayout(x, true, x_shape);
      const Window& win = layer.window;
      // cuDNN pads symmetrically; ONNX may not (SAME_UPPER with stride 2): pad explicitly, then pad 0.
      if (win.pad_top != win.pad_bottom || win.pad_left != win.pad_right) {
        Value padded;
        padded.where = Where::kDevice;
        padded.nhwc = true;
        padded.same_shape_as = x;
        padded.pad_h = win.pad_top + win.pad_bottom;
        padded.pad_w = win.pad_left + win.pad_right;
        const int p = AddValue(std::move(padded));
        Step pad;
        pad.kind = StepKind::kPad;
        pad.node = &node;
        pad.in = {x};
        pad.out = {p};
        pad.conv = static_cast<int>(convs.size());
        steps.push_back(pad);
        x = p;
        layer.padded = true;
      }
      step.kind = StepKind::kConv;
      step.in = {x};
      if (layer.residual) {
        VS_ASSIGN_OR_RETURN(int r, data_input(3));
        step.in.push_back(InLayout(r, true, shape_at_max(node.inputs[3])));
      }
      step.conv = static_cast<int>(convs.size());
      convs.push_back(std::move(layer));
      add_output(0, true);
    } else if (op == "Relu") {
      VS_RETURN_IF_ERROR(unary(cuda::ElementOp::kRelu, 0));
    } else if (op == "LeakyRelu") {
      VS_RETURN_IF_ERROR(unary(cuda::ElementOp::kLeakyRelu, node.Float("alpha", 0.01f)));
    } else if (op == "Sigmoid") {
      VS_RETURN_IF_ERROR(unary(cuda::ElementOp::kSigmoid, 0));
    } else if (op == "Identity" || (op == "Cast" && node.Int("to", 1) == 1)) {
      VS_RETURN_IF_ERROR(unary(cuda::ElementOp::kCopy, 0));
    } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
      VS_ASSIGN_OR_RETURN(int a, data_input(0));
      VS_ASSIGN_OR_RETURN(int b, data_input(1));
      step.kind = StepKind::kElementwise;
      step.op = op == "Add" ? cuda::ElementOp::kAdd : op == "Sub" ? cuda::ElementOp::kSub : op == "Mul" ? cuda::ElementOp::kMul : cuda::ElementOp::kDiv;
      step.in = {a, b};
      const bool nhwc = (values[a].where == Where::kDevice && values[a].nhwc) || (values[b].where == Where::kDevice && values[b].nhwc);
      add_output(0, nhwc && out4);
    } else if (op == "BatchNormalization") {
      for (size_t k = 1; k < 5; ++k)
        if (k >= node.inputs.size() || !graph.initializers.count(node.inputs[k])) return Unsupported(node, "parameters must be constants");
      const auto& g = graph.initializers.at(node.inputs[1]).f;
      const auto& beta = graph.initializers.at(node.inputs[2]).f;
      const auto& mean = graph.initializers.at(node.inputs[3]).f;
      const auto& var = graph.initializers.at(node.inputs[4]).f;
      if (g.size() != beta.size() || g.size() != mean.size() || g.size() != var.size()) return Unsupported(node, "parameter sizes differ");
      const float epsilon = node.Float("epsilon", 1e-5f);
      std::vector<float> scale(g.size()), shift(g.size());
      for (size_t c = 0; c < g.size(); ++c) {  // the CPU kernel's formulas
        scale[c] = g[c] / std::sqrt(var[c] + epsilon);
        shift[c] = beta[c] - mean[c] * scale[c];
      }
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      Value sv, hv;
      sv.where = hv.where = Where::kConstant;
      VS_ASSIGN_OR_RETURN(sv.constant, Upload(scale));
      VS_ASSIGN_OR_RETURN(hv.constant, Upload(shift));
      const int s = AddValue(std::move(sv));
      const int h = AddValue(std::move(hv));
      step.kind = StepKind::kBatchNorm;
      step.in = {x, s, h};
      add_output(0, values[x].nhwc);
    } else if (op == "Concat") {
      step.kind = StepKind::kConcat;
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        VS_ASSIGN_OR_RETURN(int v, data_input(k));
        step.in.push_back(v);
      }
      int64_t axis = node.Int("axis", 0);
      if (axis < 0) axis += static_cast<int64_t>(out_shape.size());
      step.axis = static_cast<int>(axis);
      add_output(0, out4);
    } else if (op == "Slice") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kSlice;
      step.in = {x};
      add_output(0, out4);
    } else if (op == "Split") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kSplit;
      step.in = {x};
      int64_t axis = node.Int("axis", 0);
      if (axis < 0) axis += static_cast<int64_t>(shape_at_max(node.inputs[0]).size());
      step.axis = static_cast<int>(axis);
      for (size_t k = 0; k < node.outputs.size(); ++k) {
        if (node.outputs[k].empty()) { step.out.push_back(-1); continue; }
        add_output(k, true);
      }
    } else if (op == "Transpose") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kTranspose;
      step.in = {x};
      add_output(0, false);
    } else if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kRelabel;
      step.in = {x};
      add_output(0, false);
    } else if (op == "MaxPool" || op == "AveragePool") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      if (!out4) return Unsupported(node, "only 2-D pooling");
      step.kind = StepKind::kPool;
      step.in = {InLayout(x, true, shape_at_max(node.inputs[0]))};
      add_output(0, true);
    } else if (op == "GlobalAveragePool") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      if (!out4) return Unsupported(node, "only rank-4 input");
      step.kind = StepKind::kGlobalAveragePool;
      step.in = {InLayout(x, true, shape_at_max(node.inputs[0]))};
      add_output(0, true);
    } else if (op == "Resize") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      if (!out4) return Unsupported(node, "only rank-4 Resize");
      step.kind = StepKind::kResize;
      step.in = {InLayout(x, true, shape_at_max(node.inputs[0]))};
      add_output(0, true);
    } else if (op == "Softmax") {
      VS_ASSIGN_OR_RETURN(int x, data_input(0));
      step.kind = StepKind::kSoftmax;
      step.in = {InLayout(x, false, shape_at_max(node.inputs[0]))};
      add_output(0, false);
    } else {
      return Unsupported(node, "no CUDA kernel for " + op + " on image data");
    }
    steps.push_back(step);
  }

  for (const ValueInfo& output : graph.outputs) {
    const int v = Named(output.name);
    if (v < 0) return MakeError(StatusCode::kUnsupported, "CUDA executor: output '" + output.name + "' is not produced");
    if (values[v].where == Where::kNone) return MakeError(StatusCode::kUnsupported, "CUDA executor: output '" + output.name + "' is not float32");
    Value staging;
    staging.where = Where::kDevice;
    staging.float32 = true;
    staging.same_shape_as = v;
    const int s = AddValue(std::move(staging));
    output_staging.push_back(s);
    Step step;
    step.kind = StepKind::kStageOut;
    step.in = {v};
    step.out = {s};
    steps.push_back(step);
  }
  return Status::Ok();
}

// Shapes of every value at one batch size: named ones from shape inference, added ones from their source.
namespace {
Status ShapesForBatch(const Model& model, const std::vector<Value>& values, const std::map<std::string, Tensor>& known,
                      std::vector<Shape>* shapes) {
  shapes->assign(values.size(), {});
  // Added values refer to values earlier in the table, except input staging (which refers forward).
  for (size_t v = 0; v < values.size(); ++v) {
    const Value& value = values[v];
    if (value.name.empty()) continue;
    auto it = known.find(value.name);
    if (it != known.end()) (*shapes)[v] = it->second.shape;
    else if (model.graph.initializers.count(value.name)) (*shapes)[v] = model.graph.initializers.at(value.name).shape;
  }
  for (size_t v = 0; v < values.size(); ++v) {
    const Value& value = values[v];
    if (!value.name.empty() || value.same_shape_as < 0) continue;
    Shape shape = (*shapes)[value.same_shape_as];
    if (value.pad_h || value.pad_w) {
      shape[2] += value.pad_h;
      shape[3] += value.pad_w;
    }
    (*shapes)[v] = shape;
  }
  return Status::Ok();
}
}  // namespace

Status CudaExecutor::Impl::PlanArena() {
  // Shapes at max_batch give every value's largest size; smaller batches are checked against them.
  std::vector<Shape> input_shapes;
  for (const ValueInfo& input : model.graph.inputs) {
    Shape shape = input.shape;
    shape[0] = max_batch;
    input_shapes.push_back(shape);
  }
  VS_ASSIGN_OR_RETURN(auto known, InferShapesAndSmallValues(model, input_shapes));
  std::vector<Shape> shapes;
  VS_RETURN_IF_ERROR(ShapesForBatch(model, values, known, &shapes));
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int v : steps[s].out)
      if (v >= 0 && values[v].first_step < 0) values[v].first_step = static_cast<int>(s);
    for (int v : steps[s].in)
      if (v >= 0) values[v].last_step = std::max(values[v].last_step, static_cast<int>(s));
  }
  // Input staging is written before the first step; output staging is read after the last.
  for (int v : input_staging) values[v].first_step = -1;
  for (int v : output_staging) values[v].last_step = static_cast<int>(steps.size());
  std::vector<int> order;
  for (size_t v = 0; v < values.size(); ++v) {
    Value& value = values[v];
    if (value.where != Where::kDevice) continue;
    const int64_t count = Count(shapes[v]);
    if (count >= (int64_t{1} << 31)) return MakeError(StatusCode::kUnsupported, "CUDA executor: a tensor of " + std::to_string(count) + " elements");
    value.bytes = std::max<int64_t>((count * static_cast<int64_t>(value.float32 ? 4 : element_bytes) + 255) / 256 * 256, 256);
    if (value.last_step < 0) value.last_step = value.first_step;  // written, never read (an unused Split part)
    order.push_back(static_cast<int>(v));
  }
  // First fit by decreasing size among values whose lifetimes overlap.
  std::sort(order.begin(), order.end(), [&](int a, int b) { return values[a].bytes > values[b].bytes; });
  std::vector<int> placed;
  int64_t total = 0;
  for (int v : order) {
    Value& value = values[v];
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int p : placed) {
      const Value& other = values[p];
      if (other.first_step <= value.last_step && value.first_step <= other.last_step) busy.push_back({other.offset, other.offset + other.bytes});
    }
    std::sort(busy.begin(), busy.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : busy) {
      if (offset + value.bytes <= begin) break;
      offset = std::max(offset, end);
    }
    value.offset = offset;
    total = std::max(total, offset + value.bytes);
    placed.push_back(v);
  }
  VS_ASSIGN_OR_RETURN(arena, DeviceBuffer::Allocate(static_cast<size_t>(total)));
  int64_t zero_bytes = 0;
  for (const Step& step : steps)
    if (step.kind == StepKind::kConv && convs[step.conv].activation == cuda::EpilogueActivation::kRelu && !convs[step.conv].residual)
      zero_bytes = std::max(zero_bytes, values[step.out[0]].bytes);
  if (zero_bytes > 0) {
    VS_ASSIGN_OR_RETURN(zeros, DeviceBuffer::Allocate(static_cast<size_t>(zero_bytes)));
    VS_CUDA_RETURN_IF_ERROR(cudaMemset(zeros.data(), 0, static_cast<size_t>(zero_bytes)));
  }
  return Status::Ok();
}

void* CudaExecutor::Impl::Pointer(int v, const BatchPlan& plan) const {
  if (v < 0) return nullptr;
  const Value& value = values[v];
  switch (value.where) {
    case Where::kDevice: return static_cast<char*>(arena.data()) + value.offset;
    case Where::kConstant: return value.constant.data();
    case Where::kHost: {
      auto it = plan.host_values.find(v);
      return it == plan.host_values.end() ? nullptr : it->second.data();
    }
    case Where::kNone: return nullptr;
  }
  return nullptr;
}

namespace {

// A strided launch over `iter_shape` (logical dims) in the memory order of an output stored `out_nhwc`.
cuda::StridedParams MakeStrided(const Shape& iter_shape, bool out_nhwc, const Shape& out_strides, int64_t out_offset,
                                const std::vector<Shape>& in_strides, const std::vector<int64_t>& in_offsets) {
  cuda::StridedParams p;
  const int rank = static_cast<int>(iter_shape.size());
  const std::vector<int> order = MemoryOrder(rank, out_nhwc && rank == 4);
  p.rank = std::max(rank, 1);
  p.count = Count(iter_shape);
  p.inputs = static_cast<int>(in_strides.size());
  p.out_offset = out_offset;
  if (rank == 0) {
    p.dims[0] = 1;
  }
  for (int k = 0; k < rank; ++k) {
    p.dims[k] = static_cast<int>(iter_shape[order[k]]);
    p.out_strides[k] = out_strides[order[k]];
    for (size_t i = 0; i < in_strides.size(); ++i) p.in_strides[i][k] = in_strides[i][order[k]];
  }
  for (size_t i = 0; i < in_offsets.size(); ++i) p.in_offset[i] = in_offsets[i];
  return p;
}

const Tensor* Known(const Model& model, const std::map<std::string, Tensor>& known, const std::string& name) {
  if (name.empty()) return nullptr;
  auto c = model.graph.initializers.find(name);
  if (c != model.graph.initializers.end()) return &c->second;
  auto it = known.find(name);
  return it == known.end() ? nullptr : &it->second;
}

}  // namespace

Status CudaExecutor::Impl::PlanLaunches(BatchPlan* plan, const std::map<std::string, Tensor>& known) {
  const std::vector<Shape>& shapes = plan->shapes;
  auto strides = [&](int v) { return StridesOf(shapes[v], values[v].nhwc && shapes[v].size() == 4); };
  auto nhwc = [&](int v) { return values[v].nhwc && shapes[v].size() == 4; };
  const cudnnDataType_t dtype = fp16() ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  plan->convs.resize(convs.size());
  for (size_t s = 0; s < steps.size(); ++s) {
    const Step& step = steps[s];
    const Node* node = step.node;
    Launch launch;
    launch.step = static_cast<int>(s);
    auto copy_like = [&](int in, int out, const Shape& iter, const Shape& in_strides, int64_t in_offset, const Shape& out_strides,
                         int64_t out_offset, bool iter_nhwc) {
      Launch l = launch;
      l.kind = Launch::Kind::kStrided;
      l.op = cuda::ElementOp::kCopy;
      l.in[0] = in;
      l.out = out;
      l.strided = MakeStrided(iter, iter_nhwc, out_strides, out_offset, {in_strides}, {in_offset});
      plan->launches.push_back(l);
    };
    switch (step.kind) {
      case StepKind::kStageIn:
      case StepKind::kStageOut:
      case StepKind::kCopy: {
        const int in = step.in[0], out = step.out[0];
        copy_like(in, out, shapes[in], strides(in), 0, strides(out), 0, nhwc(out));
        break;
      }
      case StepKind::kPad: {
        const int in = step.in[0], out = step.out[0];
        const Window& w = convs[step.conv].window;
        Launch zero = launch;
        zero.kind = Launch::Kind::kMemset;
        zero.out = out;
        zero.a = Count(shapes[out]) * static_cast<int64_t>(element_bytes);
        plan->launches.push_back(zero);
        const Shape out_strides = strides(out);
        copy_like(in, out, shapes[in], strides(in), 0, out_strides, w.pad_top * out_strides[2] + w.pad_left * out_strides[3], true);
        break;
      }
      case StepKind::kConv: {
        ConvLayer& layer = convs[step.conv];
        ConvPlan& cp = plan->convs[step.conv];
        const Shape& xs = shapes[step.in[0]];
        const Shape& ys = shapes[step.out[0]];
        const Window& w = layer.window;
        const int pad_h = layer.padded ? 0 : static_cast<int>(w.pad_top), pad_w = layer.padded ? 0 : static_cast<int>(w.pad_left);
        VS_ASSIGN_OR_RETURN(cp.x, TensorDesc::Make());
        VS_ASSIGN_OR_RETURN(cp.y, TensorDesc::Make());
        VS_ASSIGN_OR_RETURN(cp.bias, TensorDesc::Make());
        VS_ASSIGN_OR_RETURN(cp.conv, ConvDesc::Make());
        VS_ASSIGN_OR_RETURN(cp.relu, ActivationDesc::Make());
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(cp.x.get(), CUDNN_TENSOR_NHWC, dtype, static_cast<int>(xs[0]), static_cast<int>(xs[1]),
                                                            static_cast<int>(xs[2]), static_cast<int>(xs[3])));
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(cp.y.get(), CUDNN_TENSOR_NHWC, dtype, static_cast<int>(ys[0]), static_cast<int>(ys[1]),
                                                            static_cast<int>(ys[2]), static_cast<int>(ys[3])));
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetTensor4dDescriptor(cp.bias.get(), CUDNN_TENSOR_NCHW, dtype, 1, static_cast<int>(layer.out_channels), 1, 1));
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetConvolution2dDescriptor(cp.conv.get(), pad_h, pad_w, static_cast<int>(w.sh), static_cast<int>(w.sw),
                                                                 static_cast<int>(w.dh), static_cast<int>(w.dw), CUDNN_CROSS_CORRELATION,
                                                                 CUDNN_DATA_FLOAT));
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionGroupCount(cp.conv.get(), static_cast<int>(layer.group)));
        // FP32 must stay FP32: FMA math excludes TF32 tensor cores (which would miss the 1e-4 tolerance).
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(cp.conv.get(), fp16() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
        VS_CUDNN_RETURN_IF_ERROR(cudnnSetActivationDescriptor(cp.relu.get(), CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
        int out_dims[4] = {};
        VS_CUDNN_RETURN_IF_ERROR(cudnnGetConvolution2dForwardOutputDim(cp.conv.get(), cp.x.get(), layer.filter.get(), &out_dims[0], &out_dims[1],
                                                                       &out_dims[2], &out_dims[3]));
        if (out_dims[0] != ys[0] || out_dims[1] != ys[1] || out_dims[2] != ys[2] || out_dims[3] != ys[3])
          return MakeError(StatusCode::kInternal, "CUDA executor: " + node->Describe() + ": cuDNN output " + std::to_string(out_dims[2]) + "x" +
                                                      std::to_string(out_dims[3]) + " differs from the model's " + ShapeText(ys));
        // A pinned choice (options.algorithm_table) is used as it is: its math type set, its workspace asked
        // for. (Looking it up in cuDNN's heuristic list missed algorithm/math pairs that only measuring
        // offers; such a pin was then measured again, and another process's choice could differ in the last
        // bits.) One cuDNN does not support here, or that does not fit the workspace, is chosen as usual.
        std::string table_key;
        bool chosen = false;
        if (options.algorithm_table != nullptr) {
          table_key = ConvTableKey(table_prefix, xs, layer, pad_h, pad_w, w, ys);
          if (std::optional<ConvAlgorithm> pinned = options.algorithm_table->Find(table_key)) {
            size_t bytes = 0;
            const bool math_ok = (fp16() || pinned->math == CUDNN_FMA_MATH || pinned->math == CUDNN_DEFAULT_MATH) &&
                                 cudnnSetConvolutionMathType(cp.conv.get(), static_cast<cudnnMathType_t>(pinned->math)) ==
                                     CUDNN_STATUS_SUCCESS;
            if (math_ok &&
                cudnnGetConvolutionForwardWorkspaceSize(cudnn.get(), cp.x.get(), layer.filter.get(), cp.conv.get(), cp.y.get(),
                                                        static_cast<cudnnConvolutionFwdAlgo_t>(pinned->algo), &bytes) == CUDNN_STATUS_SUCCESS &&
                bytes <= workspace.bytes()) {
              cp.algo = static_cast<cudnnConvolutionFwdAlgo_t>(pinned->algo);
              cp.workspace = bytes;
              chosen = true;
              ++choices.pinned;
            } else {
              ++choices.pins_ignored;
              VS_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(cp.conv.get(), fp16() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
            }
          }
        }
        // Measured (FindEx, on the arena's own buffers: nothing runs at planning time) or, if measuring is
        // off or fails, cuDNN's heuristic order. Either way the first candidate that fits the workspace
        // and, in FP32, does not use tensor cores.
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        int returned = 0;
        bool measured = false;
        if (!chosen && options.measure_algorithms) {
          VS_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
          measured = cudnnFindConvolutionForwardAlgorithmEx(cudnn.get(), cp.x.get(), Pointer(step.in[0], *plan), layer.filter.get(),
                                                            layer.weight.data(), cp.conv.get(), cp.y.get(), Pointer(step.out[0], *plan),
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf, workspace.data(),
                                                            workspace.bytes()) == CUDNN_STATUS_SUCCESS;
          VS_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
        }
        if (!chosen && !measured)
          VS_CUDNN_RETURN_IF_ERROR(cudnnGetConvolutionForwardAlgorithm_v7(cudnn.get(), cp.x.get(), layer.filter.get(), cp.conv.get(), cp.y.get(),
                                                                          CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned, perf));
        for (int k = 0; k < returned && !chosen; ++k) {
          if (perf[k].status != CUDNN_STATUS_SUCCESS) continue;
          if (!fp16() && perf[k].mathType != CUDNN_FMA_MATH && perf[k].mathType != CUDNN_DEFAULT_MATH) continue;
          VS_CUDNN_RETURN_IF_ERROR(cudnnSetConvolutionMathType(cp.conv.get(), fp16() ? perf[k].mathType : CUDNN_FMA_MATH));
          size_t bytes = 0;
          if (cudnnGetConvolutionForwardWorkspaceSize(cudnn.get(), cp.x.get(), layer.filter.get(), cp.conv.get(), cp.y.get(), perf[k].algo, &bytes) !=
              CUDNN_STATUS_SUCCESS)
            continue;
          if (bytes > workspace.bytes()) continue;
          cp.algo = perf[k].algo;
          cp.workspace = bytes;
          chosen = true;
          ++(measured ? choices.measured : choices.heuristic);
          // What ran is recorded: the math type set on the descriptor (FP32 forces FMA whatever was listed).
          if (options.algorithm_table != nullptr) {
            options.algorithm_table->Record(table_key, ConvAlgorithm{static_cast<int>(perf[k].algo),
                                                                     static_cast<int>(fp16() ? perf[k].mathType : CUDNN_FMA_MATH)});
          }
        }
        if (!chosen) return MakeError(StatusCode::kUnsupported, "CUDA executor: " + node->Describe() + ": no cuDNN algorithm fits the workspace");
        plan->conv_flops += 2.0 * static_cast<double>(ys[0]) * static_cast<double>(ys[2]) * static_cast<double>(ys[3]) *
                            static_cast<double>(layer.out_channels) * static_cast<double>(layer.in_per_group) *
                            static_cast<double>(layer.kh * layer.kw);
        Launch l = launch;
        l.kind = Launch::Kind::kConv;
        l.in[0] = step.in[0];
        l.in[1] = step.in.size() > 1 ? step.in[1] : -1;
        l.out = step.out[0];
        l.a = Count(ys);
        l.b = layer.out_channels;
        plan->launches.push_back(l);
        break;
      }
      case StepKind::kElementwise:
      case StepKind::kBatchNorm: {
        const int out = step.out[0];
        const Shape& os = shapes[out];
        std::vector<Shape> in_strides;
        for (size_t k = 0; k < step.in.size(); ++k) {
          const int v = step.in[k];
          if (step.kind == StepKind::kBatchNorm && k > 0) {  // per-channel parameter along logical dim 1
            Shape st(os.size(), 0);
            if (os.size() > 1) st[1] = 1;
            in_strides.push_back(st);
            continue;
          }
          if (shapes[v].size() > os.size()) return MakeError(StatusCode::kInternal, node->Describe() + ": input rank above the output's");
          in_strides.push_back(BroadcastStrides(shapes[v], strides(v), os));
        }
        Launch l = launch;
        l.kind = Launch::Kind::kStrided;
        l.op = step.kind == StepKind::kBatchNorm ? cuda::ElementOp::kMulAdd : step.op;
        l.strided = MakeStrided(os, nhwc(out), strides(out), 0, in_strides, std::vector<int64_t>(in_strides.size(), 0));
        l.strided.alpha = step.alpha;
        for (size_t k = 0; k < step.in.size() && k < 3; ++k) l.in[k] = step.in[k];
        l.out = out;
        plan->launches.push_back(l);
        break;
      }
      case StepKind::kConcat: {
        const int out = step.out[0];
        const Shape out_strides = strides(out);
        int64_t offset = 0;
        for (int v : step.in) {
          copy_like(v, out, shapes[v], strides(v), 0, out_strides, offset * out_strides[step.axis], nhwc(out));
          offset += shapes[v][step.axis];
        }
        break;
      }
      case StepKind::kSlice: {
        const int in = step.in[0], out = step.out[0];
        std::vector<const Tensor*> params;
        for (const std::string& name : node->inputs) params.push_back(Known(model, known, name));
        for (size_t k = 1; k < params.size(); ++k)
          if (!node->inputs[k].empty() && !params[k]) return Unsupported(*node, "Slice parameters are not known on the host");
        VS_ASSIGN_OR_RETURN(SliceBox box, ComputeSlice(*node, params, shapes[in]));
        if (box.out_shape != shapes[out]) return MakeError(StatusCode::kInternal, node->Describe() + ": slice shape disagrees with shape inference");
        const Shape in_strides = strides(in);
        Shape stepped(in_strides.size());
        int64_t base = 0;
        for (size_t d = 0; d < in_strides.size(); ++d) {
          base += box.first[d] * in_strides[d];
          stepped[d] = box.step[d] * in_strides[d];
        }
        copy_like(in, out, shapes[out], stepped, base, strides(out), 0, nhwc(out));
        break;
      }
      case StepKind::kSplit: {
        const int in = step.in[0];
        const Shape in_strides = strides(in);
        int64_t start = 0;
        for (size_t k = 0; k < node->outputs.size(); ++k) {
          // Output k's size along the axis comes from shape inference (omitted outputs: from the model).
          const std::string& name = node->outputs[k];
          const Tensor* t = Known(model, known, name);
          if (!t) return MakeError(StatusCode::kInternal, node->Describe() + ": no shape for a Split output");
          const Shape& part = t->shape;
          if (step.out[k] >= 0) copy_like(in, step.out[k], part, in_strides, start * in_strides[step.axis], strides(step.out[k]), 0, nhwc(step.out[k]));
          start += part[step.axis];
        }
        break;
      }
      case StepKind::kTranspose: {
        const int in = step.in[0], out = step.out[0];
        const int rank = static_cast<int>(shapes[in].size());
        Shape perm = node->Ints("perm");
        if (perm.empty()) for (int d = 0; d < rank; ++d) perm.push_back(rank - 1 - d);
        const Shape in_strides = strides(in);
        Shape permuted(rank);
        for (int d = 0; d < rank; ++d) permuted[d] = in_strides[perm[d]];
        copy_like(in, out, shapes[out], permuted, 0, strides(out), 0, false);
        break;
      }
      case StepKind::kRelabel: {
        // The input in logical order, written contiguously: that is the reshaped tensor.
        const int in = step.in[0], out = step.out[0];
        copy_like(in, out, shapes[in], strides(in), 0, StridesOf(shapes[in], false), 0, false);
        break;
      }
      case StepKind::kPool: {
        const int in = step.in[0], out = step.out[0];
        const Shape& xs = shapes[in];
        const Shape& ys = shapes[out];
        VS_ASSIGN_OR_RETURN(Window w, ComputeWindow(*node, xs[2], xs[3], node->Ints("kernel_shape"), true));
        if (w.out_h != ys[2] || w.out_w != ys[3]) return MakeError(StatusCode::kInternal, node->Describe() + ": pool window disagrees with shape inference");
        Launch l = launch;
        l.kind = Launch::Kind::kPool;
        cuda::PoolParams& p = l.pool;
        p.n = static_cast<int>(xs[0]);
        p.c = static_cast<int>(xs[1]);
        p.in_h = static_cast<int>(xs[2]);
        p.in_w = static_cast<int>(xs[3]);
        p.out_h = static_cast<int>(ys[2]);
        p.out_w = static_cast<int>(ys[3]);
        p.kh = static_cast<int>(w.kh);
        p.kw = static_cast<int>(w.kw);
        p.sh = static_cast<int>(w.sh);
        p.sw = static_cast<int>(w.sw);
        p.dh = static_cast<int>(w.dh);
        p.dw = static_cast<int>(w.dw);
        p.pad_top = static_cast<int>(w.pad_top);
        p.pad_left = static_cast<int>(w.pad_left);
        p.pad_bottom = static_cast<int>(w.pad_bottom);
        p.pad_right = static_cast<int>(w.pad_right);
        p.is_max = node->op_type == "MaxPool";
        p.count_include_pad = node->Int("count_include_pad", 0) != 0;
        if (!p.is_max && (w.dh != 1 || w.dw != 1)) return Unsupported(*node, "AveragePool with dilations");
        l.in[0] = in;
        l.out = out;
        plan->launches.push_back(l);
        break;
      }
      case StepKind::kGlobalAveragePool: {
        const Shape& xs = shapes[step.in[0]];
        Launch l = launch;
        l.kind = Launch::Kind::kGlobalAveragePool;
        l.in[0] = step.in[0];
        l.out = step.out[0];
        l.a = xs[0];
        l.b = xs[2] * xs[3];
        l.c = xs[1];
        plan->launches.push_back(l);
        break;
      }
      case StepKind::kResize: {
        const int in = step.in[0], out = step.out[0];
        std::vector<const Tensor*> params;
        for (const std::string& name : node->inputs) params.push_back(Known(model, known, name));
        for (size_t k = 1; k < params.size(); ++k)
          if (!node->inputs[k].empty() && (!params[k] || (params[k]->dtype == DType::kFloat32 && params[k]->f.size() != static_cast<size_t>(Count(params[k]->shape)))))
            return Unsupported(*node, "Resize scales/sizes are not known on the host");
        VS_ASSIGN_OR_RETURN(ResizePlan rp, ComputeResize(*node, params, shapes[in]));
        if (rp.out_shape != shapes[out]) return MakeError(StatusCode::kInternal, node->Describe() + ": resize shape disagrees with shape inference");
        std::vector<cuda::ResizeTapDevice> table;
        for (const ResizeTap& t : rp.rows) table.push_back({static_cast<int>(t.i0), static_cast<int>(t.i1), t.w1});
        for (const ResizeTap& t : rp.cols) table.push_back({static_cast<int>(t.i0), static_cast<int>(t.i1), t.w1});
        VS_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::Allocate(std::max<size_t>(table.size(), 1) * sizeof(cuda::ResizeTapDevice)));
        if (!table.empty())
          VS_CUDA_RETURN_IF_ERROR(cudaMemcpy(buffer.data(), table.data(), table.size() * sizeof(cuda::ResizeTapDevice), cudaMemcpyHostToDevice));
        Launch l = launch;
        l.kind = Launch::Kind::kResize;
        l.in[0] = in;
        l.out = out;
        l.resize_table = static_cast<int>(plan->resize_tables.size());
        plan->resize_tables.push_back(std::move(buffer));
        const Shape& xs = shapes[in];
        const Shape& ys = shapes[out];
        const int64_t dims[6] = {xs[0], xs[1], xs[2], xs[3], ys[2], ys[3]};
        for (int k = 0; k < 6; ++k) l.resize_dims[k] = static_cast<int>(dims[k]);
        plan->launches.push_back(l);
        break;
      }
      case StepKind::kSoftmax: {
        const int in = step.in[0];
        const Shape& xs = shapes[in];
        const int rank = static_cast<int>(xs.size());
        int64_t axis = node->Int("axis", model.opset >= 13 ? -1 : 1);
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) return Unsupported(*node, "axis out of range");
        auto product = [&](int64_t b, int64_t e) { int64_t p = 1; for (int64_t d = b; d < e; ++d) p *= xs[d]; return p; };
        Launch l = launch;
        l.kind = Launch::Kind::kSoftmax;
        l.in[0] = in;
        l.out = step.out[0];
        l.a = product(0, axis);
        l.b = model.opset >= 13 ? xs[axis] : product(axis, rank);
        l.c = model.opset >= 13 ? product(axis + 1, rank) : 1;
        plan->launches.push_back(l);
        break;
      }
    }
  }
  return Status::Ok();
}

Expected<BatchPlan*> CudaExecutor::Impl::PlanFor(int batch) {
  auto it = plans.find(batch);
  if (it != plans.end()) return it->second.get();
  auto plan = std::make_unique<BatchPlan>();
  plan->batch = batch;
  std::vector<Shape> input_shapes;
  for (const ValueInfo& input : model.graph.inputs) {
    Shape shape = input.shape;
    shape[0] = batch;
    input_shapes.push_back(shape);
  }
  VS_ASSIGN_OR_RETURN(auto known, InferShapesAndSmallValues(model, input_shapes));
  VS_RETURN_IF_ERROR(ShapesForBatch(model, values, known, &plan->shapes));
  for (size_t v = 0; v < values.size(); ++v) {
    const Value& value = values[v];
    if (value.where == Where::kDevice) {
      const int64_t bytes = Count(plan->shapes[v]) * static_cast<int64_t>(value.float32 ? 4 : element_bytes);
      if (bytes > value.bytes)
        return MakeError(StatusCode::kUnsupported, "CUDA executor: value '" + value.name + "' " + ShapeText(plan->shapes[v]) + " at batch " +
                                                       std::to_string(batch) + " outgrows its size at max_batch");
    } else if (value.where == Where::kHost) {
      const Tensor* t = Known(model, known, value.name);
      if (!t || t->dtype != DType::kFloat32 || static_cast<int64_t>(t->f.size()) != Count(t->shape))
        return MakeError(StatusCode::kUnsupported, "CUDA executor: value '" + value.name + "' is computed from shapes but too large to compute on the host");
      VS_ASSIGN_OR_RETURN(plan->host_values[static_cast<int>(v)], Upload(t->f));
    }
  }
  VS_RETURN_IF_ERROR(PlanLaunches(plan.get(), known));
  BatchPlan* raw = plan.get();
  plans[batch] = std::move(plan);
  return raw;
}

Status CudaExecutor::Impl::Execute(BatchPlan& plan, cudaStream_t stream, bool eager) {
  const float one = 1.0f, zero = 0.0f;
  for (const Launch& l : plan.launches) {
    void* out = Pointer(l.out, plan);
    const void* a = Pointer(l.in[0], plan);
    const void* b = Pointer(l.in[1], plan);
    const void* c = Pointer(l.in[2], plan);
    const bool out32 = l.out >= 0 && values[l.out].float32;
    const bool in32 = l.in[0] >= 0 && values[l.in[0]].float32;
    switch (l.kind) {
      case Launch::Kind::kStrided: {
        cudaError_t err;
        if (!fp16()) {
          err = cuda::LaunchStrided<float, float>(l.op, l.strided, static_cast<float*>(out), static_cast<const float*>(a),
                                                  static_cast<const float*>(b), static_cast<const float*>(c), stream);
        } else if (in32) {
          err = cuda::LaunchStrided<__half, float>(l.op, l.strided, static_cast<__half*>(out), static_cast<const float*>(a),
                                                   static_cast<const float*>(b), static_cast<const float*>(c), stream);
        } else if (out32) {
          err = cuda::LaunchStrided<float, __half>(l.op, l.strided, static_cast<float*>(out), static_cast<const __half*>(a),
                                                   static_cast<const __half*>(b), static_cast<const __half*>(c), stream);
        } else {
          err = cuda::LaunchStrided<__half, __half>(l.op, l.strided, static_cast<__half*>(out), static_cast<const __half*>(a),
                                                    static_cast<const __half*>(b), static_cast<const __half*>(c), stream);
        }
        VS_CUDA_RETURN_IF_ERROR(err);
        break;
      }
      case Launch::Kind::kMemset:
        VS_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(out, 0, static_cast<size_t>(l.a), stream));
        break;
      case Launch::Kind::kConv: {
        ConvLayer& layer = convs[steps[l.step].conv];
        ConvPlan& cp = plan.convs[steps[l.step].conv];
        bool done = false;
        if (layer.activation == cuda::EpilogueActivation::kRelu && !layer.fused_call_failed) {
          // One cuDNN call: relu(conv(x) + bias [+ residual]); without a residual alpha2 = 0 and z = zeros.
          const cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
              cudnn.get(), &one, cp.x.get(), a, layer.filter.get(), layer.weight.data(), cp.conv.get(), cp.algo, workspace.data(), cp.workspace,
              b ? &one : &zero, cp.y.get(), b ? b : zeros.data(), cp.bias.get(), layer.bias.data(), cp.relu.get(), cp.y.get(), out);
          if (st == CUDNN_STATUS_SUCCESS) {
            done = true;
          } else if (eager) {
            layer.fused_call_failed = true;  // e.g. NOT_SUPPORTED for this configuration: conv + own epilogue
          } else {
            return CudnnStatus(st, "cudnnConvolutionBiasActivationForward");
          }
        }
        if (!done) {
          VS_CUDNN_RETURN_IF_ERROR(cudnnConvolutionForward(cudnn.get(), &one, cp.x.get(), a, layer.filter.get(), layer.weight.data(), cp.conv.get(),
                                                           cp.algo, workspace.data(), cp.workspace, &zero, cp.y.get(), out));
          if (fp16()) {
            VS_CUDA_RETURN_IF_ERROR(cuda::LaunchConvEpilogue<__half>(static_cast<__half*>(out), static_cast<const __half*>(layer.bias.data()),
                                                                     static_cast<const __half*>(b), l.a, static_cast<int>(l.b), layer.activation,
                                                                     layer.alpha, stream));
          } else {
            VS_CUDA_RETURN_IF_ERROR(cuda::LaunchConvEpilogue<float>(static_cast<float*>(out), static_cast<const float*>(layer.bias.data()),
                                                                    static_cast<const float*>(b), l.a, static_cast<int>(l.b), layer.activation,
                                                                    layer.alpha, stream));
          }
        }
        break;
      }
      case Launch::Kind::kPool:
        VS_CUDA_RETURN_IF_ERROR(fp16() ? cuda::LaunchPool<__half>(l.pool, static_cast<const __half*>(a), static_cast<__half*>(out), stream)
                                       : cuda::LaunchPool<float>(l.pool, static_cast<const float*>(a), static_cast<float*>(out), stream));
        break;
      case Launch::Kind::kGlobalAveragePool: {
        const int n = static_cast<int>(l.a), hw = static_cast<int>(l.b), ch = static_cast<int>(l.c);
        VS_CUDA_RETURN_IF_ERROR(fp16() ? cuda::LaunchGlobalAveragePool<__half>(static_cast<const __half*>(a), static_cast<__half*>(out), n, hw, ch, stream)
                                       : cuda::LaunchGlobalAveragePool<float>(static_cast<const float*>(a), static_cast<float*>(out), n, hw, ch, stream));
        break;
      }
      case Launch::Kind::kResize: {
        const auto* rows = static_cast<const cuda::ResizeTapDevice*>(plan.resize_tables[l.resize_table].data());
        const auto* cols = rows + l.resize_dims[4];
        const int* d = l.resize_dims;
        VS_CUDA_RETURN_IF_ERROR(fp16() ? cuda::LaunchResize<__half>(static_cast<const __half*>(a), static_cast<__half*>(out), d[0], d[1], d[2], d[3], d[4], d[5], rows, cols, stream)
                                       : cuda::LaunchResize<float>(static_cast<const float*>(a), static_cast<float*>(out), d[0], d[1], d[2], d[3], d[4], d[5], rows, cols, stream));
        break;
      }
      case Launch::Kind::kSoftmax:
        VS_CUDA_RETURN_IF_ERROR(fp16() ? cuda::LaunchSoftmax<__half>(static_cast<const __half*>(a), static_cast<__half*>(out), l.a, l.b, l.c, stream)
                                       : cuda::LaunchSoftmax<float>(static_cast<const float*>(a), static_cast<float*>(out), l.a, l.b, l.c, stream));
        break;
    }
  }
  return Status::Ok();
}

// Runs the plan: op by op the first time, captured into a CUDA graph the second, replayed after that.
Status CudaExecutor::Impl::Enqueue(BatchPlan& plan, cudaStream_t stream) {
  VS_CUDNN_RETURN_IF_ERROR(cudnnSetStream(cudnn.get(), stream));
  const bool graphs = options.use_cuda_graphs && stream != nullptr;
  if (plan.graph.get()) {
    VS_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(plan.graph.get(), stream));
  } else if (plan.runs == 0 || !graphs || plan.graph_failed) {
    VS_RETURN_IF_ERROR(Execute(plan, stream, /*eager=*/true));
  } else {
    // Relaxed: cuDNN may make calls that stricter modes forbid during capture (they are harmless here:
    // every buffer exists already, and nothing synchronises).
    VS_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    const Status executed = Execute(plan, stream, /*eager=*/false);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);  // always: the stream must leave capture
    // (Built in one expression: nvcc warns of the discarded Status& of `status = ...`.)
    const Status status = [&]() -> Status {
      VS_RETURN_IF_ERROR(executed);
      VS_RETURN_IF_ERROR(CudaStatus(end, "cudaStreamEndCapture"));
      return CudaStatus(cudaGraphInstantiate(plan.graph.out(), graph, 0), "cudaGraphInstantiate");
    }();
    if (graph) cudaGraphDestroy(graph);
    if (status.ok()) {
      VS_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(plan.graph.get(), stream));
    } else {
      // Still correct without a graph, only slower: say so once, and run op by op from now on.
      cudaGetLastError();  // a failed capture may leave a (non-sticky) error behind
      std::fprintf(stderr, "vidscan: CUDA graph capture failed at batch %d (%s); this batch size runs op by op\n", plan.batch,
                   status.ToString().c_str());
      plan.graph_failed = true;
      VS_RETURN_IF_ERROR(Execute(plan, stream, /*eager=*/true));
    }
  }
  ++plan.runs;
  return Status::Ok();
}

CudaExecutor::CudaExecutor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaExecutor::CudaExecutor(CudaExecutor&&) noexcept = default;
CudaExecutor& CudaExecutor::operator=(CudaExecutor&&) noexcept = default;
CudaExecutor::~CudaExecutor() = default;

const std::vector<ValueInfo>& CudaExecutor::inputs() const { return impl_->model.graph.inputs; }
const std::vector<ValueInfo>& CudaExecutor::outputs() const { return impl_->model.graph.outputs; }
const Model& CudaExecutor::optimized_model() const { return impl_->model; }
int CudaExecutor::max_batch() const { return impl_->max_batch; }
Precision CudaExecutor::precision() const { return impl_->options.precision; }
size_t CudaExecutor::arena_bytes() const { return impl_->arena.bytes(); }

bool CudaExecutor::graph_ready(int batch) const {
  auto it = impl_->plans.find(batch);
  return it != impl_->plans.end() && it->second->graph.get() != nullptr;
}

ConvAlgorithmChoices CudaExecutor::algorithm_choices() const { return impl_->choices; }

Expected<CudaExecutor> CudaExecutor::Create(const Model& model, int max_batch, CudaExecutorOptions options) {
  VS_RETURN_IF_ERROR(CudaDeviceAvailable(options.device));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  auto impl = std::make_unique<Impl>();
  VS_ASSIGN_OR_RETURN(impl->model, PrepareModelForExecution(model, max_batch));
  impl->max_batch = max_batch;
  impl->options = options;
  impl->element_bytes = options.precision == Precision::kFloat16 ? 2 : 4;
  if (options.algorithm_table != nullptr) {
    cudaDeviceProp prop{};
    VS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, options.device));
    impl->table_prefix = std::string(prop.name) + "|cudnn" + std::to_string(cudnnGetVersion()) + "|" +
                         (options.precision == Precision::kFloat16 ? "fp16" : "fp32") + "|ws" + std::to_string(options.workspace_bytes);
  }
  for (const ValueInfo& input : impl->model.graph.inputs)
    for (size_t d = 1; d < input.shape.size(); ++d)
      if (input.shape[d] <= 0)
        return MakeError(StatusCode::kUnsupported, "CUDA executor: input '" + input.name + "' has a dynamic dim " + std::to_string(d) + " (only the batch may be)");
  VS_ASSIGN_OR_RETURN(impl->cudnn, CudnnHandle::Make());
  VS_ASSIGN_OR_RETURN(impl->own_stream, CudaStream::Create(cudaStreamNonBlocking));
  VS_ASSIGN_OR_RETURN(impl->workspace, DeviceBuffer::Allocate(options.workspace_bytes));
  std::vector<Shape> input_shapes;
  for (const ValueInfo& input : impl->model.graph.inputs) {
    Shape shape = input.shape;
    shape[0] = max_batch;
    input_shapes.push_back(shape);
  }
  VS_ASSIGN_OR_RETURN(auto at_max, InferShapesAndSmallValues(impl->model, input_shapes));
  VS_RETURN_IF_ERROR(impl->BuildSteps(at_max));
  VS_RETURN_IF_ERROR(impl->PlanArena());
  return CudaExecutor(std::move(impl));
}

Expected<std::vector<std::vector<int64_t>>> CudaExecutor::OutputShapes(int batch) {
  if (batch < 1 || batch > impl_->max_batch) return MakeError(StatusCode::kInvalidArgument, "batch " + std::to_string(batch) + " is outside 1.." + std::to_string(impl_->max_batch));
  VS_ASSIGN_OR_RETURN(BatchPlan * plan, impl_->PlanFor(batch));
  std::vector<std::vector<int64_t>> shapes;
  for (int v : impl_->output_staging) shapes.push_back(plan->shapes[v]);
  return shapes;
}

Expected<double> CudaExecutor::ConvFlops(int batch) {
  if (batch < 1 || batch > impl_->max_batch) return MakeError(StatusCode::kInvalidArgument, "batch " + std::to_string(batch) + " is outside 1.." + std::to_string(impl_->max_batch));
  VS_ASSIGN_OR_RETURN(BatchPlan * plan, impl_->PlanFor(batch));
  return plan->conv_flops;
}

Status CudaExecutor::Run(std::span<const DeviceTensorView> inputs, std::span<float* const> outputs, void* stream_handle) {
  Impl& impl = *impl_;
  std::vector<const Shape*> shapes;
  for (const DeviceTensorView& view : inputs) shapes.push_back(&view.shape);
  VS_ASSIGN_OR_RETURN(int batch, CheckBatchInputs(impl.model.graph.inputs, shapes, impl.max_batch));
  if (outputs.size() != impl.output_staging.size()) return MakeError(StatusCode::kInvalidArgument, "wrong number of output buffers");
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(impl.options.device));
  VS_ASSIGN_OR_RETURN(BatchPlan * plan, impl.PlanFor(batch));
  cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].data) return MakeError(StatusCode::kInvalidArgument, "input " + std::to_string(k) + " has no data");
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(impl.Pointer(impl.input_staging[k], *plan), inputs[k].data, Count(inputs[k].shape) * sizeof(float),
                                            cudaMemcpyDeviceToDevice, stream));
  }
  VS_RETURN_IF_ERROR(impl.Enqueue(*plan, stream));
  for (size_t k = 0; k < outputs.size(); ++k) {
    const int v = impl.output_staging[k];
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(outputs[k], impl.Pointer(v, *plan), Count(plan->shapes[v]) * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  }
  return Status::Ok();
}

Status CudaExecutor::RunHost(std::span<const HostTensorView> inputs, std::vector<HostTensor>* outputs) {
  Impl& impl = *impl_;
  std::vector<const Shape*> shapes;
  for (const HostTensorView& view : inputs) shapes.push_back(&view.shape);
  VS_ASSIGN_OR_RETURN(int batch, CheckBatchInputs(impl.model.graph.inputs, shapes, impl.max_batch));
  VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(impl.options.device));
  VS_ASSIGN_OR_RETURN(BatchPlan * plan, impl.PlanFor(batch));
  cudaStream_t stream = impl.own_stream.get();
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].data) return MakeError(StatusCode::kInvalidArgument, "input " + std::to_string(k) + " has no data");
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(impl.Pointer(impl.input_staging[k], *plan), inputs[k].data, Count(inputs[k].shape) * sizeof(float),
                                            cudaMemcpyHostToDevice, stream));
  }
  VS_RETURN_IF_ERROR(impl.Enqueue(*plan, stream));
  outputs->resize(impl.output_staging.size());
  for (size_t k = 0; k < outputs->size(); ++k) {
    const int v = impl.output_staging[k];
    (*outputs)[k].shape = plan->shapes[v];
    (*outputs)[k].data.resize(static_cast<size_t>(Count(plan->shapes[v])));
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync((*outputs)[k].data.data(), impl.Pointer(v, *plan), (*outputs)[k].data.size() * sizeof(float),
                                            cudaMemcpyDeviceToHost, stream));
  }
  VS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return Status::Ok();
}

}  // namespace vidscan::infer
