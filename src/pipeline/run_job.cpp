#include "pipeline/run_job.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
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
#include "pipeline/job_progress.h"
#include "pipeline/multi_process.h"
#include "pipeline/video_job.h"
#include "pipeline/video_output.h"
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
  void FinishVideo(int video, VideoOutput& output, const FileDecodeReport& report);

  std::vector<VideoInput> videos_;
  const LoadedModel& model_;
  const RunOptions& options_;
  JobLedger* ledger_;
  Analyzer* analyzer_;
  int output_threads_ = 1;
  int cpu_decoder_threads_ = 1;

  std::atomic<int> next_video_{0};
  // Set when the job must stop early (a cancel, the end of a trial): no further video starts, and the
  // frame queue is closed, so decoders stop at their next frame and the analysis drains what is queued.
  std::atomic<bool> stopping_{false};
  BoundedQueue<DecodeItem> decode_queue_;
  std::vector<std::unique_ptr<BoundedQueue<ResultItem>>> result_queues_;

  // Progress and the final report.
  std::unique_ptr<JobProgress> progress_;
  std::atomic<int> videos_warned_{0};
  std::atomic<int64_t> frames_decoded_{0};
  BusyClock decode_busy_, batch_wait_, output_busy_;
  std::mutex report_mutex_;
  std::vector<VideoFailure> failures_, warnings_;
  std::unique_ptr<GpuMonitor> monitor_;

 public:
  // After Run: options.cancel stopped the job (RunJob then fails; a trial's stop is a result instead).
  bool cancelled = false;
};

void JobRunner::DecodeLoop() {
  while (!stopping_.load()) {
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
  auto decoder = DecoderOptionsFor(input, options_, video, cpu_decoder_threads_);
  if (!decoder.ok()) {
    failed.status = decoder.status();
    return end_with(std::move(failed));
  }
  decoder->on_open = [&](const VideoStreamInfo& info) {
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
  end_with(DecodeVideo(input.path, std::move(*decoder), sink));
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
        progress_->frames_analysed.fetch_add(static_cast<int64_t>(detections.size()), std::memory_order_relaxed);
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

void JobRunner::FinishVideo(int video, VideoOutput& output, const FileDecodeReport& report) {
  const VideoInput& input = videos_[static_cast<size_t>(video)];
  const VideoVerdict verdict = output.Finish(report);
  progress_->video_micros.fetch_add(static_cast<int64_t>(verdict.trailing_video_seconds * 1e6), std::memory_order_relaxed);
  if (verdict.done) {
    if (ledger_ != nullptr) {
      if (Status st = ledger_->MarkDone(input.key, verdict.frames_analysed, report.wall_seconds); !st.ok()) {
        spdlog::error("ledger: {}", st.ToString());
      }
    }
    progress_->videos_done.fetch_add(1);
    if (!verdict.warning.empty()) {
      videos_warned_.fetch_add(1);
      std::lock_guard lock(report_mutex_);
      warnings_.push_back({input.key, input.path, verdict.warning});
      spdlog::warn("{}: analysed what could be decoded: {}", input.path, report.status.message());
    }
  } else {
    if (ledger_ != nullptr) {
      if (Status st = ledger_->MarkFailed(input.key, verdict.error); !st.ok()) spdlog::error("ledger: {}", st.ToString());
    }
    progress_->videos_failed.fetch_add(1);
    std::lock_guard lock(report_mutex_);
    failures_.push_back({input.key, input.path, verdict.error});
    spdlog::warn("failed: {}", verdict.error);
  }
}

void JobRunner::OutputLoop(int shard) {
  std::map<int, VideoOutput> outputs;
  BoundedQueue<ResultItem>& queue = *result_queues_[static_cast<size_t>(shard)];
  auto output_of = [&](int video) -> VideoOutput& {
    auto it = outputs.find(video);
    if (it == outputs.end()) {
      it = outputs.emplace(video, VideoOutput(OutputSettingsFor(videos_[static_cast<size_t>(video)], model_, options_))).first;
    }
    return it->second;
  };
  while (std::optional<ResultItem> item = queue.Pop()) {
    auto t0 = Clock::now();
    switch (item->kind) {
      case DecodeItem::Kind::kOpened:
        output_of(item->video).Open(item->info);
        break;
      case DecodeItem::Kind::kFrame: {
        auto it = outputs.find(item->video);
        if (it == outputs.end()) break;
        const double seconds = it->second.AddFrame(item->frame_index, item->pts_seconds, item->detections);
        progress_->video_micros.fetch_add(static_cast<int64_t>(seconds * 1e6), std::memory_order_relaxed);
        break;
      }
      case DecodeItem::Kind::kEnded:
        // A video that never opened still gets its verdict (the decoder's error).
        FinishVideo(item->video, output_of(item->video), item->report);
        outputs.erase(item->video);
        break;
    }
    output_busy_.Add(Since(t0));
  }
}

JobReport JobRunner::Run() {
  if (options_.decoder == DecoderDevice::kGpu || options_.analyzer.device == AnalyzerDevice::kGpu) {
    auto monitor = GpuMonitor::Start(options_.analyzer.gpu_index, 200);
    if (monitor.ok()) monitor_ = std::move(*monitor);
  }
  progress_ = std::make_unique<JobProgress>(options_.progress, options_.progress_interval_s,
                                            static_cast<int>(videos_.size()), monitor_.get());
  RunWindow window(
      options_, [this] { return RunWindow::Counters{progress_->frames_analysed.load(), progress_->video_micros.load()}; },
      [this] {
        stopping_.store(true);
        decode_queue_.Close();
      });
  progress_->Start();
  window.Start();
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
  window.Finish();
  progress_->Stop();

  JobReport report;
  report.measured = window.window();
  report.stopped = window.trial_ended();
  cancelled = window.cancelled();
  report.wall_seconds = progress_->seconds();
  report.videos_total = static_cast<int>(videos_.size());
  report.videos_done = progress_->videos_done.load();
  report.videos_failed = progress_->videos_failed.load();
  report.videos_with_warnings = videos_warned_.load();
  report.frames_decoded = frames_decoded_.load();
  report.frames_analysed = progress_->frames_analysed.load();
  report.video_seconds = progress_->video_micros.load() * 1e-6;
  report.failures = failures_;
  report.warnings = warnings_;
  report.analyzer = analyzer_->description();
  if (!analysis.ok()) report.failures.push_back({"", "", "job stopped: " + analysis.ToString()});
  const AnalyzerTimes t = analyzer_->times();
  report.padded_frames = t.padded_frames;
  report.device_waits = t.device_waits;
  report.stages = {
      {"decode", report.frames_decoded, decode_busy_.seconds(), open},
      {"batch wait", report.frames_analysed, batch_wait_.seconds(), 1},
      {"preprocess", t.frames, t.preprocess, 1},
      {"infer", t.frames, t.infer, 1},
      {"detect+nms", t.frames, t.detect, 1},
      {"GPU idle", t.frames, t.idle, 1},
      {"track+write", report.frames_analysed, output_busy_.seconds(), output_threads_},
  };
  if (monitor_) {
    report.gpu = monitor_->Stop();
    report.gpu_monitored = true;
    report.measured.gpu = monitor_->Between(window.opened_at(), window.closed_at());
    report.measured.gpu_monitored = true;
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
  j["startup_seconds"] = r.startup_seconds;
  j["realtime_factor"] = r.realtime_factor();
  j["video_hours_per_day"] = r.realtime_factor() * 24;
  j["analyzer"] = r.analyzer;
  j["workers"] = r.mode;
  if (!r.workers_reason.empty()) j["workers_auto"] = r.workers_reason;
  if (r.stopped) j["stopped_after_trial"] = true;
  {
    const MeasuredWindow& m = r.measured;
    nlohmann::json w = {{"from_seconds", m.start_seconds}, {"wall_seconds", m.wall_seconds},
                        {"video_seconds", m.video_seconds}, {"frames_analysed", m.frames},
                        {"realtime_factor", m.realtime_factor()}, {"frames_per_second", m.frames_per_second()},
                        {"whole_run", m.whole_run}};
    if (m.gpu_monitored) w["gpu"] = {{"sm_percent_mean", m.gpu.gpu_mean}, {"nvdec_percent_mean", m.gpu.decoder_mean}};
    j["steady_state"] = std::move(w);
  }
  if (r.mode != "single") j["worker_deaths"] = r.worker_deaths;
  for (const StageReport& s : r.stages) {
    j["stages"].push_back({{"stage", s.name}, {"frames", s.frames}, {"busy_seconds", s.busy_seconds}, {"workers", s.workers}});
  }
  j["padded_frames"] = r.padded_frames;
  j["device_waits"] = r.device_waits;
  for (const auto& f : r.failures) j["failures"].push_back({{"key", f.key}, {"path", f.path}, {"error", f.error}});
  for (const auto& f : r.warnings) j["warnings"].push_back({{"key", f.key}, {"path", f.path}, {"warning", f.error}});
  if (r.gpu_monitored) j["gpu"] = {{"sm_percent_mean", r.gpu.gpu_mean}, {"nvdec_percent_mean", r.gpu.decoder_mean}};
  j["mps"] = MpsReportJson(r.mps);
  return j;
}

}  // namespace

nlohmann::json MpsReportJson(const ipc::MpsReport& mps) {
  nlohmann::json j = {{"mode", ipc::MpsModeName(mps.mode)},
                      {"used", mps.used},
                      {"daemon_started_by_job", mps.started_by_us},
                      {"pipe_dir", mps.pipe_dir},
                      {"worker_processes", mps.workers_watched},
                      {"worker_clients_seen", mps.clients_seen},
                      {"note", mps.note}};
  if (mps.daemon_clients >= 0) j["daemon_clients_at_last_query"] = mps.daemon_clients;
  return j;
}

std::string WorkerLayout::ToString() const {
  return multi_process() ? fmt::format("decode={},infer={}", decode, infer) : "single";
}

Expected<WorkerLayout> WorkerLayout::Parse(const std::string& text) {
  WorkerLayout layout;
  if (text == "single") return layout;
  auto bad = [&](const std::string& why) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("--workers {}: {} (expected single, auto or decode=N,infer=M)", text, why));
  };
  layout.infer = 1;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return bad("'" + item + "' is not key=count");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    int count = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), count);
    if (ec != std::errc() || end != value.data() + value.size() || count < 1 || count > 64) {
      return bad("'" + value + "' is not a worker count from 1 to 64");
    }
    if (key == "decode") {
      layout.decode = count;
    } else if (key == "infer") {
      layout.infer = count;
    } else {
      return bad("unknown key '" + key + "'");
    }
    start = comma + 1;
  }
  if (layout.decode == 0) return bad("decode=N is required");
  if (layout.infer > layout.decode) return bad("each decode worker feeds one infer worker, so infer <= decode");
  return layout;
}

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
  WorkerLayout layout_run = options.workers;  // what ran: fewer decode workers than asked for if fewer videos
  report.mps.mode = options.mps;
  report.mps.note = "no videos to process";
  if (!plan.to_run.empty()) {
    std::vector<VideoInput> to_run;
    for (const PlannedVideo& v : plan.to_run) to_run.push_back(v.input);
    if (options.workers.multi_process()) {
      // A decode worker decodes one video at a time: more of them than videos would only start processes
      // (and CUDA contexts) that never get work, e.g. `auto`'s decode=8 for a single file.
      RunOptions capped = options;
      if (capped.workers.decode > static_cast<int>(to_run.size())) {
        capped.workers.decode = static_cast<int>(to_run.size());
        capped.workers.infer = std::min(capped.workers.infer, capped.workers.decode);
      }
      if (options.progress != ProgressMode::kQuiet) {
        spdlog::info("{} videos to process ({} done earlier, {} interrupted and restarted, {} retried after failing), "
                     "in worker processes: {}{}", plan.to_run.size(), plan.already_done, plan.interrupted, plan.retried,
                     capped.workers.ToString(),
                     capped.workers.decode < options.workers.decode
                         ? fmt::format(" (not {}: no more decode workers than videos)", options.workers.ToString())
                         : "");
      }
      layout_run = capped.workers;
      VS_ASSIGN_OR_RETURN(report, RunMultiProcess(to_run, model, capped, ledger));
    } else {
      const auto setup_started = Clock::now();
      VS_ASSIGN_OR_RETURN(auto analyzer, CreateAnalyzer(model.model, model.description, options.analyzer));
      const double startup_seconds = Since(setup_started);
      if (options.progress != ProgressMode::kQuiet) {
        spdlog::info("{} videos to process ({} done earlier, {} interrupted and restarted, {} retried after failing), "
                     "analysis: {}", plan.to_run.size(), plan.already_done, plan.interrupted, plan.retried,
                     analyzer->description());
      }
      // MPS lets several processes share a GPU at once; one process gains nothing from it.
      if (options.mps == ipc::MpsMode::kOn) {
        spdlog::warn("--mps on: this job runs in a single process (--workers single), which MPS does not speed up; "
                     "no MPS daemon started");
      }
      JobRunner runner(to_run, model, options, &ledger, analyzer.get());
      report = runner.Run();
      report.mps = ipc::MpsSession::NotUsed(options.mps, "single process").report();
      report.startup_seconds = startup_seconds;
      // As the multi-process mode does: a cancelled job is not a finished one (videos in flight stay
      // "running"); a trial that ran its time is.
      if (runner.cancelled) return MakeError(StatusCode::kUnavailable, "job cancelled");
    }
  }
  report.mode = layout_run.ToString();
  report.workers_reason = options.workers.auto_reason;
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
