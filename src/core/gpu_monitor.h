// Samples NVDEC and SM utilisation through NVML (loaded with dlopen, so machines without the driver run
// too) on a background thread while a benchmark runs.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"

namespace vidscan {

struct GpuUtilisation {
  int samples = 0;
  double decoder_mean = 0;  // NVDEC engines, percent
  double decoder_max = 0;
  double gpu_mean = 0;      // SMs, percent
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

 private:
  GpuMonitor() = default;
  void Run(int period_ms);

  void* device_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  GpuUtilisation result_;
  double decoder_sum_ = 0, gpu_sum_ = 0;
};

}  // namespace vidscan
