// `--workers auto`: which process layout a job runs with when the user does not say, by a fixed rule on
// the machine (no measuring; `vidscan tune` measures). The rule, from issue 7's H200 measurements (16
// cores, 1080p30 H.264, DetectNet_v2 FP16, every frame):
//   - CPU analysis -> single. The CPU path gains nothing from processes: the same cores do the same work,
//     plus copies into shared slots.
//   - GPU analysis without MPS -> single. Processes then time-slice the GPU: decode=8,infer=1 ran 45.9x
//     realtime against 102.4x for one process.
//   - GPU analysis with MPS in use -> decode=N,infer=1 with N = clamp(cores / 2, 2, 8): one infer worker
//     keeps the model's CUDA graph and batches whole, N decoders keep NVDEC busy (one video each at a time).
//     decode=8,infer=1 with MPS ran 107.9x and 104.4x against 105.6x and 102.7x for one process, same calls.
// `auto` is `vidscan run`'s default.
// The constants live in AutoLayoutRule so measurements can retune them in one place.
#pragma once

#include "ipc/mps.h"

#include <vector>

#include "pipeline/analyzer.h"
#include "pipeline/run_job.h"

namespace vidscan {

struct AutoLayoutRule {
  static constexpr int kCoresPerDecodeWorker = 2;  // N = cores / 2 ...
  static constexpr int kMinDecodeWorkers = 2;      // ... at least 2 ...
  static constexpr int kMaxDecodeWorkers = 8;      // ... at most 8 (H200: 8 beat 16 and 24 with MPS)
  static constexpr int kInferWorkers = 1;
};

// The layout for `analysis` on a machine with `cores` cores; `mps_in_use`: an MPS daemon will serve the
// job's processes (the `--mps` option decides; see docs/pipeline.md). The result's auto_reason says what
// was chosen and why.
WorkerLayout ChooseWorkerLayout(AnalyzerDevice analysis, int cores, bool mps_in_use);

// The layouts `vidscan tune` tries by default: single, plus on the CPU, or on a GPU shared through MPS,
// decode=N,infer=1 for N around cores/4 and cores/2 (and decode=cores/2,infer=2 from 8 cores up). On a GPU
// without MPS only single: there multi-process ran at half its speed, a trial would only confirm it.
std::vector<WorkerLayout> TuneLayoutCandidates(AnalyzerDevice analysis, int cores, bool mps_in_use);

// Whether an MPS control daemon is running for this user, as CUDA clients find it: its control pipe in
// $CUDA_MPS_PIPE_DIRECTORY, else /tmp/nvidia-mps.
bool MpsControlDaemonRunning();

// Whether worker processes will run under MPS with `--mps mode`: on starts a daemon, auto uses a running one.
bool MpsWillBeUsed(ipc::MpsMode mode);

}  // namespace vidscan
