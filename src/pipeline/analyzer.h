// The analysis stage of the run pipeline: a batch of decoded frames in, each frame's detections (source
// pixels, after NMS) out — preprocess, inference and the detector head in one object, on the CPU (float32
// reference path) or the GPU (fused preprocess kernel, cuDNN FP16/FP32 executor, GPU head + NMS).
//
// Results of a frame do not depend on which other frames share its batch: the CPU executor convolves each
// image on its own, and the GPU analyzer always runs the executor at its full batch size (a partial batch
// is padded), so one cuDNN plan and one CUDA graph serve every batch. That is what makes a resumed or
// re-batched run give byte-identical outputs.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/frame.h"
#include "core/status.h"
#include "detect/detection.h"
#include "detect/model_description.h"
#include "infer/graph.h"
#include "infer/infer.h"

namespace vidscan {

enum class AnalyzerDevice : uint8_t { kCpu, kGpu };

struct AnalyzerOptions {
  AnalyzerDevice device = AnalyzerDevice::kCpu;
  int gpu_index = 0;
  int batch_size = 4;                              // frames per inference run (the GPU pads to this)
  infer::Precision precision = infer::Precision::kFloat16;  // GPU only; the CPU is float32
  int cpu_threads = 0;                             // CPU executor threads; 0 = one per core
  size_t gpu_workspace_bytes = size_t{1024} << 20; // cuDNN workspace
  // GPU: a file pinning cuDNN's convolution algorithms across processes (infer/algorithm_table.h): the first
  // process to plan records its choices under a file lock, later ones reuse them, so resumed runs,
  // restarted infer workers and repeated runs compute the same bits. Empty: each process chooses its own.
  std::string cudnn_algorithm_table;
  // GPU: batches queued on the stream at once. Two let the host gather batch k+1 while the GPU runs k;
  // more absorb hiccups of the host (a slow tracker, a late decoder) at the price of one more input tensor
  // and one more batch of frames held each.
  int batches_in_flight = 2;
};
inline constexpr int kMaxBatchesInFlight = 4;

// Seconds spent per stage (GPU: measured with CUDA events around each stage's kernels).
struct AnalyzerTimes {
  double preprocess = 0, infer = 0, detect = 0;
  // GPU: time the analysis stream had no work between the end of one batch (its results copied out) and
  // the start of the next: the host was late, or the stream waited for a frame producer's event.
  double idle = 0;
  int64_t batches = 0, frames = 0, padded_frames = 0;
  int64_t device_waits = 0;  // producers' events not complete at Submit, waited for on the device
};

class Analyzer {
 public:
  virtual ~Analyzer() = default;
  // Enqueues a batch of at most batch_size frames (host or device memory: the GPU analyzer uploads host
  // frames; the CPU analyzer needs host frames). Up to depth() batches may be in flight: the GPU analyzer
  // keeps AnalyzerOptions::batches_in_flight (2 by default), so the host gathers batch k+1 while the GPU runs
  // batch k. The frames' pixels must stay valid until the batch is collected.
  virtual Status Submit(std::span<const FrameView> frames) = 0;
  // Waits for the oldest submitted batch and returns each of its frames' detections, in order. After it
  // returns, that batch's pixels are no longer read.
  virtual Expected<std::vector<FrameDetections>> Collect() = 0;
  virtual int depth() const = 0;
  virtual int in_flight() const = 0;
  // How many of the oldest batches in flight no longer read their frames (the GPU analyzer: their
  // preprocess kernels are done, asked of the device without blocking): those frames' memory may be reused
  // before they are collected. The default: 0, pixels are read until Collect.
  virtual Expected<int> BatchesDoneReading() { return 0; }
  // Submit + Collect of one batch (tests, tools).
  Expected<std::vector<FrameDetections>> Analyze(std::span<const FrameView> frames) {
    VS_RETURN_IF_ERROR(Submit(frames));
    return Collect();
  }
  virtual int batch_size() const = 0;
  virtual AnalyzerTimes times() const = 0;
  virtual std::string description() const = 0;  // "GPU 0 (NVIDIA H200), cuDNN fp16, batch 32"
  // Makes the next Submit wait, on the device, for these CUDA events (cudaEvent_t) before it reads a
  // frame: frames another process wrote into device memory on its own stream (the multi-process mode's
  // device slot pools). The host is not blocked; events already complete cost no device wait. Only the GPU
  // analyzer supports it; an empty list is always fine.
  virtual Status WaitForEvents(std::span<void* const> cuda_events);
};

Expected<std::unique_ptr<Analyzer>> CreateAnalyzer(const infer::Model& model, const ModelDescription& description,
                                                   const AnalyzerOptions& options);

// OK when this build has CUDA + cuDNN and GPU `gpu_index` answers; otherwise why not.
Status CudaAnalysisAvailable(int gpu_index);

// Implemented in analyzer_cuda.cpp (kUnavailable in builds without CUDA and cuDNN).
Expected<std::unique_ptr<Analyzer>> CreateCudaAnalyzer(const infer::Model& model,
                                                       const ModelDescription& description,
                                                       const AnalyzerOptions& options);

// The model and its description, as `vidscan run --model` names them:
//   "builtin:detectnet_v2_resnet34_960x544"  the built-in PeopleNet-architecture model (random weights),
//                                            DetectNet_v2 defaults;
//   "path/model.onnx"                        with `model_config` if given, else path/model.json beside it,
//                                            else `family` defaults with the ONNX input's width and height.
struct LoadedModel {
  infer::Model model;
  ModelDescription description;
  std::string name;         // what outputs and summaries call it
  std::string fingerprint;  // changes when the weights or the description change
  // The arguments it was loaded from, so that another process (an infer worker) can load the same.
  std::string source_model, source_config, source_family;
};
Expected<LoadedModel> LoadModelForRun(const std::string& model, const std::string& model_config,
                                      const std::string& family);

}  // namespace vidscan
