// The single-process run pipeline behind `vidscan run` and `vidscan bench run`:
//
//   decode threads (one per open video, up to max_open_videos) --frame queue--> analysis thread
//     (cross-stream batches: batch_size frames or max_batch_wait, whichever comes first; Analyzer)
//   --per-video result queues--> output threads (ByteTrack per video and class, JSONL/MOT/summary writers,
//     ledger updates), sharded by video so each video's frames stay in order on one thread.
//
// Every queue is bounded and every frame surface comes from a fixed decoder pool, so memory does not
// grow with the number of inputs. RunOptions::workers switches to the multi-process mode (the same
// stages in decode and infer worker processes); per-video outputs are byte-identical either way. Decode failures, unsupported codecs and unreadable files become failed
// videos in the ledger; the job goes on.
#pragma once

#include <atomic>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/gpu_monitor.h"
#include "core/status.h"
#include "decode/decoder.h"
#include "ipc/mps.h"
#include "job/inputs.h"
#include "media/sampling.h"
#include "pipeline/analyzer.h"
#include "track/byte_tracker.h"

namespace vidscan {

// In the output directory, next to ledger.sqlite: the job's cuDNN algorithm table (infer/algorithm_table.h),
// which `vidscan run` uses on the GPU unless told otherwise (--cudnn-algorithms).
inline constexpr const char* kCudnnAlgorithmsFileName = "cudnn_algorithms.json";

enum class ProgressMode : uint8_t { kAuto, kTerminal, kLog, kQuiet };

// Which processes run the job: one process with threads (the default), or a supervisor with `decode`
// decode worker processes and `infer` inference worker processes (issue 7; src/pipeline/multi_process.h).
struct WorkerLayout {
  int decode = 0;  // 0: single process
  int infer = 0;
  // Set by ChooseWorkerLayout (`--workers auto`, pipeline/auto_layout.h): what it chose and why, for the
  // run summary and job_summary.json. Empty for a layout the user named.
  std::string auto_reason;
  bool multi_process() const { return decode > 0; }
  // "single" or "decode=N,infer=M"; Parse also takes the keys in either order, infer defaulting to 1.
  std::string ToString() const;
  static Expected<WorkerLayout> Parse(const std::string& text);
};

struct RunOptions {
  std::string output_dir;               // results, ledger.sqlite and job_summary.json go here
  DecoderDevice decoder = DecoderDevice::kCpu;
  AnalyzerOptions analyzer;
  int max_open_videos = 4;              // videos decoded at once (each one decode thread)
  int decoder_surfaces = 24;            // frames each open video may have in flight (queued, batched, in flight on the GPU)
  int cpu_decoder_threads = 0;          // libavcodec threads per video; 0 = cores / open videos
  double max_batch_wait_ms = 30;        // a partial batch runs after waiting this long for more frames
  SamplingPolicy sampling;              // default for videos whose manifest entry does not set one
  bool track = true;
  track::ByteTrackParams tracker;       // frame_rate is set per video from its real frame rate
  int output_threads = 0;               // 0 = a quarter of the cores, 1..4
  bool force = false;                   // reprocess videos the ledger has as done
  ProgressMode progress = ProgressMode::kAuto;
  double progress_interval_s = 10;      // log mode
  WorkerLayout workers;
  // Multi-process mode: CUDA MPS for the workers (on: a private daemon for the job; auto: one already
  // running; off: never). The single-process mode does not use it. src/ipc/mps.h, docs/mps.md.
  ipc::MpsMode mps = ipc::MpsMode::kAuto;
  // Set (e.g. from a SIGINT/SIGTERM handler) to stop the job early, in either mode: workers or threads stop,
  // videos in flight stay "running" in the ledger (the next run restarts them) and RunJob fails.
  const std::atomic<bool>* cancel = nullptr;
  // Trial runs (`vidscan tune`): > 0 stops the job once its measured window (JobReport::measured) has lasted
  // this long. A job stopped so is not an error: RunJob returns its report with `stopped` set; videos in
  // flight stay "running" in the ledger, as after a cancel.
  double trial_seconds = 0;
  // The measured window opens this long after the first frame is analysed, leaving out start-up (model
  // load, worker processes, cuDNN autotuning, CUDA graph capture) and the pipeline filling.
  double warmup_seconds = 3;
};

// The steady-state part of a run: from RunOptions::warmup_seconds after the first analysed frame to the
// stop (trial_seconds, cancel) or the end of the job. Throughput here is video time analysed (the span of
// video each analysed frame stands for, as the progress line counts it: sampling does not shrink it) per
// wall second, and analysed frames per wall second.
struct MeasuredWindow {
  double wall_seconds = 0;
  double video_seconds = 0;
  int64_t frames = 0;
  double start_seconds = 0;  // when the window opened, seconds after the job started
  bool whole_run = false;    // the job ended before the warm-up point: the whole run is measured instead
  bool ended_early = false;  // the inputs ran out before trial_seconds of measurement (trials only)
  bool gpu_monitored = false;
  GpuUtilisation gpu;        // over the window
  double realtime_factor() const { return wall_seconds > 0 ? video_seconds / wall_seconds : 0; }
  double frames_per_second() const { return wall_seconds > 0 ? static_cast<double>(frames) / wall_seconds : 0; }
};

struct StageReport {
  std::string name;
  int64_t frames = 0;
  double busy_seconds = 0;  // summed over the stage's workers
  int workers = 1;
};

struct VideoFailure {
  std::string key, path, error;
};

struct JobReport {
  int videos_total = 0;        // inputs of this command
  int videos_skipped = 0;      // done by an earlier run (ledger), not reprocessed
  int videos_done = 0;
  int videos_failed = 0;
  int videos_with_warnings = 0;  // done, but the stream had damage (what was decodable was analysed)
  int64_t frames_decoded = 0;
  int64_t frames_analysed = 0;
  double video_seconds = 0;    // of the videos processed in this run
  double wall_seconds = 0;
  // Before wall_seconds, not in the realtime factor: loading the model and creating the analyzer (cuDNN
  // autotuning), and in the multi-process mode starting the workers until every infer worker is ready.
  double startup_seconds = 0;
  std::vector<StageReport> stages;
  // GPU analysis: frames of partial batches padded to the full batch (they cost a full frame each), and
  // producers' frame events the stream had to wait for (multi-process; 0 when decoders run ahead).
  int64_t padded_frames = 0;
  int64_t device_waits = 0;
  std::vector<VideoFailure> failures;
  std::vector<VideoFailure> warnings;
  std::string analyzer;
  std::string mode = "single";  // WorkerLayout::ToString() of the mode that ran
  int worker_deaths = 0;        // multi-process: worker processes that died (and were restarted)
  int worker_restarts = 0;
  bool gpu_monitored = false;
  GpuUtilisation gpu;
  bool stopped = false;         // RunOptions::trial_seconds ended the job before its inputs did
  MeasuredWindow measured;      // steady state (see MeasuredWindow)
  std::string workers_reason;   // --workers auto: what was chosen and why (WorkerLayout::auto_reason)
  ipc::MpsReport mps;           // whether the workers ran under MPS, and the proof (clients seen)
  double realtime_factor() const { return wall_seconds > 0 ? video_seconds / wall_seconds : 0; }
};

// Runs the job. Fails only for what stops the whole job (the model cannot be loaded onto the device, the
// output directory or ledger cannot be written, the ledger belongs to another configuration); per-video
// problems are in the report.
Expected<JobReport> RunJob(std::span<const VideoInput> inputs, const LoadedModel& model, const RunOptions& options);

// The MPS record of job_summary.json and `bench run --json`.
nlohmann::json MpsReportJson(const ipc::MpsReport& mps);

// What must match for a rerun to resume rather than start over: model, description, sampling, tracker
// and device settings that change results.
std::string RunFingerprint(const LoadedModel& model, const RunOptions& options);

}  // namespace vidscan
