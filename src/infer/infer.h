// The inference engine's public face: load an ONNX detector, optimise its graph, run it.
//   auto model = LoadOnnx("yolox.onnx");             // bounds-checked import, unknown ops refused
//   auto exec = CpuExecutor::Create(*model, 8);      // folds BN, fuses conv epilogues, serves batch 1..8
//   exec->Run({{input_shape, input_data}}, &outputs);
// The CPU executor is the float32 reference for tests and the fallback without a GPU; a cuDNN executor
// consumes the same optimised Model (see OptimizeForInference).
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "infer/graph.h"

namespace vidscan::infer {

class ConvAlgorithmTable;

// Reads and validates an ONNX model (opset 11..17, float32 inputs/outputs, every op one we can run).
Expected<Model> LoadOnnx(const std::string& path);
// The same from bytes already in memory; `origin` names them in errors.
Expected<Model> ParseOnnx(std::string_view bytes, const std::string& origin);

// Whether an executor here can run `op_type` (default ONNX domain).
bool IsSupportedOp(const std::string& op_type);

// Graph passes, in the order OptimizeForInference runs them. Each leaves the graph topologically sorted.
Status SortTopologically(Graph* graph);    // also: cycle detection, every input produced somewhere
Status FoldConstants(Model* model);        // nodes whose inputs are all constant become initializers
Status FoldBatchNormIntoConv(Graph* graph);
Status FuseConvEpilogues(Graph* graph);    // Conv [+ Add residual] [+ Relu|LeakyRelu|Sigmoid|SiLU]
Status RemoveDeadNodes(Graph* graph);      // nodes no graph output depends on
Status OptimizeForInference(Model* model);

// The shape of every value (inputs, initializers, node outputs) for the given input shapes, without
// computing image data (milliseconds for a ResNet-34): what a GPU executor needs to plan its memory and
// a CUDA graph per batch size. Shape arithmetic (Shape, Gather, Concat on int64) runs for real. `model`
// must be topologically sorted, as LoadOnnx and OptimizeForInference leave it.
Expected<std::map<std::string, std::vector<int64_t>>> InferShapes(const Model& model,
                                                                  std::span<const std::vector<int64_t>> input_shapes);

// Batch-first float32 tensors crossing the executor boundary.
struct HostTensorView {
  std::vector<int64_t> shape;
  const float* data = nullptr;
};
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Where a run's time went, summed per operator type ("Conv+relu" for fused convolutions).
struct RunProfile {
  struct Entry {
    std::string op;
    int nodes = 0;
    double seconds = 0;
  };
  std::vector<Entry> entries;  // slowest first
};

struct CpuExecutorOptions {
  int threads = 0;  // 0: std::thread::hardware_concurrency()
};

class CpuExecutor {
 public:
  // Optimises a copy of `model`. max_batch bounds the batch (dim 0 of every input) Run accepts; a model
  // exported with a fixed batch of 1 is served up to max_batch by reading dim 0 as the batch.
  static Expected<CpuExecutor> Create(const Model& model, int max_batch, CpuExecutorOptions options = {});
  CpuExecutor(CpuExecutor&&) noexcept;
  CpuExecutor& operator=(CpuExecutor&&) noexcept;
  ~CpuExecutor();

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  const Model& optimized_model() const;
  int max_batch() const;

  // One tensor per model input, in inputs() order; fills one per model output. Buffers are kept between
  // calls, so after the first run at the largest batch a run allocates nothing but the output copies.
  // With `profile`, also times every node.
  Status Run(std::span<const HostTensorView> inputs, std::vector<HostTensor>* outputs, RunProfile* profile = nullptr);

 private:
  struct Impl;
  explicit CpuExecutor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- the CUDA executor (cuDNN convolutions, FP16 NHWC tensor cores or exact FP32) ---------------------
// Built only with CUDA and cuDNN (VIDSCAN_HAVE_CUDNN); the declarations are always here so that callers
// can be written once. No CUDA types here: streams are passed as void* (a cudaStream_t).

enum class Precision { kFloat16, kFloat32 };
const char* PrecisionName(Precision precision);

struct CudaExecutorOptions {
  Precision precision = Precision::kFloat16;
  int device = 0;
  bool use_cuda_graphs = true;            // capture each batch size's run on its second use, replay after
  // cuDNN workspace, allocated once; algorithms must fit. 1 GiB: at 256 MiB the fast algorithms for batch 32
  // of 960x544 did not fit (H100: DetectNet_v2/ResNet-34 FP16 batch 32 went from 2577 to 3442 frames/s).
  size_t workspace_bytes = size_t{1024} << 20;
  bool measure_algorithms = true;  // time cuDNN's algorithms per (conv, batch) when planning; else heuristics
  // Pinned algorithms (infer/algorithm_table.h): a convolution whose key is in the table uses that algorithm
  // when cuDNN offers it for these shapes and it fits the workspace, instead of timing (or heuristics); the
  // executor records its own choices for the others. Not owned; outlives the executor. nullptr: no pinning.
  ConvAlgorithmTable* algorithm_table = nullptr;
};

// How the convolutions of the batches planned so far got their cuDNN algorithm (one count per conv node
// and batch size).
struct ConvAlgorithmChoices {
  int pinned = 0;        // from the algorithm table, as recorded
  int pins_ignored = 0;  // in the table, but cuDNN does not offer it here or it does not fit: chosen anew
  int measured = 0;      // timed (cudnnFindConvolutionForwardAlgorithmEx)
  int heuristic = 0;     // cuDNN's heuristic order (measuring off or failed)
};

// A float32 tensor in device memory, batch-first, in the model's (ONNX, NCHW) layout.
struct DeviceTensorView {
  std::vector<int64_t> shape;
  const float* data = nullptr;
};

class CudaExecutor {
 public:
  // Optimises a copy of `model` (as CpuExecutor does), converts and uploads the weights, plans one device
  // arena for max_batch and allocates it. Per-batch cuDNN algorithms are chosen on a batch's first Run.
  static Expected<CudaExecutor> Create(const Model& model, int max_batch, CudaExecutorOptions options = {});
  CudaExecutor(CudaExecutor&&) noexcept;
  CudaExecutor& operator=(CudaExecutor&&) noexcept;
  ~CudaExecutor();

  const std::vector<ValueInfo>& inputs() const;
  const std::vector<ValueInfo>& outputs() const;
  const Model& optimized_model() const;
  int max_batch() const;
  Precision precision() const;
  size_t arena_bytes() const;

  // Output shapes for a batch size (1..max_batch).
  Expected<std::vector<std::vector<int64_t>>> OutputShapes(int batch);
  // Sum over convolutions of 2*N*Ho*Wo*Cout*Cin/group*Kh*Kw at this batch.
  Expected<double> ConvFlops(int batch);

  // Enqueues one run on `stream` (a cudaStream_t; null: the legacy default stream) and returns without
  // waiting. Inputs and outputs are float32 device buffers in the model's layout; outputs[k] must hold
  // OutputShapes(batch)[k]. The first run at a batch size runs op by op (and plans the batch); with
  // use_cuda_graphs the second captures a CUDA graph and every later one replays it. Not thread-safe.
  Status Run(std::span<const DeviceTensorView> inputs, std::span<float* const> outputs, void* stream);
  // The same from and to host memory, synchronously (tests, tools).
  Status RunHost(std::span<const HostTensorView> inputs, std::vector<HostTensor>* outputs);
  // Whether `batch` is now served by graph replay.
  bool graph_ready(int batch) const;
  ConvAlgorithmChoices algorithm_choices() const;

 private:
  struct Impl;
  explicit CudaExecutor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vidscan::infer
