#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/commands.h"
#include "core/log.h"
#include "ipc/worker.h"
#include "pipeline/multi_process.h"

int main(int argc, char** argv) {
  // `vidscan run --workers ...` starts this binary again as its decode and infer workers.
  if (vidscan::ipc::IsWorkerProcess()) return vidscan::RunPipelineWorker();
  CLI::App app{
      "vidscan: detections and object tracks from large video archives, on NVIDIA GPUs (CPU fallback).\n"
      "\n"
      "Exit status: 0 all inputs processed; 2 bad command line; 3 some inputs failed (each is reported\n"
      "with its reason, the others were processed); 4 nothing could run (e.g. --device gpu without a GPU)."};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Log debug detail to stderr");
  int exit_code = vidscan::cli::kExitOk;
  vidscan::cli::AddRunCommand(app, &exit_code);
  vidscan::cli::AddTuneCommand(app, &exit_code);
  vidscan::cli::AddProbeCommand(app, &exit_code);
  vidscan::cli::AddTrackCommand(app, &exit_code);
  vidscan::cli::AddBenchCommands(app, &exit_code);
  app.parse_complete_callback([&] {
    vidscan::InitLogging(verbose ? spdlog::level::debug : spdlog::level::info);
  });
  auto args = vidscan::cli::ExpandConfigFile(std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) {
    std::fprintf(stderr, "error: %s\n", args.status().ToString().c_str());
    return 2;
  }
  std::vector<std::string> reversed(args->rbegin(), args->rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
