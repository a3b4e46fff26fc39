// `vidscan bench decode`: decode throughput with N parallel decoder sessions, on CPU or NVDEC.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/bench.h"
#include "core/gpu_monitor.h"
#include "decode/decoder.h"
#include "decode/nvdec/nvdec_decoder.h"

namespace vidscan::cli {
namespace {

struct BenchDecodeArgs {
  std::vector<std::string> files;
  int sessions = 0;
  std::string device = "auto";
  std::string sample = "all";
  int loops = 1;
  int gpu = 0;
  int threads = 0;
  bool json = false;
};

int RunBenchDecode(const BenchDecodeArgs& args) {
  auto sampling = SamplingPolicy::Parse(args.sample);
  if (!sampling.ok()) {
    fmt::print(stderr, "error: {}\n", sampling.status().message());
    return kExitFatal;
  }
  DecoderOptions options;
  options.device = args.device == "cpu" ? DecoderDevice::kCpu : DecoderDevice::kGpu;
  if (args.device == "auto") {
    Status gpu = NvdecAvailable(args.gpu);
    options.device = gpu.ok() ? DecoderDevice::kGpu : DecoderDevice::kCpu;
    if (!gpu.ok()) fmt::print(stderr, "note: decoding on the CPU: {}\n", gpu.message());
  }
  options.gpu_index = args.gpu;
  options.sampling = *sampling;
  std::string device_name = "CPU";
  if (options.device == DecoderDevice::kGpu) {
    if (Status st = NvdecAvailable(args.gpu); !st.ok()) {
      fmt::print(stderr, "error: --device gpu: {} (use --device cpu to decode on the CPU)\n", st.message());
      return kExitFatal;
    }
    device_name = GpuName(args.gpu).ok() ? *GpuName(args.gpu) : "GPU";
  }
  const int sessions = args.sessions > 0 ? args.sessions : (options.device == DecoderDevice::kGpu ? 8 : 1);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  options.cpu_threads = args.threads > 0 ? args.threads : std::max(1, static_cast<int>(cores) / sessions);

  std::vector<std::string> work;
  for (int loop = 0; loop < args.loops; ++loop) work.insert(work.end(), args.files.begin(), args.files.end());
  std::atomic<size_t> next{0};
  std::mutex reports_mutex;
  std::vector<FileDecodeReport> reports;

  std::unique_ptr<GpuMonitor> monitor;
  if (options.device == DecoderDevice::kGpu) {
    auto m = GpuMonitor::Start(args.gpu);
    if (m.ok()) monitor = std::move(*m);
    else fmt::print(stderr, "warning: no NVDEC utilisation: {}\n", m.status().message());
  }
  auto start = std::chrono::steady_clock::now();
  // The steady window: from when every session has started decoding to when the first one runs out of
  // work. NVDEC utilisation is reported over the whole run and over this window.
  std::atomic<int> sessions_started{0};
  std::mutex window_mutex;
  std::chrono::steady_clock::time_point all_busy_since{}, first_idle_at{};
  std::vector<std::thread> threads;
  for (int s = 0; s < sessions; ++s) {
    threads.emplace_back([&] {
      DecoderOptions session_options = options;
      bool counted = false;
      for (size_t i = next++;; i = next++) {
        if (i >= work.size()) {
          std::lock_guard lock(window_mutex);
          if (first_idle_at == std::chrono::steady_clock::time_point{}) first_idle_at = std::chrono::steady_clock::now();
          break;
        }
        if (!counted && ++sessions_started == sessions) {
          std::lock_guard lock(window_mutex);
          all_busy_since = std::chrono::steady_clock::now();
        }
        counted = true;
        session_options.stream_id = static_cast<int>(i);
        // The frame is released at once: this measures decode (and the copy into pooled surfaces) alone.
        FileDecodeReport r = DecodeFile(work[i], session_options, [](DecodedFrame&&) { return Status::Ok(); });
        std::lock_guard lock(reports_mutex);
        reports.push_back(std::move(r));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  GpuUtilisation util, steady;
  if (monitor) {
    util = monitor->Stop();
    if (all_busy_since != std::chrono::steady_clock::time_point{} && first_idle_at > all_busy_since) {
      steady = monitor->Between(all_busy_since, first_idle_at);
    }
  }
  const double steady_seconds = std::chrono::duration<double>(first_idle_at - all_busy_since).count();

  int64_t frames = 0, delivered = 0;
  double video_seconds = 0;
  int failed = 0;
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& r : reports) {
    frames += r.counters.frames_decoded;
    delivered += r.counters.frames_delivered;
    video_seconds += r.decoded_video_seconds > 0 && r.counters.frames_decoded > 0 ? r.decoded_video_seconds : 0;
    if (!r.status.ok()) {
      ++failed;
      errors.push_back({{"path", r.path}, {"error", r.status.ToString()}});
    }
  }
  const double fps = frames / wall;
  const double realtime = video_seconds / wall;
  const double hours_per_day = realtime * 24.0;

  if (args.json) {
    nlohmann::json out = {{"device", device_name},
                          {"decoder", DecoderDeviceName(options.device)},
                          {"sessions", sessions},
                          {"sample", sampling->ToString()},
                          {"files", work.size()},
                          {"failed", failed},
                          {"errors", errors},
                          {"frames_decoded", frames},
                          {"frames_delivered", delivered},
                          {"video_seconds", video_seconds},
                          {"wall_seconds", wall},
                          {"frames_per_second", fps},
                          {"realtime_factor", realtime},
                          {"video_hours_per_day", hours_per_day}};
    if (monitor) {
      out["nvdec_utilisation_mean"] = util.decoder_mean;
      out["nvdec_utilisation_max"] = util.decoder_max;
      out["sm_utilisation_mean"] = util.gpu_mean;
      out["utilisation_samples"] = util.samples;
      out["nvdec_utilisation_steady_mean"] = steady.decoder_mean;
      out["steady_samples"] = steady.samples;
      out["steady_seconds"] = steady_seconds;
    }
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& e : errors) fmt::print("failed: {}\n", e["error"].get<std::string>());
    fmt::print("device           {} ({})\n", device_name,
               options.device == DecoderDevice::kGpu ? "NVDEC" : fmt::format("libavcodec, {} threads per session", options.cpu_threads));
    fmt::print("sessions         {}\n", sessions);
    fmt::print("sampling         {}\n", sampling->ToString());
    fmt::print("files            {} ({} failed)\n", work.size(), failed);
    fmt::print("frames decoded   {} ({} delivered after sampling)\n", frames, delivered);
    fmt::print("wall time        {:.3f} s\n", wall);
    fmt::print("frames/s         {:.1f}\n", fps);
    fmt::print("realtime factor  {:.1f}x ({:.1f} s of video per second)\n", realtime, realtime);
    fmt::print("video-hours/day  {:.0f}\n", hours_per_day);
    if (monitor) {
      fmt::print("NVDEC util       mean {:.1f} %, max {:.0f} % ({} samples); SM util mean {:.1f} %\n",
                 util.decoder_mean, util.decoder_max, util.samples, util.gpu_mean);
      fmt::print("NVDEC steady     mean {:.1f} % while all {} sessions were busy ({:.1f} s, {} samples)\n",
                 steady.decoder_mean, sessions, steady_seconds, steady.samples);
    }
  }
  return failed > 0 ? kExitSomeFilesFailed : kExitOk;
}

}  // namespace

void AddBenchDecode(CLI::App& bench, int* exit_code) {
  auto args = std::make_shared<BenchDecodeArgs>();
  auto* cmd = bench.add_subcommand(
      "decode",
      "Decode files as fast as possible and report frames/s, realtime factor and video-hours per day.\n"
      "Files are shared out to --sessions parallel decoders; --loops repeats the list. Bad files are\n"
      "reported one line each and the rest still decode (exit status 3 if any failed).");
  cmd->add_option("files", args->files, "Video files")->required();
  cmd->add_option("--sessions", args->sessions,
                  "Parallel decoder sessions (default: 8 on GPU, enough to fill every NVDEC engine; 1 on CPU)")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--device", args->device, "gpu (NVDEC), cpu (libavcodec), or auto (the GPU when one is present)")
      ->check(CLI::IsMember({"cpu", "gpu", "auto"}))
      ->capture_default_str();
  cmd->add_option("--sample", args->sample,
                  "Frames to keep: all, every:N, fps:X (target analysis rate), keyframes (others not decoded)")
      ->capture_default_str();
  cmd->add_option("--loops", args->loops, "Decode the file list this many times")->check(CLI::Range(1, 100000));
  cmd->add_option("--gpu", args->gpu, "GPU index")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", args->threads, "CPU decoder threads per session (default: cores / sessions)");
  cmd->add_flag("--json", args->json, "Machine-readable result on stdout");
  cmd->callback([args, exit_code] { *exit_code = RunBenchDecode(*args); });
}

}  // namespace vidscan::cli
