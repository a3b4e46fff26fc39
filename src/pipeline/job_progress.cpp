#include "pipeline/job_progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "core/log.h"

namespace vidscan {

JobProgress::JobProgress(ProgressMode mode, double interval_s, int total_videos, const GpuMonitor* monitor)
    : mode_(mode), interval_s_(interval_s), total_videos_(total_videos), monitor_(monitor) {
  terminal_ = mode == ProgressMode::kTerminal || (mode == ProgressMode::kAuto && isatty(STDERR_FILENO));
}

double JobProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void JobProgress::Start() {
  start_ = std::chrono::steady_clock::now();
  if (mode_ == ProgressMode::kQuiet) return;
  thread_ = std::thread([this] { Loop(); });
}

void JobProgress::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void JobProgress::Print(bool final_line) {
  const double wall = seconds();
  const int done = videos_done.load() + videos_failed.load();
  const int64_t analysed = frames_analysed.load();
  const double video_s = video_micros.load() * 1e-6;
  const double rt = wall > 0 ? video_s / wall : 0;
  std::string eta = "-";
  if (done > 0 && done < total_videos_) {
    const double remaining = wall / done * (total_videos_ - done);
    eta = fmt::format("{}:{:02d}", static_cast<int>(remaining) / 60, static_cast<int>(remaining) % 60);
  }
  std::string gpu;
  if (monitor_) gpu = fmt::format("  GPU {}%  NVDEC {}%", monitor_->latest_gpu(), monitor_->latest_decoder());
  const std::string line = fmt::format("videos {}/{} ({} failed)  {:.0f} frames/s  {:.1f}x realtime  ETA {}{}", done,
                                       total_videos_, videos_failed.load(), wall > 0 ? analysed / wall : 0.0, rt, eta, gpu);
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  } else {
    spdlog::info("{}", line);
  }
}

void JobProgress::Loop() {
  const auto interval = terminal_ ? std::chrono::milliseconds(500)
                                  : std::chrono::milliseconds(static_cast<int64_t>(interval_s_ * 1000));
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval, [&] { return finished_; })) Print(false);
  Print(true);
}

}  // namespace vidscan
