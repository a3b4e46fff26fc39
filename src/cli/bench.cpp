#include "cli/bench.h"

namespace vidscan::cli {

void AddBenchCommands(CLI::App& app, int* exit_code) {
  auto* bench = app.add_subcommand("bench", "Measure one stage or the whole pipeline on this machine");
  bench->require_subcommand(1);
  AddBenchDecode(*bench, exit_code);
  AddBenchPreprocess(*bench, exit_code);
  AddBenchInfer(*bench, exit_code);
  AddBenchRun(*bench, exit_code);
}

}  // namespace vidscan::cli
