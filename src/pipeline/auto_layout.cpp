#include "pipeline/auto_layout.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace vidscan {

WorkerLayout ChooseWorkerLayout(AnalyzerDevice analysis, int cores, bool mps_in_use) {
  WorkerLayout layout;  // single
  cores = std::max(1, cores);
  if (analysis == AnalyzerDevice::kCpu) {
    layout.auto_reason = "auto: single process, because the analysis runs on the CPU (processes would share the same cores)";
    return layout;
  }
  if (!mps_in_use) {
    layout.auto_reason =
        "auto: single process, because without MPS worker processes time-slice the GPU (about half the throughput)";
    return layout;
  }
  layout.decode = std::clamp(cores / AutoLayoutRule::kCoresPerDecodeWorker, AutoLayoutRule::kMinDecodeWorkers,
                             AutoLayoutRule::kMaxDecodeWorkers);
  layout.infer = AutoLayoutRule::kInferWorkers;
  layout.auto_reason = fmt::format("auto: {}, because the GPU is shared through MPS and this machine has {} cores "
                                   "(decode = clamp(cores / {}, {}, {}), infer = {})",
                                   layout.ToString(), cores, AutoLayoutRule::kCoresPerDecodeWorker,
                                   AutoLayoutRule::kMinDecodeWorkers, AutoLayoutRule::kMaxDecodeWorkers,
                                   AutoLayoutRule::kInferWorkers);
  return layout;
}

std::vector<WorkerLayout> TuneLayoutCandidates(AnalyzerDevice analysis, int cores, bool mps_in_use) {
  std::vector<WorkerLayout> layouts{WorkerLayout{}};
  if (analysis == AnalyzerDevice::kGpu && !mps_in_use) return layouts;
  cores = std::max(1, cores);
  auto add = [&](int decode, int infer) {
    for (const WorkerLayout& l : layouts) {
      if (l.decode == decode && l.infer == infer) return;
    }
    WorkerLayout layout;
    layout.decode = decode;
    layout.infer = infer;
    layouts.push_back(layout);
  };
  const int quarter = std::clamp(cores / 4, 2, 16), half = std::clamp(cores / 2, 2, 32);
  add(quarter, 1);
  add(half, 1);
  if (cores >= 8) add(half, 2);
  return layouts;
}

bool MpsControlDaemonRunning() {
  const char* dir = std::getenv("CUDA_MPS_PIPE_DIRECTORY");
  const std::string pipe = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp/nvidia-mps") + "/control";
  struct stat st {};
  return stat(pipe.c_str(), &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

bool MpsWillBeUsed(ipc::MpsMode mode) {
  return mode == ipc::MpsMode::kOn || (mode == ipc::MpsMode::kAuto && MpsControlDaemonRunning());
}

}  // namespace vidscan
