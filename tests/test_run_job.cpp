// Issue 6: `vidscan run` end to end on the CPU — several real clips plus bad inputs, every output file
// checked; resume skips what is done; a job SIGKILLed mid-way and rerun gives byte-identical outputs to
// an uninterrupted run and never reprocesses a finished video.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/test_support.h"

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;



// `count` clips of the real video, `seconds` long each, from successive start times, scaled to 640x360
// (CPU inference stays quick), H.264 in MP4. Cached per (count, seconds) for the test binary's run.
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
  const std::string dir = testing::TempDir("run_clips");
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

std::string RunArgs(const std::string& model) {
  return " --device cpu --model '" + model + "' --family yolox --batch 4 --open-videos 2 --cpu-threads 2 --progress none";
}

TEST(RunJob, CpuJobOverClipsAndBadInputsWritesEveryOutput) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeClips(3, 1.0, &why);
  if (!clips) GTEST_SKIP() << why;
  const fs::path in = testing::TempDir("run_inputs");
  for (const auto& e : fs::directory_iterator(*clips)) fs::copy(e.path(), in / e.path().filename());
  { std::ofstream(in / "broken.mp4") << "this is not a video"; }
  fs::create_directories(in / "sub");
  fs::copy(fs::path(*clips) / "clip00.mp4", in / "sub" / "again.mkv.mp4");
  const fs::path out = testing::TempDir("run_out");
  const std::string missing = (in / "missing.mp4").string();
  std::string log;
  const std::string cmd = testing::VidscanBinary() + " run '" + in.string() + "' '" + missing + "' -o '" + out.string() +
                          "'" + RunArgs(model) + " --sample every:2 2>&1";
  const int rc = testing::RunCommand(cmd, &log);
  EXPECT_EQ(rc, 3) << "some inputs failed: exit status 3\n" << log;
  EXPECT_NE(log.find("broken.mp4"), std::string::npos) << log;
  EXPECT_NE(log.find("missing.mp4"), std::string::npos) << log;

  // Every good video: a folder with the three files, committed (no .partial left).
  int videos = 0;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    ASSERT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
    if (e.path().filename() != "summary.json") continue;
    ++videos;
    const fs::path dir = e.path().parent_path();
    json summary = json::parse(testing::ReadFile(e.path()));
    const auto lines = testing::ReadLines(dir / "detections.jsonl");
    EXPECT_EQ(static_cast<int64_t>(lines.size()), summary["frames_analysed"].get<int64_t>()) << dir;
    EXPECT_GT(summary["frames_decoded"].get<int64_t>(), summary["frames_analysed"].get<int64_t>()) << "every:2";
    int64_t previous = -1, people = 0;
    for (const std::string& line : lines) {
      json frame = json::parse(line);
      const int64_t index = frame["frame"].get<int64_t>();
      EXPECT_EQ(index % 2, 0) << "every:2 analyses even frames";
      EXPECT_GT(index, previous);
      previous = index;
      for (const auto& d : frame["detections"]) {
        EXPECT_EQ(d["box"].size(), 4u);
        if (d["class"] == "person") ++people;
      }
    }
    EXPECT_GT(people, 10 * static_cast<int64_t>(lines.size())) << "the hall is full of people: " << dir;
    const auto tracks = testing::ReadLines(dir / "tracks.txt");
    EXPECT_FALSE(tracks.empty()) << dir;
    for (const std::string& t : tracks) EXPECT_EQ(std::count(t.begin(), t.end(), ','), 9) << t;
    EXPECT_GT(summary["tracks"]["count"].get<int64_t>(), 5) << dir;
  }
  EXPECT_EQ(videos, 4) << "3 clips + the copy in sub/\n" << log;
  json job = json::parse(testing::ReadFile(out / "job_summary.json"));
  EXPECT_EQ(job["videos"]["done"], 4);
  EXPECT_EQ(job["videos"]["failed"], 2);
  EXPECT_TRUE(fs::exists(out / "ledger.sqlite"));

  // The same command again: nothing is reprocessed, outputs unchanged.
  std::map<std::string, std::string> before;
  for (const auto& e : fs::recursive_directory_iterator(out))
    if (e.is_regular_file() && e.path().parent_path() != out) before[e.path().string()] = testing::ReadFile(e.path());
  std::string log2;
  const int rc2 = testing::RunCommand(cmd, &log2);
  EXPECT_EQ(rc2, 3) << "the bad inputs fail again\n" << log2;
  json job2 = json::parse(testing::ReadFile(out / "job_summary.json"));
  EXPECT_EQ(job2["videos"]["skipped_already_done"], 4) << log2;
  EXPECT_EQ(job2["frames_analysed"], 0) << log2;
  for (const auto& [path, text] : before) EXPECT_EQ(testing::ReadFile(path), text) << path;

  // Another configuration into the same directory is refused without --force.
  std::string log3;
  const std::string other = testing::VidscanBinary() + " run '" + in.string() + "' -o '" + out.string() + "'" +
                            RunArgs(model) + " --sample every:3 2>&1";
  EXPECT_EQ(testing::RunCommand(other, &log3), 4) << log3;
  EXPECT_NE(log3.find("--force"), std::string::npos) << log3;
}

// Acceptance 2: SIGKILL mid-job, rerun; outputs byte-identical to an uninterrupted run; finished videos
// are never processed again.
TEST(RunJob, KilledJobResumesToIdenticalOutputs) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clips = MakeClips(12, 0.8, &why);
  if (!clips) GTEST_SKIP() << why;
  const std::string args = RunArgs(model) + " --sample every:2";
  const fs::path clean = testing::TempDir("run_clean");
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run '" + *clips + "' -o '" + clean.string() + "'" + args +
                                " >/dev/null 2>&1"),
            0);

  const fs::path killed = testing::TempDir("run_killed");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string cmd = testing::VidscanBinary() + " run '" + *clips + "' -o '" + killed.string() + "'" + args;
    execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill once at least 3 of the 12 videos are complete.
  auto count_done = [&] {
    int n = 0;
    if (fs::exists(killed))
      for (const auto& e : fs::recursive_directory_iterator(killed)) n += e.path().filename() == "summary.json";
    return n;
  };
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (count_done() < 3 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the job ended before it could be killed; make the clips longer";
  const int done_at_kill = count_done();
  ASSERT_LT(done_at_kill, 12) << "the kill came too late to test anything";
  std::map<std::string, fs::file_time_type> finished;
  for (const auto& e : fs::recursive_directory_iterator(killed))
    if (e.path().filename() == "summary.json") finished[e.path().parent_path().string()] = fs::last_write_time(e.path());

  std::string log;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run '" + *clips + "' -o '" + killed.string() + "'" + args +
                                    " 2>&1",
                                &log),
            0)
      << log;
  json job = json::parse(testing::ReadFile(killed / "job_summary.json"));
  EXPECT_EQ(job["videos"]["skipped_already_done"].get<int>(), done_at_kill) << log;
  EXPECT_EQ(job["videos"]["done"].get<int>(), 12 - done_at_kill) << log;
  for (const auto& [dir, time] : finished) {
    EXPECT_EQ(fs::last_write_time(fs::path(dir) / "summary.json"), time) << dir << " was processed twice";
  }
  // Byte-identical per-video outputs; no temporary files left.
  int compared = 0;
  for (const auto& e : fs::recursive_directory_iterator(clean)) {
    if (!e.is_regular_file() || e.path().parent_path() == clean) continue;
    const fs::path twin = killed / fs::relative(e.path(), clean);
    ASSERT_TRUE(fs::exists(twin)) << twin;
    EXPECT_EQ(testing::ReadFile(e.path()), testing::ReadFile(twin)) << twin << " differs from the uninterrupted run";
    ++compared;
  }
  EXPECT_EQ(compared, 36) << "12 videos x 3 files";
  for (const auto& e : fs::recursive_directory_iterator(killed)) {
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
  }
}

TEST(RunJob, HelpAndPrintConfig) {
  std::string out;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run --help", &out), 0);
  for (const char* option : {"--sample", "--batch", "--max-wait-ms", "--open-videos", "--batches-in-flight", "--force", "--config", "@MANIFEST"})
    EXPECT_NE(out.find(option), std::string::npos) << option;
  // Out of range: refused before anything runs, naming the option.
  std::string refused;
  EXPECT_NE(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --batches-in-flight 5 clip.mp4 2>&1", &refused), 0);
  EXPECT_NE(refused.find("--batches-in-flight"), std::string::npos) << refused;
  std::string config;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --batch 7 --sample every:5 --batches-in-flight 3 --print-config", &config), 0);
  EXPECT_NE(config.find("batch=7"), std::string::npos) << config;
  EXPECT_NE(config.find("batches-in-flight=3"), std::string::npos) << config;
  EXPECT_NE(config.find("every:5"), std::string::npos) << config;
  // What --print-config writes, --config reads back.
  const std::string dir = testing::TempDir("run_config");
  { std::ofstream(dir + "/job.toml") << config; }
  std::string again;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run --config " + dir + "/job.toml --print-config", &again), 0);
  EXPECT_EQ(again, config);
}

}  // namespace
}  // namespace vidscan
