// The CPU executor's operator kernels (float32 NCHW; int64 for shape arithmetic). Internal to src/infer:
// the executor runs them per node, and constant folding runs them at load time on constant inputs.
#pragma once

#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "infer/graph.h"

namespace vidscan::infer {

class ThreadPool;

struct OpContext {
  int64_t opset = 17;
  ThreadPool* pool = nullptr;  // may be null: run on the calling thread
  int64_t max_elements = kMaxTensorElements;  // largest output (or scratch) a kernel may allocate
  // Compute output shapes only: float tensors larger than kShapeOnlyMaterializeLimit, and anything
  // computed from them, get their shape but no data; small ones (Resize scales and the like) and int64
  // shape arithmetic are computed for real.
  bool shape_only = false;
};

inline constexpr int64_t kShapeOnlyMaterializeLimit = 4096;

// Runs `node`. inputs[k] is null for an omitted optional input; each output Tensor is resized in place
// (its buffers' capacity is reused). Errors name the node; an allocation beyond context.max_elements or
// one the system refuses is an error too.
Status RunCpuOp(const Node& node, const OpContext& context, std::span<const Tensor* const> inputs,
                std::span<Tensor* const> outputs);

// ---- geometry shared with the CUDA executor (one definition of each op's ONNX semantics) -----------------

// Spatial geometry of a 2-D Conv or pool (NCHW): kernel, strides, dilations, pads, output size.
struct Window {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t out_h = 0, out_w = 0;
};
// From the node's attributes (strides, dilations, pads, auto_pad, ceil_mode when allow_ceil).
Expected<Window> ComputeWindow(const Node& node, int64_t in_h, int64_t in_w, std::vector<int64_t> kernel, bool allow_ceil);

// A Slice as a box: output shape, first index and step per axis (of the input).
struct SliceBox {
  std::vector<int64_t> out_shape, first, step;
};
// `in` are the Slice's inputs (starts, ends, axes, steps as int64 tensors; in[0] is not read).
Expected<SliceBox> ComputeSlice(const Node& node, std::span<const Tensor* const> in, const std::vector<int64_t>& x_shape);

// Resize (rank 4, H and W): per output row and column, two source indices and the weight of the second
// (nearest: both the same index, weight 0).
struct ResizeTap {
  int64_t i0 = 0, i1 = 0;
  float w1 = 0;
};
struct ResizePlan {
  std::vector<int64_t> out_shape;
  std::vector<ResizeTap> rows, cols;
};
Expected<ResizePlan> ComputeResize(const Node& node, std::span<const Tensor* const> in, const std::vector<int64_t>& x_shape);

// ---- shared by the executors -------------------------------------------------------------------------

// Shape inference that also returns the values it computed for real (int64 shape arithmetic, float
// tensors of at most kShapeOnlyMaterializeLimit elements); larger float values have a shape and no data.
Expected<std::map<std::string, Tensor>> InferShapesAndSmallValues(const Model& model, std::span<const std::vector<int64_t>> input_shapes);

// What CpuExecutor::Create does before planning: a copy of `model` with a batch-agnostic dim 0 where the
// file fixes batch 1 and max_batch > 1, optimised (OptimizeForInference), every op supported.
Expected<Model> PrepareModelForExecution(const Model& model, int max_batch);

// The batch size of a run's inputs (dim 0, the same for all), after checking them against the declared
// shapes (rank, fixed dims) and 1..max_batch.
Expected<int> CheckBatchInputs(const std::vector<ValueInfo>& declared, std::span<const std::vector<int64_t>* const> shapes, int max_batch);

}  // namespace vidscan::infer
