// Live progress of a `vidscan run` job: counters the stages update as videos and frames finish, and a
// thread printing them (a line rewritten in place on a terminal, log lines otherwise). Used by the
// single-process runner and the multi-process supervisor alike.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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
};

}  // namespace vidscan
