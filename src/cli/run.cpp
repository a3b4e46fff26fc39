// `vidscan run`: the end-to-end job (decode -> batch -> preprocess -> infer -> boxes -> track -> outputs)
// over many videos, resumable through the ledger in the output directory; and `vidscan bench run`, the
// same pipeline timed on a set of videos (realtime factor, video-hours per GPU-day).
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "cli/bench.h"
#include "cli/commands.h"
#include "cli/run_args.h"
#include "core/log.h"
#include "infer/builtin_models.h"
#include "pipeline/auto_layout.h"
#include "pipeline/run_job.h"

namespace vidscan::cli {
namespace {

// Set by SIGINT/SIGTERM while a multi-process job runs: the supervisor then stops its workers and removes
// the job's shared memory. A second signal ends the process at once (the workers die with it).
std::atomic<bool> g_cancel{false};

void OnStopSignal(int) {
  if (g_cancel.exchange(true)) _exit(kExitInterrupted);
}

void InstallStopHandlers() {
  struct sigaction action{};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

}  // namespace

void AddCommonOptions(CLI::App* cmd, RunArgs* a) {
  cmd->add_option("--model", a->model,
                  "ONNX detector, or builtin:detectnet_v2_resnet34_960x544 (PeopleNet's architecture, random weights)")
      ->capture_default_str();
  cmd->add_option("--model-config", a->model_config,
                  "Model description JSON (family, input size, normalisation, thresholds; docs/detect.md). Default: "
                  "MODEL.json beside the .onnx");
  cmd->add_option("--family", a->family, "Without a description file: yolox, yolov8 or detectnet_v2 defaults, input size from the ONNX")
      ->check(CLI::IsMember({"yolox", "yolov8", "detectnet_v2"}));
  cmd->add_option("--device", a->device, "auto (GPU when one is usable), gpu (NVDEC + CUDA) or cpu")
      ->check(CLI::IsMember({"auto", "gpu", "cpu"}))
      ->capture_default_str();
  cmd->add_option("--gpu", a->gpu, "GPU index")->capture_default_str();
  cmd->add_option("--batch", a->batch, "Frames per inference batch, across videos (0: 32 on the GPU, 4 on the CPU)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--max-wait-ms", a->max_wait_ms, "A partial batch runs after waiting this long for more frames")
      ->check(CLI::Range(0.0, 10000.0))
      ->capture_default_str();
  cmd->add_option("--batches-in-flight", a->batches_in_flight,
                  "GPU: batches queued on the GPU at once; 2 lets the next batch be gathered while one runs, 3 or 4 "
                  "absorb a slow host step at the price of one more batch of frames held and one more input tensor "
                  "(200 MB at batch 32, 960x544) each")
      ->check(CLI::Range(1, kMaxBatchesInFlight))
      ->capture_default_str();
  cmd->add_option("--open-videos", a->open_videos,
                  "Videos decoded at once, each by its own decoder (0: 24 on the GPU, 2 on the CPU)")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  cmd->add_option("--surfaces", a->surfaces, "Decoded frames each open video may have in flight: bounds memory (24 x 3 MB per 1080p video on the GPU)")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  cmd->add_option("--precision", a->precision, "GPU inference precision")
      ->check(CLI::IsMember({"fp16", "fp32"}))
      ->capture_default_str();
  cmd->add_option("--sample", a->sample,
                  "Frames analysed: all, every:N, fps:X (at most X per second of video) or keyframes; a manifest "
                  "line can override it per video")
      ->capture_default_str();
  cmd->add_flag("--no-track", a->no_track, "Detections only, no ByteTrack");
  cmd->add_option("--track-thresh", a->tracker.track_thresh, "ByteTrack: high-score boxes are above this")->capture_default_str();
  cmd->add_option("--low-thresh", a->tracker.low_thresh, "ByteTrack: boxes above this enter the second association")->capture_default_str();
  cmd->add_option("--new-track-thresh", a->tracker.new_track_thresh, "ByteTrack: an unmatched box starts a track above this")
      ->capture_default_str();
  cmd->add_option("--match-thresh", a->tracker.match_thresh, "ByteTrack: max IoU distance, first association")->capture_default_str();
  cmd->add_option("--track-buffer", a->tracker.track_buffer, "ByteTrack: frames a lost track is kept (at 30 fps; scaled to the video's rate)")
      ->capture_default_str();
  cmd->add_option("--output-threads", a->output_threads, "Threads tracking and writing results (0: a quarter of the cores, 1 to 4)")->capture_default_str();
  cmd->add_option("--cpu-threads", a->cpu_threads, "CPU inference threads (0: one per core)")->capture_default_str();
  cmd->add_option("--workspace-mib", a->workspace_mib, "cuDNN workspace (MiB)")->capture_default_str();
  cmd->add_option("--cudnn-algorithms", a->cudnn_algorithms,
                  "GPU: the file pinning cuDNN's convolution algorithms (created if missing; default "
                  "OUT/cudnn_algorithms.json, 'none' for none). cuDNN's choice is timed, so two processes may choose "
                  "differently and round differently in the last digits; with the file the first process records "
                  "its choices and every later one (a resumed run, a restarted infer worker) reuses them, so they "
                  "compute the same bits. Give separate jobs that must agree bit for bit the same file. Keys name "
                  "the GPU model, cuDNN version, precision and workspace, so other machines' entries are ignored");
  cmd->add_option("--extensions", a->extensions, "Video file extensions picked from directories (default: common video types)");
  cmd->add_option("--progress", a->progress, "auto (a live line on a terminal, log lines otherwise), tty, log or none")
      ->check(CLI::IsMember({"auto", "tty", "log", "none"}))
      ->capture_default_str();
  cmd->add_option("--progress-interval", a->progress_interval, "Seconds between progress log lines (log mode)")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  cmd->add_flag("-q,--quiet", a->quiet, "No progress and no final table; errors only");
  cmd->add_option("--workers", a->workers,
                  "single: one process, threads per stage. decode=N,infer=M: a supervisor process with N decode "
                  "worker processes and M inference worker processes (1 <= M <= N; each decoder feeds one infer "
                  "worker); frames cross processes through shared slot pools (device memory with CUDA IPC on the "
                  "GPU), a worker that dies is restarted and its videos re-run. auto (the default): single on the CPU "
                  "or on a GPU without MPS, decode=clamp(cores/2,2,8),infer=1 on a GPU shared through MPS (--mps on, "
                  "or a daemon already running; measured faster there) — the summary says what it chose. "
                  "`vidscan tune` measures instead. Outputs are identical either way")
      ->capture_default_str();
  cmd->add_option("--mps", a->mps,
                  "CUDA MPS for the worker processes of --workers decode=N,infer=M. MPS runs the kernels of many "
                  "processes on one GPU at once instead of time-slicing a context per process (H200, one video-hour, "
                  "decode=8,infer=1: 64.6-65.6x realtime without it, 104.4-107.9x with it; one process 102.7-105.6x in "
                  "the same calls). on: start a private MPS control daemon for this job and "
                  "stop it at the end (use it for every multi-process GPU job unless a daemon already runs); "
                  "auto: use a daemon already running at $CUDA_MPS_PIPE_DIRECTORY or /tmp/nvidia-mps, if any; off: "
                  "the workers never attach to one. Needs nvidia-cuda-mps-control on PATH and the GPU in Default "
                  "(or Exclusive-process) compute mode. Nothing to do for --workers single. The summary and "
                  "job_summary.json say whether the workers were MPS clients")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

Expected<RunOptions> MakeRunOptions(const RunArgs& a) {
  RunOptions o;
  VS_ASSIGN_OR_RETURN(o.sampling, SamplingPolicy::Parse(a.sample));
  bool gpu = a.device == "gpu";
  if (a.device == "auto") {
    gpu = CudaAnalysisAvailable(a.gpu).ok();
    if (!gpu) spdlog::info("no usable GPU ({}): running on the CPU", CudaAnalysisAvailable(a.gpu).message());
  } else if (gpu) {
    VS_RETURN_IF_ERROR(CudaAnalysisAvailable(a.gpu));
  }
  o.decoder = gpu ? DecoderDevice::kGpu : DecoderDevice::kCpu;
  o.analyzer.device = gpu ? AnalyzerDevice::kGpu : AnalyzerDevice::kCpu;
  o.analyzer.gpu_index = a.gpu;
  o.analyzer.batch_size = a.batch > 0 ? a.batch : (gpu ? 32 : 4);
  o.analyzer.precision = a.precision == "fp32" ? infer::Precision::kFloat32 : infer::Precision::kFloat16;
  o.analyzer.cpu_threads = a.cpu_threads;
  o.analyzer.gpu_workspace_bytes = static_cast<size_t>(a.workspace_mib) << 20;
  o.analyzer.batches_in_flight = a.batches_in_flight;
  // By default the job's own table, next to its ledger: a resumed run and a restarted infer worker reuse
  // the first process's choices, so a video's results do not depend on which process analysed it.
  // Absolute: worker processes and later runs may start elsewhere.
  if (gpu && a.cudnn_algorithms != "none") {
    const std::filesystem::path table = a.cudnn_algorithms.empty() ? std::filesystem::path(a.output) / kCudnnAlgorithmsFileName
                                                                   : std::filesystem::path(a.cudnn_algorithms);
    o.analyzer.cudnn_algorithm_table = std::filesystem::absolute(table).string();
  }
  o.max_open_videos = a.open_videos > 0 ? a.open_videos : (gpu ? 24 : 2);
  o.decoder_surfaces = a.surfaces;
  o.max_batch_wait_ms = a.max_wait_ms;
  o.track = !a.no_track;
  o.tracker = a.tracker;
  o.output_threads = a.output_threads;
  o.output_dir = a.output;
  o.force = a.force;
  VS_ASSIGN_OR_RETURN(o.mps, ipc::ParseMpsMode(a.mps));
  if (a.workers == "auto") {
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    o.workers = ChooseWorkerLayout(o.analyzer.device, cores, MpsWillBeUsed(o.mps));
  } else {
    VS_ASSIGN_OR_RETURN(o.workers, WorkerLayout::Parse(a.workers));
  }
  o.progress_interval_s = a.progress_interval;
  o.progress = a.quiet || a.progress == "none" ? ProgressMode::kQuiet
               : a.progress == "tty"            ? ProgressMode::kTerminal
               : a.progress == "log"            ? ProgressMode::kLog
                                                : ProgressMode::kAuto;
  return o;
}

namespace {

void PrintStageTable(const JobReport& r) {
  fmt::print(stderr, "\n{:<12} {:>10} {:>10} {:>10} {:>8}\n", "stage", "frames", "busy s", "ms/frame", "load");
  for (const StageReport& s : r.stages) {
    const double per_frame = s.frames > 0 ? s.busy_seconds / s.frames * 1e3 : 0;
    const double load = r.wall_seconds > 0 ? s.busy_seconds / (r.wall_seconds * std::max(1, s.workers)) : 0;
    fmt::print(stderr, "{:<12} {:>10} {:>10.2f} {:>10.3f} {:>7.0f}%\n", s.name, s.frames, s.busy_seconds, per_frame,
               load * 100);
  }
  fmt::print(stderr, "(load: busy time / (wall time x workers); decode has one worker per open video; GPU stages "
                     "are timed with CUDA events; GPU idle: the analysis stream waited between batches, for the host "
                     "or for a decoder's frame)\n");
  if (r.padded_frames > 0 || r.device_waits > 0) {
    fmt::print(stderr, "padded frames (partial batches, each costs a full frame): {}; frame events waited for on the GPU: {}\n",
               r.padded_frames, r.device_waits);
  }
}

void PrintSummary(const JobReport& r, const std::string& output) {
  fmt::print(stderr, "\n{} videos: {} done ({} with damaged streams, analysed as far as decodable), {} failed, {} already done earlier\n",
             r.videos_total, r.videos_done, r.videos_with_warnings, r.videos_failed, r.videos_skipped);
  if (!r.workers_reason.empty()) {
    fmt::print(stderr, "workers {}\n", r.workers_reason);
  }
  if (r.mode == "single") {
    fmt::print(stderr, "mode: single process\n");
  } else {
    fmt::print(stderr, "mode: multi-process, workers {} ({} worker deaths, {} restarts)\n", r.mode, r.worker_deaths,
               r.worker_restarts);
  }
  fmt::print(stderr, "{} frames decoded, {} analysed, {:.1f} s of video in {:.1f} s: {:.1f}x realtime, {:.0f} video-hours/day ({})\n",
             r.frames_decoded, r.frames_analysed, r.video_seconds, r.wall_seconds, r.realtime_factor(),
             r.realtime_factor() * 24, r.analyzer);
  if (r.startup_seconds > 0) {
    fmt::print(stderr, "start-up before that: {:.1f} s (model, cuDNN tuning{}); {:.1f}x realtime counting it\n",
               r.startup_seconds, r.mode == "single" ? "" : ", worker processes",
               r.video_seconds / std::max(1e-9, r.wall_seconds + r.startup_seconds));
  }
  fmt::print(stderr, "{}\n", r.mps.Describe());
  if (r.gpu_monitored) fmt::print(stderr, "GPU: SM {:.0f} % and NVDEC {:.0f} % on average (NVML)\n", r.gpu.gpu_mean, r.gpu.decoder_mean);
  for (const auto& f : r.failures) fmt::print(stderr, "FAILED {}: {}\n", f.path.empty() ? "job" : f.path, f.error);
  if (!output.empty()) {
    fmt::print(stderr, "results: {}/videos/<video>/{{detections.jsonl,tracks.txt,summary.json}}; job: {}/job_summary.json, ledger {}/ledger.sqlite\n",
               output, output, output);
  }
}

}  // namespace

Expected<std::vector<VideoInput>> CollectRunInputs(const RunArgs& a) {
  InputOptions options;
  if (!a.extensions.empty()) options.extensions = a.extensions;
  options.manifests = a.manifests;
  return CollectInputs(a.inputs, options, std::cin);
}

namespace {

int RunCommand(const RunArgs& a) {
  auto options = MakeRunOptions(a);
  if (!options.ok()) {
    fmt::print(stderr, "error: {}\n", options.status().ToString());
    return options.status().code() == StatusCode::kUnavailable ? kExitFatal : 2;
  }
  auto inputs = CollectRunInputs(a);
  if (!inputs.ok()) {
    fmt::print(stderr, "error: {}\n", inputs.status().ToString());
    return kExitFatal;
  }
  auto model = LoadModelForRun(a.model, a.model_config, a.family);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().ToString());
    return kExitFatal;
  }
  if (options->workers.multi_process()) {
    InstallStopHandlers();
    options->cancel = &g_cancel;
  }
  auto report = RunJob(*inputs, *model, *options);
  if (!report.ok()) {
    if (g_cancel.load()) {
      fmt::print(stderr, "interrupted: videos in flight stay 'running' in the ledger; the same command resumes the job\n");
      return kExitInterrupted;
    }
    fmt::print(stderr, "error: {}\n", report.status().ToString());
    return kExitFatal;
  }
  if (!a.quiet) {
    if (report->frames_analysed > 0) PrintStageTable(*report);
    PrintSummary(*report, a.output);
  }
  return report->failures.empty() ? kExitOk : kExitSomeFilesFailed;
}

int BenchRunCommand(RunArgs a) {
  namespace fs = std::filesystem;
  const bool temporary = a.output.empty();
  if (temporary) a.output = (fs::temp_directory_path() / fmt::format("vidscan-bench-run-{}", getpid())).string();
  a.force = true;
  auto options = MakeRunOptions(a);
  if (!options.ok()) {
    fmt::print(stderr, "error: {}\n", options.status().ToString());
    return kExitFatal;
  }
  auto collected = CollectRunInputs(a);
  if (!collected.ok()) {
    fmt::print(stderr, "error: {}\n", collected.status().ToString());
    return kExitFatal;
  }
  // --repeat: each input again as another video (its own decoder, tracker and outputs), to reach a
  // workload of many video-hours from a short clip.
  std::vector<VideoInput> inputs;
  for (int r = 0; r < a.repeat; ++r) {
    for (VideoInput v : *collected) {
      if (a.repeat > 1) v.key += fmt::format("-r{}", r);
      inputs.push_back(std::move(v));
    }
  }
  auto model = LoadModelForRun(a.model, a.model_config, a.family);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().ToString());
    return kExitFatal;
  }
  if (options->workers.multi_process()) {
    InstallStopHandlers();
    options->cancel = &g_cancel;
  }
  auto report = RunJob(inputs, *model, *options);
  if (temporary && !a.keep) {
    std::error_code ec;
    fs::remove_all(a.output, ec);
  }
  if (!report.ok()) {
    fmt::print(stderr, "error: {}\n", report.status().ToString());
    return kExitFatal;
  }
  PrintStageTable(*report);
  PrintSummary(*report, temporary && !a.keep ? "" : a.output);
  if (a.json) {
    nlohmann::json j = {{"videos", report->videos_total},
                        {"failed", report->videos_failed},
                        {"frames_decoded", report->frames_decoded},
                        {"frames_analysed", report->frames_analysed},
                        {"video_seconds", report->video_seconds},
                        {"wall_seconds", report->wall_seconds},
                        {"startup_seconds", report->startup_seconds},
                        {"realtime_factor", report->realtime_factor()},
                        {"video_hours_per_day", report->realtime_factor() * 24},
                        {"sample", a.sample},
                        {"model", a.model},
                        {"workers", report->mode},
                        {"analyzer", report->analyzer}};
    if (report->gpu_monitored) {
      j["gpu_sm_percent"] = report->gpu.gpu_mean;
      j["nvdec_percent"] = report->gpu.decoder_mean;
    }
    for (const StageReport& s : report->stages) j["stages"][s.name] = s.busy_seconds;
    j["padded_frames"] = report->padded_frames;
    j["device_waits"] = report->device_waits;
    j["mps"] = MpsReportJson(report->mps);
    std::cout << j.dump() << "\n";
  }
  return report->failures.empty() ? kExitOk : kExitSomeFilesFailed;
}

}  // namespace

namespace {
std::string Unquote(std::string v) {
  auto trim = [](std::string& t) {
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
    while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.erase(t.begin());
  };
  trim(v);
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    std::string out;
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      if (v[i] == '\\' && i + 2 < v.size()) ++i;
      out += v[i];
    }
    return out;
  }
  return v;
}
}  // namespace

Expected<std::vector<std::string>> ExpandConfigFile(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      path = args[i].substr(9);
    } else {
      out.push_back(args[i]);
    }
  }
  if (path.empty()) return args;
  // Options given on the command line (long names; the short ones this command has mapped to them).
  std::set<std::string> given;
  for (const std::string& a : out) {
    if (a == "-o") given.insert("output");
    if (a == "-q") given.insert("quiet");
    if (a.rfind("--", 0) == 0 && a.size() > 2) given.insert(a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2));
  }
  std::ifstream in(path);
  if (!in) return MakeError(StatusCode::kNotFound, path + ": cannot open the config file");
  std::vector<std::string> options, inputs;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#' || line[start] == ';' || line[start] == '[') continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return MakeError(StatusCode::kInvalidArgument, fmt::format("{}:{}: expected key=value, got '{}'", path, number, line));
    }
    std::string key = Unquote(line.substr(start, eq - start));
    std::string value = line.substr(eq + 1);
    if (key.rfind("run.", 0) == 0) key = key.substr(4);
    std::vector<std::string> values;
    std::string trimmed = Unquote(value);
    if (!trimmed.empty() && trimmed.front() == '[' && trimmed.back() == ']') {
      std::string item;
      std::istringstream list(trimmed.substr(1, trimmed.size() - 2));
      while (std::getline(list, item, ',')) if (!Unquote(item).empty()) values.push_back(Unquote(item));
    } else {
      values.push_back(trimmed);
    }
    if (key == "inputs") {
      inputs.insert(inputs.end(), values.begin(), values.end());
      continue;
    }
    if (given.count(key)) continue;  // the command line wins
    if (values.size() == 1 && (values[0] == "true" || values[0] == "false")) {
      if (values[0] == "true") options.push_back("--" + key);
      continue;
    }
    for (const std::string& v : values) {
      options.push_back("--" + key);
      options.push_back(v);
    }
  }
  // After the subcommand name(s): the config's options go right after the last leading word that is not an
  // option (e.g. "run" or "bench run"), inputs at the end.
  size_t insert_at = 0;
  while (insert_at < out.size() && (out[insert_at] == "run" || out[insert_at] == "bench")) ++insert_at;
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(insert_at), options.begin(), options.end());
  out.insert(out.end(), inputs.begin(), inputs.end());
  return out;
}

namespace {

// CLI11's config text, minus what must not be replayed: empty values (they would be read back as an
// empty input or an invalid choice) and the --print-config / --config switches themselves.
std::string ReplayableConfig(const std::string& text) {
  std::istringstream in(text);
  std::string out, comment, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      comment = line;
      continue;
    }
    const size_t eq = line.find('=');
    const std::string key = line.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : line.substr(eq + 1);
    if (value.empty() || value == "\"\"" || value == "[]" || key == "print-config" || key == "config" || key == "help" ||
        value == "false") {
      comment.clear();
      continue;
    }
    if (!comment.empty()) out += "\n" + comment + "\n";
    out += line + "\n";
    comment.clear();
  }
  return out;
}

}  // namespace

void AddRunCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand(
      "run",
      "Detect and track objects in every video: decode (NVDEC, or libavcodec on the CPU), batch frames across "
      "videos, preprocess, infer, NMS, ByteTrack. Per video OUT/<video>/ gets detections.jsonl (one line per "
      "analysed frame), tracks.txt (MOTChallenge) and summary.json; OUT/ledger.sqlite records each video's "
      "state, so running the same command again resumes (done videos are skipped, interrupted ones restart, "
      "failed ones are retried). A damaged or unsupported video is recorded as failed and the job goes on. "
      "Exit status 0 all done, 3 some videos failed, 4 the job could not run.");
  cmd->add_option("inputs", args->inputs,
                  "Video files, directories (searched recursively by extension), @MANIFEST (one path per line, or "
                  "JSON Lines {\"path\":..., \"sample\":...}), or - to read paths from stdin");
  cmd->add_option("--manifest", args->manifests, "Manifest file(s), as @MANIFEST");
  // Checked in the callback rather than with ->required(): CLI11 checks requirements before it reads a
  // subcommand's --config file, which may be where the output directory is named.
  cmd->add_option("-o,--output", args->output, "Output directory (created if missing; required)");
  AddCommonOptions(cmd, args.get());
  cmd->add_flag("--force", args->force, "Reprocess every video, also those the ledger has as done");
  // Expanded before parsing (ExpandConfigFile in main.cpp); declared here for --help.
  cmd->add_option("--config", args->config_file,
                  "Read options from a file of key=value lines, as --print-config writes them; options on the "
                  "command line win, inputs in the file add to those on the command line");
  cmd->add_flag("--print-config", args->print_config, "Print the options in effect as a config file and exit");
  cmd->callback([cmd, args, exit_code] {
    if (args->print_config) {
      std::cout << ReplayableConfig(cmd->config_to_str(true, true));
      *exit_code = kExitOk;
      return;
    }
    if (args->output.empty()) {
      fmt::print(stderr, "error: -o/--output is required (the results, ledger and job summary go there)\n");
      *exit_code = 2;
      return;
    }
    if (args->inputs.empty() && args->manifests.empty()) {
      fmt::print(stderr, "error: no inputs (files, directories, @manifest or -)\n");
      *exit_code = 2;
      return;
    }
    *exit_code = RunCommand(*args);
  });
}

void AddBenchRun(CLI::App& bench, int* exit_code) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = bench.add_subcommand(
      "run",
      "Time the whole `vidscan run` pipeline on a set of videos: realtime factor (video seconds per wall "
      "second), video-hours per day on this GPU, per-stage busy time, GPU and NVDEC utilisation. Results go "
      "to a temporary directory (removed) unless -o is given.");
  cmd->add_option("inputs", args->inputs, "Video files, directories, @MANIFEST or -")->required();
  cmd->add_option("-o,--output", args->output, "Keep the results here");
  cmd->add_option("--repeat", args->repeat, "Process every input this many times, as separate videos")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Also print one JSON line with the figures");
  AddCommonOptions(cmd, args.get());
  cmd->callback([args, exit_code] { *exit_code = BenchRunCommand(*args); });
}

}  // namespace vidscan::cli
