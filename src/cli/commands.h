// Each `vidscan` subcommand registers itself on the CLI11 app; the callback stores its exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace vidscan::cli {

// Exit codes, documented in `vidscan --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitSomeFilesFailed = 3,  // the command ran; one or more inputs could not be processed
  kExitFatal = 4,            // nothing could run (no GPU when one was asked for, bad configuration)
  kExitInterrupted = 130,    // stopped by SIGINT/SIGTERM (the multi-process mode); rerun to resume
};

void AddProbeCommand(CLI::App& app, int* exit_code);
void AddTrackCommand(CLI::App& app, int* exit_code);
void AddRunCommand(CLI::App& app, int* exit_code);   // src/cli/run.cpp
void AddTuneCommand(CLI::App& app, int* exit_code);  // src/cli/tune.cpp
// Replaces `--config FILE` in the arguments (program name excluded) with the file's key=value options, for
// every key not also given on the command line. CLI11 2.1 does not read a subcommand's config file itself.
Expected<std::vector<std::string>> ExpandConfigFile(const std::vector<std::string>& args);
void AddBenchCommands(CLI::App& app, int* exit_code);

}  // namespace vidscan::cli
