// The CPU executor's operator kernels (float32 NCHW; int64 for shape arithmetic). Internal to src/infer:
// the executor runs them per node, and constant folding runs them at load time on constant inputs.
#pragma once

#include <span>
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

}  // namespace vidscan::infer
