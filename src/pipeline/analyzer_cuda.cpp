// The GPU analyzer: fused preprocess kernel -> cuDNN executor (CUDA graph at the full batch) -> GPU head
// decode + batched NMS, all on one stream; only the kept boxes come back to the host.
#include "pipeline/analyzer.h"

#if defined(VIDSCAN_HAVE_CUDNN)

#include <cuda_runtime.h>
#include <fmt/format.h>

#include "detect/heads.h"
#include "detect/heads_cuda.h"
#include "preprocess/cuda_buffers.h"
#include "preprocess/preprocess.h"

namespace vidscan {
namespace {

class CudaAnalyzer final : public Analyzer {
 public:
  static Expected<std::unique_ptr<Analyzer>> Create(const infer::Model& model, const ModelDescription& description,
                                                    const AnalyzerOptions& options) {
    VS_RETURN_IF_ERROR(CudaDeviceAvailable(options.gpu_index));
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.gpu_index));
    std::unique_ptr<CudaAnalyzer> a(new CudaAnalyzer());
    a->description_ = description;
    a->gpu_index_ = options.gpu_index;
    a->batch_size_ = std::max(1, options.batch_size);
    cudaDeviceProp prop{};
    VS_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, options.gpu_index));
    a->device_name_ = prop.name;
    VS_ASSIGN_OR_RETURN(a->stream_, CudaStream::Create(cudaStreamNonBlocking));
    for (CudaEvent* e : {&a->start_, &a->preprocessed_, &a->inferred_, &a->detected_}) {
      VS_ASSIGN_OR_RETURN(*e, CudaEvent::Create(cudaEventDefault));
    }

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
    VS_ASSIGN_OR_RETURN(a->input_, DeviceBuffer::Allocate(params.slot_bytes() * a->batch_size_));

    infer::CudaExecutorOptions exec_options;
    exec_options.precision = options.precision;
    exec_options.device = options.gpu_index;
    exec_options.workspace_bytes = options.gpu_workspace_bytes;
    VS_ASSIGN_OR_RETURN(auto executor, infer::CudaExecutor::Create(model, a->batch_size_, exec_options));
    a->executor_ = std::make_unique<infer::CudaExecutor>(std::move(executor));
    if (a->executor_->inputs().size() != 1) {
      return MakeError(StatusCode::kUnsupported, fmt::format("the model has {} inputs; a detector has one image input",
                                                             a->executor_->inputs().size()));
    }
    VS_ASSIGN_OR_RETURN(auto shapes, a->executor_->OutputShapes(a->batch_size_));
    for (const auto& shape : shapes) {
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      VS_ASSIGN_OR_RETURN(DeviceBuffer buffer, DeviceBuffer::Allocate(static_cast<size_t>(count) * sizeof(float)));
      a->heads_.push_back({buffer.as<float>(), shape});
      a->output_ptrs_.push_back(buffer.as<float>());
      a->outputs_.push_back(std::move(buffer));
    }
    VS_ASSIGN_OR_RETURN(auto detector, CudaDetector::Create(description, a->heads_, a->batch_size_));
    a->detector_ = std::make_unique<CudaDetector>(std::move(detector));
    a->staging_.resize(static_cast<size_t>(a->batch_size_));
    return std::unique_ptr<Analyzer>(std::move(a));
  }

  Expected<std::vector<FrameDetections>> Analyze(std::span<const FrameView> frames,
                                                 const std::function<void()>& pixels_consumed) override {
    if (frames.empty()) return std::vector<FrameDetections>{};
    if (static_cast<int>(frames.size()) > batch_size_) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{} frames for a batch of {}", frames.size(), batch_size_));
    }
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    cudaStream_t stream = stream_.get();
    const PreprocessParams& params = preprocessor_->params();
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(start_.get(), stream));
    std::vector<PreprocessInput> inputs(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      inputs[i].frame = frames[i];
      inputs[i].slot = static_cast<int>(i);
      if (frames[i].memory == MemoryKind::kHost) VS_RETURN_IF_ERROR(Upload(i, &inputs[i].frame));
    }
    BatchTensor tensor{input_.data(), batch_size_, MemoryKind::kDevice};
    VS_ASSIGN_OR_RETURN(auto transforms, preprocessor_->Run(inputs, tensor));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(preprocessed_.get(), stream));

    // Always the full batch: slots past frames.size() hold stale input whose outputs nobody reads.
    infer::DeviceTensorView view{{batch_size_, 3, params.height, params.width}, input_.as<float>()};
    VS_RETURN_IF_ERROR(executor_->Run(std::span(&view, 1), output_ptrs_, stream));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(inferred_.get(), stream));

    std::vector<FrameGeometry> geometry(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      geometry[i] = {transforms[i], frames[i].info.width, frames[i].info.height};
    }
    VS_RETURN_IF_ERROR(detector_->Enqueue(heads_, geometry, stream));
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(detected_.get(), stream));

    // The network is queued behind the preprocess kernel: hand the surfaces back as soon as it has read them.
    VS_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(preprocessed_.get()));
    if (pixels_consumed) pixels_consumed();
    VS_ASSIGN_OR_RETURN(auto detections, detector_->Fetch(stream));

    float pre_ms = 0, infer_ms = 0, detect_ms = 0;
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&pre_ms, start_.get(), preprocessed_.get()));
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&infer_ms, preprocessed_.get(), inferred_.get()));
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&detect_ms, inferred_.get(), detected_.get()));
    times_.preprocess += pre_ms * 1e-3;
    times_.infer += infer_ms * 1e-3;
    times_.detect += detect_ms * 1e-3;
    times_.batches += 1;
    times_.frames += static_cast<int64_t>(frames.size());
    times_.padded_frames += batch_size_ - static_cast<int64_t>(frames.size());
    return detections;
  }

  int batch_size() const override { return batch_size_; }
  AnalyzerTimes times() const override { return times_; }
  std::string description() const override {
    return fmt::format("GPU {} ({}), cuDNN {}, batch {}", gpu_index_, device_name_,
                       infer::PrecisionName(executor_->precision()), batch_size_);
  }
  bool accepts_device_frames() const override { return true; }

  Status WaitForEvents(std::span<void* const> cuda_events) override {
    if (cuda_events.empty()) return Status::Ok();
    VS_CUDA_RETURN_IF_ERROR(cudaSetDevice(gpu_index_));
    // Stream order: the preprocess kernel of the next Analyze is queued behind these waits.
    for (void* event : cuda_events) {
      VS_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_.get(), static_cast<cudaEvent_t>(event), 0));
    }
    return Status::Ok();
  }

 private:
  CudaAnalyzer() = default;

  // A frame the CPU decoder produced (a codec this GPU's NVDEC lacks): copied into a device staging frame.
  Status Upload(size_t slot, FrameView* frame) {
    const FrameInfo& info = frame->info;
    const size_t bytes = info.luma_bytes() + info.chroma_bytes();
    DeviceBuffer& staging = staging_[slot];
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

  ModelDescription description_;
  int gpu_index_ = 0;
  int batch_size_ = 1;
  std::string device_name_;
  CudaStream stream_;
  CudaEvent start_, preprocessed_, inferred_, detected_;
  std::unique_ptr<Preprocessor> preprocessor_;
  DeviceBuffer input_;
  std::unique_ptr<infer::CudaExecutor> executor_;
  std::vector<DeviceBuffer> outputs_;
  std::vector<float*> output_ptrs_;
  std::vector<HeadTensor> heads_;
  std::unique_ptr<CudaDetector> detector_;
  std::vector<DeviceBuffer> staging_;
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
