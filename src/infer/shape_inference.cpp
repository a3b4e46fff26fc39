// Shape inference by running the CPU kernels in shape-only mode: one source of truth for every op's
// output shape, and int64 shape arithmetic (Shape -> Gather -> Concat -> Reshape) evaluated exactly.
#include "infer/cpu_ops.h"
#include "infer/infer.h"

namespace vidscan::infer {

Expected<std::map<std::string, Tensor>> InferShapesAndSmallValues(const Model& model, std::span<const std::vector<int64_t>> input_shapes) {
  const Graph& graph = model.graph;
  if (input_shapes.size() != graph.inputs.size())
    return MakeError(StatusCode::kInvalidArgument, "the model takes " + std::to_string(graph.inputs.size()) + " inputs, got " +
                                                       std::to_string(input_shapes.size()) + " shapes");
  std::map<std::string, Tensor> values;  // shape-only (no data) unless small or int64
  for (size_t k = 0; k < input_shapes.size(); ++k) {
    VS_ASSIGN_OR_RETURN(int64_t count, CheckedElementCount(input_shapes[k]));
    (void)count;
    Tensor& t = values[graph.inputs[k].name];
    t.shape = input_shapes[k];
  }
  OpContext context;
  context.opset = model.opset;
  context.shape_only = true;
  std::vector<const Tensor*> inputs;
  std::vector<Tensor*> outputs;
  for (const Node& node : graph.nodes) {
    inputs.clear();
    outputs.clear();
    for (const std::string& name : node.inputs) {
      if (name.empty()) {
        inputs.push_back(nullptr);
        continue;
      }
      auto constant = graph.initializers.find(name);
      auto value = values.find(name);
      if (constant != graph.initializers.end()) inputs.push_back(&constant->second);
      else if (value != values.end()) inputs.push_back(&value->second);
      else return MakeError(StatusCode::kInvalidArgument, node.Describe() + " reads '" + name + "' before it is produced (sort the graph first)");
    }
    for (const std::string& name : node.outputs) outputs.push_back(name.empty() ? nullptr : &values[name]);
    Status status = RunCpuOp(node, context, inputs, outputs);
    if (!status.ok()) return status;
  }
  return values;
}

Expected<std::map<std::string, std::vector<int64_t>>> InferShapes(const Model& model,
                                                                  std::span<const std::vector<int64_t>> input_shapes) {
  VS_ASSIGN_OR_RETURN(auto values, InferShapesAndSmallValues(model, input_shapes));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [name, tensor] : model.graph.initializers) shapes[name] = tensor.shape;
  for (auto& [name, tensor] : values) shapes[name] = std::move(tensor.shape);
  return shapes;
}

}  // namespace vidscan::infer
