// `vidscan bench <stage>`: each benchmark registers itself on the `bench` subcommand.
#pragma once

#include "cli/commands.h"

namespace vidscan::cli {

void AddBenchDecode(CLI::App& bench, int* exit_code);
void AddBenchPreprocess(CLI::App& bench, int* exit_code);
void AddBenchInfer(CLI::App& bench, int* exit_code);  // src/cli/bench_infer.cpp
void AddBenchRun(CLI::App& bench, int* exit_code);    // src/cli/run.cpp

}  // namespace vidscan::cli
