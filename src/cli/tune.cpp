// `vidscan tune`: short trial runs of the real pipeline (RunJob) on the user's own videos and model, over
// worker layouts, batch sizes and surfaces per video; prints a table and writes the fastest settings as a
// config file `vidscan run --config FILE` reads.
//
// Search: coordinate descent, not the cross product — every layout at the starting batch and surfaces,
// then every batch size with the best layout, then every surface count with the best layout and batch.
// Batch and ring depth interact with the layout far less than the layout matters (issue 7's numbers: 2x
// between layouts, a few percent between batch sizes), so three short sweeps find what a full grid would,
// in |layouts| + |batches| + |surfaces| trials instead of their product.
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/run_args.h"
#include "core/log.h"
#include "pipeline/auto_layout.h"
#include "pipeline/run_job.h"
#include "sink/atomic_file.h"

namespace vidscan::cli {
namespace {

namespace fs = std::filesystem;

struct TuneArgs {
  RunArgs run;
  std::string config_out = "tuned.conf";
  bool force = false;
  std::vector<std::string> try_workers;
  std::vector<int> try_batch;
  std::vector<int> try_surfaces;
  double trial_seconds = 20;
  double warmup_seconds = 3;
  std::string work_dir;
};

// SIGINT/SIGTERM: the trial in progress stops (its workers shut down), no config file is written.
std::atomic<bool> g_tune_cancel{false};

void OnTuneSignal(int) {
  if (g_tune_cancel.exchange(true)) _exit(kExitInterrupted);
}

struct TrialSettings {
  WorkerLayout workers;
  int batch = 0;
  int surfaces = 0;
};

struct Trial {
  int number = 0;
  std::string phase;  // which sweep it belongs to
  TrialSettings settings;
  bool ok = false;
  std::string error;
  JobReport report;
};

// A layout as --try-workers writes it: single, auto, or decode=N:infer=M (':' because ',' separates the
// list's items; a ',' inside one item is taken too when the option is repeated instead).
Expected<WorkerLayout> ParseTryLayout(std::string text, AnalyzerDevice device, int cores, bool mps) {
  if (text == "auto") return ChooseWorkerLayout(device, cores, mps);
  std::replace(text.begin(), text.end(), ':', ',');
  return WorkerLayout::Parse(text);
}

std::string SettingsText(const TrialSettings& s) {
  return fmt::format("workers {}, batch {}, surfaces {}", s.workers.ToString(), s.batch, s.surfaces);
}

bool SameLayout(const WorkerLayout& a, const WorkerLayout& b) { return a.decode == b.decode && a.infer == b.infer; }

std::string Percent(bool known, double value) { return known ? fmt::format("{:.0f}", value) : "-"; }

std::string TableHeader() {
  return fmt::format("  {:>2} {:<9} {:<18} {:>5} {:>8} {:>9} {:>9} {:>6} {:>6} {:>9}  {}", "#", "sweep", "workers", "batch",
                     "surfaces", "realtime", "frames/s", "SM %", "NVDEC%", "measured", "note");
}

std::string TableRow(const Trial& t, bool best) {
  const TrialSettings& s = t.settings;
  if (!t.ok) {
    return fmt::format("  {:>2} {:<9} {:<18} {:>5} {:>8} {:>9} {:>9} {:>6} {:>6} {:>9}  failed: {}", t.number, t.phase,
                       s.workers.ToString(), s.batch, s.surfaces, "-", "-", "-", "-", "-", t.error);
  }
  const MeasuredWindow& m = t.report.measured;
  std::string note;
  if (m.whole_run) {
    note = "whole run, start-up included: the inputs ran out before the warm-up ended";
  } else if (m.ended_early) {
    note = "the inputs ran out: measured from the warm-up to the end";
  }
  if (t.report.videos_failed > 0) note += (note.empty() ? "" : "; ") + fmt::format("{} videos failed", t.report.videos_failed);
  return fmt::format("{} {:>2} {:<9} {:<18} {:>5} {:>8} {:>8.1f}x {:>9.1f} {:>6} {:>6} {:>8.1f}s  {}", best ? "*" : " ",
                     t.number, t.phase, s.workers.ToString(), s.batch, s.surfaces, m.realtime_factor(),
                     m.frames_per_second(), Percent(m.gpu_monitored, m.gpu.gpu_mean),
                     Percent(m.gpu_monitored, m.gpu.decoder_mean), m.wall_seconds, note);
}

// The best trial: the highest realtime factor over its measured window (the earliest wins a tie).
const Trial* Best(const std::vector<Trial>& trials) {
  const Trial* best = nullptr;
  for (const Trial& t : trials) {
    if (t.ok && t.report.measured.frames > 0 &&
        (best == nullptr || t.report.measured.realtime_factor() > best->report.measured.realtime_factor())) {
      best = &t;
    }
  }
  return best;
}

// The analysis device, from the options (a stopped multi-process trial may not have heard its infer
// workers describe theirs: they report when a video ends), plus a trial's own description when one has it.
std::string DeviceText(const RunOptions& o, const std::vector<Trial>& trials) {
  std::string text = o.analyzer.device == AnalyzerDevice::kGpu
                         ? fmt::format("GPU {}, {}, {} decoding", o.analyzer.gpu_index,
                                       o.analyzer.precision == infer::Precision::kFloat32 ? "fp32" : "fp16",
                                       o.decoder == DecoderDevice::kGpu ? "NVDEC" : "CPU")
                         : std::string("CPU, float32");
  for (const Trial& t : trials) {
    if (t.ok && !t.report.analyzer.empty() && t.report.analyzer != "none ran") return text + " (" + t.report.analyzer + ")";
  }
  return text;
}

std::string ConfigText(const TuneArgs& a, const RunOptions& base, const std::vector<VideoInput>& inputs,
                       const std::vector<Trial>& trials, const Trial& best, int cores, bool mps) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::string text;
  text += "# vidscan tune: the fastest settings measured for these videos and this model on this machine.\n";
  text += fmt::format("# date: {:%Y-%m-%d %H:%M:%S %z}\n", local);
  text += fmt::format("# analysis: {}\n", DeviceText(base, trials));
  text += fmt::format("# machine: {} cores; MPS {} (--mps {})\n", cores, mps ? "in use for worker processes" : "not in use",
                      ipc::MpsModeName(base.mps));
  text += fmt::format("# model: {}{}\n", a.run.model, a.run.family.empty() ? "" : " (family " + a.run.family + ")");
  text += fmt::format("# sampling: {}\n", a.run.sample);
  text += fmt::format("# inputs: {} videos:", inputs.size());
  for (size_t i = 0; i < inputs.size() && i < 8; ++i) text += " " + inputs[i].path;
  text += inputs.size() > 8 ? " ...\n" : "\n";
  text += fmt::format("# trials: {:g} s measured each, from {:g} s after the first analysed frame; realtime = video "
                      "seconds analysed per wall second\n#\n",
                      a.trial_seconds, a.warmup_seconds);
  text += "#" + TableHeader() + "\n";
  for (const Trial& t : trials) text += "#" + TableRow(t, &t == &best) + "\n";
  text += "#\n# Use: vidscan run --config THIS_FILE -o OUT INPUTS...  (options given on the command line win)\n";
  // Only the tuned keys: model, device and sampling stay the command line's business.
  text += fmt::format("workers=\"{}\"\n", best.settings.workers.ToString());
  // A multi-process layout was measured with the workers under MPS (or without): the same must hold.
  if (best.settings.workers.multi_process()) text += fmt::format("mps=\"{}\"\n", ipc::MpsModeName(base.mps));
  text += fmt::format("batch={}\n", best.settings.batch);
  text += fmt::format("surfaces={}\n", best.settings.surfaces);
  return text;
}

int TuneCommand(TuneArgs a, bool workers_given, bool batch_given, bool surfaces_given) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::error_code ec;
  // Refused before minutes of trials, not after.
  if (fs::exists(a.config_out, ec) && !a.force) {
    fmt::print(stderr, "error: {} exists; --force to overwrite it, or -o another file\n", a.config_out);
    return 2;
  }
  a.run.force = true;
  auto base = MakeRunOptions(a.run);
  if (!base.ok()) {
    fmt::print(stderr, "error: {}\n", base.status().ToString());
    return base.status().code() == StatusCode::kUnavailable ? kExitFatal : 2;
  }
  const AnalyzerDevice device = base->analyzer.device;
  const bool mps = MpsWillBeUsed(base->mps);

  // The three dimensions: --try-X, else the value the run option fixes, else the default list.
  std::vector<WorkerLayout> layouts;
  if (!a.try_workers.empty()) {
    for (const std::string& item : a.try_workers) {
      auto layout = ParseTryLayout(item, device, cores, mps);
      if (!layout.ok()) {
        fmt::print(stderr, "error: --try-workers: {}\n", layout.status().message());
        return 2;
      }
      layouts.push_back(*layout);
    }
  } else if (workers_given) {
    layouts.push_back(base->workers);
  } else {
    layouts = TuneLayoutCandidates(device, cores, mps);
    if (device == AnalyzerDevice::kGpu && !mps) {
      fmt::print(stderr, "note: only the single-process layout is tried: no MPS control daemon is running, and without "
                         "MPS worker processes time-slice the GPU (half the throughput on the H200). Start one "
                         "(nvidia-cuda-mps-control -d) or name layouts with --try-workers.\n");
    }
  }
  const bool gpu = device == AnalyzerDevice::kGpu;
  std::vector<int> batches = !a.try_batch.empty() ? a.try_batch
                             : batch_given        ? std::vector<int>{base->analyzer.batch_size}
                             : gpu                ? std::vector<int>{16, 32, 64}
                                                  : std::vector<int>{2, 4, 8};
  std::vector<int> surfaces = !a.try_surfaces.empty() ? a.try_surfaces
                              : surfaces_given        ? std::vector<int>{base->decoder_surfaces}
                                                      : std::vector<int>{16, 24, 32};
  auto unique = [](std::vector<int>& v) {
    std::vector<int> out;
    for (int x : v) {
      if (std::find(out.begin(), out.end(), x) == out.end()) out.push_back(x);
    }
    v = out;
  };
  unique(batches);
  unique(surfaces);
  // The layout sweep runs at the starting batch and surfaces: the run option's, or the run default when it
  // is in the list, else the list's first.
  auto start_of = [](const std::vector<int>& list, int preferred) {
    return std::find(list.begin(), list.end(), preferred) != list.end() ? preferred : list.front();
  };
  const int batch0 = start_of(batches, base->analyzer.batch_size);
  const int surfaces0 = start_of(surfaces, base->decoder_surfaces);
  const int total = static_cast<int>(layouts.size() + batches.size() - 1 + surfaces.size() - 1);

  auto inputs = CollectRunInputs(a.run);
  if (!inputs.ok()) {
    fmt::print(stderr, "error: {}\n", inputs.status().ToString());
    return kExitFatal;
  }
  auto model = LoadModelForRun(a.run.model, a.run.model_config, a.run.family);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().ToString());
    return kExitFatal;
  }

  const fs::path work = a.work_dir.empty() ? fs::temp_directory_path() / fmt::format("vidscan-tune-{}", getpid())
                                           : fs::path(a.work_dir) / fmt::format("vidscan-tune-{}", getpid());
  struct RemoveWork {
    fs::path path;
    ~RemoveWork() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_work{work};

  // Start-up (model load, worker processes, cuDNN autotuning) and wind-down: a few seconds per trial.
  const double estimate = total * (a.trial_seconds + a.warmup_seconds + 5);
  fmt::print(stderr,
             "{} trials on {} videos: {} worker layouts at batch {} and {} surfaces, then {} more batch sizes, then {} "
             "more surface counts; each measured {:g} s after a {:g} s warm-up, plus start-up: about {}\n",
             total, inputs->size(), layouts.size(), batch0, surfaces0, batches.size() - 1, surfaces.size() - 1,
             a.trial_seconds, a.warmup_seconds,
             estimate < 120 ? fmt::format("{:.0f} seconds", estimate) : fmt::format("{:.0f} minutes", estimate / 60));

  struct sigaction action {};
  action.sa_handler = OnTuneSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  std::vector<Trial> trials;
  trials.reserve(static_cast<size_t>(total));
  auto run_trial = [&](const std::string& phase, const TrialSettings& settings) -> const Trial& {
    Trial& t = trials.emplace_back();
    t.number = static_cast<int>(trials.size());
    t.phase = phase;
    t.settings = settings;
    fmt::print(stderr, "trial {}/{}: {} ...\n", t.number, total, SettingsText(settings));
    RunOptions o = *base;
    o.workers = settings.workers;
    o.analyzer.batch_size = settings.batch;
    o.decoder_surfaces = settings.surfaces;
    o.output_dir = (work / fmt::format("trial-{}", t.number)).string();
    o.force = true;
    o.progress = ProgressMode::kQuiet;
    o.trial_seconds = a.trial_seconds;
    o.warmup_seconds = a.warmup_seconds;
    o.cancel = &g_tune_cancel;
    auto report = RunJob(*inputs, *model, o);
    std::error_code remove_ec;
    fs::remove_all(o.output_dir, remove_ec);
    if (!report.ok()) {
      t.error = report.status().ToString();
    } else if (report->measured.frames <= 0) {
      t.error = report->failures.empty() ? "no frame was analysed" : "no frame was analysed: " + report->failures.front().error;
    } else {
      t.ok = true;
      t.report = std::move(*report);
    }
    if (!g_tune_cancel.load()) fmt::print(stderr, "{}\n", TableRow(t, false));
    return t;
  };
  auto best_of = [](const std::vector<const Trial*>& sweep, TrialSettings fallback) {
    const Trial* best = nullptr;
    for (const Trial* t : sweep) {
      if (t->ok && (best == nullptr || t->report.measured.realtime_factor() > best->report.measured.realtime_factor())) best = t;
    }
    return best != nullptr ? best->settings : fallback;
  };

  fmt::print(stderr, "{}\n", TableHeader());
  // Sweep 1: layouts.
  std::vector<const Trial*> sweep;
  for (const WorkerLayout& layout : layouts) {
    if (g_tune_cancel.load()) break;
    sweep.push_back(&run_trial("workers", {layout, batch0, surfaces0}));
  }
  TrialSettings current = best_of(sweep, {layouts.front(), batch0, surfaces0});
  // Sweep 2: batch sizes with the best layout (the starting batch's trial is already in sweep 1).
  sweep.clear();
  for (const Trial& t : trials) {
    if (SameLayout(t.settings.workers, current.workers) && t.settings.batch == current.batch) sweep.push_back(&t);
  }
  for (int batch : batches) {
    if (g_tune_cancel.load()) break;
    if (batch == batch0) continue;
    sweep.push_back(&run_trial("batch", {current.workers, batch, surfaces0}));
  }
  current = best_of(sweep, current);
  // Sweep 3: surfaces with the best layout and batch.
  sweep.clear();
  for (const Trial& t : trials) {
    if (SameLayout(t.settings.workers, current.workers) && t.settings.batch == current.batch &&
        t.settings.surfaces == surfaces0) {
      sweep.push_back(&t);
    }
  }
  for (int s : surfaces) {
    if (g_tune_cancel.load()) break;
    if (s == surfaces0) continue;
    sweep.push_back(&run_trial("surfaces", {current.workers, current.batch, s}));
  }

  // Sorted, fastest first, failures last.
  std::vector<Trial> sorted = trials;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Trial& x, const Trial& y) {
    if (x.ok != y.ok) return x.ok;
    return x.report.measured.realtime_factor() > y.report.measured.realtime_factor();
  });
  const Trial* best = Best(sorted);
  fmt::print(stderr, "\nresults, fastest first (* the best; realtime = video seconds analysed per wall second over the "
                     "measured window, after the warm-up):\n{}\n",
             TableHeader());
  for (const Trial& t : sorted) fmt::print(stderr, "{}\n", TableRow(t, &t == best));
  if (g_tune_cancel.load()) {
    fmt::print(stderr, "interrupted: no config file written\n");
    return kExitInterrupted;
  }
  if (best == nullptr) {
    fmt::print(stderr, "error: no trial analysed any frame; nothing to recommend\n");
    return kExitFatal;
  }
  auto file = AtomicFile::Create(a.config_out);
  Status written = file.ok() ? file->Write(ConfigText(a, *base, *inputs, sorted, *best, cores, mps)) : file.status();
  if (written.ok()) written = file->Commit();
  if (!written.ok()) {
    fmt::print(stderr, "error: {}\n", written.ToString());
    return kExitFatal;
  }
  fmt::print(stderr, "\nbest: {} at {:.1f}x realtime; written to {}\nuse it: vidscan run --config {} -o OUT INPUTS...\n",
             SettingsText(best->settings), best->report.measured.realtime_factor(), a.config_out, a.config_out);
  return kExitOk;
}

}  // namespace

void AddTuneCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TuneArgs>();
  auto* cmd = app.add_subcommand(
      "tune",
      "Find the fastest worker layout, batch size and surfaces per video for your videos, model and machine, by "
      "short trial runs of the real pipeline; prints a table and writes the best settings to a config file that "
      "`vidscan run --config FILE` reads.");
  cmd->footer(
      "What a trial is: a real `vidscan run` of the inputs (same model, device and sampling options as run) into a\n"
      "temporary folder, removed afterwards. It is stopped once it has been measured for --trial-seconds. The\n"
      "measurement starts --warmup-seconds after the first analysed frame, so model load, worker start-up and\n"
      "cuDNN autotuning are left out; it counts video seconds analysed per wall second (realtime factor) and frames\n"
      "per second, with GPU SM and NVDEC load where NVML answers. Inputs shorter than a trial are measured to their\n"
      "end, and the table says so: give enough video for every trial to run its time.\n"
      "\n"
      "What is tried: three sweeps, not the full grid. (1) every --try-workers layout at the starting batch and\n"
      "surfaces; (2) every --try-batch with the best layout; (3) every --try-surfaces with the best layout and\n"
      "batch. A dimension fixed with the run option (--workers, --batch, --surfaces) and no --try-X is not tuned.\n"
      "\n"
      "How long: trials x (trial + warm-up + start-up, a few seconds); the count and an estimate print first.\n"
      "With the defaults on a GPU without MPS: 1 + 2 + 2 = 5 trials of about 30 s.\n"
      "\n"
      "The result: a table, fastest first (* marks the best), and -o FILE (default tuned.conf; refused if it exists,\n"
      "unless --force) with the best workers, batch and surfaces, and in its comments the date, device, inputs and\n"
      "table. Use it: vidscan run --config tuned.conf -o OUT INPUTS (options on the command line still win).\n"
      "Tune on videos like those you will process: resolution, codec and boxes per frame decide the best settings.\n"
      "\n"
      "Exit status: 0 written; 2 bad options or the file exists; 4 nothing could be measured; 130 interrupted\n"
      "(no file written).");
  cmd->add_option("inputs", args->run.inputs, "Video files, directories, @MANIFEST or - (as for run)")->required();
  cmd->add_option("-o,--output", args->config_out, "Config file to write the best settings to")->capture_default_str();
  cmd->add_flag("--force", args->force, "Overwrite the config file if it exists");
  cmd->add_option("--try-workers", args->try_workers,
                  "Worker layouts to try, comma-separated: single, auto, decode=N:infer=M (':' inside a layout). "
                  "Default: single, plus decode=N:infer=1 for N about cores/4 and cores/2 (and cores/2:2 from 8 "
                  "cores) on the CPU or when an MPS daemon is running; on a GPU without MPS only single")
      ->delimiter(',');
  cmd->add_option("--try-batch", args->try_batch, "Batch sizes to try (default 16,32,64 on the GPU, 2,4,8 on the CPU)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256));
  cmd->add_option("--try-surfaces", args->try_surfaces,
                  "Surfaces per open video (frames in flight per decoder) to try (default 16,24,32)")
      ->delimiter(',')
      ->check(CLI::Range(2, 64));
  cmd->add_option("--trial-seconds", args->trial_seconds, "Seconds each trial is measured for, after its warm-up")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  cmd->add_option("--warmup-seconds", args->warmup_seconds,
                  "Seconds after a trial's first analysed frame before its measurement starts")
      ->check(CLI::Range(0.0, 600.0))
      ->capture_default_str();
  cmd->add_option("--work-dir", args->work_dir, "Where the trials' temporary outputs go (default: the system's temp folder)");
  AddCommonOptions(cmd, &args->run);
  cmd->callback([cmd, args, exit_code] {
    *exit_code = TuneCommand(*args, cmd->get_option("--workers")->count() > 0, cmd->get_option("--batch")->count() > 0,
                             cmd->get_option("--surfaces")->count() > 0);
  });
}

}  // namespace vidscan::cli
