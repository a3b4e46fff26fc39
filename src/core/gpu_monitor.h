// Samples NVDEC and SM utilisation through NVML (loaded with dlopen, so machines without the driver run
// too) on a background thread while a benchmark runs.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace vidscan {

struct GpuUtilisation {
  int samples = 0;
  double decoder_mean = 0;  // NVDEC engines, percent
  double decoder_max = 0;
  double gpu_mean = 0;      // SMs, percent
};

struct GpuSample {
  std::chrono::steady_clock::time_point time;
  unsigned decoder = 0;  // percent
  unsigned gpu = 0;      // percent
  unsigned period_us = 0;  // the span NVML averaged the decoder figure over
};

class GpuMonitor {
 public:
  // Unavailable (with the reason) where NVML or the GPU is missing.
  static Expected<std::unique_ptr<GpuMonitor>> Start(int gpu_index, int period_ms = 100);
  ~GpuMonitor();
  GpuMonitor(const GpuMonitor&) = delete;
  GpuMonitor& operator=(const GpuMonitor&) = delete;
  // Stops sampling and returns the figures over the samples taken while work was running.
  GpuUtilisation Stop();
  // Figures over the samples whose averaging span lies inside [from, to] (e.g. while every session of a
  // benchmark was busy, leaving out start-up and the tail). Call after Stop.
  GpuUtilisation Between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) const;
  // The most recent sample while running (for progress displays); zeros before the first one.
  unsigned latest_decoder() const { return latest_decoder_.load(std::memory_order_relaxed); }
  unsigned latest_gpu() const { return latest_gpu_.load(std::memory_order_relaxed); }

 private:
  GpuMonitor() = default;
  void Run(int period_ms);

  void* device_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<unsigned> latest_decoder_{0}, latest_gpu_{0};
  GpuUtilisation result_;
  std::vector<GpuSample> samples_;
};

}  // namespace vidscan
