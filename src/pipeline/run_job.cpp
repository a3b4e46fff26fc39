#include "pipeline/run_job.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "core/log.h"
#include "job/ledger.h"
#include "pipeline/bounded_queue.h"
#include "sink/atomic_file.h"
#include "sink/video_results.h"

namespace vidscan {
namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// What flows from the decode threads to the analysis thread, in each video's own order.
struct DecodeItem {
  enum class Kind : uint8_t { kOpened, kFrame, kEnded } kind = Kind::kFrame;
  int video = 0;
  DecodedFrame frame;        // kFrame
  VideoStreamInfo info;      // kOpened
  FileDecodeReport report;   // kEnded
};

// What flows from the analysis thread to a video's output thread.
struct ResultItem {
  DecodeItem::Kind kind = DecodeItem::Kind::kFrame;
  int video = 0;
  int64_t frame_index = 0;
  double pts_seconds = 0;
  FrameDetections detections;
  VideoStreamInfo info;
  FileDecodeReport report;
};

// Accumulates seconds across threads.
class BusyClock {
 public:
  void Add(double seconds) { micros_.fetch_add(static_cast<int64_t>(seconds * 1e6), std::memory_order_relaxed); }
  double seconds() const { return micros_.load(std::memory_order_relaxed) * 1e-6; }

 private:
  std::atomic<int64_t> micros_{0};
};

// A damaged stream whose good part was decoded is a result with a warning; anything else that is not OK
// fails the video.
bool UsableDespiteError(const FileDecodeReport& report) {
  return report.status.code() == StatusCode::kCorruptData && report.counters.frames_delivered > 0;
}

class JobRunner {
 public:
  JobRunner(std::span<const VideoInput> videos, const LoadedModel& model, const RunOptions& options,
            JobLedger* ledger, Analyzer* analyzer)
      : videos_(videos.begin(), videos.end()),
        model_(model),
        options_(options),
        ledger_(ledger),
        analyzer_(analyzer),
        decode_queue_(static_cast<size_t>(std::max(2 * analyzer->batch_size(), 8))) {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // Tracking and JSON formatting scale with boxes per frame. On the H200 (16 cores, 24 decoders) 4 threads
    // kept up with 300 boxes per frame at 3,100 frames/s and ran faster overall than 8, which took cores
    // from the decoders (104x vs 100-103x realtime).
    output_threads_ = options.output_threads > 0 ? options.output_threads : std::clamp(cores / 4, 1, 4);
    for (int i = 0; i < output_threads_; ++i) {
      result_queues_.push_back(std::make_unique<BoundedQueue<ResultItem>>(static_cast<size_t>(4 * analyzer->batch_size())));
    }
    cpu_decoder_threads_ = options.cpu_decoder_threads > 0
                               ? options.cpu_decoder_threads
                               : std::max(1, cores / std::max(1, std::min<int>(options.max_open_videos, static_cast<int>(videos_.size()))));
  }

  JobReport Run();

 private:
  void DecodeLoop();
  void DecodeOne(int video);
  Status AnalysisLoop();
  void OutputLoop(int shard);
  void ProgressLoop();
  void PrintProgress(bool final_line);

  struct VideoTrackState;
  void HandleFrame(VideoTrackState& state, const ResultItem& item);
  void FinishVideo(int video, VideoTrackState* state, const FileDecodeReport& report);

  std::vector<VideoInput> videos_;
  const LoadedModel& model_;
  const RunOptions& options_;
  JobLedger* ledger_;
  Analyzer* analyzer_;
  int output_threads_ = 1;
  int cpu_decoder_threads_ = 1;

  std::atomic<int> next_video_{0};
  BoundedQueue<DecodeItem> decode_queue_;
  std::vector<std::unique_ptr<BoundedQueue<ResultItem>>> result_queues_;

  // Progress and the final report.
  Clock::time_point start_ = Clock::now();
  std::atomic<int> videos_done_{0}, videos_failed_{0}, videos_warned_{0};
  std::atomic<int64_t> frames_decoded_{0}, frames_analysed_{0}, video_micros_{0};
  BusyClock decode_busy_, batch_wait_, output_busy_;
  std::mutex report_mutex_;
  std::vector<VideoFailure> failures_, warnings_;
  std::atomic<bool> finished_{false};
  std::unique_ptr<GpuMonitor> monitor_;
  std::mutex progress_mutex_;
  std::condition_variable progress_wake_;
  bool terminal_ = false;
};

void JobRunner::DecodeLoop() {
  while (true) {
    const int video = next_video_.fetch_add(1);
    if (video >= static_cast<int>(videos_.size())) return;
    DecodeOne(video);
  }
}

void JobRunner::DecodeOne(int video) {
  const VideoInput& input = videos_[static_cast<size_t>(video)];
  auto t0 = Clock::now();
  auto end_with = [&](FileDecodeReport report) {
    decode_busy_.Add(Since(t0));
    frames_decoded_.fetch_add(report.counters.frames_decoded, std::memory_order_relaxed);
    DecodeItem end;
    end.kind = DecodeItem::Kind::kEnded;
    end.video = video;
    end.report = std::move(report);
    decode_queue_.Push(std::move(end));
  };
  FileDecodeReport failed;
  failed.path = input.path;
  if (ledger_ != nullptr) {
    if (Status st = ledger_->MarkRunning(input.key); !st.ok()) {
      failed.status = st;
      return end_with(std::move(failed));
    }
  }
  DecoderOptions decoder;
  decoder.device = options_.decoder;
  decoder.gpu_index = options_.analyzer.gpu_index;
  decoder.surface_pool_size = options_.decoder_surfaces;
  decoder.cpu_threads = cpu_decoder_threads_;
  decoder.sampling = options_.sampling;
  decoder.stream_id = video;
  if (!input.sampling.empty()) {
    auto policy = SamplingPolicy::Parse(input.sampling);
    if (!policy.ok()) {
      failed.status = policy.status().WithContext(input.path + ": manifest option 'sample'");
      return end_with(std::move(failed));
    }
    decoder.sampling = *policy;
  }
  bool opened = false;
  decoder.on_open = [&](const VideoStreamInfo& info) {
    if (opened) return;  // a retry on the CPU decoder opens the file again
    opened = true;
    DecodeItem item;
    item.kind = DecodeItem::Kind::kOpened;
    item.video = video;
    item.info = info;
    decode_queue_.Push(std::move(item));
  };
  FrameSink sink = [&](DecodedFrame&& frame) {
    DecodeItem item;
    item.kind = DecodeItem::Kind::kFrame;
    item.video = video;
    item.frame = std::move(frame);
    if (!decode_queue_.Push(std::move(item))) return MakeError(StatusCode::kInternal, "the pipeline stopped");
    return Status::Ok();
  };
  FileDecodeReport report = DecodeFile(input.path, decoder, sink);
  // NVDEC cannot take every stream (AV1 on GPUs without it, 4:2:2, > 8K): libavcodec can.
  if (decoder.device == DecoderDevice::kGpu && report.counters.frames_delivered == 0 &&
      (report.status.code() == StatusCode::kUnsupported || report.status.code() == StatusCode::kUnavailable)) {
    spdlog::info("{}: NVDEC cannot decode it ({}); decoding on the CPU", input.path, report.status.message());
    decoder.device = DecoderDevice::kCpu;
    report = DecodeFile(input.path, decoder, sink);
  }
  end_with(std::move(report));
}

Status JobRunner::AnalysisLoop() {
  const int batch_size = analyzer_->batch_size();
  const auto max_wait = std::chrono::microseconds(static_cast<int64_t>(options_.max_batch_wait_ms * 1000));
  // Gathered batches in submission order: each holds its frames (their surfaces stay leased until the
  // batch is collected) and the control items that arrived between them, in arrival order.
  struct Batch {
    std::vector<DecodeItem> items;
    bool submitted = false;
  };
  std::deque<Batch> in_flight;
  Status failure;

  // Passes a collected batch on to the output threads, in arrival order.
  auto emit = [&](Batch& batch, std::vector<FrameDetections>* detections) {
    size_t next_frame = 0;
    for (DecodeItem& item : batch.items) {
      ResultItem result;
      result.kind = item.kind;
      result.video = item.video;
      if (item.kind == DecodeItem::Kind::kFrame) {
        result.frame_index = item.frame.view.info.frame_index;
        result.pts_seconds = item.frame.view.info.pts_seconds;
        result.detections = std::move((*detections)[next_frame++]);
        item.frame.lease.Reset();  // the surface goes back to its decoder
      } else if (item.kind == DecodeItem::Kind::kOpened) {
        result.info = std::move(item.info);
      } else {
        result.report = std::move(item.report);
      }
      result_queues_[static_cast<size_t>(item.video % output_threads_)]->Push(std::move(result));
    }
  };
  auto collect_oldest = [&]() {
    Batch batch = std::move(in_flight.front());
    in_flight.pop_front();
    std::vector<FrameDetections> detections;
    if (batch.submitted) {
      auto collected = analyzer_->Collect();
      if (!collected.ok()) {
        failure = collected.status();
      } else {
        detections = std::move(*collected);
        frames_analysed_.fetch_add(static_cast<int64_t>(detections.size()), std::memory_order_relaxed);
      }
    }
    if (!failure.ok()) {
      // A device failure mid-job (e.g. the GPU fell off the bus) stops the job: the videos in flight stay
      // "running" in the ledger and restart on the next run. Frames are released; nothing is emitted.
      for (DecodeItem& item : batch.items) item.frame.lease.Reset();
      return;
    }
    emit(batch, &detections);
  };

  bool input_done = false;
  while (failure.ok() && !(input_done && in_flight.empty())) {
    // Collect when the analyzer is full, or when nothing more will come.
    const int submitted = static_cast<int>(std::count_if(in_flight.begin(), in_flight.end(), [](const Batch& b) { return b.submitted; }));
    if (input_done || submitted >= analyzer_->depth()) {
      collect_oldest();
      continue;
    }
    // Gather the next batch. With batches in flight, wait at most max_wait for its first item: decoders may
    // be blocked on surfaces that only collecting the oldest batch gives back.
    auto wait_start = Clock::now();
    std::optional<DecodeItem> first = in_flight.empty() ? decode_queue_.Pop() : decode_queue_.PopUntil(wait_start + max_wait);
    if (!first) {
      if (decode_queue_.closed_and_empty()) input_done = true;
      else if (!in_flight.empty()) collect_oldest();
      batch_wait_.Add(Since(wait_start));
      continue;
    }
    Batch batch;
    std::vector<FrameView> frames;
    std::optional<Clock::time_point> deadline;
    auto take = [&](DecodeItem&& item) {
      if (item.kind == DecodeItem::Kind::kFrame) {
        if (!deadline) deadline = Clock::now() + max_wait;
        frames.push_back(item.frame.view);
      }
      batch.items.push_back(std::move(item));
    };
    take(std::move(*first));
    while (static_cast<int>(frames.size()) < batch_size) {
      // Control items alone need no batch: pass them on at once when no frame is waiting.
      std::optional<DecodeItem> next = deadline ? decode_queue_.PopUntil(*deadline)
                                      : decode_queue_.size() > 0 ? decode_queue_.Pop() : std::nullopt;
      if (!next) break;
      take(std::move(*next));
    }
    batch_wait_.Add(Since(wait_start));
    if (!frames.empty()) {
      if (Status st = analyzer_->Submit(frames); !st.ok()) {
        failure = st;
        for (DecodeItem& item : batch.items) item.frame.lease.Reset();
        break;
      }
      batch.submitted = true;
    }
    in_flight.push_back(std::move(batch));
    // A batch of control items only is passed on as soon as everything before it has been.
    while (!in_flight.empty() && !in_flight.front().submitted) collect_oldest();
  }
  if (!failure.ok()) {
    spdlog::error("analysis failed, stopping the job: {}", failure.ToString());
    decode_queue_.Close();
    while (!in_flight.empty()) {
      for (DecodeItem& item : in_flight.front().items) item.frame.lease.Reset();
      in_flight.pop_front();
    }
    while (std::optional<DecodeItem> item = decode_queue_.Pop()) item->frame.lease.Reset();
  }
  for (auto& q : result_queues_) q->Close();
  return failure;
}

struct JobRunner::VideoTrackState {
  std::optional<VideoResultWriter> writer;
  Status writer_error;
  VideoStreamInfo info;
  double fps = 0;
  std::map<int, track::ByteTracker> trackers;          // per class
  std::map<std::pair<int, int64_t>, int64_t> track_ids;  // (class, tracker id) -> id unique in the video
  int64_t next_track_id = 1;
  int64_t last_frame_index = -1;
  int64_t frames_analysed = 0;
  std::vector<track::Detection> class_boxes;
  std::vector<int> class_indices;
  std::vector<track::TrackedObject> tracked;
};

void JobRunner::HandleFrame(VideoTrackState& state, const ResultItem& item) {
  const int64_t step = state.last_frame_index < 0 ? item.frame_index + 1 : item.frame_index - state.last_frame_index;
  state.last_frame_index = item.frame_index;
  state.frames_analysed += 1;
  if (state.fps > 0) video_micros_.fetch_add(static_cast<int64_t>(step / state.fps * 1e6), std::memory_order_relaxed);

  FrameResult result;
  result.frame_index = item.frame_index;
  result.pts_seconds = item.pts_seconds;
  result.detections.reserve(item.detections.size());
  for (const Detection& d : item.detections) {
    result.detections.push_back(OutputDetection{d.class_id, d.score, d.x1, d.y1, d.x2, d.y2, -1});
  }
  if (options_.track) {
    // One tracker per class: a person box must never continue a bag's track.
    std::map<int, std::vector<int>> by_class;
    for (size_t i = 0; i < item.detections.size(); ++i) by_class[item.detections[i].class_id].push_back(static_cast<int>(i));
    // Trackers of classes absent in this frame still age their tracks.
    for (auto& [class_id, tracker] : state.trackers) by_class.try_emplace(class_id);
    for (auto& [class_id, indices] : by_class) {
      auto it = state.trackers.find(class_id);
      if (it == state.trackers.end()) {
        track::ByteTrackParams params = options_.tracker;
        params.frame_rate = state.fps > 0 ? state.fps : 30.0;
        it = state.trackers.emplace(class_id, track::ByteTracker(params)).first;
      }
      state.class_boxes.clear();
      for (int i : indices) {
        const Detection& d = item.detections[static_cast<size_t>(i)];
        state.class_boxes.push_back({{d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1}, d.score});
      }
      if (Status st = it->second.Update(item.frame_index, state.class_boxes, &state.tracked); !st.ok()) {
        spdlog::warn("tracker: {}", st.ToString());
        continue;
      }
      for (const track::TrackedObject& t : state.tracked) {
        auto [id, inserted] = state.track_ids.try_emplace({class_id, t.track_id}, state.next_track_id);
        if (inserted) ++state.next_track_id;
        result.detections[static_cast<size_t>(indices[static_cast<size_t>(t.detection_index)])].track_id = id->second;
      }
    }
  }
  if (state.writer && state.writer_error.ok()) state.writer_error = state.writer->Write(result);
}

void JobRunner::FinishVideo(int video, VideoTrackState* state, const FileDecodeReport& report) {
  const VideoInput& input = videos_[static_cast<size_t>(video)];
  const bool usable = report.status.ok() || UsableDespiteError(report);
  std::string error;
  if (!usable) {
    error = report.status.ToString();
  } else if (state == nullptr || !state->writer_error.ok()) {
    error = state == nullptr ? "internal: no results for the video" : state->writer_error.ToString();
  } else if (state->writer) {
    VideoCompletion done;
    done.decode = report.counters;
    done.decoded_video_seconds = report.decoded_video_seconds;
    if (!report.status.ok()) done.decode_warning = report.status.ToString();
    if (Status st = state->writer->Commit(done); !st.ok()) error = st.ToString();
  }
  // Video time not covered by analysed frames (after the last sampled one).
  if (state != nullptr && state->fps > 0 && report.counters.frames_decoded > state->last_frame_index + 1) {
    video_micros_.fetch_add(static_cast<int64_t>((report.counters.frames_decoded - state->last_frame_index - 1) / state->fps * 1e6),
                            std::memory_order_relaxed);
  }
  if (error.empty()) {
    if (ledger_ != nullptr) {
      if (Status st = ledger_->MarkDone(input.key, state ? state->frames_analysed : 0, report.wall_seconds); !st.ok()) {
        spdlog::error("ledger: {}", st.ToString());
      }
    }
    videos_done_.fetch_add(1);
    if (!report.status.ok()) {
      videos_warned_.fetch_add(1);
      std::lock_guard lock(report_mutex_);
      warnings_.push_back({input.key, input.path, report.status.ToString()});
      spdlog::warn("{}: analysed what could be decoded: {}", input.path, report.status.message());
    }
  } else {
    if (ledger_ != nullptr) {
      if (Status st = ledger_->MarkFailed(input.key, error); !st.ok()) spdlog::error("ledger: {}", st.ToString());
    }
    videos_failed_.fetch_add(1);
    std::lock_guard lock(report_mutex_);
    failures_.push_back({input.key, input.path, error});
    spdlog::warn("failed: {}", error);
  }
}

void JobRunner::OutputLoop(int shard) {
  std::map<int, VideoTrackState> states;
  BoundedQueue<ResultItem>& queue = *result_queues_[static_cast<size_t>(shard)];
  while (std::optional<ResultItem> item = queue.Pop()) {
    auto t0 = Clock::now();
    const VideoInput& input = videos_[static_cast<size_t>(item->video)];
    switch (item->kind) {
      case DecodeItem::Kind::kOpened: {
        VideoTrackState& state = states[item->video];
        state.info = item->info;
        state.fps = item->info.fps;
        if (!options_.output_dir.empty()) {
          VideoResultHeader header;
          header.path = input.path;
          header.key = input.key;
          header.class_names = model_.description.class_names;
          header.info = item->info;
          header.sampling = input.sampling.empty() ? options_.sampling.ToString() : input.sampling;
          header.model = model_.name;
          auto writer = VideoResultWriter::Open((std::filesystem::path(options_.output_dir) / "videos" / input.key).string(),
                                                std::move(header));
          if (writer.ok()) state.writer.emplace(std::move(*writer)); else state.writer_error = writer.status();
        }
        break;
      }
      case DecodeItem::Kind::kFrame: {
        auto it = states.find(item->video);
        if (it != states.end()) HandleFrame(it->second, *item);
        break;
      }
      case DecodeItem::Kind::kEnded: {
        auto it = states.find(item->video);
        FinishVideo(item->video, it == states.end() ? nullptr : &it->second, item->report);
        if (it != states.end()) states.erase(it);
        break;
      }
    }
    output_busy_.Add(Since(t0));
  }
}

void JobRunner::PrintProgress(bool final_line) {
  const double wall = Since(start_);
  const int done = videos_done_.load() + videos_failed_.load();
  const int total = static_cast<int>(videos_.size());
  const int64_t analysed = frames_analysed_.load();
  const double video_s = video_micros_.load() * 1e-6;
  const double rt = wall > 0 ? video_s / wall : 0;
  std::string eta = "-";
  if (done > 0 && done < total) {
    const double remaining = wall / done * (total - done);
    eta = fmt::format("{}:{:02d}", static_cast<int>(remaining) / 60, static_cast<int>(remaining) % 60);
  }
  std::string gpu;
  if (monitor_) gpu = fmt::format("  GPU {}%  NVDEC {}%", monitor_->latest_gpu(), monitor_->latest_decoder());
  const std::string line = fmt::format("videos {}/{} ({} failed)  {:.0f} frames/s  {:.1f}x realtime  ETA {}{}",
                                       done, total, videos_failed_.load(), wall > 0 ? analysed / wall : 0.0, rt, eta, gpu);
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    spdlog::info("{}", line);
  }
}

void JobRunner::ProgressLoop() {
  if (options_.progress == ProgressMode::kQuiet) return;
  const auto interval = terminal_ ? std::chrono::milliseconds(500)
                                  : std::chrono::milliseconds(static_cast<int64_t>(options_.progress_interval_s * 1000));
  std::unique_lock lock(progress_mutex_);
  while (!progress_wake_.wait_for(lock, interval, [&] { return finished_.load(); })) PrintProgress(false);
  PrintProgress(true);
}

JobReport JobRunner::Run() {
  terminal_ = options_.progress == ProgressMode::kTerminal ||
              (options_.progress == ProgressMode::kAuto && isatty(STDERR_FILENO));
  if (options_.decoder == DecoderDevice::kGpu || options_.analyzer.device == AnalyzerDevice::kGpu) {
    auto monitor = GpuMonitor::Start(options_.analyzer.gpu_index, 200);
    if (monitor.ok()) monitor_ = std::move(*monitor);
  }
  start_ = Clock::now();
  std::thread progress([&] { ProgressLoop(); });
  std::vector<std::thread> outputs;
  for (int i = 0; i < output_threads_; ++i) outputs.emplace_back([this, i] { OutputLoop(i); });
  const int open = std::max(1, std::min<int>(options_.max_open_videos, static_cast<int>(videos_.size())));
  std::vector<std::thread> decoders;
  for (int i = 0; i < open; ++i) decoders.emplace_back([this] { DecodeLoop(); });
  std::thread closer([&] {
    for (auto& t : decoders) t.join();
    decode_queue_.Close();
  });
  Status analysis = AnalysisLoop();
  closer.join();
  for (auto& t : outputs) t.join();
  {
    std::lock_guard lock(progress_mutex_);
    finished_ = true;
  }
  progress_wake_.notify_all();
  progress.join();

  JobReport report;
  report.wall_seconds = Since(start_);
  report.videos_total = static_cast<int>(videos_.size());
  report.videos_done = videos_done_.load();
  report.videos_failed = videos_failed_.load();
  report.videos_with_warnings = videos_warned_.load();
  report.frames_decoded = frames_decoded_.load();
  report.frames_analysed = frames_analysed_.load();
  report.video_seconds = video_micros_.load() * 1e-6;
  report.failures = failures_;
  report.warnings = warnings_;
  report.analyzer = analyzer_->description();
  if (!analysis.ok()) report.failures.push_back({"", "", "job stopped: " + analysis.ToString()});
  const AnalyzerTimes t = analyzer_->times();
  report.stages = {
      {"decode", report.frames_decoded, decode_busy_.seconds(), open},
      {"batch wait", report.frames_analysed, batch_wait_.seconds(), 1},
      {"preprocess", t.frames, t.preprocess, 1},
      {"infer", t.frames, t.infer, 1},
      {"detect+nms", t.frames, t.detect, 1},
      {"track+write", report.frames_analysed, output_busy_.seconds(), output_threads_},
  };
  if (monitor_) {
    report.gpu = monitor_->Stop();
    report.gpu_monitored = true;
  }
  return report;
}

nlohmann::json ReportJson(const JobReport& r) {
  nlohmann::json j;
  j["videos"] = {{"total", r.videos_total}, {"skipped_already_done", r.videos_skipped}, {"done", r.videos_done},
                 {"failed", r.videos_failed}, {"done_with_warnings", r.videos_with_warnings}};
  j["frames_decoded"] = r.frames_decoded;
  j["frames_analysed"] = r.frames_analysed;
  j["video_seconds"] = r.video_seconds;
  j["wall_seconds"] = r.wall_seconds;
  j["realtime_factor"] = r.realtime_factor();
  j["video_hours_per_day"] = r.realtime_factor() * 24;
  j["analyzer"] = r.analyzer;
  for (const StageReport& s : r.stages) {
    j["stages"].push_back({{"stage", s.name}, {"frames", s.frames}, {"busy_seconds", s.busy_seconds}, {"workers", s.workers}});
  }
  for (const auto& f : r.failures) j["failures"].push_back({{"key", f.key}, {"path", f.path}, {"error", f.error}});
  for (const auto& f : r.warnings) j["warnings"].push_back({{"key", f.key}, {"path", f.path}, {"warning", f.error}});
  if (r.gpu_monitored) j["gpu"] = {{"sm_percent_mean", r.gpu.gpu_mean}, {"nvdec_percent_mean", r.gpu.decoder_mean}};
  return j;
}

}  // namespace

std::string RunFingerprint(const LoadedModel& model, const RunOptions& options) {
  const track::ByteTrackParams& t = options.tracker;
  std::string precision = options.analyzer.device == AnalyzerDevice::kGpu
                              ? std::string("gpu-") + infer::PrecisionName(options.analyzer.precision)
                              : "cpu-fp32";
  return fmt::format("model={} sample={} analysis={} track={} bt={}/{}/{}/{}/{}/{}/{}", model.fingerprint,
                     options.sampling.ToString(), precision, options.track, t.track_thresh, t.low_thresh,
                     t.new_track_thresh, t.match_thresh, t.low_match_thresh, t.track_buffer, t.fuse_score);
}

Expected<JobReport> RunJob(std::span<const VideoInput> inputs, const LoadedModel& model, const RunOptions& options) {
  if (options.output_dir.empty()) return MakeError(StatusCode::kInvalidArgument, "no output directory");
  std::error_code ec;
  std::filesystem::create_directories(options.output_dir, ec);
  if (ec) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot create: {}", options.output_dir, ec.message()));
  // A killed run's half-written files (never under a final name) are removed first.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(options.output_dir, ec)) {
    if (entry.is_regular_file(ec) && IsPartialFileName(entry.path().filename().string())) {
      std::filesystem::remove(entry.path(), ec);
    }
  }

  VS_ASSIGN_OR_RETURN(JobLedger ledger, JobLedger::Open((std::filesystem::path(options.output_dir) / "ledger.sqlite").string(),
                                                        RunFingerprint(model, options), options.force));
  VS_ASSIGN_OR_RETURN(LedgerPlan plan, ledger.Plan(inputs));
  // A run killed between committing a video's summary.json (written last, after its data files) and
  // recording "done" left a complete result behind: take it as done instead of processing it again.
  int recovered = 0;
  std::vector<PlannedVideo> planned;
  for (PlannedVideo& v : plan.to_run) {
    const auto summary = std::filesystem::path(options.output_dir) / "videos" / v.input.key / kSummaryFileName;
    // --force: results from before are no longer complete results of this job.
    if (options.force) std::filesystem::remove(summary, ec);
    if (v.previous_state == VideoState::kRunning && std::filesystem::exists(summary, ec)) {
      int64_t frames = 0;
      try {
        frames = nlohmann::json::parse(std::ifstream(summary)).value("frames_analysed", int64_t{0});
      } catch (const nlohmann::json::exception&) {
        frames = -1;  // unreadable: not a complete result after all
      }
      if (frames >= 0) {
        VS_RETURN_IF_ERROR(ledger.MarkRunning(v.input.key));
        VS_RETURN_IF_ERROR(ledger.MarkDone(v.input.key, frames, 0));
        ++recovered;
        continue;
      }
    }
    planned.push_back(std::move(v));
  }
  plan.to_run = std::move(planned);
  plan.already_done += recovered;
  plan.interrupted -= recovered;

  JobReport report;
  if (!plan.to_run.empty()) {
    VS_ASSIGN_OR_RETURN(auto analyzer, CreateAnalyzer(model.model, model.description, options.analyzer));
    if (options.progress != ProgressMode::kQuiet) {
      spdlog::info("{} videos to process ({} done earlier, {} interrupted and restarted, {} retried after failing), "
                   "analysis: {}", plan.to_run.size(), plan.already_done, plan.interrupted, plan.retried,
                   analyzer->description());
    }
    std::vector<VideoInput> to_run;
    for (const PlannedVideo& v : plan.to_run) to_run.push_back(v.input);
    JobRunner runner(to_run, model, options, &ledger, analyzer.get());
    report = runner.Run();
  }
  report.videos_skipped = static_cast<int>(plan.already_done);
  report.videos_total = static_cast<int>(inputs.size());
  // Inputs that could not even be opened were recorded as failed by the plan.
  for (const VideoInput& v : inputs) {
    if (v.error.empty()) continue;
    report.videos_failed += 1;
    report.failures.push_back({v.key, v.path, v.error});
  }

  nlohmann::json summary = ReportJson(report);
  VS_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create((std::filesystem::path(options.output_dir) / "job_summary.json").string()));
  VS_RETURN_IF_ERROR(file.Write(summary.dump(2) + "\n"));
  VS_RETURN_IF_ERROR(file.Commit());
  return report;
}

}  // namespace vidscan
