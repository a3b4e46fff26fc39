#include "core/gpu_monitor.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace vidscan {
namespace {

// The few NVML entry points used, declared here so no NVML header or library is needed to build.
using nvmlReturn = int;
struct NvmlUtilization {
  unsigned int gpu;
  unsigned int memory;
};
struct NvmlApi {
  nvmlReturn (*init)() = nullptr;
  nvmlReturn (*device_by_index)(unsigned int, void**) = nullptr;
  nvmlReturn (*decoder_utilization)(void*, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn (*utilization_rates)(void*, NvmlUtilization*) = nullptr;
  Status status;
};

const NvmlApi& Nvml() {
  static NvmlApi api = [] {
    NvmlApi a;
    void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      a.status = MakeError(StatusCode::kUnavailable, "NVML (libnvidia-ml.so.1) not found");
      return a;
    }
    a.init = reinterpret_cast<nvmlReturn (*)()>(dlsym(lib, "nvmlInit_v2"));
    a.device_by_index = reinterpret_cast<nvmlReturn (*)(unsigned int, void**)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    a.decoder_utilization = reinterpret_cast<nvmlReturn (*)(void*, unsigned int*, unsigned int*)>(
        dlsym(lib, "nvmlDeviceGetDecoderUtilization"));
    a.utilization_rates =
        reinterpret_cast<nvmlReturn (*)(void*, NvmlUtilization*)>(dlsym(lib, "nvmlDeviceGetUtilizationRates"));
    if (!a.init || !a.device_by_index || !a.decoder_utilization || !a.utilization_rates) {
      a.status = MakeError(StatusCode::kUnavailable, "NVML lacks the utilisation queries");
    } else if (int r = a.init(); r != 0) {
      a.status = MakeError(StatusCode::kUnavailable, fmt::format("nvmlInit failed (NVML error {})", r));
    }
    return a;
  }();
  return api;
}

}  // namespace

Expected<std::unique_ptr<GpuMonitor>> GpuMonitor::Start(int gpu_index, int period_ms) {
  const NvmlApi& nvml = Nvml();
  VS_RETURN_IF_ERROR(nvml.status);
  std::unique_ptr<GpuMonitor> monitor(new GpuMonitor());
  if (int r = nvml.device_by_index(static_cast<unsigned>(gpu_index), &monitor->device_); r != 0) {
    return MakeError(StatusCode::kUnavailable, fmt::format("NVML has no GPU {} (NVML error {})", gpu_index, r));
  }
  monitor->thread_ = std::thread([m = monitor.get(), period_ms] { m->Run(period_ms); });
  return monitor;
}

void GpuMonitor::Run(int period_ms) {
  while (!stop_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(period_ms));
    unsigned int dec = 0, period_us = 0;
    NvmlUtilization util{};
    if (Nvml().decoder_utilization(device_, &dec, &period_us) != 0) continue;
    if (Nvml().utilization_rates(device_, &util) != 0) continue;
    samples_.push_back({std::chrono::steady_clock::now(), dec, util.gpu, period_us});
    latest_decoder_.store(dec, std::memory_order_relaxed);
    latest_gpu_.store(util.gpu, std::memory_order_relaxed);
  }
}

namespace {
GpuUtilisation Summarise(const std::vector<GpuSample>& samples) {
  GpuUtilisation r;
  double dec = 0, gpu = 0;
  for (const auto& s : samples) {
    ++r.samples;
    dec += s.decoder;
    gpu += s.gpu;
    r.decoder_max = std::max(r.decoder_max, static_cast<double>(s.decoder));
  }
  if (r.samples > 0) {
    r.decoder_mean = dec / r.samples;
    r.gpu_mean = gpu / r.samples;
  }
  return r;
}
}  // namespace

GpuUtilisation GpuMonitor::Between(std::chrono::steady_clock::time_point from,
                                   std::chrono::steady_clock::time_point to) const {
  std::vector<GpuSample> inside;
  for (const auto& s : samples_) {
    if (s.time - std::chrono::microseconds(s.period_us) >= from && s.time <= to) inside.push_back(s);
  }
  return Summarise(inside);
}

GpuUtilisation GpuMonitor::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  result_ = Summarise(samples_);
  return result_;
}

GpuMonitor::~GpuMonitor() { Stop(); }

}  // namespace vidscan
