// `--mps auto|on|off` (src/ipc/mps.h) against a fake `nvidia-cuda-mps-control` written by the test and put
// first on PATH. The fake keeps the real one's interface: `-d` starts a background daemon that writes its
// pid file (nvidia-cuda-mps-control.pid) and a `control` file into $CUDA_MPS_PIPE_DIRECTORY; without -d it
// reads commands on stdin (quit, get_server_list, get_client_list PID) and, with no daemon at its pipe
// directory, says "Cannot find MPS control daemon process" and fails. Its "clients" are the processes whose
// environment names that pipe directory and that are vidscan workers (VIDSCAN_IPC_ROLE) or test clients
// (FAKE_MPS_CLIENT=1): what a real daemon would see if those processes initialised CUDA.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "ipc/mps.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using ipc::MpsMode;
using ipc::MpsSession;

constexpr const char* kFakeControl = R"SH(#!/bin/sh
dir="${CUDA_MPS_PIPE_DIRECTORY:-/tmp/nvidia-mps}"
pidfile="$dir/nvidia-cuda-mps-control.pid"
[ -n "$FAKE_MPS_CALLS" ] && echo "${1:-command} $dir" >> "$FAKE_MPS_CALLS"
alive() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
clients() {
  for f in $(grep -lzxF "CUDA_MPS_PIPE_DIRECTORY=$dir" /proc/[0-9]*/environ 2>/dev/null); do
    grep -qz -e '^VIDSCAN_IPC_ROLE=' -e '^FAKE_MPS_CLIENT=1$' "$f" 2>/dev/null || continue
    p=${f#/proc/}; echo "${p%/environ}"
  done
}
if [ "$1" = "-d" ]; then
  if [ -n "$FAKE_MPS_FAIL_START" ]; then echo "fake daemon: $FAKE_MPS_FAIL_START"; exit 1; fi
  if alive; then echo "An instance of this daemon is already running"; exit 1; fi
  [ -d "$dir" ] || { echo "fake daemon: no pipe directory $dir"; exit 1; }
  # The daemon: until told to quit (or its directory is gone: a failed test leaves no process behind).
  sh -c 'while [ -d "$1" ] && [ ! -e "$1/quit" ]; do sleep 0.05; done; rm -f "$1/quit" "$1/nvidia-cuda-mps-control.pid"' \
    fake-mps-daemon "$dir" </dev/null >/dev/null 2>&1 &
  echo $! > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
  : > "$dir/control"
  [ -n "$CUDA_MPS_LOG_DIRECTORY" ] && echo "fake daemon started" >> "$CUDA_MPS_LOG_DIRECTORY/control.log"
  exit 0
fi
if ! alive; then echo "Cannot find MPS control daemon process"; exit 1; fi
while read -r cmd arg; do
  case "$cmd" in
    quit) : > "$dir/quit" ;;
    get_server_list) [ -n "$(clients)" ] && cat "$pidfile" ;;
    get_client_list) [ "$arg" = "$(cat "$pidfile")" ] && clients ;;
    *) echo "fake: unknown command $cmd"; exit 1 ;;
  esac
done
exit 0
)SH";

bool Alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

bool WaitGone(pid_t pid, std::chrono::milliseconds timeout = 5s) {
  for (auto end = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < end;) {
    if (!Alive(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return !Alive(pid);
}

pid_t ReadPid(const fs::path& pid_file) {
  std::ifstream in(pid_file);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

std::vector<std::string> SessionDirs(const fs::path& root) {
  std::vector<std::string> dirs;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.path().filename().string().rfind("vidscan-mps-", 0) == 0) dirs.push_back(e.path().string());
  }
  return dirs;
}

// Saves and restores an environment variable.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class Mps : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = testing::TempDir("mps_bin");
    root_ = testing::TempDir("mps_root");
    const fs::path fake = fs::path(bin_) / ipc::kMpsControlBinary;
    std::ofstream(fake) << kFakeControl;
    fs::permissions(fake, fs::perms::owner_all);
    path_.emplace("PATH", bin_ + ":" + std::getenv("PATH"));
    options_.temp_root = root_;
    options_.start_timeout = 5s;
    options_.stop_timeout = 5s;
  }
  void TearDown() override {
    // A daemon a failing test left behind.
    for (const auto& dir : SessionDirs(root_)) StopFakeDaemon(dir + "/pipe");
    for (pid_t pid : clients_) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    path_.reset();
  }

  // A fake daemon started by hand at `pipe_dir` (as a system-wide one would be); its pid.
  pid_t StartFakeDaemon(const std::string& pipe_dir) {
    fs::create_directories(pipe_dir);
    EXPECT_EQ(testing::RunCommand("CUDA_MPS_PIPE_DIRECTORY='" + pipe_dir + "' " + bin_ + "/nvidia-cuda-mps-control -d"), 0);
    return ReadPid(fs::path(pipe_dir) / "nvidia-cuda-mps-control.pid");
  }
  void StopFakeDaemon(const std::string& pipe_dir) {
    const pid_t pid = ReadPid(fs::path(pipe_dir) / "nvidia-cuda-mps-control.pid");
    if (pid <= 0 || !Alive(pid)) return;
    testing::RunCommand("echo quit | CUDA_MPS_PIPE_DIRECTORY='" + pipe_dir + "' " + bin_ + "/nvidia-cuda-mps-control");
    WaitGone(pid);
  }
  // A process the fake daemon counts as its client.
  pid_t StartClient(const std::string& pipe_dir) {
    const pid_t child = fork();
    if (child == 0) {
      setenv("CUDA_MPS_PIPE_DIRECTORY", pipe_dir.c_str(), 1);
      setenv("FAKE_MPS_CLIENT", "1", 1);
      execlp("sleep", "sleep", "60", static_cast<char*>(nullptr));
      _exit(127);
    }
    clients_.push_back(child);
    return child;
  }

  std::string bin_, root_;
  std::optional<ScopedEnv> path_;
  ipc::MpsOptions options_;
  std::vector<pid_t> clients_;
};

TEST(MpsMode, ParsesAndPrintsTheThreeModes) {
  for (MpsMode mode : {MpsMode::kAuto, MpsMode::kOn, MpsMode::kOff}) {
    auto parsed = ipc::ParseMpsMode(ipc::MpsModeName(mode));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, mode);
  }
  EXPECT_STREQ(ipc::MpsModeName(MpsMode::kOn), "on");
  auto bad = ipc::ParseMpsMode("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("auto, on or off"), std::string::npos) << bad.status().message();
}

TEST_F(Mps, OnStartsAPrivateDaemonCountsItsClientsAndStopsIt) {
  pid_t daemon = 0;
  std::string session_dir, pipe_dir;
  {
    auto session = MpsSession::Start(MpsMode::kOn, options_);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    const ipc::MpsReport& report = session->report();
    EXPECT_TRUE(report.used);
    EXPECT_TRUE(report.started_by_us);
    session_dir = session->session_dir();
    pipe_dir = report.pipe_dir;
    // Under the temp root, named with our pid, private.
    EXPECT_EQ(fs::path(session_dir).parent_path(), fs::path(root_));
    EXPECT_EQ(fs::path(session_dir).filename().string().rfind("vidscan-mps-" + std::to_string(getpid()) + "-", 0), 0u)
        << session_dir;
    EXPECT_EQ(pipe_dir, session_dir + "/pipe");
    for (const std::string& dir : {session_dir, pipe_dir, session_dir + "/log"}) {
      struct stat st {};
      ASSERT_EQ(stat(dir.c_str(), &st), 0) << dir;
      EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
    }
    daemon = ReadPid(fs::path(pipe_dir) / "nvidia-cuda-mps-control.pid");
    ASSERT_GT(daemon, 0);
    EXPECT_TRUE(Alive(daemon));
    EXPECT_EQ(testing::ReadFile(session_dir + "/log/control.log"), "fake daemon started\n")
        << "the daemon gets CUDA_MPS_LOG_DIRECTORY";

    const auto env = session->WorkerEnvironment();
    const std::vector<std::pair<std::string, std::string>> expected{{"CUDA_MPS_PIPE_DIRECTORY", pipe_dir},
                                                                    {"CUDA_MPS_LOG_DIRECTORY", session_dir + "/log"}};
    EXPECT_EQ(env, expected);

    // Two "workers": one attached to the daemon, one not (it has no pipe directory of ours).
    const pid_t attached = StartClient(pipe_dir);
    const pid_t detached = StartClient(root_ + "/elsewhere");
    std::this_thread::sleep_for(50ms);  // exec'ed, so its environment is the new one
    auto clients = session->ClientPids();
    ASSERT_TRUE(clients.ok()) << clients.status().ToString();
    EXPECT_EQ(*clients, std::vector<pid_t>{attached});
    const std::vector<pid_t> workers{attached, detached};
    ASSERT_TRUE(session->ObserveClients(workers).ok());
    EXPECT_EQ(session->report().clients_seen, 1);
    EXPECT_EQ(session->report().workers_watched, 2);
    EXPECT_EQ(session->report().daemon_clients, 1);
    // Seen once is seen: the count is a union over queries.
    kill(attached, SIGKILL);
    waitpid(attached, nullptr, 0);
    clients_.erase(clients_.begin());
    ASSERT_TRUE(session->ObserveClients(workers).ok());
    EXPECT_EQ(session->report().clients_seen, 1);
    EXPECT_EQ(session->report().daemon_clients, 0);
    EXPECT_NE(session->report().Describe().find("1 of 2 worker processes seen as MPS clients"), std::string::npos)
        << session->report().Describe();

    ASSERT_TRUE(session->Stop().ok());
    EXPECT_TRUE(WaitGone(daemon, 100ms)) << "Stop returns once the daemon is gone";
    EXPECT_FALSE(fs::exists(session_dir));
  }
  EXPECT_TRUE(SessionDirs(root_).empty());
}

TEST_F(Mps, TheDestructorStopsTheDaemonAndAMoveHandsItOver) {
  pid_t daemon = 0;
  std::string session_dir;
  {
    std::optional<MpsSession> outer;
    {
      auto session = MpsSession::Start(MpsMode::kOn, options_);
      ASSERT_TRUE(session.ok()) << session.status().ToString();
      session_dir = session->session_dir();
      daemon = ReadPid(fs::path(session->report().pipe_dir) / "nvidia-cuda-mps-control.pid");
      outer.emplace(std::move(*session));
    }  // the moved-from session goes: the daemon must stay
    EXPECT_TRUE(Alive(daemon));
    EXPECT_TRUE(fs::exists(session_dir));
    EXPECT_TRUE(outer->report().started_by_us);
  }
  EXPECT_TRUE(WaitGone(daemon, 100ms));
  EXPECT_FALSE(fs::exists(session_dir));
}

TEST_F(Mps, AutoUsesARunningDaemonAndLeavesItRunning) {
  const std::string pipe_dir = root_ + "/system-mps";
  const pid_t daemon = StartFakeDaemon(pipe_dir);
  ASSERT_GT(daemon, 0);
  ScopedEnv env("CUDA_MPS_PIPE_DIRECTORY", pipe_dir);
  {
    auto session = MpsSession::Start(MpsMode::kAuto, options_);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    EXPECT_TRUE(session->report().used);
    EXPECT_FALSE(session->report().started_by_us);
    EXPECT_EQ(session->report().pipe_dir, pipe_dir);
    const std::vector<std::pair<std::string, std::string>> expected{{"CUDA_MPS_PIPE_DIRECTORY", pipe_dir}};
    EXPECT_EQ(session->WorkerEnvironment(), expected);
    const pid_t client = StartClient(pipe_dir);
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(session->ObserveClients(std::vector<pid_t>{client}).ok());
    EXPECT_EQ(session->report().clients_seen, 1);
    EXPECT_NE(session->report().Describe().find("running daemon"), std::string::npos) << session->report().Describe();
  }
  EXPECT_TRUE(Alive(daemon)) << "auto must not stop a daemon it did not start";
  EXPECT_TRUE(fs::exists(pipe_dir + "/nvidia-cuda-mps-control.pid"));
  EXPECT_TRUE(SessionDirs(root_).empty());
  StopFakeDaemon(pipe_dir);
  EXPECT_FALSE(Alive(daemon));
}

TEST_F(Mps, AutoWithoutADaemonRunsWithoutMps) {
  // A pipe directory with a stale socket file but no daemon: what a stopped daemon leaves.
  const std::string pipe_dir = root_ + "/stopped-mps";
  fs::create_directories(pipe_dir);
  std::ofstream(pipe_dir + "/control").put('\n');
  ScopedEnv env("CUDA_MPS_PIPE_DIRECTORY", pipe_dir);
  auto session = MpsSession::Start(MpsMode::kAuto, options_);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_FALSE(session->report().used);
  EXPECT_TRUE(session->WorkerEnvironment().empty());
  EXPECT_NE(session->report().Describe().find("MPS: not used (auto): none running: no control daemon answers at"), std::string::npos) << session->report().Describe();
  EXPECT_NE(session->report().note.find(pipe_dir), std::string::npos) << session->report().note;
  ASSERT_TRUE(session->ObserveClients(std::vector<pid_t>{1234}).ok());
  EXPECT_EQ(session->report().daemon_clients, -1) << "no daemon, no query";

  // Nor without the binary.
  ScopedEnv no_binary("PATH", root_);
  auto without = MpsSession::Start(MpsMode::kAuto, options_);
  ASSERT_TRUE(without.ok()) << without.status().ToString();
  EXPECT_FALSE(without->report().used);
  EXPECT_NE(without->report().note.find("not on PATH"), std::string::npos) << without->report().note;
}

TEST_F(Mps, OffPointsTheWorkersAtAnEmptyDirectoryEvenWithADaemonRunning) {
  const std::string system_dir = root_ + "/system-mps";
  const pid_t daemon = StartFakeDaemon(system_dir);
  ScopedEnv env("CUDA_MPS_PIPE_DIRECTORY", system_dir);
  std::string pipe_dir;
  {
    auto session = MpsSession::Start(MpsMode::kOff, options_);
    ASSERT_TRUE(session.ok()) << session.status().ToString();
    EXPECT_FALSE(session->report().used);
    const auto worker_env = session->WorkerEnvironment();
    ASSERT_EQ(worker_env.size(), 1u);
    EXPECT_EQ(worker_env[0].first, "CUDA_MPS_PIPE_DIRECTORY");
    pipe_dir = worker_env[0].second;
    EXPECT_NE(pipe_dir, system_dir);
    EXPECT_TRUE(fs::is_directory(pipe_dir));
    EXPECT_TRUE(fs::is_empty(pipe_dir));
    // A worker there finds no daemon.
    EXPECT_NE(testing::RunCommand("echo get_server_list | CUDA_MPS_PIPE_DIRECTORY='" + pipe_dir + "' " + bin_ +
                                  "/nvidia-cuda-mps-control >/dev/null"),
              0);
    EXPECT_NE(session->report().Describe().find("not used (off)"), std::string::npos) << session->report().Describe();
  }
  EXPECT_FALSE(fs::exists(pipe_dir));
  EXPECT_TRUE(SessionDirs(root_).empty());
  EXPECT_TRUE(Alive(daemon)) << "off leaves other daemons alone";
  StopFakeDaemon(system_dir);
}

TEST_F(Mps, OnWithoutTheBinaryIsAClearError) {
  ScopedEnv no_binary("PATH", root_ + "/nowhere");
  auto session = MpsSession::Start(MpsMode::kOn, options_);
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), StatusCode::kUnavailable);
  const std::string message = session.status().message();
  EXPECT_NE(message.find("nvidia-cuda-mps-control is not on PATH"), std::string::npos) << message;
  EXPECT_NE(message.find("--mps off"), std::string::npos) << message;
  EXPECT_TRUE(SessionDirs(root_).empty());
}

TEST_F(Mps, OnWhenTheDaemonFailsToStartSaysWhyAndLeavesNothing) {
  ScopedEnv fail("FAKE_MPS_FAIL_START", "the GPU is in Prohibited compute mode");
  auto session = MpsSession::Start(MpsMode::kOn, options_);
  ASSERT_FALSE(session.ok());
  const std::string message = session.status().message();
  EXPECT_NE(message.find("-d"), std::string::npos) << message;
  EXPECT_NE(message.find("the GPU is in Prohibited compute mode"), std::string::npos) << message;
  EXPECT_NE(message.find("--mps off"), std::string::npos) << message;
  EXPECT_TRUE(SessionDirs(root_).empty());
}

TEST_F(Mps, OnRemovesWhatAKilledSupervisorLeft) {
  // A supervisor that is gone: a child that exited and was reaped.
  const pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  const std::string stale = root_ + "/vidscan-mps-" + std::to_string(dead) + "-abc123";
  const pid_t stale_daemon = StartFakeDaemon(stale + "/pipe");
  fs::create_directories(stale + "/log");
  ASSERT_TRUE(Alive(stale_daemon));
  // A directory of an "off" session of a dead supervisor: no daemon.
  const std::string stale_off = root_ + "/vidscan-mps-" + std::to_string(dead) + "-def456";
  fs::create_directories(stale_off + "/pipe");
  // A live supervisor's directory (our parent's pid stands in) and a name that is not ours: kept.
  const std::string live = root_ + "/vidscan-mps-" + std::to_string(getppid()) + "-xyz789";
  fs::create_directories(live + "/pipe");
  const std::string other = root_ + "/vidscan-mps-notapid";
  fs::create_directories(other);

  auto session = MpsSession::Start(MpsMode::kOn, options_);
  ASSERT_TRUE(session.ok()) << session.status().ToString();
  EXPECT_TRUE(WaitGone(stale_daemon, 100ms)) << "the stale daemon was told to quit";
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_FALSE(fs::exists(stale_off));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other));
  ASSERT_TRUE(session->Stop().ok());
  EXPECT_EQ(SessionDirs(root_).size(), 2u);  // live and other
}

// ---- `vidscan run` ----

std::optional<std::string> MakeClip(std::string* why) {
  auto video = testing::DataFile(testing::kRealVideo);
  if (!video) {
    *why = std::string("test data ") + testing::kRealVideo + " is absent from " + testing::DataDir();
    return std::nullopt;
  }
  if (!testing::HaveTool("ffmpeg")) {
    *why = "ffmpeg is not installed";
    return std::nullopt;
  }
  static std::string clip;
  if (!clip.empty()) return clip;
  const std::string dir = testing::TempDir("mps_clip");
  const std::string cmd = "ffmpeg -v error -y -t 0.5 -i '" + *video +
                          "' -an -vf scale=640:360 -c:v libx264 -preset ultrafast -g 12 '" + dir + "/clip.mp4'";
  if (testing::RunCommand(cmd) != 0) {
    *why = "ffmpeg failed: " + cmd;
    return std::nullopt;
  }
  clip = dir + "/clip.mp4";
  return clip;
}

TEST_F(Mps, RunWithMpsOnRecordsTheSessionAndStopsTheDaemon) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clip = MakeClip(&why);
  if (!clip) GTEST_SKIP() << why;
  const std::string calls = root_ + "/calls.txt";
  const fs::path out = testing::TempDir("mps_run");
  const std::string env = "TMPDIR='" + root_ + "' FAKE_MPS_CALLS='" + calls + "' ";
  const std::string common = " --device cpu --model '" + model + "' --family yolox --batch 4 --cpu-threads 2 "
                             "--sample every:2 --progress none";
  std::string log;
  ASSERT_EQ(testing::RunCommand(env + testing::VidscanBinary() + " run '" + *clip + "' -o '" + out.string() + "'" +
                                    common + " --workers decode=1,infer=1 --mps on 2>&1",
                                &log),
            0)
      << log;
  const json summary = json::parse(testing::ReadFile(out / "job_summary.json"));
  ASSERT_TRUE(summary.contains("mps")) << summary.dump(2);
  const json& mps = summary["mps"];
  EXPECT_EQ(mps["mode"], "on");
  EXPECT_EQ(mps["used"], true);
  EXPECT_EQ(mps["daemon_started_by_job"], true);
  EXPECT_EQ(mps["worker_processes"], 2);
  EXPECT_EQ(mps["worker_clients_seen"], 2) << "both workers had the private pipe directory: " << mps.dump();
  const std::string pipe_dir = mps["pipe_dir"];
  EXPECT_EQ(pipe_dir.rfind(root_ + "/vidscan-mps-", 0), 0u) << pipe_dir;
  EXPECT_FALSE(fs::exists(pipe_dir)) << "removed at the end";
  EXPECT_TRUE(SessionDirs(root_).empty());
  EXPECT_NE(log.find("MPS: on (private daemon started for the job"), std::string::npos) << log;
  // Started once, queried, told to quit.
  const std::string made_calls = testing::ReadFile(calls);
  EXPECT_NE(made_calls.find("-d " + pipe_dir), std::string::npos) << made_calls;
  EXPECT_NE(made_calls.find("command " + pipe_dir), std::string::npos) << made_calls;
  // No fake daemon of that directory is left (it would still have the directory in its environment).
  std::string left;
  testing::RunCommand("grep -lzxF 'CUDA_MPS_PIPE_DIRECTORY=" + pipe_dir + "' /proc/[0-9]*/environ 2>/dev/null", &left);
  EXPECT_EQ(left, "");

  // The single-process mode starts nothing and says so.
  const fs::path single = testing::TempDir("mps_run_single");
  ASSERT_EQ(testing::RunCommand(env + testing::VidscanBinary() + " run '" + *clip + "' -o '" + single.string() + "'" +
                                    common + " --workers single --mps on 2>&1",
                                &log),
            0)
      << log;
  EXPECT_NE(log.find("which MPS does not speed up"), std::string::npos) << log;
  EXPECT_NE(log.find("MPS: not used (on): single process"), std::string::npos) << log;
  const json single_summary = json::parse(testing::ReadFile(single / "job_summary.json"));
  EXPECT_EQ(single_summary["mps"]["used"], false);
  EXPECT_EQ(single_summary["mps"]["note"], "single process");
  EXPECT_EQ(testing::ReadFile(calls), made_calls) << "no daemon started for a single process";
}

TEST_F(Mps, RunWithMpsOnButNoBinaryFailsBeforeStartingWorkers) {
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  std::string why;
  auto clip = MakeClip(&why);
  if (!clip) GTEST_SKIP() << why;
  const fs::path out = testing::TempDir("mps_run_missing");
  std::string log;
  // PATH without the fake: a directory with nothing in it, plus where sh finds nothing it needs.
  const int rc = testing::RunCommand("TMPDIR='" + root_ + "' PATH='" + root_ + "' " + testing::VidscanBinary() +
                                         " run '" + *clip + "' -o '" + out.string() + "' --device cpu --model '" + model +
                                         "' --family yolox --progress none --workers decode=1,infer=1 --mps on 2>&1",
                                     &log);
  EXPECT_EQ(rc, 4) << log;
  EXPECT_NE(log.find("nvidia-cuda-mps-control is not on PATH"), std::string::npos) << log;
  EXPECT_NE(log.find("--mps off"), std::string::npos) << log;
  EXPECT_TRUE(SessionDirs(root_).empty());
}

TEST(MpsCli, TheOptionIsCheckedAndGoesThroughConfigFiles) {
  std::string text;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --mps on --print-config", &text), 0);
  EXPECT_NE(text.find("mps=\"on\""), std::string::npos) << text;
  const std::string dir = testing::TempDir("mps_config");
  std::ofstream(dir + "/job.toml") << "mps=\"off\"\n";
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --config " + dir + "/job.toml --print-config", &text), 0);
  EXPECT_NE(text.find("mps=\"off\""), std::string::npos) << text;
  // The command line wins over the file.
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --mps on --config " + dir + "/job.toml --print-config", &text), 0);
  EXPECT_NE(text.find("mps=\"on\""), std::string::npos) << text;
  EXPECT_NE(testing::RunCommand(testing::VidscanBinary() + " run -o /tmp/x --mps maybe --print-config 2>&1", &text), 0);
  std::string help;
  testing::RunCommand(testing::VidscanBinary() + " run --help", &help);
  EXPECT_NE(help.find("--mps"), std::string::npos);
  EXPECT_NE(help.find("nvidia-cuda-mps-control"), std::string::npos);
}

}  // namespace
}  // namespace vidscan
