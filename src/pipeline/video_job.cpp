#include "pipeline/video_job.h"

#include <atomic>
#include <filesystem>
#include <memory>

#include "core/log.h"

namespace vidscan {

std::string VideoOutputDir(const std::string& output_dir, const std::string& key) {
  return (std::filesystem::path(output_dir) / "videos" / key).string();
}

VideoOutputSettings OutputSettingsFor(const VideoInput& input, const LoadedModel& model, const RunOptions& options) {
  VideoOutputSettings s;
  if (!options.output_dir.empty()) s.video_dir = VideoOutputDir(options.output_dir, input.key);
  s.path = input.path;
  s.key = input.key;
  s.sampling = input.sampling.empty() ? options.sampling.ToString() : input.sampling;
  s.model_name = model.name;
  s.class_names = model.description.class_names;
  s.track = options.track;
  s.tracker = options.tracker;
  return s;
}

Expected<DecoderOptions> DecoderOptionsFor(const VideoInput& input, const RunOptions& options, int stream_id,
                                           int cpu_threads) {
  DecoderOptions decoder;
  decoder.device = options.decoder;
  decoder.gpu_index = options.analyzer.gpu_index;
  decoder.surface_pool_size = options.decoder_surfaces;
  decoder.cpu_threads = cpu_threads;
  decoder.sampling = options.sampling;
  decoder.stream_id = stream_id;
  if (!input.sampling.empty()) {
    auto policy = SamplingPolicy::Parse(input.sampling);
    if (!policy.ok()) return policy.status().WithContext(input.path + ": manifest option 'sample'");
    decoder.sampling = *policy;
  }
  return decoder;
}

FileDecodeReport DecodeVideo(const std::string& path, DecoderOptions options, const FrameSink& sink) {
  // A retry on the CPU decoder opens the file again; the caller hears of the stream once.
  auto opened = std::make_shared<bool>(false);
  if (options.on_open) {
    options.on_open = [opened, on_open = std::move(options.on_open)](const VideoStreamInfo& info) {
      if (*opened) return;
      *opened = true;
      on_open(info);
    };
  }
  // A frame the sink refused, or output memory the caller would not give (the consumer is stopping, the
  // video was taken away), says nothing about NVDEC: that must not send the video to the CPU decoder.
  std::atomic<bool> caller_refused{false};
  const FrameSink watched_sink = [&](DecodedFrame&& frame) {
    Status taken = sink(std::move(frame));
    if (!taken.ok()) caller_refused.store(true);
    return taken;
  };
  DecoderOptions watched = options;
  if (options.acquire_output) {
    watched.acquire_output = [&](size_t bytes) -> Expected<uint8_t*> {
      Expected<uint8_t*> memory = options.acquire_output(bytes);
      if (!memory.ok()) caller_refused.store(true);
      return memory;
    };
  }
  FileDecodeReport report = DecodeFile(path, watched, watched_sink);
  if (options.device == DecoderDevice::kGpu && !caller_refused.load() && report.counters.frames_delivered == 0 &&
      (report.status.code() == StatusCode::kUnsupported || report.status.code() == StatusCode::kUnavailable)) {
    spdlog::info("{}: NVDEC cannot decode it ({}); decoding on the CPU", path, report.status.message());
    options.device = DecoderDevice::kCpu;
    report = DecodeFile(path, options, sink);
  }
  return report;
}

}  // namespace vidscan
