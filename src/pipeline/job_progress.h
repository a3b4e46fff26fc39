// Live progress of a `vidscan run` job: counters the stages update as videos and frames finish, and a
// thread printing them (a line rewritten in place on a terminal, log lines otherwise). Used by the
// single-process runner and the multi-process supervisor alike.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "core/gpu_monitor.h"
#include "pipeline/run_job.h"

namespace vidscan {

class JobProgress {
 public:
  // `monitor` (optional) adds GPU and NVDEC utilisation to the line; it must outlive Stop().
  JobProgress(ProgressMode mode, double interval_s, int total_videos, const GpuMonitor* monitor);
  ~JobProgress() { Stop(); }
  JobProgress(const JobProgress&) = delete;
  JobProgress& operator=(const JobProgress&) = delete;

  // Starts the clock and the printing thread (none in quiet mode).
  void Start();
  // Prints the final line and joins the thread; idempotent.
  void Stop();
  double seconds() const;

  std::atomic<int> videos_done{0}, videos_failed{0};
  std::atomic<int64_t> frames_analysed{0};
  std::atomic<int64_t> video_micros{0};  // video time covered by the finished part of the job

  // Where the lines between the first and the last read frames and video time, when the two counters above
  // lag (the multi-process supervisor learns of frames only when their video ends; its infer workers count
  // every frame in shared memory). Such counts may include frames of attempts later re-run, so the final
  // line and the report use the counters above. Set before Start().
  struct LiveCounts {
    int64_t frames_analysed = 0, video_micros = 0;
  };
  void SetLiveSource(std::function<LiveCounts()> source) { live_source_ = std::move(source); }

 private:
  void Loop();
  void Print(bool final_line);

  const ProgressMode mode_;
  const double interval_s_;
  const int total_videos_;
  const GpuMonitor* monitor_;
  bool terminal_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  std::thread thread_;
  std::function<LiveCounts()> live_source_;
};

// The early stop and the measured window of a run (RunOptions::trial_seconds, warmup_seconds, cancel;
// JobReport::measured), the same for both modes. A thread samples the job's live counters every 20 ms: the
// window opens warmup_seconds after the first analysed frame; it closes, and the job is asked to stop, when
// options.cancel is set or the window has lasted trial_seconds. Frames finished while the job winds down
// after that are not counted, so every trial measures the same kind of span.
class RunWindow {
 public:
  struct Counters {
    int64_t frames = 0;        // analysed so far
    int64_t video_micros = 0;  // video time they cover
  };
  // `counters` is read from the window's thread; `on_stop` (optional) runs there once, when the job must stop.
  RunWindow(const RunOptions& options, std::function<Counters()> counters, std::function<void()> on_stop = {});
  ~RunWindow() { Finish(); }
  RunWindow(const RunWindow&) = delete;
  RunWindow& operator=(const RunWindow&) = delete;

  void Start();
  // Set when the job must stop (a cancel or the end of a trial): what the job's loops watch.
  const std::atomic<bool>* stop_flag() const { return &stop_; }
  bool trial_ended() const { return trial_ended_.load(); }  // the stop came from trial_seconds
  bool cancelled() const { return cancelled_.load(); }      // the stop came from options.cancel
  // Joins the thread; a window still open closes now (the job ended by itself). Idempotent.
  void Finish();
  // After Finish: the window (gpu not filled) and its ends, for GpuMonitor::Between.
  MeasuredWindow window() const;
  std::chrono::steady_clock::time_point opened_at() const { return open_time_; }
  std::chrono::steady_clock::time_point closed_at() const { return close_time_; }

 private:
  void Loop();

  const double trial_seconds_, warmup_seconds_;
  const std::atomic<bool>* cancel_;
  std::function<Counters()> counters_;
  std::function<void()> on_stop_;
  std::atomic<bool> stop_{false}, trial_ended_{false}, cancelled_{false};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool finished_ = false;
  std::thread thread_;
  // Written by the thread, read after Finish.
  std::chrono::steady_clock::time_point start_time_, first_frame_time_, open_time_, close_time_;
  bool have_first_frame_ = false, open_ = false, closed_ = false;
  Counters at_open_, at_close_;
};

}  // namespace vidscan
