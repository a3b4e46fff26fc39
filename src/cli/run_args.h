// The options `vidscan run`, `bench run` and `tune` share: what the command line gives (RunArgs), how it
// becomes RunOptions, and the job's inputs.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/status.h"
#include "infer/builtin_models.h"
#include "job/inputs.h"
#include "pipeline/run_job.h"

namespace vidscan::cli {

struct RunArgs {
  std::vector<std::string> inputs;
  std::vector<std::string> manifests;
  std::vector<std::string> extensions;
  std::string output;
  std::string model = infer::kBuiltinDetectNet;
  std::string model_config;
  std::string family;
  std::string device = "auto";
  int gpu = 0;
  int batch = 0;
  double max_wait_ms = 30;
  int batches_in_flight = 2;
  int open_videos = 0;
  int surfaces = 24;
  std::string precision = "fp16";
  std::string sample = "all";
  bool no_track = false;
  track::ByteTrackParams tracker;
  int output_threads = 0;
  int cpu_threads = 0;
  bool force = false;
  bool quiet = false;
  std::string progress = "auto";
  std::string mps = "auto";
  double progress_interval = 10;
  int workspace_mib = 1024;
  std::string cudnn_algorithms;
  // bench run
  int repeat = 1;
  bool keep = false;
  bool json = false;
  bool print_config = false;
  std::string config_file;
  std::string workers = "auto";  // single unless CUDA MPS will serve the worker processes (auto_layout.h)
};

// Model, device, batching, sampling, tracking, progress and worker options (not inputs, -o or --force).
void AddCommonOptions(CLI::App* cmd, RunArgs* a);
// Fails for a bad option value or `--device gpu` without a usable GPU (kUnavailable).
Expected<RunOptions> MakeRunOptions(const RunArgs& a);
// The inputs and manifests of `a`, as CollectInputs makes them (stdin for "-").
Expected<std::vector<VideoInput>> CollectRunInputs(const RunArgs& a);

}  // namespace vidscan::cli
