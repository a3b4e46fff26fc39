#include "pipeline/analyzer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "detect/heads.h"
#include "infer/builtin_models.h"
#include "preprocess/preprocess.h"

namespace vidscan {
namespace {

using Clock = std::chrono::steady_clock;
double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The float32 CPU path: CPU reference preprocess into an NCHW float32 tensor, the CPU executor, CPU head.
class CpuAnalyzer final : public Analyzer {
 public:
  static Expected<std::unique_ptr<Analyzer>> Create(const infer::Model& model, const ModelDescription& description,
                                                    const AnalyzerOptions& options) {
    std::unique_ptr<CpuAnalyzer> a(new CpuAnalyzer());
    a->description_ = description;
    a->batch_size_ = std::max(1, options.batch_size);
    PreprocessParams params = description.input;
    params.layout = TensorLayout::kNCHW;
    params.type = TensorType::kFloat32;
    PreprocessorOptions pre_options;
    pre_options.device = PreprocessDevice::kCpu;
    pre_options.max_batch = a->batch_size_;
    VS_ASSIGN_OR_RETURN(a->preprocessor_, CreatePreprocessor(params, pre_options));
    a->threads_ = options.cpu_threads > 0 ? options.cpu_threads : static_cast<int>(std::thread::hardware_concurrency());
    VS_ASSIGN_OR_RETURN(auto executor, infer::CpuExecutor::Create(model, a->batch_size_, {a->threads_}));
    a->executor_ = std::make_unique<infer::CpuExecutor>(std::move(executor));
    if (a->executor_->inputs().size() != 1) {
      return MakeError(StatusCode::kUnsupported, fmt::format("the model has {} inputs; a detector has one image input",
                                                             a->executor_->inputs().size()));
    }
    a->input_.resize(params.slot_elements() * a->batch_size_);
    return std::unique_ptr<Analyzer>(std::move(a));
  }

  // The CPU path is synchronous: Submit does the work, Collect hands the result over.
  Status Submit(std::span<const FrameView> frames) override {
    if (pending_) return MakeError(StatusCode::kInvalidArgument, "CPU analyzer: Submit before the last batch was collected");
    auto result = Run(frames);
    if (!result.ok()) return result.status();
    pending_ = std::move(*result);
    return Status::Ok();
  }
  Expected<std::vector<FrameDetections>> Collect() override {
    if (!pending_) return MakeError(StatusCode::kInvalidArgument, "CPU analyzer: Collect without a submitted batch");
    std::vector<FrameDetections> out = std::move(*pending_);
    pending_.reset();
    return out;
  }
  int depth() const override { return 1; }
  int in_flight() const override { return pending_ ? 1 : 0; }

  Expected<std::vector<FrameDetections>> Run(std::span<const FrameView> frames) {
    if (frames.empty()) return std::vector<FrameDetections>{};
    if (static_cast<int>(frames.size()) > batch_size_) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{} frames for a batch of {}", frames.size(), batch_size_));
    }
    const PreprocessParams& params = preprocessor_->params();
    auto t0 = Clock::now();
    std::vector<PreprocessInput> inputs(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      if (frames[i].memory != MemoryKind::kHost) {
        return MakeError(StatusCode::kInvalidArgument, "the CPU analyzer needs frames in host memory");
      }
      inputs[i].frame = frames[i];
      inputs[i].slot = static_cast<int>(i);
    }
    BatchTensor tensor{input_.data(), static_cast<int>(frames.size()), MemoryKind::kHost};
    VS_ASSIGN_OR_RETURN(auto transforms, preprocessor_->Run(inputs, tensor));
    auto t1 = Clock::now();
    times_.preprocess += std::chrono::duration<double>(t1 - t0).count();

    infer::HostTensorView view{{static_cast<int64_t>(frames.size()), 3, params.height, params.width}, input_.data()};
    VS_RETURN_IF_ERROR(executor_->Run(std::span(&view, 1), &outputs_));
    auto t2 = Clock::now();
    times_.infer += std::chrono::duration<double>(t2 - t1).count();

    std::vector<HeadTensor> heads;
    for (const infer::HostTensor& out : outputs_) heads.push_back({out.data.data(), out.shape});
    std::vector<FrameGeometry> geometry(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      geometry[i] = {transforms[i], frames[i].info.width, frames[i].info.height};
    }
    auto detections = DetectCpu(description_, heads, geometry);
    times_.detect += SecondsSince(t2);
    times_.batches += 1;
    times_.frames += static_cast<int64_t>(frames.size());
    return detections;
  }

  int batch_size() const override { return batch_size_; }
  AnalyzerTimes times() const override { return times_; }
  std::string description() const override {
    return fmt::format("CPU float32, {} threads, batch {}", threads_, batch_size_);
  }

 private:
  CpuAnalyzer() = default;
  std::optional<std::vector<FrameDetections>> pending_;
  ModelDescription description_;
  int batch_size_ = 1;
  int threads_ = 1;
  std::unique_ptr<Preprocessor> preprocessor_;
  std::unique_ptr<infer::CpuExecutor> executor_;
  std::vector<float> input_;
  std::vector<infer::HostTensor> outputs_;
  AnalyzerTimes times_;
};

// FNV-1a over a file's bytes: a cheap identity for the weights (82 MB in ~0.1 s).
Expected<uint64_t> HashFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(StatusCode::kNotFound, path + ": cannot open");
  uint64_t h = 1469598103934665603ull;
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      h ^= static_cast<unsigned char>(buffer[static_cast<size_t>(i)]);
      h *= 1099511628211ull;
    }
  }
  return h;
}

Expected<std::string> ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(StatusCode::kNotFound, path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Status Analyzer::WaitForEvents(std::span<void* const> cuda_events) {
  if (cuda_events.empty()) return Status::Ok();
  return MakeError(StatusCode::kUnsupported, description() + ": cannot wait for CUDA events (frames in device memory)");
}

Expected<std::unique_ptr<Analyzer>> CreateAnalyzer(const infer::Model& model, const ModelDescription& description,
                                                   const AnalyzerOptions& options) {
  if (options.device == AnalyzerDevice::kGpu) return CreateCudaAnalyzer(model, description, options);
  return CpuAnalyzer::Create(model, description, options);
}

Expected<LoadedModel> LoadModelForRun(const std::string& model, const std::string& model_config,
                                      const std::string& family) {
  LoadedModel loaded;
  loaded.source_model = model;
  loaded.source_config = model_config;
  loaded.source_family = family;
  std::string description_text;
  std::string description_source;
  if (model == infer::kBuiltinDetectNet) {
    loaded.model = infer::MakeDetectNetV2ResNet34();
    loaded.name = model;
    loaded.fingerprint = std::string(model) + "/seed34";
    if (model_config.empty()) {
      loaded.description = DefaultModelDescription(ModelFamily::kDetectNetV2);
      loaded.fingerprint += "/defaults";
      return loaded;
    }
  } else {
    VS_ASSIGN_OR_RETURN(loaded.model, infer::LoadOnnx(model));
    VS_ASSIGN_OR_RETURN(uint64_t hash, HashFile(model));
    loaded.name = std::filesystem::path(model).filename().string();
    loaded.fingerprint = fmt::format("{}/{:016x}", loaded.name, hash);
  }
  std::string config_path = model_config;
  if (config_path.empty() && model != infer::kBuiltinDetectNet) {
    const std::string beside = ModelDescriptionPathFor(model);
    if (std::filesystem::exists(beside)) config_path = beside;
  }
  if (!config_path.empty()) {
    VS_ASSIGN_OR_RETURN(std::string text, ReadText(config_path));
    VS_ASSIGN_OR_RETURN(loaded.description, ParseModelDescription(text, config_path));
    loaded.fingerprint += fmt::format("/config {:016x}", std::hash<std::string>{}(text));
    return loaded;
  }
  if (family.empty()) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{}: no model description: write {} (see docs/detect.md), pass --model-config FILE, "
                                 "or --family yolox|yolov8|detectnet_v2 for that family's defaults",
                                 model, ModelDescriptionPathFor(model)));
  }
  VS_ASSIGN_OR_RETURN(loaded.description,
                      ParseModelDescription(nlohmann::json{{"family", family}}.dump(), "--family " + family));
  // The input size of the family defaults is replaced by the network's own (dims 2 and 3 of its input).
  const auto& inputs = loaded.model.graph.inputs;
  if (inputs.size() == 1 && inputs[0].shape.size() == 4 && inputs[0].shape[2] > 0 && inputs[0].shape[3] > 0) {
    loaded.description.input.height = static_cast<int>(inputs[0].shape[2]);
    loaded.description.input.width = static_cast<int>(inputs[0].shape[3]);
  }
  loaded.fingerprint += "/family " + family;
  return loaded;
}

}  // namespace vidscan

#if !defined(VIDSCAN_HAVE_CUDNN)
namespace vidscan {
Expected<std::unique_ptr<Analyzer>> CreateCudaAnalyzer(const infer::Model&, const ModelDescription&,
                                                       const AnalyzerOptions&) {
  return MakeError(StatusCode::kUnavailable, "this build has no CUDA/cuDNN: analysis runs on the CPU only (--device cpu)");
}
Status CudaAnalysisAvailable(int) {
  return MakeError(StatusCode::kUnavailable, "this build has no CUDA/cuDNN");
}
}  // namespace vidscan
#endif
