// The float32 CPU executor: runs the optimised graph node by node over a table of values. Intermediate
// buffers are recycled as soon as their last reader has run, so memory stays near the live set and, after
// a first run at the largest batch, nothing is allocated per run.
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "infer/cpu_ops.h"
#include "infer/infer.h"
#include "infer/thread_pool.h"

namespace vidscan::infer {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? "," : "") + std::to_string(shape[k]);
  return s + "]";
}

// A model exported with a fixed batch of 1 often hard-codes that 1 in Reshape shape constants (YOLOX:
// [1, 85, -1]). To serve larger batches, such a leading 1 becomes 0 ("copy dim 0 of the input"), which is
// the same shape at batch 1 and the batch dim otherwise.
void MakeReshapesBatchAgnostic(Model* model) {
  // Only shape constants that nothing but a Reshape's shape input reads.
  std::set<std::string> read_elsewhere;
  for (const Node& node : model->graph.nodes)
    for (size_t k = 0; k < node.inputs.size(); ++k)
      if (node.op_type != "Reshape" || k != 1) read_elsewhere.insert(node.inputs[k]);
  for (const ValueInfo& output : model->graph.outputs) read_elsewhere.insert(output.name);
  for (const Node& node : model->graph.nodes) {
    if (node.op_type != "Reshape" || node.inputs.size() < 2 || node.Int("allowzero", 0) != 0) continue;
    if (read_elsewhere.count(node.inputs[1])) continue;
    auto it = model->graph.initializers.find(node.inputs[1]);
    if (it == model->graph.initializers.end() || it->second.dtype != DType::kInt64) continue;
    if (!it->second.i.empty() && it->second.i[0] == 1) it->second.i[0] = 0;
  }
}

}  // namespace

Expected<Model> PrepareModelForExecution(const Model& source, int max_batch) {
  if (max_batch < 1) return MakeError(StatusCode::kInvalidArgument, "max_batch must be >= 1");
  Model model = source;
  Graph& graph = model.graph;
  bool batch_agnostic = false;
  for (ValueInfo& input : graph.inputs) {
    if (input.shape.empty()) return MakeError(StatusCode::kUnsupported, "input '" + input.name + "' is a scalar; a batch dim is required");
    if (input.shape[0] > max_batch)
      return MakeError(StatusCode::kInvalidArgument, "input '" + input.name + "' has a fixed batch of " + std::to_string(input.shape[0]) + ", more than max_batch " + std::to_string(max_batch));
    if (input.shape[0] > 0 && input.shape[0] < max_batch) {
      if (input.shape[0] != 1)
        return MakeError(StatusCode::kUnsupported, "input '" + input.name + "' has a fixed batch of " + std::to_string(input.shape[0]) + ", less than max_batch " + std::to_string(max_batch));
      input.shape[0] = -1;
      batch_agnostic = true;
    }
  }
  VS_RETURN_IF_ERROR(OptimizeForInference(&model));
  // After folding, so shape targets computed from constants are initializers too.
  if (batch_agnostic) MakeReshapesBatchAgnostic(&model);
  for (const Node& node : graph.nodes)
    if (!IsSupportedOp(node.op_type)) return MakeError(StatusCode::kUnsupported, "operator " + node.op_type + " (node '" + node.name + "') is not supported");

  return model;
}

Expected<int> CheckBatchInputs(const std::vector<ValueInfo>& declared, std::span<const std::vector<int64_t>* const> shapes, int max_batch) {
  if (shapes.size() != declared.size())
    return MakeError(StatusCode::kInvalidArgument, "the model takes " + std::to_string(declared.size()) + " inputs, got " + std::to_string(shapes.size()));
  int batch = -1;
  for (size_t k = 0; k < shapes.size(); ++k) {
    const std::vector<int64_t>& shape = *shapes[k];
    const ValueInfo& info = declared[k];
    bool matches = shape.size() == info.shape.size() && !shape.empty();
    for (size_t d = 0; matches && d < shape.size(); ++d) matches = info.shape[d] < 0 || info.shape[d] == shape[d];
    if (!matches) return MakeError(StatusCode::kInvalidArgument, "input '" + info.name + "' has shape " + ShapeText(shape) + ", the model declares " + ShapeText(info.shape));
    if (shape[0] < 1 || shape[0] > max_batch)
      return MakeError(StatusCode::kInvalidArgument, "batch " + std::to_string(shape[0]) + " is outside 1.." + std::to_string(max_batch));
    if (batch >= 0 && shape[0] != batch) return MakeError(StatusCode::kInvalidArgument, "inputs disagree on the batch size");
    batch = static_cast<int>(shape[0]);
  }
  return batch;
}

struct CpuExecutor::Impl {
  Model model;
  int max_batch = 1;
  std::unique_ptr<ThreadPool> pool;
  OpContext context;

  // Value table: constants point at initializers; the rest live in `values`.
  std::map<std::string, int> value_index;
  std::vector<Tensor> values;
  std::vector<const Tensor*> constant;  // per value: the initializer, or null
  struct Step {
    const Node* node;
    std::vector<int> inputs;   // -1: omitted
    std::vector<int> outputs;  // -1: omitted
    std::vector<int> release;  // values whose last reader is this step
  };
  std::vector<Step> steps;
  std::vector<int> input_values, output_values;
  std::vector<Tensor> spare;  // recycled buffers

  int Index(const std::string& name) {
    auto [it, inserted] = value_index.emplace(name, static_cast<int>(values.size()));
    if (inserted) {
      values.emplace_back();
      constant.push_back(nullptr);
    }
    return it->second;
  }

  std::vector<size_t> last_size;  // per value: its float count in the previous run

  // Hands value v the smallest spare buffer that held its size last run (best fit), else the largest:
  // with a steady batch the assignment settles and runs stop allocating.
  void Recycle(int v) {
    if (spare.empty()) return;
    auto capacity = [](const Tensor& t) { return t.f.capacity(); };
    auto best = spare.end();
    for (auto it = spare.begin(); it != spare.end(); ++it)
      if (capacity(*it) >= last_size[v] && (best == spare.end() || capacity(*it) < capacity(*best))) best = it;
    if (best == spare.end())
      best = std::max_element(spare.begin(), spare.end(), [&](const Tensor& a, const Tensor& b) { return capacity(a) < capacity(b); });
    if (capacity(*best) <= capacity(values[v])) return;
    std::swap(values[v], *best);
    if (best->f.capacity() == 0 && best->i.capacity() == 0) spare.erase(best);
  }
};

CpuExecutor::CpuExecutor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CpuExecutor::CpuExecutor(CpuExecutor&&) noexcept = default;
CpuExecutor& CpuExecutor::operator=(CpuExecutor&&) noexcept = default;
CpuExecutor::~CpuExecutor() = default;

const std::vector<ValueInfo>& CpuExecutor::inputs() const { return impl_->model.graph.inputs; }
const std::vector<ValueInfo>& CpuExecutor::outputs() const { return impl_->model.graph.outputs; }
const Model& CpuExecutor::optimized_model() const { return impl_->model; }
int CpuExecutor::max_batch() const { return impl_->max_batch; }

Expected<CpuExecutor> CpuExecutor::Create(const Model& model, int max_batch, CpuExecutorOptions options) {
  if (max_batch < 1) return MakeError(StatusCode::kInvalidArgument, "max_batch must be >= 1");
  auto impl = std::make_unique<Impl>();
  VS_ASSIGN_OR_RETURN(impl->model, PrepareModelForExecution(model, max_batch));
  impl->max_batch = max_batch;
  Graph& graph = impl->model.graph;

  int threads = options.threads > 0 ? options.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  impl->pool = std::make_unique<ThreadPool>(threads);
  impl->context.opset = impl->model.opset;
  impl->context.pool = impl->pool.get();

  for (auto& [name, tensor] : graph.initializers) impl->constant[impl->Index(name)] = &tensor;
  for (const ValueInfo& input : graph.inputs) impl->input_values.push_back(impl->Index(input.name));
  std::vector<int> last_reader;
  for (const Node& node : graph.nodes) {
    Impl::Step step{&node, {}, {}, {}};
    for (const std::string& in : node.inputs) step.inputs.push_back(in.empty() ? -1 : impl->Index(in));
    for (const std::string& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : impl->Index(out));
    impl->steps.push_back(std::move(step));
  }
  for (const ValueInfo& output : graph.outputs) impl->output_values.push_back(impl->Index(output.name));
  impl->last_size.assign(impl->values.size(), 0);
  // A value's buffer is recycled after its last reader, unless it is a model input or output or constant.
  last_reader.assign(impl->values.size(), -1);
  for (size_t s = 0; s < impl->steps.size(); ++s)
    for (int v : impl->steps[s].inputs) if (v >= 0) last_reader[v] = static_cast<int>(s);
  std::vector<bool> pinned(impl->values.size(), false);
  for (int v : impl->input_values) pinned[v] = true;
  for (int v : impl->output_values) pinned[v] = true;
  for (size_t v = 0; v < impl->values.size(); ++v)
    if (last_reader[v] >= 0 && !pinned[v] && !impl->constant[v]) impl->steps[last_reader[v]].release.push_back(static_cast<int>(v));
  return CpuExecutor(std::move(impl));
}

Status CpuExecutor::Run(std::span<const HostTensorView> inputs, std::vector<HostTensor>* outputs, RunProfile* profile) {
  Impl& impl = *impl_;
  const Graph& graph = impl.model.graph;
  std::vector<const std::vector<int64_t>*> shapes;
  for (const HostTensorView& view : inputs) shapes.push_back(&view.shape);
  VS_RETURN_IF_ERROR(CheckBatchInputs(graph.inputs, shapes, impl.max_batch).status());
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ValueInfo& info = graph.inputs[k];
    const HostTensorView& view = inputs[k];
    VS_ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(view.shape));
    if (!view.data) return MakeError(StatusCode::kInvalidArgument, "input '" + info.name + "' has no data");
    Tensor& value = impl.values[impl.input_values[k]];
    value.dtype = DType::kFloat32;
    value.shape = view.shape;
    value.f.assign(view.data, view.data + count);
  }

  std::vector<const Tensor*> in;
  std::vector<Tensor*> out;
  for (const Impl::Step& step : impl.steps) {
    in.clear();
    out.clear();
    for (int v : step.inputs) in.push_back(v < 0 ? nullptr : impl.constant[v] ? impl.constant[v] : &impl.values[v]);
    for (int v : step.outputs) {
      if (v < 0) { out.push_back(nullptr); continue; }
      impl.Recycle(v);
      out.push_back(&impl.values[v]);
    }
    const auto start = profile ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    VS_RETURN_IF_ERROR(RunCpuOp(*step.node, impl.context, in, out));
    if (profile) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string op = step.node->op_type;
      if (step.node->fused_residual) op += "+add";
      if (step.node->fused_activation != Activation::kNone) op += std::string("+") + ActivationName(step.node->fused_activation);
      auto it = std::find_if(profile->entries.begin(), profile->entries.end(), [&](const RunProfile::Entry& e) { return e.op == op; });
      if (it == profile->entries.end()) it = profile->entries.insert(profile->entries.end(), {op, 0, 0.0});
      ++it->nodes;
      it->seconds += seconds;
    }
    for (int v : step.outputs) if (v >= 0) impl.last_size[v] = impl.values[v].f.size();
    for (int v : step.release) impl.spare.push_back(std::move(impl.values[v]));
  }

  if (profile)
    std::sort(profile->entries.begin(), profile->entries.end(), [](const auto& a, const auto& b) { return a.seconds > b.seconds; });
  outputs->resize(impl.output_values.size());
  for (size_t k = 0; k < impl.output_values.size(); ++k) {
    const int v = impl.output_values[k];
    const Tensor& value = impl.constant[v] ? *impl.constant[v] : impl.values[v];
    if (value.dtype != DType::kFloat32) return MakeError(StatusCode::kUnsupported, "output '" + graph.outputs[k].name + "' is not float32");
    (*outputs)[k].shape = value.shape;
    (*outputs)[k].data.assign(value.f.begin(), value.f.end());
  }
  return Status::Ok();
}

}  // namespace vidscan::infer

namespace vidscan::infer {
const char* PrecisionName(Precision precision) { return precision == Precision::kFloat16 ? "fp16" : "fp32"; }
}  // namespace vidscan::infer
