#include "pipeline/multi_process.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "core/log.h"
#include "ipc/device_slot_pool.h"
#include "ipc/host_slot_pool.h"
#include "ipc/job_supervisor.h"
#include "ipc/mps.h"
#include "ipc/shm_region.h"
#include "ipc/worker.h"
#include "media/demuxer.h"
#include "pipeline/bounded_queue.h"
#include "pipeline/job_progress.h"
#include "pipeline/video_job.h"
#include "pipeline/video_output.h"

namespace vidscan {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kEnvLogLevel = "VIDSCAN_WORKER_LOG_LEVEL";
constexpr int kSpecVersion = 1;
// Names the shared-memory object holding the job's LiveCounters, in a worker's environment.
constexpr const char* kEnvRunLive = "VIDSCAN_RUN_LIVE";

// Totals the infer workers add to as each frame is written. The supervisor's per-video reports arrive only
// when a video ends, too late and too coarse for the measured window of a trial (RunWindow) on long videos.
// Frames of an attempt later abandoned (its worker died) are counted too: a throughput figure, not a result.
struct LiveCounters {
  std::atomic<int64_t> frames_analysed{0};
  std::atomic<int64_t> video_micros{0};
};
static_assert(std::atomic<int64_t>::is_always_lock_free, "counters shared between processes");

int Cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

// ------------------------------------------------------------------------------------------------
// What crosses processes as JSON: the job's specification, a stream's facts, a decoder's report, an infer
// worker's report on a video. Doubles survive exactly (nlohmann prints the shortest round-trip form), so a
// summary.json written from them is the one the single-process mode writes.

json StatusJson(const Status& status) { return {{"code", static_cast<int>(status.code())}, {"message", status.message()}}; }

Status StatusFromJson(const json& j) {
  const int code = j.at("code").get<int>();
  if (code == 0) return Status::Ok();
  if (code < 0 || code > static_cast<int>(StatusCode::kInternal)) {
    return MakeError(StatusCode::kInternal, j.at("message").get<std::string>());
  }
  return MakeError(static_cast<StatusCode>(code), j.at("message").get<std::string>());
}

json InfoJson(const VideoStreamInfo& i) {
  return {{"path", i.path},
          {"container", i.container},
          {"codec", static_cast<int>(i.codec)},
          {"codec_name", i.codec_name},
          {"profile", i.profile},
          {"stream_index", i.stream_index},
          {"width", i.width},
          {"height", i.height},
          {"bit_depth", i.bit_depth},
          {"chroma_format_idc", i.chroma_format_idc},
          {"fps", i.fps},
          {"declared_avg_fps", i.declared_avg_fps},
          {"duration_seconds", i.duration_seconds},
          {"frame_count_estimate", i.frame_count_estimate},
          {"bit_rate", i.bit_rate},
          {"time_base_num", i.time_base_num},
          {"time_base_den", i.time_base_den},
          {"start_pts", i.start_pts},
          {"color_space", static_cast<int>(i.color_space)},
          {"color_range", static_cast<int>(i.color_range)},
          {"color_space_guessed", i.color_space_guessed},
          {"color_primaries", i.color_primaries},
          {"color_transfer", i.color_transfer},
          {"audio_streams", i.audio_streams}};
}

VideoStreamInfo InfoFromJson(const json& j) {
  VideoStreamInfo i;
  i.path = j.at("path").get<std::string>();
  i.container = j.at("container").get<std::string>();
  i.codec = static_cast<VideoCodec>(j.at("codec").get<int>());
  i.codec_name = j.at("codec_name").get<std::string>();
  i.profile = j.at("profile").get<std::string>();
  i.stream_index = j.at("stream_index").get<int>();
  i.width = j.at("width").get<int>();
  i.height = j.at("height").get<int>();
  i.bit_depth = j.at("bit_depth").get<int>();
  i.chroma_format_idc = j.at("chroma_format_idc").get<int>();
  i.fps = j.at("fps").get<double>();
  i.declared_avg_fps = j.at("declared_avg_fps").get<double>();
  i.duration_seconds = j.at("duration_seconds").get<double>();
  i.frame_count_estimate = j.at("frame_count_estimate").get<int64_t>();
  i.bit_rate = j.at("bit_rate").get<int64_t>();
  i.time_base_num = j.at("time_base_num").get<int>();
  i.time_base_den = j.at("time_base_den").get<int>();
  i.start_pts = j.at("start_pts").get<int64_t>();
  i.color_space = static_cast<ColorSpace>(j.at("color_space").get<int>());
  i.color_range = static_cast<ColorRange>(j.at("color_range").get<int>());
  i.color_space_guessed = j.at("color_space_guessed").get<bool>();
  i.color_primaries = j.at("color_primaries").get<std::string>();
  i.color_transfer = j.at("color_transfer").get<std::string>();
  i.audio_streams = j.at("audio_streams").get<int>();
  return i;
}

json ReportJson(const FileDecodeReport& r) {
  const DecodeCounters& c = r.counters;
  return {{"path", r.path},
          {"status", StatusJson(r.status)},
          {"info", InfoJson(r.info)},
          {"counters",
           {{"packets", c.packets},
            {"frames_decoded", c.frames_decoded},
            {"frames_delivered", c.frames_delivered},
            {"decode_errors", c.decode_errors},
            {"frames_corrupt", c.frames_corrupt},
            {"frames_skipped", c.frames_skipped},
            {"packets_skipped", c.packets_skipped}}},
          {"decoded_video_seconds", r.decoded_video_seconds},
          {"wall_seconds", r.wall_seconds}};
}

FileDecodeReport ReportFromJson(const json& j) {
  FileDecodeReport r;
  r.path = j.at("path").get<std::string>();
  r.status = StatusFromJson(j.at("status"));
  r.info = InfoFromJson(j.at("info"));
  const json& c = j.at("counters");
  r.counters.packets = c.at("packets").get<int64_t>();
  r.counters.frames_decoded = c.at("frames_decoded").get<int64_t>();
  r.counters.frames_delivered = c.at("frames_delivered").get<int64_t>();
  r.counters.decode_errors = c.at("decode_errors").get<int64_t>();
  r.counters.frames_corrupt = c.at("frames_corrupt").get<int64_t>();
  r.counters.frames_skipped = c.at("frames_skipped").get<int64_t>();
  r.counters.packets_skipped = c.at("packets_skipped").get<int64_t>();
  r.decoded_video_seconds = j.at("decoded_video_seconds").get<double>();
  r.wall_seconds = j.at("wall_seconds").get<double>();
  return r;
}

json SamplingJson(const SamplingPolicy& p) {
  return {{"mode", static_cast<int>(p.mode)}, {"every_nth", p.every_nth}, {"target_fps", p.target_fps}};
}

SamplingPolicy SamplingFromJson(const json& j) {
  SamplingPolicy p;
  p.mode = static_cast<SamplingPolicy::Mode>(j.at("mode").get<int>());
  p.every_nth = j.at("every_nth").get<int>();
  p.target_fps = j.at("target_fps").get<double>();
  return p;
}

json TrackerJson(const track::ByteTrackParams& t) {
  return {{"track_thresh", t.track_thresh},
          {"low_thresh", t.low_thresh},
          {"new_track_thresh", t.new_track_thresh},
          {"match_thresh", t.match_thresh},
          {"low_match_thresh", t.low_match_thresh},
          {"unconfirmed_match_thresh", t.unconfirmed_match_thresh},
          {"duplicate_iou_distance", t.duplicate_iou_distance},
          {"fuse_score", t.fuse_score},
          {"track_buffer", t.track_buffer},
          {"frame_rate", t.frame_rate}};
}

track::ByteTrackParams TrackerFromJson(const json& j) {
  track::ByteTrackParams t;
  t.track_thresh = j.at("track_thresh").get<float>();
  t.low_thresh = j.at("low_thresh").get<float>();
  t.new_track_thresh = j.at("new_track_thresh").get<float>();
  t.match_thresh = j.at("match_thresh").get<float>();
  t.low_match_thresh = j.at("low_match_thresh").get<float>();
  t.unconfirmed_match_thresh = j.at("unconfirmed_match_thresh").get<float>();
  t.duplicate_iou_distance = j.at("duplicate_iou_distance").get<float>();
  t.fuse_score = j.at("fuse_score").get<bool>();
  t.track_buffer = j.at("track_buffer").get<int>();
  t.frame_rate = j.at("frame_rate").get<double>();
  return t;
}

// What a worker needs of the job. The run fingerprint lets an infer worker check it reproduced the
// supervisor's configuration (model file unchanged, same settings).
struct RunSpec {
  RunOptions options;
  std::string model, model_config, model_family, model_fingerprint, run_fingerprint;
  std::vector<VideoInput> videos;  // video id i + 1 is videos[i]
};

json SpecJson(const RunSpec& s) {
  const RunOptions& o = s.options;
  json videos = json::array();
  for (const VideoInput& v : s.videos) videos.push_back({{"path", v.path}, {"key", v.key}, {"sampling", v.sampling}});
  return {{"version", kSpecVersion},
          {"model", {{"model", s.model}, {"config", s.model_config}, {"family", s.model_family}, {"fingerprint", s.model_fingerprint}}},
          {"run_fingerprint", s.run_fingerprint},
          {"output_dir", o.output_dir},
          {"decoder", static_cast<int>(o.decoder)},
          {"decoder_surfaces", o.decoder_surfaces},
          {"cpu_decoder_threads", o.cpu_decoder_threads},
          {"analyzer",
           {{"device", static_cast<int>(o.analyzer.device)},
            {"gpu_index", o.analyzer.gpu_index},
            {"batch_size", o.analyzer.batch_size},
            {"precision", static_cast<int>(o.analyzer.precision)},
            {"cpu_threads", o.analyzer.cpu_threads},
            {"gpu_workspace_bytes", o.analyzer.gpu_workspace_bytes},
            {"cudnn_algorithm_table", o.analyzer.cudnn_algorithm_table},
            {"batches_in_flight", o.analyzer.batches_in_flight}}},
          {"sampling", SamplingJson(o.sampling)},
          {"track", o.track},
          {"tracker", TrackerJson(o.tracker)},
          {"output_threads", o.output_threads},
          {"videos", std::move(videos)}};
}

Expected<RunSpec> SpecFromJson(const json& j) {
  try {
    if (j.at("version").get<int>() != kSpecVersion) {
      return MakeError(StatusCode::kInvalidArgument, "run specification of another vidscan version");
    }
    RunSpec s;
    const json& m = j.at("model");
    s.model = m.at("model").get<std::string>();
    s.model_config = m.at("config").get<std::string>();
    s.model_family = m.at("family").get<std::string>();
    s.model_fingerprint = m.at("fingerprint").get<std::string>();
    s.run_fingerprint = j.at("run_fingerprint").get<std::string>();
    RunOptions& o = s.options;
    o.output_dir = j.at("output_dir").get<std::string>();
    o.decoder = static_cast<DecoderDevice>(j.at("decoder").get<int>());
    o.decoder_surfaces = j.at("decoder_surfaces").get<int>();
    o.cpu_decoder_threads = j.at("cpu_decoder_threads").get<int>();
    const json& a = j.at("analyzer");
    o.analyzer.device = static_cast<AnalyzerDevice>(a.at("device").get<int>());
    o.analyzer.gpu_index = a.at("gpu_index").get<int>();
    o.analyzer.batch_size = a.at("batch_size").get<int>();
    o.analyzer.precision = static_cast<infer::Precision>(a.at("precision").get<int>());
    o.analyzer.cpu_threads = a.at("cpu_threads").get<int>();
    o.analyzer.gpu_workspace_bytes = a.at("gpu_workspace_bytes").get<size_t>();
    o.analyzer.cudnn_algorithm_table = a.at("cudnn_algorithm_table").get<std::string>();
    o.analyzer.batches_in_flight = a.at("batches_in_flight").get<int>();
    o.sampling = SamplingFromJson(j.at("sampling"));
    o.track = j.at("track").get<bool>();
    o.tracker = TrackerFromJson(j.at("tracker"));
    o.output_threads = j.at("output_threads").get<int>();
    for (const json& v : j.at("videos")) {
      VideoInput input;
      input.path = v.at("path").get<std::string>();
      input.key = v.at("key").get<std::string>();
      input.sampling = v.at("sampling").get<std::string>();
      s.videos.push_back(std::move(input));
    }
    return s;
  } catch (const json::exception& e) {
    return MakeError(StatusCode::kCorruptData, fmt::format("run specification: {}", e.what()));
  }
}

// The specification lives in a shared-memory object: length (8 bytes) then JSON text.
Expected<ipc::ShmRegion> PublishSpec(const std::string& name, const std::string& text) {
  VS_ASSIGN_OR_RETURN(ipc::ShmRegion region, ipc::ShmRegion::Create(name, sizeof(uint64_t) + text.size()));
  const uint64_t length = text.size();
  std::memcpy(region.data(), &length, sizeof(length));
  std::memcpy(region.data() + sizeof(length), text.data(), text.size());
  return region;
}

Expected<RunSpec> ReadSpec(const char* name) {
  if (name == nullptr || *name == '\0') {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("{} is not set: not started by `vidscan run --workers`", kEnvRunSpec));
  }
  VS_ASSIGN_OR_RETURN(ipc::ShmRegion region, ipc::ShmRegion::Open(name));
  uint64_t length = 0;
  if (region.size() < sizeof(length)) return MakeError(StatusCode::kCorruptData, fmt::format("{}: too small", name));
  std::memcpy(&length, region.data(), sizeof(length));
  if (length > region.size() - sizeof(length)) return MakeError(StatusCode::kCorruptData, fmt::format("{}: bad length", name));
  const auto* text = reinterpret_cast<const char*>(region.data() + sizeof(length));
  json j = json::parse(text, text + length, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return MakeError(StatusCode::kCorruptData, fmt::format("{}: not JSON", name));
  return SpecFromJson(j);
}

// Data messages from a decode worker to its infer worker about one video.
std::string OpenMessage(const VideoStreamInfo& info) { return json{{"kind", "open"}, {"info", InfoJson(info)}}.dump(); }
std::string EndMessage(const FileDecodeReport& report) { return json{{"kind", "end"}, {"report", ReportJson(report)}}.dump(); }

size_t FrameSlotBytes(int width, int height, int bit_depth) {
  const int row = width * (bit_depth > 8 ? 2 : 1);
  const size_t pitch = (static_cast<size_t>(row) + 255) / 256 * 256;
  return pitch * static_cast<size_t>(height + (height + 1) / 2);
}

// ------------------------------------------------------------------------------------------------
// Decode worker

class PipelineProducer final : public ipc::VideoProducer {
 public:
  explicit PipelineProducer(const RunSpec& spec) : spec_(spec) {}
  void set_device_pool(ipc::DeviceSlotPool* pool) { device_pool_ = pool; }

  Status Produce(uint64_t video_id, ipc::FrameWriter& out) override {
    if (video_id == 0 || video_id > spec_.videos.size()) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("video {} is not in the job", video_id));
    }
    const VideoInput& input = spec_.videos[video_id - 1];
    FileDecodeReport report;
    report.path = input.path;
    auto decoder = DecoderOptionsFor(input, spec_.options, static_cast<int>(video_id - 1), spec_.options.cpu_decoder_threads);
    Status send_failure;  // the video was taken away or the worker is stopping
    if (!decoder.ok()) {
      report.status = decoder.status();
    } else {
      decoder->on_open = [&](const VideoStreamInfo& info) {
        if (send_failure.ok()) send_failure = out.SendVideoData(OpenMessage(info));
      };
      // Device slots: NVDEC's picture is copied straight into a slot of the shared pool (one copy per frame,
      // no surface of the decoder's own in between). A CPU-decoded video still comes through SendFrame's copy.
      std::optional<ipc::SlotBuffer> direct;  // the slot the decoder is writing the current picture into
      if (device_pool_ != nullptr) {
        decoder->acquire_output = [&](size_t bytes) -> Expected<uint8_t*> {
          VS_RETURN_IF_ERROR(send_failure);
          VS_ASSIGN_OR_RETURN(ipc::SlotBuffer slot, out.AcquireSlot());
          if (bytes > slot.bytes) return SlotTooSmall(bytes, slot.bytes);
          direct = slot;
          return reinterpret_cast<uint8_t*>(slot.data);
        };
      }
      FrameSink sink = [&](DecodedFrame&& frame) -> Status {
        VS_RETURN_IF_ERROR(send_failure);
        std::optional<ipc::SlotBuffer> written = std::exchange(direct, std::nullopt);
        if (written && frame.view.luma == reinterpret_cast<const uint8_t*>(written->data)) {
          return SendWrittenSlot(frame, *written, out);
        }
        return SendFrame(frame, out);
      };
      report = DecodeVideo(input.path, std::move(*decoder), sink);
    }
    // The infer worker writes summary.json from this: the decoder's whole story, not just its status.
    if (send_failure.ok()) send_failure = out.SendVideoData(EndMessage(report));
    return send_failure.ok() ? report.status : send_failure;
  }

 private:
  static Status SlotTooSmall(size_t needed, size_t slot_bytes) {
    return MakeError(StatusCode::kUnsupported, fmt::format("a frame needs {} bytes; the job's frame slots, sized from the "
                                                           "videos' stream headers, hold {}", needed, slot_bytes));
  }

  // A frame NVDEC wrote straight into `slot` (the copy is complete: the decoder synchronised it before it
  // released the picture): only its descriptor goes out.
  Status SendWrittenSlot(const DecodedFrame& frame, const ipc::SlotBuffer& slot, ipc::FrameWriter& out) {
    const FrameInfo& info = frame.view.info;
    const uint32_t chroma_offset = static_cast<uint32_t>(info.luma_bytes());
    if (frame.view.chroma != frame.view.luma + chroma_offset || chroma_offset + info.chroma_bytes() > slot.bytes) {
      return MakeError(StatusCode::kInternal, "a picture written into a slot in another layout than the slot's");
    }
    uint8_t event[ipc::kCudaIpcEventHandleBytes];
    VS_RETURN_IF_ERROR(device_pool_->MarkWritten(slot.index, event));
    return out.SendFrame(slot, info, chroma_offset, event);
  }

  // The frame goes into a slot keeping the decoder's pitch and plane layout, so the preprocess kernel
  // reads it exactly as it reads a decoder surface in the single-process mode.
  Status SendFrame(const DecodedFrame& frame, ipc::FrameWriter& out) {
    const FrameInfo& info = frame.view.info;
    const uint32_t chroma_offset = static_cast<uint32_t>(info.luma_bytes());
    VS_ASSIGN_OR_RETURN(ipc::SlotBuffer slot, out.AcquireSlot());
    if (chroma_offset + info.chroma_bytes() > slot.bytes) return SlotTooSmall(chroma_offset + info.chroma_bytes(), slot.bytes);
    if (device_pool_ != nullptr) {
      uint8_t event[ipc::kCudaIpcEventHandleBytes];
      VS_RETURN_IF_ERROR(device_pool_->WriteFrame(slot.index, frame.view, chroma_offset, event));
      // The descriptor goes out first: the consumer's stream waits on the event, not on us.
      Status sent = out.SendFrame(slot, info, chroma_offset, event);
      // The decoder's surface is reused once this sink returns: the copy must be done by then.
      VS_RETURN_IF_ERROR(device_pool_->WaitForWrites());
      return sent;
    }
    if (frame.view.memory != MemoryKind::kHost) {
      return MakeError(StatusCode::kInternal, "a frame in device memory for a host slot pool");
    }
    std::memcpy(slot.data, frame.view.luma, info.luma_bytes());
    std::memcpy(slot.data + chroma_offset, frame.view.chroma, info.chroma_bytes());
    return out.SendFrame(slot, info, chroma_offset);
  }

  const RunSpec& spec_;
  ipc::DeviceSlotPool* device_pool_ = nullptr;
};

// ------------------------------------------------------------------------------------------------
// Infer worker

// Runs tasks on a fixed set of threads, each with its own queue: tasks given to one shard run in order.
class Shards {
 public:
  explicit Shards(int count) {
    for (int i = 0; i < count; ++i) queues_.push_back(std::make_unique<BoundedQueue<std::function<void()>>>(64));
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, i] {
        while (std::optional<std::function<void()>> task = queues_[static_cast<size_t>(i)]->Pop()) {
          const auto t0 = Clock::now();
          (*task)();
          busy_micros_.fetch_add(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count(),
                                 std::memory_order_relaxed);
        }
      });
    }
  }
  ~Shards() {
    for (auto& q : queues_) q->Close();
    for (auto& t : threads_) t.join();
  }
  int count() const { return static_cast<int>(queues_.size()); }
  // Queues a task; blocks while the shard is far behind (back-pressure on the analysis).
  void Post(int shard, std::function<void()> task) { queues_[static_cast<size_t>(shard)]->Push(std::move(task)); }
  // Runs a task after everything queued on the shard before it, and waits for it.
  void Run(int shard, const std::function<void()>& task) {
    std::promise<void> done;
    Post(shard, [&] {
      task();
      done.set_value();
    });
    done.get_future().wait();
  }
  double busy_seconds() const { return busy_micros_.load() * 1e-6; }

 private:
  std::vector<std::unique_ptr<BoundedQueue<std::function<void()>>>> queues_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> busy_micros_{0};
};

class PipelineConsumer final : public ipc::VideoConsumer {
 public:
  PipelineConsumer(const RunSpec& spec, const LoadedModel& model, Analyzer& analyzer, int output_threads)
      : spec_(spec), model_(model), analyzer_(analyzer), shards_(output_threads) {}
  void set_live_counters(LiveCounters* live) { live_ = live; }

  Status BeginVideo(uint64_t video_id, uint32_t attempt) override {
    if (video_id == 0 || video_id > spec_.videos.size()) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("video {} is not in the job", video_id));
    }
    Attempt& a = attempts_[{video_id, attempt}];
    a.shard = static_cast<int>((video_id - 1) % static_cast<uint64_t>(shards_.count()));
    a.output = std::make_shared<Output>(OutputSettingsFor(spec_.videos[video_id - 1], model_, spec_.options));
    return Status::Ok();
  }

  Status VideoData(uint64_t video_id, uint32_t attempt, std::string_view data) override {
    auto it = attempts_.find({video_id, attempt});
    if (it == attempts_.end()) return MakeError(StatusCode::kInternal, fmt::format("data of video {} that never began", video_id));
    json message = json::parse(data, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) return MakeError(StatusCode::kCorruptData, "the decode worker's message is not JSON");
    try {
      const std::string kind = message.at("kind").get<std::string>();
      if (kind == "open") {
        std::shared_ptr<Output> output = it->second.output;
        shards_.Post(it->second.shard, [output, info = InfoFromJson(message.at("info"))] { output->video.Open(info); });
      } else if (kind == "end") {
        it->second.report = ReportFromJson(message.at("report"));
      } else {
        return MakeError(StatusCode::kCorruptData, "the decode worker's message is of unknown kind " + kind);
      }
    } catch (const json::exception& e) {
      return MakeError(StatusCode::kCorruptData, fmt::format("the decode worker's message: {}", e.what()));
    }
    return Status::Ok();
  }

  // Two batches in flight on the GPU, as in the single-process mode: the worker gathers batch k+1 while
  // batch k runs, and finishes k (its slots go back) only then.
  int batches_in_flight() const override { return analyzer_.depth(); }

  // A batch's slots go back once the preprocess kernel has read them, not after its inference: the
  // decoders are not kept waiting for slots by two batches on the GPU.
  std::optional<int> BatchesDoneReading() override {
    if (spec_.options.analyzer.device != AnalyzerDevice::kGpu) return std::nullopt;
    Expected<int> read = analyzer_.BatchesDoneReading();
    return read.ok() ? *read : 0;  // an error shows at the batch's Collect
  }

  Status ConsumeFrames(std::span<const ipc::ReceivedFrame> frames) override {
    VS_RETURN_IF_ERROR(StartBatch(frames));
    return FinishBatch();
  }

  Status StartBatch(std::span<const ipc::ReceivedFrame> frames) override {
    views_.clear();
    events_.clear();
    Started started;
    for (const ipc::ReceivedFrame& frame : frames) {
      views_.push_back(frame.view);
      started.frames.push_back(frame.descriptor);
      if (frame.descriptor.has_cuda_event) {
        VS_ASSIGN_OR_RETURN(void* event, frame.pool->WriteDoneEvent(frame.descriptor));
        if (event != nullptr) events_.push_back(event);
      }
    }
    // The producers' copies into the slots are waited for on the device, before the preprocess kernel.
    VS_RETURN_IF_ERROR(analyzer_.WaitForEvents(events_));
    VS_RETURN_IF_ERROR(analyzer_.Submit(views_));
    started_.push_back(std::move(started));
    return Status::Ok();
  }

  Status FinishBatch() override {
    if (started_.empty()) return MakeError(StatusCode::kInternal, "FinishBatch without a started batch");
    Started batch = std::move(started_.front());
    started_.pop_front();
    VS_ASSIGN_OR_RETURN(std::vector<FrameDetections> detections, analyzer_.Collect());
    if (detections.size() != batch.frames.size()) {
      return MakeError(StatusCode::kInternal, fmt::format("{} results for a batch of {} frames", detections.size(), batch.frames.size()));
    }
    for (size_t i = 0; i < batch.frames.size(); ++i) {
      const ipc::FrameDescriptor& d = batch.frames[i];
      auto it = attempts_.find({d.video_id, d.attempt});
      if (it == attempts_.end()) {
        return MakeError(StatusCode::kInternal, fmt::format("a frame of video {} attempt {} that never began", d.video_id, d.attempt));
      }
      shards_.Post(it->second.shard, [output = it->second.output, index = d.frame_index, pts = d.pts_seconds,
                                      boxes = std::move(detections[i]), live = live_] {
        const auto micros = static_cast<int64_t>(output->video.AddFrame(index, pts, boxes) * 1e6);
        output->video_micros += micros;
        if (live != nullptr) {
          live->frames_analysed.fetch_add(1, std::memory_order_relaxed);
          live->video_micros.fetch_add(micros, std::memory_order_relaxed);
        }
      });
    }
    return Status::Ok();
  }

  ipc::VideoResult EndVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status) override {
    std::promise<ipc::VideoResult> result;
    CommitVideo(video_id, attempt, producer_status, [&](ipc::VideoResult r) { result.set_value(std::move(r)); });
    return result.get_future().get();
  }

  // On the video's output thread, after its frames' tracking and writing: the infer worker goes on with
  // the GPU meanwhile (closing and renaming a video's outputs took the main loop ~0.5 s when all decoders
  // ended a video at once; H200, 2026-11-30).
  void CommitVideo(uint64_t video_id, uint32_t attempt, const Status& producer_status, CommitDone done) override {
    auto it = attempts_.find({video_id, attempt});
    if (it == attempts_.end()) {
      done({MakeError(StatusCode::kInternal, fmt::format("video {} attempt {} never began", video_id, attempt)), ""});
      return;
    }
    FileDecodeReport report;
    if (it->second.report) {
      report = std::move(*it->second.report);
    } else {
      // The producer ended without its report (it failed before decoding): its status is all there is.
      report.path = spec_.videos[video_id - 1].path;
      report.status = producer_status.ok() ? MakeError(StatusCode::kInternal, "the decode worker sent no report") : producer_status;
    }
    std::shared_ptr<Output> output = std::move(it->second.output);
    const int shard = it->second.shard;
    attempts_.erase(it);
    // The analyzer's counters belong to this thread: taken now, for the report.
    const AnalyzerTimes t = analyzer_.times();
    json worker = {{"pid", getpid()},
                   {"analyzer", analyzer_.description()},
                   {"preprocess", t.preprocess},
                   {"infer", t.infer},
                   {"detect", t.detect},
                   {"frames", t.frames},
                   {"idle", t.idle},
                   {"padded_frames", t.padded_frames},
                   {"device_waits", t.device_waits},
                   {"output_threads", shards_.count()}};
    shards_.Post(shard, [this, output = std::move(output), report = std::move(report), worker = std::move(worker),
                         done = std::move(done)]() mutable {
      const VideoVerdict verdict = output->video.Finish(report);
      const int64_t video_micros = output->video_micros + static_cast<int64_t>(verdict.trailing_video_seconds * 1e6);
      output.reset();  // the last reference: temp files of a failed video are removed here, on its thread
      worker["output_busy"] = shards_.busy_seconds();
      json summary = {{"done", verdict.done},
                      {"error", verdict.error},
                      {"warning", verdict.warning},
                      {"frames_analysed", verdict.frames_analysed},
                      {"frames_decoded", report.counters.frames_decoded},
                      {"video_micros", video_micros},
                      {"decode_wall_seconds", report.wall_seconds},
                      {"worker", std::move(worker)}};
      ipc::VideoResult result;
      result.report = summary.dump();
      if (!verdict.done) {
        result.status = MakeError(report.status.ok() ? StatusCode::kIoError : report.status.code(), verdict.error);
      }
      done(std::move(result));
    });
  }

  void AbandonVideo(uint64_t video_id, uint32_t attempt) override {
    auto it = attempts_.find({video_id, attempt});
    if (it == attempts_.end()) return;
    std::shared_ptr<Output> output = std::move(it->second.output);
    const int shard = it->second.shard;
    attempts_.erase(it);
    // Synchronously: the writer's temporary files must be gone before the supervisor starts another attempt.
    shards_.Run(shard, [&] { output.reset(); });
  }

 private:
  // Touched only on its shard's thread once created.
  struct Output {
    explicit Output(VideoOutputSettings settings) : video(std::move(settings)) {}
    VideoOutput video;
    int64_t video_micros = 0;
  };
  struct Attempt {
    std::shared_ptr<Output> output;
    std::optional<FileDecodeReport> report;
    int shard = 0;
  };
  struct Started {
    std::vector<ipc::FrameDescriptor> frames;
  };

  const RunSpec& spec_;
  const LoadedModel& model_;
  Analyzer& analyzer_;
  std::map<std::pair<uint64_t, uint32_t>, Attempt> attempts_;
  std::vector<FrameView> views_;
  std::vector<void*> events_;
  std::deque<Started> started_;  // submitted to the analyzer, not collected
  LiveCounters* live_ = nullptr;
  Shards shards_;  // last: its threads finish the queued tasks before the rest goes
};

// ------------------------------------------------------------------------------------------------
// Supervisor

// What the supervisor gathers from the infer workers' reports.
struct WorkerTimes {
  double preprocess = 0, infer = 0, detect = 0, idle = 0, output_busy = 0;
  int64_t frames = 0, padded_frames = 0, device_waits = 0;
  int output_threads = 1;
};

class MultiProcessRun {
 public:
  MultiProcessRun(std::span<const VideoInput> videos, const LoadedModel& model, const RunOptions& options, JobLedger& ledger)
      : videos_(videos), model_(model), options_(options), ledger_(ledger) {}

  Expected<JobReport> Run() {
    const WorkerLayout layout = options_.workers;
    RunSpec spec;
    spec.options = options_;
    spec.options.cancel = nullptr;
    // Cores are shared among the workers of a role, unless the user said otherwise.
    if (spec.options.cpu_decoder_threads <= 0) spec.options.cpu_decoder_threads = std::max(1, Cores() / layout.decode);
    if (spec.options.analyzer.cpu_threads <= 0) spec.options.analyzer.cpu_threads = std::max(1, Cores() / layout.infer);
    if (spec.options.output_threads <= 0) spec.options.output_threads = std::clamp(Cores() / 2 / layout.infer, 1, 8);
    spec.model = model_.source_model;
    spec.model_config = model_.source_config;
    spec.model_family = model_.source_family;
    spec.model_fingerprint = model_.fingerprint;
    spec.run_fingerprint = RunFingerprint(model_, options_);
    spec.videos.assign(videos_.begin(), videos_.end());

    const size_t slot_bytes = SlotBytesForVideos(videos_);
    VS_ASSIGN_OR_RETURN(const std::string spec_name, ipc::ShmName(getpid(), "run.spec", "json"));
    VS_ASSIGN_OR_RETURN(ipc::ShmRegion spec_region, PublishSpec(spec_name, SpecJson(spec).dump()));
    VS_ASSIGN_OR_RETURN(const std::string exe, SelfExecutable());
    VS_ASSIGN_OR_RETURN(const std::string live_name, ipc::ShmName(getpid(), "run.live", "counters"));
    VS_ASSIGN_OR_RETURN(ipc::ShmRegion live_region, ipc::ShmRegion::Create(live_name, sizeof(LiveCounters)));
    auto* live = new (live_region.data()) LiveCounters();

    ipc::MultiProcessOptions mp;
    mp.tag = "run";
    mp.decode_workers = layout.decode;
    mp.infer_workers = layout.infer;
    mp.worker_argv = {exe};
    mp.worker_env = {{kEnvRunSpec, spec_name},
                     {kEnvRunLive, live_name},
                     {kEnvLogLevel, std::to_string(static_cast<int>(spdlog::get_level()))}};
    // MPS: the workers' CUDA_MPS_PIPE_DIRECTORY decides whether they attach to a daemon. Stopped when this
    // function returns, on every path (a cancel included).
    VS_ASSIGN_OR_RETURN(ipc::MpsSession mps, ipc::MpsSession::Start(options_.mps));
    mps_ = &mps;
    for (auto& entry : mps.WorkerEnvironment()) mp.worker_env.push_back(std::move(entry));
    // An infer worker fills its batches from the slots of the decoders feeding it: together they hold
    // batches_in_flight batches (those on the GPU and the one filling), or every batch would wait out
    // max_batch_wait half-full.
    const int decoders_per_infer = std::max(1, layout.decode / layout.infer);
    const int frames_held = options_.analyzer.batches_in_flight * options_.analyzer.batch_size;
    const int slots_for_batches = (frames_held + decoders_per_infer - 1) / decoders_per_infer;
    mp.slots_per_decoder = std::max(options_.decoder_surfaces, slots_for_batches);
    mp.slot_bytes = slot_bytes;
    mp.batch_size = options_.analyzer.batch_size;
    mp.max_batch_wait = std::chrono::microseconds(static_cast<int64_t>(options_.max_batch_wait_ms * 1000));
    // The window stops the job at a cancel (options.cancel) or at the end of a trial (trial_seconds).
    RunWindow window(options_, [live] {
      return RunWindow::Counters{live->frames_analysed.load(), live->video_micros.load()};
    });
    mp.cancel = window.stop_flag();
    // At a cancel, workers finish what they are doing (a CPU batch can take a second or two) before they
    // are terminated: a video they commit meanwhile is recorded done, not re-run by the next job.
    mp.stop_grace = std::chrono::seconds(10);
    mp.observer = [this](const ipc::JobEvent& event) { OnEvent(event); };

    if (options_.decoder == DecoderDevice::kGpu || options_.analyzer.device == AnalyzerDevice::kGpu) {
      auto monitor = GpuMonitor::Start(options_.analyzer.gpu_index, 200);
      if (monitor.ok()) monitor_ = std::move(*monitor);
    }
    progress_ = std::make_unique<JobProgress>(options_.progress, options_.progress_interval_s,
                                              static_cast<int>(videos_.size()), monitor_.get());
    progress_->SetLiveSource([live] {
      return JobProgress::LiveCounts{live->frames_analysed.load(), live->video_micros.load()};
    });
    spdlog::debug("multi-process job: {} decode + {} infer workers, {} slots of {} bytes per decoder", layout.decode,
                  layout.infer, mp.slots_per_decoder, slot_bytes);
    progress_->Start();
    window.Start();
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < videos_.size(); ++i) ids.push_back(i + 1);
    job_started_ = Clock::now();
    auto result = ipc::RunMultiProcessJob(ids, mp);
    window.Finish();
    progress_->Stop();
    JobReport report;
    report.measured = window.window();
    report.mps = FinishMps(mps);
    mps_ = nullptr;
    if (monitor_) {
      report.gpu = monitor_->Stop();
      report.gpu_monitored = true;
      report.measured.gpu = monitor_->Between(window.opened_at(), window.closed_at());
      report.measured.gpu_monitored = true;
    }
    if (!result.ok()) {
      // A trial that ran its time was stopped like a cancelled job (workers shut down, videos in flight left
      // "running"), but it is a result: what the workers reported so far.
      if (!window.trial_ended()) return result.status();
      ipc::MultiProcessReport partial;
      partial.wall_seconds = progress_->seconds();
      result = std::move(partial);
    }
    report.stopped = window.trial_ended();
    return Report(*result, std::move(report));
  }

 private:
  static Expected<std::string> SelfExecutable() {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return MakeError(StatusCode::kUnavailable, fmt::format("/proc/self/exe: {}", ec.message()));
    return exe.string();
  }

  // Asks the MPS daemon which processes are its clients: at the first video finished (every worker that
  // said hello has its CUDA context by then), then at most every 10 s, and at the last video (the workers
  // are shut down only after it). A query is a few milliseconds of the supervisor's thread.
  void ObserveMps(bool last) {
    if (!mps_ || !mps_->daemon_in_use()) return;
    const auto now = std::chrono::steady_clock::now();
    if (!last && mps_queried_ && now - last_mps_query_ < std::chrono::seconds(10)) return;
    mps_queried_ = true;
    last_mps_query_ = now;
    if (Status st = mps_->ObserveClients(worker_pids_); !st.ok()) {
      spdlog::debug("MPS: {}", st.ToString());
      if (mps_query_error_.empty()) mps_query_error_ = st.message();
    }
  }

  ipc::MpsReport FinishMps(ipc::MpsSession& mps) {
    if (Status st = mps.Stop(); !st.ok()) spdlog::warn("MPS: {}", st.ToString());
    ipc::MpsReport report = mps.report();
    report.workers_watched = static_cast<int>(worker_pids_.size());
    const bool gpu = options_.decoder == DecoderDevice::kGpu || options_.analyzer.device == AnalyzerDevice::kGpu;
    if (report.used && !gpu) {
      report.note = "the job ran on the CPU: its workers do not use CUDA";
    } else if (report.used && report.clients_seen == 0 && report.note.empty()) {
      report.note = !mps_query_error_.empty() ? "asking the daemon for its clients failed: " + mps_query_error_
                    : report.daemon_clients < 0
                        ? "the daemon was never queried (no video finished)"
                        : "no worker was among the daemon's clients (in a container with its own pid namespace the "
                          "daemon reports other pids)";
    }
    return report;
  }

  void OnEvent(const ipc::JobEvent& event) {
    if (event.kind == ipc::JobEvent::Kind::kWorkerReady && event.role == ipc::WorkerRole::kInfer && !analysis_ready_) {
      infer_ready_.insert(event.worker);
      if (static_cast<int>(infer_ready_.size()) == options_.workers.infer) analysis_ready_ = Clock::now();
    }
    if (event.kind == ipc::JobEvent::Kind::kWorkerStarted) worker_pids_.push_back(event.pid);
    if (event.kind != ipc::JobEvent::Kind::kVideoAssigned && event.kind != ipc::JobEvent::Kind::kVideoFinished) return;
    if (event.video_id == 0 || event.video_id > videos_.size()) return;
    const VideoInput& input = videos_[event.video_id - 1];
    if (event.kind == ipc::JobEvent::Kind::kVideoAssigned) {
      if (Status st = ledger_.MarkRunning(input.key); !st.ok()) spdlog::error("ledger: {}", st.ToString());
      return;
    }
    // The infer worker's report; a video failed by the supervisor (its workers kept dying) has none.
    json r = event.report.empty() ? json() : json::parse(event.report, nullptr, /*allow_exceptions=*/false);
    if (!r.is_object()) r = json::object();
    const int64_t frames = r.value("frames_analysed", int64_t{0});
    progress_->frames_analysed.fetch_add(frames);
    progress_->video_micros.fetch_add(r.value("video_micros", int64_t{0}));
    frames_decoded_ += r.value("frames_decoded", int64_t{0});
    decode_seconds_ += r.value("decode_wall_seconds", 0.0);
    if (r.contains("worker") && r["worker"].is_object()) {
      const json& w = r["worker"];
      // Cumulative: the report with the most frames counts (commits finish on several output threads, so
      // reports may arrive out of order).
      WorkerTimes& times = worker_times_[w.value("pid", 0)];
      if (w.value("frames", int64_t{0}) >= times.frames) {
        times.preprocess = w.value("preprocess", 0.0);
        times.infer = w.value("infer", 0.0);
        times.detect = w.value("detect", 0.0);
        times.frames = w.value("frames", int64_t{0});
        times.idle = w.value("idle", 0.0);
        times.padded_frames = w.value("padded_frames", int64_t{0});
        times.device_waits = w.value("device_waits", int64_t{0});
        times.output_busy = w.value("output_busy", 0.0);
        times.output_threads = w.value("output_threads", 1);
      }
      if (analyzer_.empty()) analyzer_ = w.value("analyzer", std::string());
    }
    if (event.state == ipc::VideoState::kDone) {
      if (Status st = ledger_.MarkDone(input.key, frames, r.value("decode_wall_seconds", 0.0)); !st.ok()) {
        spdlog::error("ledger: {}", st.ToString());
      }
      progress_->videos_done.fetch_add(1);
      const std::string warning = r.value("warning", std::string());
      if (!warning.empty()) {
        warnings_.push_back({input.key, input.path, warning});
        spdlog::warn("{}: analysed what could be decoded: {}", input.path, warning);
      }
    } else {
      std::string error = r.value("error", std::string());
      if (error.empty()) error = event.detail;
      if (Status st = ledger_.MarkFailed(input.key, error); !st.ok()) spdlog::error("ledger: {}", st.ToString());
      progress_->videos_failed.fetch_add(1);
      failures_.push_back({input.key, input.path, error});
      spdlog::warn("failed: {}", error);
    }
    ++videos_finished_;
    ObserveMps(videos_finished_ >= videos_.size());
  }

  JobReport Report(const ipc::MultiProcessReport& mp, JobReport report) const {
    const WorkerLayout layout = options_.workers;
    // As in the single-process mode, the wall time starts when the analysis is ready (here: every infer
    // worker has loaded and tuned its model); what came before is start-up, reported on its own.
    report.startup_seconds = analysis_ready_ ? std::chrono::duration<double>(*analysis_ready_ - job_started_).count() : 0;
    report.startup_seconds = std::clamp(report.startup_seconds, 0.0, mp.wall_seconds);
    report.wall_seconds = mp.wall_seconds - report.startup_seconds;
    report.videos_total = static_cast<int>(videos_.size());
    report.videos_done = progress_->videos_done.load();
    report.videos_failed = progress_->videos_failed.load();
    report.videos_with_warnings = static_cast<int>(warnings_.size());
    report.frames_decoded = frames_decoded_;
    report.frames_analysed = progress_->frames_analysed.load();
    report.video_seconds = progress_->video_micros.load() * 1e-6;
    report.failures = failures_;
    report.warnings = warnings_;
    report.worker_deaths = mp.worker_deaths;
    report.worker_restarts = mp.worker_restarts;
    report.analyzer = analyzer_.empty() ? "none ran" : fmt::format("{}, in each of {} infer workers", analyzer_, layout.infer);
    WorkerTimes total;
    int output_threads = 0;
    for (const auto& [pid, t] : worker_times_) {
      total.preprocess += t.preprocess;
      total.infer += t.infer;
      total.detect += t.detect;
      total.frames += t.frames;
      total.idle += t.idle;
      total.padded_frames += t.padded_frames;
      total.device_waits += t.device_waits;
      total.output_busy += t.output_busy;
      output_threads = std::max(output_threads, t.output_threads);
    }
    report.padded_frames = total.padded_frames;
    report.device_waits = total.device_waits;
    report.stages = {
        {"decode", report.frames_decoded, decode_seconds_, layout.decode},
        {"slot wait", report.frames_analysed, mp.producer_wait_seconds, layout.decode},
        {"preprocess", total.frames, total.preprocess, layout.infer},
        {"infer", total.frames, total.infer, layout.infer},
        {"detect+nms", total.frames, total.detect, layout.infer},
        {"GPU idle", total.frames, total.idle, layout.infer},
        {"track+write", report.frames_analysed, total.output_busy, layout.infer * std::max(1, output_threads)},
    };
    return report;
  }

  std::span<const VideoInput> videos_;
  const LoadedModel& model_;
  const RunOptions& options_;
  JobLedger& ledger_;
  std::unique_ptr<GpuMonitor> monitor_;
  std::unique_ptr<JobProgress> progress_;
  // Written on the supervisor's thread only (the observer runs there).
  int64_t frames_decoded_ = 0;
  double decode_seconds_ = 0;
  std::vector<VideoFailure> failures_, warnings_;
  std::map<int, WorkerTimes> worker_times_;  // by infer worker pid
  std::string analyzer_;
  Clock::time_point job_started_;
  std::set<int> infer_ready_;                    // infer workers that were ready once
  std::optional<Clock::time_point> analysis_ready_;  // when all of them were
  ipc::MpsSession* mps_ = nullptr;  // while the job runs
  std::vector<pid_t> worker_pids_;  // every worker process started, restarts included
  size_t videos_finished_ = 0;
  bool mps_queried_ = false;
  std::string mps_query_error_;  // the first failed query's message
  std::chrono::steady_clock::time_point last_mps_query_;
};

// ------------------------------------------------------------------------------------------------
// Worker processes

int DecodeWorkerMain(const RunSpec& spec) {
  PipelineProducer producer(spec);
  ipc::DecodeWorkerOptions options;
  if (spec.options.analyzer.device == AnalyzerDevice::kGpu) {
    // The analysis reads frames on the GPU: they go into a device pool the infer worker maps.
    auto how = ipc::DevicePoolExportFromEnvironment();
    if (!how.ok()) {
      spdlog::error("{}", how.status().ToString());
      return ipc::kWorkerExitSetupFailed;
    }
    options.create_pool = [&producer, &spec, how = *how](const std::string& name, int slots, size_t bytes)
        -> Expected<std::unique_ptr<ipc::SlotMemory>> {
      VS_ASSIGN_OR_RETURN(auto pool, ipc::DeviceSlotPool::Create(name, slots, bytes, spec.options.analyzer.gpu_index, how));
      producer.set_device_pool(pool.get());
      return std::unique_ptr<ipc::SlotMemory>(std::move(pool));
    };
  }
  return ipc::RunDecodeWorker(producer, options);
}

int InferWorkerMain(const RunSpec& spec) {
  const auto started = Clock::now();
  auto model = LoadModelForRun(spec.model, spec.model_config, spec.model_family);
  if (!model.ok()) {
    spdlog::error("loading the model: {}", model.status().ToString());
    return ipc::kWorkerExitSetupFailed;
  }
  const std::string fingerprint = RunFingerprint(*model, spec.options);
  if (fingerprint != spec.run_fingerprint) {
    spdlog::error("the model or settings differ from the supervisor's (the model file changed?): {} vs {}", fingerprint,
                  spec.run_fingerprint);
    return ipc::kWorkerExitSetupFailed;
  }
  auto analyzer = CreateAnalyzer(model->model, model->description, spec.options.analyzer);
  if (!analyzer.ok()) {
    spdlog::error("creating the analyzer: {}", analyzer.status().ToString());
    return ipc::kWorkerExitSetupFailed;
  }
  // Start-up is paid again by a restarted worker: worth seeing in the log.
  spdlog::info("ready in {:.1f} s: {}", std::chrono::duration<double>(Clock::now() - started).count(),
               (*analyzer)->description());
  // The supervisor's live counters (a throughput window); a worker without them still does its job.
  std::optional<ipc::ShmRegion> live_region;
  if (const char* live_name = std::getenv(kEnvRunLive); live_name != nullptr && *live_name != '\0') {
    auto region = ipc::ShmRegion::Open(live_name);
    if (region.ok() && region->size() >= sizeof(LiveCounters)) {
      live_region = std::move(*region);
    } else {
      spdlog::warn("{}: cannot map the job's live counters; the supervisor's throughput window will miss this worker",
                   live_name);
    }
  }
  PipelineConsumer consumer(spec, *model, **analyzer, std::max(1, spec.options.output_threads));
  if (live_region) consumer.set_live_counters(reinterpret_cast<LiveCounters*>(live_region->data()));
  ipc::InferWorkerOptions options;
  options.open_pool = [](const ipc::PoolLocator& locator) -> Expected<std::unique_ptr<ipc::SlotMemory>> {
    if (locator.memory == MemoryKind::kDevice) {
      VS_ASSIGN_OR_RETURN(auto pool, ipc::DeviceSlotPool::Open(locator));
      return std::unique_ptr<ipc::SlotMemory>(std::move(pool));
    }
    VS_ASSIGN_OR_RETURN(auto pool, ipc::HostSlotPool::Open(locator));
    return std::unique_ptr<ipc::SlotMemory>(std::move(pool));
  };
  return ipc::RunInferWorker(consumer, options);
}

}  // namespace

size_t SlotBytesForVideos(std::span<const VideoInput> videos) {
  std::atomic<size_t> next{0};
  std::atomic<size_t> largest{64 * 1024};
  auto probe = [&] {
    for (size_t i = next.fetch_add(1); i < videos.size(); i = next.fetch_add(1)) {
      auto demuxer = Demuxer::Open(videos[i].path);
      if (!demuxer.ok()) continue;
      const VideoStreamInfo& info = (*demuxer)->info();
      const size_t bytes = FrameSlotBytes(info.width, info.height, info.bit_depth);
      size_t seen = largest.load();
      while (bytes > seen && !largest.compare_exchange_weak(seen, bytes)) {
      }
    }
  };
  // Opening a container reads its headers: I/O bound, so a few threads hide the latency.
  const size_t threads = std::min<size_t>(videos.size(), 8);
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(probe);
  probe();
  for (auto& t : pool) t.join();
  return largest.load();
}

Expected<JobReport> RunMultiProcess(std::span<const VideoInput> videos, const LoadedModel& model,
                                    const RunOptions& options, JobLedger& ledger) {
  if (!options.workers.multi_process()) return MakeError(StatusCode::kInvalidArgument, "not a multi-process layout");
  MultiProcessRun run(videos, model, options, ledger);
  return run.Run();
}

int RunPipelineWorker() {
  // ^C in a terminal reaches the whole process group: the supervisor handles it and stops the workers.
  signal(SIGINT, SIG_IGN);
  const char* level = std::getenv(kEnvLogLevel);
  InitLogging(level ? static_cast<spdlog::level::level_enum>(std::atoi(level)) : spdlog::level::info);
  auto identity = ipc::WorkerIdentity::FromEnvironment();
  if (!identity.ok()) {
    spdlog::error("{}", identity.status().ToString());
    return ipc::kWorkerExitSetupFailed;
  }
  spdlog::default_logger()->set_pattern(
      fmt::format("%^[%H:%M:%S.%e %l]%$ [{}-{}] %v", ipc::WorkerRoleName(identity->role), identity->index));
  auto spec = ReadSpec(std::getenv(kEnvRunSpec));
  if (!spec.ok()) {
    spdlog::error("{}", spec.status().ToString());
    return ipc::kWorkerExitSetupFailed;
  }
  return identity->role == ipc::WorkerRole::kDecode ? DecodeWorkerMain(*spec) : InferWorkerMain(*spec);
}

}  // namespace vidscan
