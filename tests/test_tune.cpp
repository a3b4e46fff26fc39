// Issue 7: `vidscan tune` (trial runs that stop on time and still report a throughput, a table, a config file
// `vidscan run --config` accepts) and `--workers auto` (ChooseWorkerLayout's rule).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "job/inputs.h"
#include "job/ledger.h"
#include "pipeline/auto_layout.h"
#include "pipeline/run_job.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Two 8-second clips of the real video at 640x360: several seconds of CPU analysis, more than a short trial.
std::optional<std::string> MakeTuneClips(std::string* why) {
  auto video = testing::DataFile(testing::kRealVideo);
  if (!video) {
    *why = std::string("test data ") + testing::kRealVideo + " is absent from " + testing::DataDir();
    return std::nullopt;
  }
  if (!testing::HaveTool("ffmpeg")) {
    *why = "ffmpeg is not installed";
    return std::nullopt;
  }
  static std::optional<std::string> made;
  if (made) return made;
  const std::string dir = testing::TempDir("tune_clips");
  for (int i = 0; i < 2; ++i) {
    const std::string cmd = "ffmpeg -v error -y -ss " + std::to_string(i * 3) + " -t 8 -i '" + *video +
                            "' -an -vf scale=640:360 -c:v libx264 -preset ultrafast -g 12 '" + dir + "/clip" +
                            std::to_string(i) + ".mp4'";
    if (testing::RunCommand(cmd) != 0) {
      *why = "ffmpeg failed: " + cmd;
      return std::nullopt;
    }
  }
  made = dir;
  return made;
}

RunOptions CpuOptions(const std::string& out) {
  RunOptions o;
  o.output_dir = out;
  o.analyzer.batch_size = 4;
  o.analyzer.cpu_threads = 2;
  o.max_open_videos = 2;
  o.progress = ProgressMode::kQuiet;
  return o;
}

std::vector<VideoState> LedgerStates(const std::string& out, const LoadedModel& model, const RunOptions& options) {
  auto ledger = JobLedger::Open(out + "/ledger.sqlite", RunFingerprint(model, options), false);
  EXPECT_TRUE(ledger.ok()) << ledger.status().ToString();
  std::vector<VideoState> states;
  if (!ledger.ok()) return states;
  auto entries = ledger->Entries();
  EXPECT_TRUE(entries.ok());
  if (entries.ok()) {
    for (const auto& e : *entries) states.push_back(e.state);
  }
  return states;
}

TEST(AutoLayout, CpuAnalysisRunsInOneProcess) {
  for (bool mps : {false, true}) {
    const WorkerLayout layout = ChooseWorkerLayout(AnalyzerDevice::kCpu, 16, mps);
    EXPECT_FALSE(layout.multi_process());
    EXPECT_NE(layout.auto_reason.find("CPU"), std::string::npos) << layout.auto_reason;
  }
}

TEST(AutoLayout, GpuWithoutMpsRunsInOneProcess) {
  const WorkerLayout layout = ChooseWorkerLayout(AnalyzerDevice::kGpu, 16, false);
  EXPECT_FALSE(layout.multi_process());
  EXPECT_NE(layout.auto_reason.find("MPS"), std::string::npos) << layout.auto_reason;
}

TEST(AutoLayout, GpuWithMpsGetsHalfTheCoresAsDecodersWithinBounds) {
  struct Case {
    int cores, decode;
  };
  for (const Case c : {Case{1, 2}, Case{2, 2}, Case{6, 3}, Case{16, 8}, Case{128, 8}}) {
    const WorkerLayout layout = ChooseWorkerLayout(AnalyzerDevice::kGpu, c.cores, true);
    EXPECT_EQ(layout.decode, c.decode) << c.cores << " cores";
    EXPECT_EQ(layout.infer, 1);
    EXPECT_NE(layout.auto_reason.find(layout.ToString()), std::string::npos) << layout.auto_reason;
  }
}

TEST(AutoLayout, TuneCandidatesLeaveOutProcessesOnAGpuWithoutMps) {
  auto names = [](const std::vector<WorkerLayout>& layouts) {
    std::string s;
    for (const WorkerLayout& l : layouts) s += l.ToString() + ";";
    return s;
  };
  EXPECT_EQ(names(TuneLayoutCandidates(AnalyzerDevice::kGpu, 16, false)), "single;");
  EXPECT_EQ(names(TuneLayoutCandidates(AnalyzerDevice::kGpu, 16, true)),
            "single;decode=4,infer=1;decode=8,infer=1;decode=8,infer=2;");
  EXPECT_EQ(names(TuneLayoutCandidates(AnalyzerDevice::kCpu, 2, false)), "single;decode=2,infer=1;");
}

TEST(RunTrial, StoppedTrialReportsAPositiveThroughputAndLeavesVideosRunning) {
  VS_REQUIRE_DATA(model_path, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeTuneClips(&why);
  if (!clips) GTEST_SKIP() << why;
  auto model = LoadModelForRun(model_path, "", "yolox");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto inputs = CollectInputs(std::vector<std::string>{*clips}, InputOptions{}, std::cin);
  ASSERT_TRUE(inputs.ok()) << inputs.status().ToString();
  const std::string out = testing::TempDir("tune_trial");
  RunOptions o = CpuOptions(out);
  o.trial_seconds = 1.5;
  o.warmup_seconds = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  auto report = RunJob(*inputs, *model, o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(report.ok()) << "a trial that ran its time is a result, not an error: " << report.status().ToString();
  ASSERT_TRUE(report->stopped) << "16 s of video cannot be analysed on 2 CPU cores in " << took << " s";
  const MeasuredWindow& m = report->measured;
  EXPECT_FALSE(m.whole_run);
  EXPECT_FALSE(m.ended_early);
  EXPECT_GE(m.wall_seconds, 1.5);
  EXPECT_LT(m.wall_seconds, 2.5) << "the window closes when the trial has run its time";
  EXPECT_GE(m.start_seconds, 0.5) << "the window opens after the warm-up";
  EXPECT_GT(m.frames, 0);
  EXPECT_GT(m.video_seconds, 0);
  EXPECT_GT(m.realtime_factor(), 0);
  EXPECT_GT(m.frames_per_second(), 0);
  EXPECT_LT(m.frames, report->frames_analysed) << "the start-up and the wind-down are outside the window";
  EXPECT_LT(took, 30) << "the trial stopped";
  EXPECT_LT(report->videos_done, 2);
  int running = 0;
  for (VideoState state : LedgerStates(out, *model, o)) {
    EXPECT_TRUE(state == VideoState::kRunning || state == VideoState::kDone) << VideoStateName(state);
    running += state == VideoState::kRunning;
  }
  EXPECT_GE(running, 1) << "a video in flight at the stop stays running, for the next run to restart";
  json summary = json::parse(testing::ReadFile(out + "/job_summary.json"));
  EXPECT_TRUE(summary.value("stopped_after_trial", false));
  EXPECT_GT(summary["steady_state"]["realtime_factor"].get<double>(), 0);
  // No half-written result is left under a final name.
  for (const auto& e : fs::recursive_directory_iterator(out)) EXPECT_NE(e.path().filename(), "summary.json") << e.path();
}

TEST(RunTrial, CancelStopsASingleProcessJobAsAFailureWithVideosRunning) {
  VS_REQUIRE_DATA(model_path, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeTuneClips(&why);
  if (!clips) GTEST_SKIP() << why;
  auto model = LoadModelForRun(model_path, "", "yolox");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto inputs = CollectInputs(std::vector<std::string>{*clips}, InputOptions{}, std::cin);
  ASSERT_TRUE(inputs.ok());
  const std::string out = testing::TempDir("tune_cancel");
  RunOptions o = CpuOptions(out);
  std::atomic<bool> cancel{false};
  o.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    cancel.store(true);
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto report = RunJob(*inputs, *model, o);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  canceller.join();
  EXPECT_FALSE(report.ok()) << "a cancelled job is not a finished one";
  EXPECT_LT(took, 15);
  const auto states = LedgerStates(out, *model, o);
  ASSERT_EQ(states.size(), 2u);
  int running = 0;
  for (VideoState state : states) {
    EXPECT_TRUE(state == VideoState::kRunning || state == VideoState::kDone) << VideoStateName(state);
    running += state == VideoState::kRunning;
  }
  EXPECT_GE(running, 1);
  EXPECT_FALSE(fs::exists(out + "/job_summary.json")) << "a cancelled job writes no summary, as in the multi-process mode";
}

TEST(RunTrial, JobShorterThanTheWarmUpIsMeasuredWhole) {
  VS_REQUIRE_DATA(model_path, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto video = testing::DataFile(testing::kRealVideo);
  if (!video || !testing::HaveTool("ffmpeg")) GTEST_SKIP() << "needs " << testing::kRealVideo << " and ffmpeg";
  const std::string dir = testing::TempDir("tune_short");
  ASSERT_EQ(testing::RunCommand("ffmpeg -v error -y -t 0.5 -i '" + *video +
                                "' -an -vf scale=320:180 -c:v libx264 -preset ultrafast '" + dir + "/short.mp4'"),
            0);
  auto model = LoadModelForRun(model_path, "", "yolox");
  ASSERT_TRUE(model.ok());
  auto inputs = CollectInputs(std::vector<std::string>{dir + "/short.mp4"}, InputOptions{}, std::cin);
  ASSERT_TRUE(inputs.ok());
  RunOptions o = CpuOptions(testing::TempDir("tune_short_out"));
  o.trial_seconds = 30;
  o.warmup_seconds = 60;
  auto report = RunJob(*inputs, *model, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->stopped);
  EXPECT_EQ(report->videos_done, 1);
  EXPECT_TRUE(report->measured.whole_run);
  EXPECT_TRUE(report->measured.ended_early);
  EXPECT_EQ(report->measured.frames, report->frames_analysed);
  EXPECT_GT(report->measured.realtime_factor(), 0);
}

// The table's rows: "[*] N sweep workers batch surfaces 12.3x ...".
struct Row {
  bool best = false;
  int number = 0;
  std::string workers;
  int batch = 0, surfaces = 0;
  double realtime = 0;
};

std::vector<Row> FinalTable(const std::string& log) {
  std::vector<Row> rows;
  const size_t start = log.find("results, fastest first");
  if (start == std::string::npos) return rows;
  std::istringstream in(log.substr(start));
  std::string line;
  const std::regex row(R"(^([ *]) +(\d+) +(\w+) +(\S+) +(\d+) +(\d+) +([0-9.]+)x .*)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, row)) continue;
    rows.push_back({m[1] == "*", std::stoi(m[2]), m[4], std::stoi(m[5]), std::stoi(m[6]), std::stod(m[7])});
  }
  return rows;
}

TEST(TuneCommand, PrintsOneRowPerTrialAndWritesAConfigRunAccepts) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeTuneClips(&why);
  if (!clips) GTEST_SKIP() << why;
  const std::string dir = testing::TempDir("tune_cli");
  const std::string conf = dir + "/tuned.conf";
  const std::string cmd = testing::VidscanBinary() + " tune '" + *clips + "' --device cpu --model '" + model +
                          "' --family yolox --cpu-threads 2 --open-videos 2 --try-workers single,decode=1:infer=1 "
                          "--try-batch 2,4 --try-surfaces 8 --trial-seconds 1.5 --warmup-seconds 0.5 --work-dir '" +
                          dir + "' -o '" + conf + "' 2>&1";
  std::string log;
  ASSERT_EQ(testing::RunCommand(cmd, &log), 0) << log;
  EXPECT_NE(log.find("3 trials"), std::string::npos) << "announced before starting: 2 layouts, then 1 other batch\n" << log;
  const std::vector<Row> rows = FinalTable(log);
  ASSERT_EQ(rows.size(), 3u) << log;
  int best = 0;
  for (const Row& r : rows) {
    EXPECT_GT(r.realtime, 0) << "every trial stopped and still measured\n" << log;
    EXPECT_EQ(r.surfaces, 8);
    best += r.best;
  }
  EXPECT_EQ(best, 1) << log;
  EXPECT_TRUE(rows[0].best) << "fastest first\n" << log;
  EXPECT_GE(rows[0].realtime, rows[1].realtime);
  EXPECT_NE(log.find("decode=1,infer=1"), std::string::npos) << "the multi-process layout was tried\n" << log;
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find("vidscan-tune-"), std::string::npos) << "trial outputs removed: " << e.path();
  }

  // The config file: comments, then only the tuned keys; run reads it back.
  const std::string text = testing::ReadFile(conf);
  EXPECT_NE(text.find("# vidscan tune"), std::string::npos) << text;
  EXPECT_NE(text.find(*clips), std::string::npos) << "the inputs are named\n" << text;
  std::string config;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run --config '" + conf + "' --print-config", &config), 0)
      << config;
  EXPECT_NE(config.find("workers=\"" + rows[0].workers + "\""), std::string::npos) << config;
  EXPECT_NE(config.find("batch=" + std::to_string(rows[0].batch) + "\n"), std::string::npos) << config;
  EXPECT_NE(config.find("surfaces=8\n"), std::string::npos) << config;

  // An existing file is not overwritten without --force, before any trial runs.
  std::string again;
  EXPECT_EQ(testing::RunCommand(testing::VidscanBinary() + " tune '" + *clips + "' -o '" + conf + "' --device cpu 2>&1", &again), 2);
  EXPECT_NE(again.find("--force"), std::string::npos) << again;
  EXPECT_EQ(testing::ReadFile(conf), text);
}

TEST(TuneCommand, HelpTeachesWhatIsTriedAndHowToUseTheResult) {
  std::string help;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " tune --help", &help), 0);
  for (const char* what : {"--try-workers", "--try-batch", "--try-surfaces", "--trial-seconds", "--warmup-seconds",
                           "three sweeps", "How long", "vidscan run --config"}) {
    EXPECT_NE(help.find(what), std::string::npos) << what << "\n" << help;
  }
}

TEST(WorkersAuto, ParsesRunsAndSaysWhatItChose) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  auto video = testing::DataFile(testing::kRealVideo);
  if (!video || !testing::HaveTool("ffmpeg")) GTEST_SKIP() << "needs " << testing::kRealVideo << " and ffmpeg";
  const std::string dir = testing::TempDir("workers_auto");
  ASSERT_EQ(testing::RunCommand("ffmpeg -v error -y -t 0.5 -i '" + *video +
                                "' -an -vf scale=320:180 -c:v libx264 -preset ultrafast '" + dir + "/a.mp4'"),
            0);
  std::string log;
  const std::string out = dir + "/out";
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run '" + dir + "/a.mp4' -o '" + out + "' --device cpu --model '" +
                                    model + "' --family yolox --cpu-threads 2 --workers auto 2>&1",
                                &log),
            0)
      << log;
  EXPECT_NE(log.find("workers auto: single process, because the analysis runs on the CPU"), std::string::npos) << log;
  json summary = json::parse(testing::ReadFile(out + "/job_summary.json"));
  EXPECT_EQ(summary["workers"], "single");
  EXPECT_NE(summary.value("workers_auto", std::string()).find("CPU"), std::string::npos) << summary.dump(2);
  EXPECT_EQ(summary["videos"]["done"], 1);
}

}  // namespace
}  // namespace vidscan
