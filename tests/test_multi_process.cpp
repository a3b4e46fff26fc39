// Issue 7 on the CPU: `vidscan run --workers decode=N,infer=M` (a supervisor, decode and infer worker
// processes, frames in host shared-memory slot pools) writes per-video outputs byte-identical to the
// single-process mode; a decode or infer worker SIGKILLed mid-run is restarted, its videos re-run, and the
// job still ends with exit status 0 and the same bytes; no shared-memory object of the job is left.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "support/test_support.h"

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// `count` clips of the real video, `seconds` long, 640x360 H.264 in MP4 (CPU inference stays quick);
// cached for the test binary's run.
std::optional<std::string> MakeClips(int count, double seconds, std::string* why) {
  auto video = testing::DataFile(testing::kRealVideo);
  if (!video) {
    *why = std::string("test data ") + testing::kRealVideo + " is absent from " + testing::DataDir();
    return std::nullopt;
  }
  if (!testing::HaveTool("ffmpeg")) {
    *why = "ffmpeg is not installed";
    return std::nullopt;
  }
  static std::map<std::pair<int, double>, std::string> made;
  auto key = std::make_pair(count, seconds);
  if (made.count(key)) return made[key];
  const std::string dir = testing::TempDir("mp_clips");
  for (int i = 0; i < count; ++i) {
    const double start = std::fmod(i * seconds * 1.37, 12.0);
    const std::string cmd = "ffmpeg -v error -y -ss " + std::to_string(start) + " -t " + std::to_string(seconds) +
                            " -i '" + *video + "' -an -vf scale=640:360 -c:v libx264 -preset ultrafast -g 12 '" + dir +
                            "/clip" + (i < 10 ? "0" : "") + std::to_string(i) + ".mp4'";
    if (testing::RunCommand(cmd) != 0) {
      *why = "ffmpeg failed: " + cmd;
      return std::nullopt;
    }
  }
  made[key] = dir;
  return dir;
}

std::string CommonArgs(const std::string& model) {
  return " --device cpu --model '" + model + "' --family yolox --batch 4 --open-videos 2 --cpu-threads 2 "
         "--sample every:2 --progress none";
}

// Per-video output files under <out>/videos (relative path -> bytes).
std::map<std::string, std::string> VideoOutputs(const fs::path& out) {
  std::map<std::string, std::string> files;
  const fs::path videos = out / "videos";
  if (!fs::exists(videos)) return files;
  for (const auto& e : fs::recursive_directory_iterator(videos)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), videos).string()] = testing::ReadFile(e.path());
  }
  return files;
}

std::vector<std::string> PartialFiles(const fs::path& out) {
  std::vector<std::string> partial;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.path().filename().string().find(".partial") != std::string::npos) partial.push_back(e.path().string());
  }
  return partial;
}

// Shared-memory objects a supervisor with this pid made (/dev/shm/vidscan-<uid>-<pid>-...).
std::vector<std::string> ShmObjectsOf(pid_t supervisor) {
  std::vector<std::string> names;
  const std::string prefix = "vidscan-" + std::to_string(getuid()) + "-" + std::to_string(supervisor) + "-";
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) names.push_back(e.path().filename().string());
  }
  return names;
}

// `vidscan run ...` as a child process whose pid the test knows (for its workers and its shm names).
pid_t StartVidscan(const std::string& args, const std::string& log) {
  const pid_t child = fork();
  if (child == 0) {
    const std::string cmd = "exec " + testing::VidscanBinary() + " run " + args + " >'" + log + "' 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return child;
}

int WaitExitCode(pid_t child) {
  int status = 0;
  if (waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The worker of `supervisor` with this role and index, found by its environment (0 when none now).
pid_t FindWorker(pid_t supervisor, const std::string& role, int index) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent != supervisor || state == 'Z') continue;
    std::ifstream environ(e.path() / "environ", std::ios::binary);
    std::string env((std::istreambuf_iterator<char>(environ)), std::istreambuf_iterator<char>());
    std::map<std::string, std::string> vars;
    for (size_t start = 0; start < env.size();) {
      const size_t end = std::min(env.find('\0', start), env.size());
      const std::string item = env.substr(start, end - start);
      if (const size_t eq = item.find('='); eq != std::string::npos) vars[item.substr(0, eq)] = item.substr(eq + 1);
      start = end + 1;
    }
    if (vars["VIDSCAN_IPC_ROLE"] == role && vars["VIDSCAN_IPC_INDEX"] == std::to_string(index)) return std::stoi(name);
  }
  return 0;
}

int CompletedVideos(const fs::path& out) {
  int n = 0;
  if (!fs::exists(out / "videos")) return 0;
  for (const auto& e : fs::recursive_directory_iterator(out / "videos")) n += e.path().filename() == "summary.json";
  return n;
}

// Videos the ledger saw started more than once (re-queued after a worker death).
int RerunVideos(const fs::path& ledger) {
  sqlite3* db = nullptr;
  int count = -1;
  if (sqlite3_open_v2(ledger.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* query = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM videos WHERE attempts > 1", -1, &query, nullptr) == SQLITE_OK &&
        sqlite3_step(query) == SQLITE_ROW) {
      count = sqlite3_column_int(query, 0);
    }
    sqlite3_finalize(query);
  }
  sqlite3_close(db);
  return count;
}

struct Reference {
  std::string clips;
  std::map<std::string, std::string> outputs;  // of the single-process run
  json summary;
};

// The clips, and what the single-process mode makes of them (computed once).
const Reference* SingleProcessReference(const std::string& model, std::string* why) {
  static std::optional<Reference> reference;
  static std::string failure;
  if (reference) return &*reference;
  if (!failure.empty()) {
    *why = failure;
    return nullptr;
  }
  auto clips = MakeClips(6, 0.5, &failure);
  if (!clips) {
    *why = failure;
    return nullptr;
  }
  const fs::path out = testing::TempDir("mp_single");
  std::string log;
  const int rc = testing::RunCommand(testing::VidscanBinary() + " run '" + *clips + "' -o '" + out.string() + "'" +
                                         CommonArgs(model) + " --workers single 2>&1",
                                     &log);
  if (rc != 0) {
    failure = "the single-process run failed: " + log;
    *why = failure;
    return nullptr;
  }
  reference.emplace();
  reference->clips = *clips;
  reference->outputs = VideoOutputs(out);
  reference->summary = json::parse(testing::ReadFile(out / "job_summary.json"));
  return &*reference;
}

TEST(MultiProcessRun, OutputsEqualTheSingleProcessRunAndBadInputsFailAlike) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeClips(3, 0.5, &why);
  if (!clips) GTEST_SKIP() << why;
  const fs::path in = testing::TempDir("mp_inputs");
  for (const auto& e : fs::directory_iterator(*clips)) fs::copy(e.path(), in / e.path().filename());
  { std::ofstream(in / "broken.mp4") << "this is not a video"; }
  const std::string inputs = "'" + in.string() + "' '" + (in / "missing.mp4").string() + "'";

  std::map<std::string, json> summaries;
  std::map<std::string, std::map<std::string, std::string>> outputs;
  for (const std::string workers : {"single", "decode=2,infer=1", "decode=3,infer=2"}) {
    const fs::path out = testing::TempDir("mp_compare");
    const std::string log = out.string() + ".log";
    const pid_t supervisor = StartVidscan(inputs + " -o '" + out.string() + "'" + CommonArgs(model) + " --workers " + workers, log);
    ASSERT_GT(supervisor, 0);
    EXPECT_EQ(WaitExitCode(supervisor), 3) << workers << ": the bad inputs fail, exit status 3\n" << testing::ReadFile(log);
    EXPECT_TRUE(ShmObjectsOf(supervisor).empty()) << workers << ": shared memory left behind";
    EXPECT_TRUE(PartialFiles(out).empty()) << workers;
    summaries[workers] = json::parse(testing::ReadFile(out / "job_summary.json"));
    outputs[workers] = VideoOutputs(out);
    if (workers != "single") {
      EXPECT_NE(testing::ReadFile(log).find("mode: multi-process, workers " + workers), std::string::npos)
          << "the run summary says which mode ran\n" << testing::ReadFile(log);
    }
  }
  const auto& reference = outputs["single"];
  EXPECT_EQ(reference.size(), 9u) << "3 clips x 3 files";
  for (const auto& [workers, files] : outputs) {
    const json& summary = summaries[workers];
    EXPECT_EQ(summary["workers"], workers);
    EXPECT_EQ(summary["videos"]["done"], 3) << workers;
    EXPECT_EQ(summary["videos"]["failed"], 2) << workers;
    EXPECT_EQ(summary["frames_analysed"], summaries["single"]["frames_analysed"]) << workers;
    EXPECT_EQ(summary["frames_decoded"], summaries["single"]["frames_decoded"]) << workers;
    EXPECT_EQ(summary["failures"], summaries["single"]["failures"]) << workers << ": the same videos fail with the same errors";
    // Start-up (model, analyzer; worker processes) is measured on its own, outside the wall time.
    EXPECT_GT(summary["startup_seconds"].get<double>(), 0) << workers;
    EXPECT_GT(summary["wall_seconds"].get<double>(), 0) << workers;
    ASSERT_EQ(files.size(), reference.size()) << workers;
    for (const auto& [name, bytes] : reference) {
      ASSERT_TRUE(files.count(name)) << workers << ": " << name;
      EXPECT_EQ(files.at(name), bytes) << workers << ": " << name << " differs from the single-process run";
    }
  }
}

// SIGKILLs worker 0 of `role` while videos are in flight (after the first video is committed, before the
// last); the job must complete as if nothing happened.
void CheckKilledWorker(const std::string& role, const std::string& workers) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  const Reference* reference = SingleProcessReference(model, &why);
  if (!reference) GTEST_SKIP() << why;
  ASSERT_EQ(reference->outputs.size(), 18u) << "6 clips x 3 files";

  const fs::path out = testing::TempDir("mp_killed");
  const std::string log = out.string() + ".log";
  const pid_t supervisor = StartVidscan("'" + reference->clips + "' -o '" + out.string() + "'" + CommonArgs(model) +
                                            " --workers " + workers,
                                        log);
  ASSERT_GT(supervisor, 0);
  const auto give_up = std::chrono::steady_clock::now() + 5min;
  pid_t victim = 0;
  while (std::chrono::steady_clock::now() < give_up) {
    if (CompletedVideos(out) >= 1 && (victim = FindWorker(supervisor, role, 0)) != 0) break;
    if (waitpid(supervisor, nullptr, WNOHANG) != 0) break;
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_NE(victim, 0) << "no " << role << " worker to kill\n" << testing::ReadFile(log);
  const int done_at_kill = CompletedVideos(out);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  EXPECT_LT(done_at_kill, 6) << "the kill came after the last video; make the clips longer";

  EXPECT_EQ(WaitExitCode(supervisor), 0) << testing::ReadFile(log);
  const std::string text = testing::ReadFile(log);
  EXPECT_NE(text.find("killed by signal 9"), std::string::npos) << text;
  EXPECT_TRUE(ShmObjectsOf(supervisor).empty()) << "shared memory left behind";
  EXPECT_TRUE(PartialFiles(out).empty());
  json summary = json::parse(testing::ReadFile(out / "job_summary.json"));
  EXPECT_EQ(summary["videos"]["done"], 6) << text;
  EXPECT_EQ(summary["videos"]["failed"], 0) << text;
  EXPECT_EQ(summary["worker_deaths"], 1) << text;
  EXPECT_GE(RerunVideos(out / "ledger.sqlite"), 1) << "videos in flight at the kill ran again from their start";
  EXPECT_EQ(summary["frames_analysed"], reference->summary["frames_analysed"]) << "frames of abandoned attempts are not counted";
  const auto outputs = VideoOutputs(out);
  ASSERT_EQ(outputs.size(), reference->outputs.size());
  for (const auto& [name, bytes] : reference->outputs) {
    ASSERT_TRUE(outputs.count(name)) << name;
    EXPECT_EQ(outputs.at(name), bytes) << name << " differs from the undisturbed single-process run";
  }
}

TEST(MultiProcessRun, KilledInferWorkerIsRestartedAndOutputsAreIdentical) { CheckKilledWorker("infer", "decode=2,infer=1"); }

TEST(MultiProcessRun, KilledDecodeWorkerIsRestartedAndOutputsAreIdentical) { CheckKilledWorker("decode", "decode=2,infer=2"); }

// SIGTERM (as SIGINT) to the supervisor: it stops its workers, removes the job's shared memory and exits
// 130; the videos it had in flight stay "running" in the ledger and the same command finishes the job.
TEST(MultiProcessRun, SigtermStopsTheJobCleanlyAndTheSameCommandResumesIt) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  const Reference* reference = SingleProcessReference(model, &why);
  if (!reference) GTEST_SKIP() << why;
  const fs::path out = testing::TempDir("mp_sigterm");
  const std::string args = "'" + reference->clips + "' -o '" + out.string() + "'" + CommonArgs(model) + " --workers decode=2,infer=1";
  const pid_t supervisor = StartVidscan(args, out.string() + ".log");
  ASSERT_GT(supervisor, 0);
  for (auto give_up = std::chrono::steady_clock::now() + 5min;
       CompletedVideos(out) < 1 && std::chrono::steady_clock::now() < give_up && waitpid(supervisor, nullptr, WNOHANG) == 0;) {
    std::this_thread::sleep_for(2ms);
  }
  const pid_t infer = FindWorker(supervisor, "infer", 0), decode = FindWorker(supervisor, "decode", 0);
  ASSERT_NE(infer, 0);
  ASSERT_NE(decode, 0);
  ASSERT_EQ(kill(supervisor, SIGTERM), 0);
  EXPECT_EQ(WaitExitCode(supervisor), 130) << testing::ReadFile(out.string() + ".log");
  EXPECT_TRUE(ShmObjectsOf(supervisor).empty()) << "shared memory left behind";
  for (pid_t worker : {infer, decode}) {
    EXPECT_TRUE(kill(worker, 0) != 0 && errno == ESRCH) << "worker " << worker << " outlived its supervisor";
  }
  const int done_before = CompletedVideos(out);

  const pid_t again = StartVidscan(args, out.string() + ".2.log");
  ASSERT_EQ(WaitExitCode(again), 0) << testing::ReadFile(out.string() + ".2.log");
  json summary = json::parse(testing::ReadFile(out / "job_summary.json"));
  EXPECT_EQ(summary["videos"]["skipped_already_done"], done_before);
  EXPECT_EQ(summary["videos"]["done"], 6 - done_before);
  EXPECT_TRUE(PartialFiles(out).empty());
  EXPECT_EQ(VideoOutputs(out), reference->outputs) << "stopped and resumed, byte-identical to the single-process run";
}

// `vidscan run` of `clips` into a new folder with progress log lines and `options`; its stdout and stderr
// go to `log`.
int RunWithProgressLog(const std::string& model, const std::string& clips, const std::string& options, std::string* log) {
  std::string args = CommonArgs(model);
  args.replace(args.find("--progress none"), std::string("--progress none").size(), "--progress log");
  const fs::path out = testing::TempDir("mp_log");
  return testing::RunCommand(
      testing::VidscanBinary() + " run '" + clips + "' -o '" + out.string() + "'" + args + " " + options + " 2>&1", log);
}

// The supervisor hears of a video's frames only when the video ends; the progress lines in between come from
// the infer workers' shared counters, so a long video does not show 0 frames/s until it is done.
TEST(MultiProcessRun, ProgressLinesCountFramesBeforeTheFirstVideoEnds) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeClips(1, 3.0, &why);  // one video: no video ends before the last progress line but one
  if (!clips) GTEST_SKIP() << why;
  std::string log;
  ASSERT_EQ(RunWithProgressLog(model, *clips, "--progress-interval 0.5 --workers decode=1,infer=1", &log), 0) << log;
  bool counted_early = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("videos 0/1 (0 failed)  ");
    if (at == std::string::npos) continue;
    if (std::atof(line.c_str() + at + std::string("videos 0/1 (0 failed)  ").size()) > 0) counted_early = true;
  }
  EXPECT_TRUE(counted_early) << "no progress line counted frames while the only video was still running:\n" << log;
}

// No more decode workers than videos: `--workers auto` picks decode=8 on a GPU shared through MPS, which for
// a single file would start seven processes that never get work.
TEST(MultiProcessRun, NoMoreDecodeWorkersThanVideos) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeClips(1, 1.0, &why);
  if (!clips) GTEST_SKIP() << why;
  std::string log;
  ASSERT_EQ(RunWithProgressLog(model, *clips, "--workers decode=3,infer=2", &log), 0) << log;
  EXPECT_NE(log.find("in worker processes: decode=1,infer=1 (not decode=3,infer=2: no more decode workers than videos)"),
            std::string::npos) << log;
  EXPECT_NE(log.find("mode: multi-process, workers decode=1,infer=1"), std::string::npos) << log;
}

TEST(MultiProcessRun, WorkersOptionIsCheckedAndDocumented) {
  std::string out;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run --help", &out), 0);
  EXPECT_NE(out.find("--workers"), std::string::npos);
  EXPECT_NE(out.find("decode=N,infer=M"), std::string::npos) << out;
  for (const char* bad : {"decode=1,infer=2", "infer=2", "decode=0", "decode=two", "gpu=1"}) {
    std::string log;
    EXPECT_EQ(testing::RunCommand(testing::VidscanBinary() + " run /nonexistent.mp4 -o " + testing::TempDir("mp_bad") +
                                      " --device cpu --workers " + bad + " 2>&1",
                                  &log),
              2)
        << bad << ": " << log;
    EXPECT_NE(log.find("--workers"), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace vidscan
