// Each `vidscan` subcommand registers itself on the CLI11 app; the callback stores its exit code.
#pragma once

#include <CLI/CLI.hpp>

namespace vidscan::cli {

// Exit codes, documented in `vidscan --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitSomeFilesFailed = 3,  // the command ran; one or more inputs could not be processed
  kExitFatal = 4,            // nothing could run (no GPU when one was asked for, bad configuration)
};

void AddProbeCommand(CLI::App& app, int* exit_code);
void AddTrackCommand(CLI::App& app, int* exit_code);
void AddBenchCommands(CLI::App& app, int* exit_code);

}  // namespace vidscan::cli
