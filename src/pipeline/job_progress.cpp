#include "pipeline/job_progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
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
  int64_t analysed = frames_analysed.load();
  double video_s = video_micros.load() * 1e-6;
  if (live_source_ && !final_line) {
    const LiveCounts live = live_source_();
    analysed = std::max(analysed, live.frames_analysed);
    video_s = std::max(video_s, live.video_micros * 1e-6);
  }
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

RunWindow::RunWindow(const RunOptions& options, std::function<Counters()> counters, std::function<void()> on_stop)
    : trial_seconds_(options.trial_seconds),
      warmup_seconds_(std::max(0.0, options.warmup_seconds)),
      cancel_(options.cancel),
      counters_(std::move(counters)),
      on_stop_(std::move(on_stop)) {}

void RunWindow::Start() {
  start_time_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { Loop(); });
}

void RunWindow::Loop() {
  using Clock = std::chrono::steady_clock;
  auto seconds_between = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  std::unique_lock lock(mutex_);
  while (!finished_) {
    const Clock::time_point now = Clock::now();
    const Counters counters = counters_();
    if (!have_first_frame_ && counters.frames > 0) {
      have_first_frame_ = true;
      first_frame_time_ = now;
    }
    if (have_first_frame_ && !open_ && seconds_between(first_frame_time_, now) >= warmup_seconds_) {
      open_ = true;
      open_time_ = now;
      at_open_ = counters;
    }
    const bool cancel = cancel_ != nullptr && cancel_->load();
    const bool trial_over = trial_seconds_ > 0 && open_ && seconds_between(open_time_, now) >= trial_seconds_;
    if (cancel || trial_over) {
      closed_ = true;
      close_time_ = now;
      at_close_ = counters;
      (cancel ? cancelled_ : trial_ended_).store(true);
      stop_.store(true);
      lock.unlock();
      if (on_stop_) on_stop_();
      return;
    }
    wake_.wait_for(lock, std::chrono::milliseconds(20), [&] { return finished_; });
  }
}

void RunWindow::Finish() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
  }
  wake_.notify_all();
  thread_.join();
  if (!closed_) {
    closed_ = true;
    close_time_ = std::chrono::steady_clock::now();
    at_close_ = counters_();
  }
  if (!open_) {
    // Shorter than the warm-up: all there is to measure is the whole run, start-up included.
    open_time_ = start_time_;
    at_open_ = Counters{};
  }
}

MeasuredWindow RunWindow::window() const {
  MeasuredWindow w;
  w.wall_seconds = std::chrono::duration<double>(close_time_ - open_time_).count();
  w.start_seconds = std::chrono::duration<double>(open_time_ - start_time_).count();
  w.frames = at_close_.frames - at_open_.frames;
  w.video_seconds = static_cast<double>(at_close_.video_micros - at_open_.video_micros) * 1e-6;
  w.whole_run = !open_;
  w.ended_early = trial_seconds_ > 0 && !trial_ended_.load() && !cancelled_.load();
  return w;
}

}  // namespace vidscan
