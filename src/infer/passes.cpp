// Graph passes over the IR. Each keeps value names stable where it can, so errors and debugging still
// point at the names in the ONNX file.
#include <algorithm>
#include <cmath>
#include <map>
#include <queue>
#include <set>

#include "infer/cpu_ops.h"
#include "infer/infer.h"

namespace vidscan::infer {
namespace {

// How many node inputs read each value (graph outputs count as a reader too, so they are never fused
// away).
std::map<std::string, int> CountReaders(const Graph& graph) {
  std::map<std::string, int> readers;
  for (const Node& node : graph.nodes)
    for (const std::string& input : node.inputs)
      if (!input.empty()) ++readers[input];
  for (const ValueInfo& output : graph.outputs) readers[output.name] += 1000;
  return readers;
}

// Index of the only live node reading `value`, or -1.
int SoleReader(const Graph& graph, const std::map<std::string, int>& readers, const std::vector<bool>& removed,
               const std::string& value) {
  auto it = readers.find(value);
  if (it == readers.end() || it->second != 1) return -1;
  for (size_t k = 0; k < graph.nodes.size(); ++k)
    for (const std::string& input : graph.nodes[k].inputs)
      if (!removed[k] && input == value) return static_cast<int>(k);
  return -1;
}

void EraseNodes(Graph* graph, const std::vector<bool>& removed) {
  std::vector<Node> kept;
  kept.reserve(graph->nodes.size());
  for (size_t k = 0; k < graph->nodes.size(); ++k)
    if (!removed[k]) kept.push_back(std::move(graph->nodes[k]));
  graph->nodes = std::move(kept);
}

std::string FreshName(const Graph& graph, const std::string& base) {
  std::string name = base;
  for (int k = 1; graph.initializers.count(name); ++k) name = base + "_" + std::to_string(k);
  return name;
}

}  // namespace

Status SortTopologically(Graph* graph) {
  std::set<std::string> available;
  for (const ValueInfo& input : graph->inputs) available.insert(input.name);
  for (const auto& [name, tensor] : graph->initializers) available.insert(name);
  std::map<std::string, size_t> producer;
  for (size_t k = 0; k < graph->nodes.size(); ++k)
    for (const std::string& output : graph->nodes[k].outputs) {
      if (output.empty()) continue;
      if (available.count(output) || !producer.emplace(output, k).second)
        return MakeError(StatusCode::kCorruptData, "value '" + output + "' is produced twice (again by " + graph->nodes[k].Describe() + ")");
    }
  const size_t n = graph->nodes.size();
  std::vector<int> pending(n, 0);
  std::vector<std::vector<size_t>> dependents(n);
  for (size_t k = 0; k < n; ++k)
    for (const std::string& input : graph->nodes[k].inputs) {
      if (input.empty() || available.count(input)) continue;
      auto it = producer.find(input);
      if (it == producer.end())
        return MakeError(StatusCode::kCorruptData, graph->nodes[k].Describe() + " reads '" + input + "', which nothing produces");
      ++pending[k];
      dependents[it->second].push_back(k);
    }
  // Kahn's algorithm, taking ready nodes in file order so an already-sorted graph keeps its order.
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t k = 0; k < n; ++k) if (pending[k] == 0) ready.push(k);
  std::vector<size_t> order;
  order.reserve(n);
  while (!ready.empty()) {
    const size_t k = ready.top();
    ready.pop();
    order.push_back(k);
    for (size_t d : dependents[k]) if (--pending[d] == 0) ready.push(d);
  }
  if (order.size() != n) {
    for (size_t k = 0; k < n; ++k)
      if (pending[k] > 0)
        return MakeError(StatusCode::kCorruptData, "the graph has a cycle through " + graph->nodes[k].Describe());
  }
  for (const ValueInfo& output : graph->outputs)
    if (!available.count(output.name) && !producer.count(output.name))
      return MakeError(StatusCode::kCorruptData, "graph output '" + output.name + "' is produced by no node");
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (size_t k : order) sorted.push_back(std::move(graph->nodes[k]));
  graph->nodes = std::move(sorted);
  return Status::Ok();
}

Status FoldConstants(Model* model) {
  Graph& graph = model->graph;
  std::set<std::string> graph_outputs;
  for (const ValueInfo& output : graph.outputs) graph_outputs.insert(output.name);
  std::vector<bool> removed(graph.nodes.size(), false);
  OpContext context;
  context.opset = model->opset;
  context.max_elements = kMaxFoldedElements;  // a file must not make loading allocate gigabytes
  for (size_t k = 0; k < graph.nodes.size(); ++k) {
    const Node& node = graph.nodes[k];
    bool constant = true;
    std::vector<const Tensor*> inputs;
    for (const std::string& input : node.inputs) {
      if (input.empty()) { inputs.push_back(nullptr); continue; }
      auto it = graph.initializers.find(input);
      if (it == graph.initializers.end()) { constant = false; break; }
      inputs.push_back(&it->second);
    }
    // A graph output stays a node output so the executor fills it like any other.
    bool feeds_output = false;
    for (const std::string& output : node.outputs) feeds_output |= graph_outputs.count(output) > 0;
    if (!constant || feeds_output) continue;
    std::vector<Tensor> results(node.outputs.size());
    std::vector<Tensor*> outputs;
    for (size_t o = 0; o < results.size(); ++o) outputs.push_back(node.outputs[o].empty() ? nullptr : &results[o]);
    Status status = RunCpuOp(node, context, inputs, outputs);
    if (!status.ok()) return status.WithContext("constant folding");
    for (size_t o = 0; o < results.size(); ++o)
      if (!node.outputs[o].empty()) graph.initializers[node.outputs[o]] = std::move(results[o]);
    removed[k] = true;
  }
  EraseNodes(&graph, removed);
  return Status::Ok();
}

Status FoldBatchNormIntoConv(Graph* graph) {
  const auto readers = CountReaders(*graph);
  std::map<std::string, size_t> producer;
  for (size_t k = 0; k < graph->nodes.size(); ++k)
    for (const std::string& output : graph->nodes[k].outputs) producer[output] = k;
  std::vector<bool> removed(graph->nodes.size(), false);
  for (size_t k = 0; k < graph->nodes.size(); ++k) {
    Node& bn = graph->nodes[k];
    if (bn.op_type != "BatchNormalization" || bn.inputs.size() < 5) continue;
    bool extra_outputs = false;
    for (size_t o = 1; o < bn.outputs.size(); ++o) extra_outputs |= !bn.outputs[o].empty();
    if (extra_outputs) continue;
    auto it = producer.find(bn.inputs[0]);
    if (it == producer.end()) continue;
    Node& conv = graph->nodes[it->second];
    if (conv.op_type != "Conv" || removed[it->second] || readers.at(bn.inputs[0]) != 1 || conv.fused_activation != Activation::kNone || conv.fused_residual) continue;
    const Tensor* params[4];
    bool constant = true;
    for (int p = 0; p < 4; ++p) {
      auto found = graph->initializers.find(bn.inputs[p + 1]);
      constant &= found != graph->initializers.end() && found->second.dtype == DType::kFloat32;
      params[p] = constant ? &found->second : nullptr;
    }
    auto weight_it = graph->initializers.find(conv.inputs.size() > 1 ? conv.inputs[1] : "");
    if (!constant || weight_it == graph->initializers.end() || weight_it->second.dtype != DType::kFloat32 || weight_it->second.rank() < 1) continue;
    const Tensor& weight = weight_it->second;
    const int64_t out_channels = weight.shape[0];
    bool sizes_ok = true;
    for (const Tensor* p : params) sizes_ok &= p->size() == out_channels;
    const Tensor* bias = nullptr;
    if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) {
      auto b = graph->initializers.find(conv.inputs[2]);
      if (b == graph->initializers.end() || b->second.size() != out_channels || b->second.dtype != DType::kFloat32) continue;
      bias = &b->second;
    }
    if (!sizes_ok || out_channels == 0) continue;
    // w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps); new names, since the
    // original weights may be shared with another node.
    const float epsilon = bn.Float("epsilon", 1e-5f);
    Tensor folded_weight = weight;
    Tensor folded_bias = Tensor::Float({out_channels}, std::vector<float>(out_channels));
    const int64_t per_channel = weight.size() / out_channels;
    for (int64_t c = 0; c < out_channels; ++c) {
      const float scale = params[0]->f[c] / std::sqrt(params[3]->f[c] + epsilon);
      for (int64_t j = 0; j < per_channel; ++j) folded_weight.f[c * per_channel + j] *= scale;
      folded_bias.f[c] = ((bias ? bias->f[c] : 0.0f) - params[2]->f[c]) * scale + params[1]->f[c];
    }
    const std::string weight_name = FreshName(*graph, conv.inputs[1] + "_bnfolded");
    graph->initializers[weight_name] = std::move(folded_weight);
    const std::string bias_name = FreshName(*graph, bn.name + "_bias_bnfolded");
    graph->initializers[bias_name] = std::move(folded_bias);
    conv.inputs.resize(3);
    conv.inputs[1] = weight_name;
    conv.inputs[2] = bias_name;
    conv.outputs[0] = bn.outputs[0];
    producer[bn.outputs[0]] = it->second;
    removed[k] = true;
  }
  EraseNodes(graph, removed);
  return Status::Ok();
}

Status FuseConvEpilogues(Graph* graph) {
  const auto readers = CountReaders(*graph);
  std::vector<bool> removed(graph->nodes.size(), false);
  // The fused node takes the place of the last node it absorbs: everything it reads (a residual made
  // after the conv included) exists by then, and everything after reads its output.
  std::vector<Node*> slot(graph->nodes.size());
  for (size_t k = 0; k < graph->nodes.size(); ++k) slot[k] = &graph->nodes[k];
  for (size_t k = 0; k < graph->nodes.size(); ++k) {
    // A node fused already sits here again (at its last absorbed position): an Add after its activation
    // is not a residual of this epilogue (out = act(conv + bias + residual)), so leave it.
    const Node& candidate = graph->nodes[k];
    if (removed[k] || candidate.op_type != "Conv" || candidate.fused_residual || candidate.fused_activation != Activation::kNone) continue;
    Node conv = graph->nodes[k];
    size_t position = k;
    std::vector<size_t> absorbed;
    // Residual Add of a runtime value (a constant would be a bias, not a skip connection).
    int reader = SoleReader(*graph, readers, removed, conv.outputs[0]);
    if (reader >= 0 && graph->nodes[reader].op_type == "Add" && graph->nodes[reader].inputs.size() == 2) {
      const Node& add = graph->nodes[reader];
      const std::string& other = add.inputs[0] == conv.outputs[0] ? add.inputs[1] : add.inputs[0];
      if (other != conv.outputs[0] && !graph->initializers.count(other)) {
        conv.inputs.resize(3);
        conv.inputs.push_back(other);
        conv.fused_residual = true;
        conv.outputs[0] = add.outputs[0];
        absorbed.push_back(reader);
        position = reader;
      }
    }
    reader = SoleReader(*graph, readers, removed, conv.outputs[0]);
    const std::string& op = reader >= 0 ? graph->nodes[reader].op_type : std::string();
    if (op == "Relu" || op == "LeakyRelu" || op == "Sigmoid") {
      const Node& act = graph->nodes[reader];
      conv.fused_activation = op == "Relu" ? Activation::kRelu : op == "Sigmoid" ? Activation::kSigmoid : Activation::kLeakyRelu;
      conv.fused_alpha = act.Float("alpha", 0.01f);
      conv.outputs[0] = act.outputs[0];
      absorbed.push_back(reader);
      position = std::max<size_t>(position, reader);
    } else {
      // SiLU as exporters write it: y = x * Sigmoid(x), x read by exactly those two nodes.
      auto it = readers.find(conv.outputs[0]);
      if (it != readers.end() && it->second == 2) {
        int sigmoid = -1, mul = -1;
        for (size_t j = 0; j < graph->nodes.size(); ++j) {
          const Node& n = graph->nodes[j];
          if (removed[j] || std::find(n.inputs.begin(), n.inputs.end(), conv.outputs[0]) == n.inputs.end()) continue;
          if (n.op_type == "Sigmoid") sigmoid = static_cast<int>(j);
          else if (n.op_type == "Mul") mul = static_cast<int>(j);
        }
        if (sigmoid >= 0 && mul >= 0) {
          const Node& s = graph->nodes[sigmoid];
          const Node& m = graph->nodes[mul];
          const bool pairs = m.inputs.size() == 2 &&
                             ((m.inputs[0] == conv.outputs[0] && m.inputs[1] == s.outputs[0]) ||
                              (m.inputs[1] == conv.outputs[0] && m.inputs[0] == s.outputs[0]));
          if (pairs && SoleReader(*graph, readers, removed, s.outputs[0]) == mul) {
            conv.fused_activation = Activation::kSilu;
            conv.outputs[0] = m.outputs[0];
            absorbed.push_back(sigmoid);
            absorbed.push_back(mul);
            position = std::max<size_t>(position, static_cast<size_t>(mul));
          }
        }
      }
    }
    if (absorbed.empty()) continue;
    removed[k] = true;
    for (size_t a : absorbed) removed[a] = true;
    graph->nodes[position] = std::move(conv);
    removed[position] = false;
  }
  EraseNodes(graph, removed);
  return Status::Ok();
}

Status RemoveDeadNodes(Graph* graph) {
  std::set<std::string> needed;
  for (const ValueInfo& output : graph->outputs) needed.insert(output.name);
  std::vector<bool> removed(graph->nodes.size(), true);
  for (size_t k = graph->nodes.size(); k-- > 0;) {
    const Node& node = graph->nodes[k];
    bool live = false;
    for (const std::string& output : node.outputs) live |= needed.count(output) > 0;
    if (!live) continue;
    removed[k] = false;
    for (const std::string& input : node.inputs) if (!input.empty()) needed.insert(input);
  }
  EraseNodes(graph, removed);
  for (auto it = graph->initializers.begin(); it != graph->initializers.end();)
    it = needed.count(it->first) ? std::next(it) : graph->initializers.erase(it);
  return Status::Ok();
}

Status OptimizeForInference(Model* model) {
  VS_RETURN_IF_ERROR(SortTopologically(&model->graph));
  VS_RETURN_IF_ERROR(FoldConstants(model));
  VS_RETURN_IF_ERROR(FoldBatchNormIntoConv(&model->graph));
  VS_RETURN_IF_ERROR(FuseConvEpilogues(&model->graph));
  VS_RETURN_IF_ERROR(RemoveDeadNodes(&model->graph));
  return SortTopologically(&model->graph);
}

}  // namespace vidscan::infer
