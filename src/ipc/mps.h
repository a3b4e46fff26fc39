// CUDA MPS (Multi-Process Service) for the multi-process mode of `vidscan run` (`--mps auto|on|off`).
//
// Why: without MPS every worker process has its own CUDA context and the GPU time-slices between them
// (on an H200, 9+ contexts ran the job at 41-46x realtime); under one MPS server their kernels share the
// GPU concurrently (56-82x with a private daemon; the single process: 102x). docs/mps.md has the details.
//
// This module drives the `nvidia-cuda-mps-control` binary (found on PATH); it needs no CUDA itself. A CUDA
// client finds the control daemon through the socket in $CUDA_MPS_PIPE_DIRECTORY (default /tmp/nvidia-mps)
// when CUDA is initialised; with no daemon there it runs without MPS. So the workers' environment is the
// whole switch:
// - on:   a private control daemon for the job, in /tmp/vidscan-mps-<supervisor pid>-<random>/{pipe,log}
//         (mode 0700; short, because the pipe directory holds a Unix socket and its path is limited to
//         ~107 bytes), stopped with `quit` at the end and the directory removed. A later `on` run removes
//         what a killed supervisor left (RemoveStaleMpsDirectories).
// - auto: a daemon that already runs at $CUDA_MPS_PIPE_DIRECTORY or /tmp/nvidia-mps, if it answers a query;
//         otherwise no MPS.
// - off:  the workers' pipe directory is an empty private one, so they never attach to a running daemon.
//
// Proof of use: ObserveClients asks the daemon for its servers' clients and counts the job's worker pids
// among them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace vidscan::ipc {

enum class MpsMode : uint8_t { kAuto, kOn, kOff };
const char* MpsModeName(MpsMode mode);  // "auto", "on", "off"
Expected<MpsMode> ParseMpsMode(std::string_view text);

inline constexpr const char* kMpsControlBinary = "nvidia-cuda-mps-control";
inline constexpr const char* kEnvMpsPipeDirectory = "CUDA_MPS_PIPE_DIRECTORY";
inline constexpr const char* kEnvMpsLogDirectory = "CUDA_MPS_LOG_DIRECTORY";
inline constexpr const char* kDefaultMpsPipeDirectory = "/tmp/nvidia-mps";

// What the job summary says about MPS.
struct MpsReport {
  MpsMode mode = MpsMode::kAuto;
  bool used = false;            // the workers were pointed at a running control daemon
  bool started_by_us = false;   // `on`: the daemon was this job's own
  std::string pipe_dir;         // the workers' CUDA_MPS_PIPE_DIRECTORY ("" when left as it was)
  int clients_seen = 0;         // worker processes of the job seen among the daemon's clients
  int workers_watched = 0;      // worker processes the job started (restarts included)
  int daemon_clients = -1;      // all clients of the daemon at the last query (-1: never queried)
  std::string note;             // why MPS was not used, or what the queries found odd
  // One line for `vidscan run`'s summary: "MPS: on (private daemon, 3 of 3 workers were clients)", ...
  std::string Describe() const;
};

struct MpsOptions {
  // Where the `on` and `off` directories go: "" = $TMPDIR when the socket path fits, else /tmp.
  std::string temp_root;
  std::chrono::milliseconds start_timeout{10000};  // the daemon must answer within this after `-d`
  std::chrono::milliseconds stop_timeout{10000};   // it must be gone within this after `quit`
  std::chrono::milliseconds query_timeout{3000};   // one control command
};

class MpsSession {
 public:
  // kOn: starts a private daemon (removing stale directories of dead supervisors first); fails with a
  // message naming what is missing (the binary, a daemon that does not answer) and suggesting --mps off.
  // kAuto: looks for a running daemon; none is not an error (report().used is false, the note says so).
  // kOff: makes the empty private pipe directory the workers get.
  static Expected<MpsSession> Start(MpsMode mode, const MpsOptions& options = {});
  // A session that does nothing, e.g. for the single-process mode: report().note says why.
  static MpsSession NotUsed(MpsMode mode, std::string why);

  MpsSession() = default;
  MpsSession(MpsSession&& other) noexcept;
  MpsSession& operator=(MpsSession&& other) noexcept;
  MpsSession(const MpsSession&) = delete;
  MpsSession& operator=(const MpsSession&) = delete;
  ~MpsSession();  // Stop(), errors logged

  // Added to the workers' environment (MultiProcessOptions::worker_env). Empty when the workers should
  // inherit the supervisor's (auto without a daemon, NotUsed).
  std::vector<std::pair<std::string, std::string>> WorkerEnvironment() const;

  // Queries the daemon (get_server_list, get_client_list per server) and records which of `worker_pids`
  // are its clients (a union over calls). Call while the workers run. Does nothing without a daemon.
  Status ObserveClients(std::span<const pid_t> worker_pids);
  // Every client pid of every server of the daemon now.
  Expected<std::vector<pid_t>> ClientPids() const;

  // `on`: `quit` to the daemon, waits until it is gone (stop_timeout), removes the directories. `off`:
  // removes the directory. Idempotent.
  Status Stop();

  const MpsReport& report() const { return report_; }
  bool daemon_in_use() const { return report_.used; }
  const std::string& session_dir() const { return session_dir_; }  // on/off: the private directory

 private:
  MpsReport report_;
  MpsOptions options_;
  std::string control_binary_;  // resolved path; "" when not needed
  std::string session_dir_;     // on/off: removed by Stop
  std::string log_dir_;         // on
  pid_t daemon_pid_ = 0;        // on: from the daemon's pid file
  std::set<pid_t> clients_seen_;
  std::set<pid_t> workers_watched_;
  bool stopped_ = false;
};

// The full path of `nvidia-cuda-mps-control` on PATH; kUnavailable naming what is missing otherwise.
Expected<std::string> FindMpsControl();

// Removes the `on`/`off` directories of supervisors that are gone (vidscan-mps-<pid>-*, owned by this
// user, under `temp_root` as MpsOptions picks it): a daemon still answering there is told to quit first.
// Returns the directories removed. A directory whose daemon does not stop is left, with a warning.
std::vector<std::string> RemoveStaleMpsDirectories(const MpsOptions& options = {});

}  // namespace vidscan::ipc
