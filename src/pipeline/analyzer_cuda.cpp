// The GPU analyzer: fused preprocess kernel -> cuDNN executor (CUDA graph at the full batch) -> GPU head
// decode + batched NMS, all on one stream; only the kept boxes come back to the host.
#include "pipeline/analyzer.h"

#if defined(VIDSCAN_HAVE_CUDNN)

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <vector>
#include <memory>
#include <optional>

#include "core/log.h"
#include "detect/heads.h"
#include "infer/algorithm_table.h"
#include "detect/heads_cuda.h"
#include "preprocess/cuda_buffers.h"
#include "preprocess/preprocess.h"

namespace vidscan {
namespace {

class CudaAnalyzer final : public Analyzer {
 public:
  // Batches in flight (AnalyzerOptions::batches_in_flight, 2 by default): while the GPU runs one, the host
  // gathers and enqueues the next, so the GPU does not idle between batches. Everything runs on one stream
  // (the executor's arena is shared and used in stream order); each in-flight batch has its own input
  // tensor, outputs and detector buffers.

  static Expected<std::unique_ptr<Analyzer>> Create(const infer::Model& model, const ModelDescription& description,
                                                    const AnalyzerOptions& options) {
    VS_RETURN_IF_ERROR(CudaDeviceAvailable(options.gpu_index));
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.gpu_index));
    std::unique_ptr<CudaAnalyzer> a(new CudaAnalyzer());
    a->gpu_index_ = options.gpu_index;
    a->batch_size_ = std::max(1, options.batch_size);
    if (options.batches_in_flight < 1 || options.batches_in_flight > kMaxBatchesInFlight) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{} batches in flight: 1 to {} are possible",
                                                                 options.batches_in_flight, kMaxBatchesInFlight));
    }
    a->slots_.resize(static_cast<size_t>(options.batches_in_flight));
    // One more end event than slots: the idle time before batch k is measured from batch k-1's end when k
    // is collected, and by then batch k-1's slot may already hold batch k-1+depth.
    a->batch_ends_.resize(a->slots_.size() + 1);
    for (CudaEvent& end : a->batch_ends_) {
      VS_ASSIGN_OR_RETURN(end, CudaEvent::Create(cudaEventDefault));
    }
    cudaDeviceProp prop{};
    VS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, options.gpu_index));
    a->device_name_ = prop.name;
    VS_ASSIGN_OR_RETURN(a->stream_, CudaStream::Create(cudaStreamNonBlocking));

    // The executor takes float32 NCHW and casts to its own FP16 NHWC in its first kernel.
    PreprocessParams params = description.input;
    params.layout = TensorLayout::kNCHW;
    params.type = TensorType::kFloat32;
    PreprocessorOptions pre_options;
    pre_options.device = PreprocessDevice::kCuda;
    pre_options.max_batch = a->batch_size_;
    pre_options.gpu_index = options.gpu_index;
    pre_options.stream = a->stream_.get();
    VS_ASSIGN_OR_RETURN(a->preprocessor_, CreatePreprocessor(params, pre_options));

    infer::CudaExecutorOptions exec_options;
    exec_options.precision = options.precision;
    exec_options.device = options.gpu_index;
    exec_options.workspace_bytes = options.gpu_workspace_bytes;
    if (!options.cudnn_algorithm_table.empty()) {
      a->algorithms_ = std::make_unique<infer::ConvAlgorithmTable>(options.cudnn_algorithm_table);
      exec_options.algorithm_table = a->algorithms_.get();
    }
    VS_ASSIGN_OR_RETURN(auto executor, infer::CudaExecutor::Create(model, a->batch_size_, exec_options));
    a->executor_ = std::make_unique<infer::CudaExecutor>(std::move(executor));
    if (a->executor_->inputs().size() != 1) {
      return MakeError(StatusCode::kUnsupported, fmt::format("the model has {} inputs; a detector has one image input",
                                                             a->executor_->inputs().size()));
    }
    VS_ASSIGN_OR_RETURN(auto shapes, a->executor_->OutputShapes(a->batch_size_));
    for (Slot& slot : a->slots_) {
      VS_ASSIGN_OR_RETURN(slot.input, DeviceBuffer::Allocate(params.slot_bytes() * a->batch_size_));
      for (const auto& shape : shapes) {
        int64_t count = 1;
        for (int64_t d : shape) count *= d;
        VS_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::Allocate(static_cast<size_t>(count) * sizeof(float)));
        slot.heads.push_back({buffer.as<float>(), shape});
        slot.output_ptrs.push_back(buffer.as<float>());
        slot.outputs.push_back(std::move(buffer));
      }
      VS_ASSIGN_OR_RETURN(auto detector, CudaDetector::Create(description, slot.heads, a->batch_size_));
      slot.detector = std::make_unique<CudaDetector>(std::move(detector));
      slot.staging.resize(static_cast<size_t>(a->batch_size_));
      for (CudaEvent* e : {&slot.start, &slot.preprocessed, &slot.inferred, &slot.detected}) {
        VS_ASSIGN_OR_RETURN(*e, CudaEvent::Create(cudaEventDefault));
      }
    }
    return std::unique_ptr<Analyzer>(std::move(a));
  }

  Status Submit(std::span<const FrameView> frames) override {
    if (in_flight_ == depth()) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("CUDA analyzer: {} batches already in flight", in_flight_));
    }
    if (static_cast<int>(frames.size()) > batch_size_ || frames.empty()) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{} frames for a batch of {}", frames.size(), batch_size_));
    }
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    Slot& slot = slots_[static_cast<size_t>((next_ + in_flight_) % depth())];
    cudaStream_t stream = stream_.get();
    const PreprocessParams& params = preprocessor_->params();
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.start.get(), stream));
    std::vector<PreprocessInput> inputs(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      inputs[i].frame = frames[i];
      inputs[i].slot = static_cast<int>(i);
      if (frames[i].memory == MemoryKind::kHost) VS_RETURN_IF_ERROR(Upload(slot, i, &inputs[i].frame));
    }
    BatchTensor tensor{slot.input.data(), batch_size_, MemoryKind::kDevice};
    VS_ASSIGN_OR_RETURN(auto transforms, preprocessor_->Run(inputs, tensor));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.preprocessed.get(), stream));

    // Always the full batch: slots past frames.size() hold stale input whose outputs nobody reads.
    infer::DeviceTensorView view{{batch_size_, 3, params.height, params.width}, slot.input.as<float>()};
    // The first run plans the network (chooses cuDNN's algorithms). With a shared table, under its lock:
    // what another process recorded is used, what this one chooses is added for the next.
    std::optional<infer::ConvAlgorithmTable::FileLock> planning;
    size_t pinned_before = 0;
    if (algorithms_ && !planned_) {
      VS_ASSIGN_OR_RETURN(planning, algorithms_->Lock());
      VS_RETURN_IF_ERROR(algorithms_->Load());
      pinned_before = algorithms_->size();
    }
    VS_RETURN_IF_ERROR(executor_->Run(std::span(&view, 1), slot.output_ptrs, stream));
    if (planning) {
      const infer::ConvAlgorithmChoices choices = executor_->algorithm_choices();
      spdlog::debug("cuDNN algorithms: {} pinned by {}, {} measured, {} heuristic, {} pins ignored", choices.pinned,
                    algorithms_->path(), choices.measured, choices.heuristic, choices.pins_ignored);
      // A pin cuDNN does not offer here (another cuDNN build under the same version number, an edited
      // file): this process computes other bits than the one that recorded it.
      if (choices.pins_ignored > 0) {
        spdlog::warn("{} of the cuDNN algorithms pinned in {} are not offered here and were chosen again: results "
                     "may differ in the last digits from the process that recorded them", choices.pins_ignored,
                     algorithms_->path());
      }
      if (algorithms_->size() != pinned_before) VS_RETURN_IF_ERROR(algorithms_->Save());
      planned_ = true;
      planning.reset();
    }
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.inferred.get(), stream));

    std::vector<FrameGeometry> geometry(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      geometry[i] = {transforms[i], frames[i].info.width, frames[i].info.height};
    }
    VS_RETURN_IF_ERROR(slot.detector->Enqueue(slot.heads, geometry, stream));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(slot.detected.get(), stream));
    VS_RETURN_IF_ERROR(slot.detector->EnqueueFetch(stream));
    slot.serial = submitted_++;
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(BatchEnd(slot.serial).get(), stream));
    slot.frames = static_cast<int>(frames.size());
    ++in_flight_;
    return Status::Ok();
  }

  Expected<std::vector<FrameDetections>> Collect() override {
    if (in_flight_ == 0) return MakeError(StatusCode::kInvalidArgument, "CUDA analyzer: Collect without a submitted batch");
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    Slot& slot = slots_[static_cast<size_t>(next_)];
    // Waits for this batch's copy-out only, not for the batch queued behind it.
    VS_ASSIGN_OR_RETURN(auto detections, slot.detector->WaitFetch());
    next_ = (next_ + 1) % depth();
    --in_flight_;
    float pre_ms = 0, infer_ms = 0, detect_ms = 0, idle_ms = 0;
    if (slot.serial > 0) {
      VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&idle_ms, BatchEnd(slot.serial - 1).get(), slot.start.get()));
    }
    times_.idle += idle_ms * 1e-3;
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&pre_ms, slot.start.get(), slot.preprocessed.get()));
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&infer_ms, slot.preprocessed.get(), slot.inferred.get()));
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&detect_ms, slot.inferred.get(), slot.detected.get()));
    times_.preprocess += pre_ms * 1e-3;
    times_.infer += infer_ms * 1e-3;
    times_.detect += detect_ms * 1e-3;
    times_.batches += 1;
    times_.frames += slot.frames;
    times_.padded_frames += batch_size_ - slot.frames;
    return detections;
  }

  Expected<int> BatchesDoneReading() override {
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    int done = 0;
    for (; done < in_flight_; ++done) {
      const cudaError_t state = cudaEventQuery(slots_[static_cast<size_t>((next_ + done) % depth())].preprocessed.get());
      if (state == cudaErrorNotReady) break;
      VS_CUDA_RETURN_IF_ERROR(state);
    }
    return done;
  }

  int depth() const override { return static_cast<int>(slots_.size()); }
  int in_flight() const override { return in_flight_; }
  int batch_size() const override { return batch_size_; }
  AnalyzerTimes times() const override { return times_; }
  std::string description() const override {
    return fmt::format("GPU {} ({}), cuDNN {}, batch {}", gpu_index_, device_name_,
                       infer::PrecisionName(executor_->precision()), batch_size_);
  }

  Status WaitForEvents(std::span<void* const> cuda_events) override {
    if (cuda_events.empty()) return Status::Ok();
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    // Stream order: the preprocess kernel of the next Submit is queued behind these waits. Producers are
    // usually frames ahead, so most events are complete already: those need no wait on the stream.
    for (void* handle : cuda_events) {
      auto event = static_cast<cudaEvent_t>(handle);
      const cudaError_t state = cudaEventQuery(event);
      if (state == cudaSuccess) continue;
      if (state != cudaErrorNotReady) return CudaStatus(state, "cudaEventQuery (a producer's frame event)");
      VS_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_.get(), event, 0));
      ++times_.device_waits;
    }
    return Status::Ok();
  }

 private:
  struct Slot {
    DeviceBuffer input;
    std::vector<DeviceBuffer> outputs;
    std::vector<float*> output_ptrs;
    std::vector<HeadTensor> heads;
    std::unique_ptr<CudaDetector> detector;
    std::vector<DeviceBuffer> staging;  // device copies of host frames (CPU-decoded videos)
    CudaEvent start, preprocessed, inferred, detected;
    int frames = 0;
    int64_t serial = 0;  // batches submitted before this one
  };

  CudaEvent& BatchEnd(int64_t serial) { return batch_ends_[static_cast<size_t>(serial % static_cast<int64_t>(batch_ends_.size()))]; }

  CudaAnalyzer() = default;

  // A frame the CPU decoder produced (a codec this GPU's NVDEC lacks): copied into a device staging frame.
  // From pageable memory the copy is staged before cudaMemcpyAsync returns, so the host frame may go.
  Status Upload(Slot& slot, size_t index, FrameView* frame) {
    const FrameInfo& info = frame->info;
    const size_t bytes = info.luma_bytes() + info.chroma_bytes();
    DeviceBuffer& staging = slot.staging[index];
    if (staging.bytes() < bytes) {
      VS_ASSIGN_OR_RETURN(staging, DeviceBuffer::Allocate(bytes));
    }
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging.data(), frame->luma, info.luma_bytes(), cudaMemcpyHostToDevice, stream_.get()));
    VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(staging.as<uint8_t>() + info.luma_bytes(), frame->chroma, info.chroma_bytes(),
                                            cudaMemcpyHostToDevice, stream_.get()));
    frame->memory = MemoryKind::kDevice;
    frame->luma = staging.as<uint8_t>();
    frame->chroma = staging.as<uint8_t>() + info.luma_bytes();
    return Status::Ok();
  }

  int gpu_index_ = 0;
  int batch_size_ = 1;
  std::string device_name_;
  CudaStream stream_;
  std::unique_ptr<Preprocessor> preprocessor_;
  std::unique_ptr<infer::ConvAlgorithmTable> algorithms_;  // before executor_: it points here
  bool planned_ = false;
  std::unique_ptr<infer::CudaExecutor> executor_;
  std::vector<Slot> slots_;
  std::vector<CudaEvent> batch_ends_;  // recorded after each batch's results are copied out
  int64_t submitted_ = 0;
  int next_ = 0;       // the oldest batch in flight
  int in_flight_ = 0;
  AnalyzerTimes times_;
};

}  // namespace

Status CudaAnalysisAvailable(int gpu_index) { return CudaDeviceAvailable(gpu_index); }

Expected<std::unique_ptr<Analyzer>> CreateCudaAnalyzer(const infer::Model& model, const ModelDescription& description,
                                                       const AnalyzerOptions& options) {
  return CudaAnalyzer::Create(model, description, options);
}

}  // namespace vidscan

#endif  // VIDSCAN_HAVE_CUDNN
