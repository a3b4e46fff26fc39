// Starts worker processes, notices when they die, restarts them with bounded retries and backoff, and
// stops them all on shutdown.
//
// - Start: fork + exec of an argv (e.g. /proc/self/exe with a role in the environment). The child sets
//   PR_SET_PDEATHSIG(SIGKILL) before exec, so a supervisor killed by anything takes its workers down.
//   PR_SET_PDEATHSIG fires when the *thread* that forked exits: call Start/Poll from a thread that outlives
//   the workers (the main thread).
// - Monitoring: a thread waits on a pidfd per child (polling waitpid where pidfds are missing) and reaps
//   it; Poll hands the deaths over as events and performs due restarts on the calling thread.
// - Restarts: after a failure (non-zero exit or a signal), after initial_backoff doubling up to
//   max_backoff; at most max_restarts times per process, then it stays down (kGaveUp). A process that ran
//   at least healthy_after starts its backoff afresh.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"

namespace vidscan::ipc {

struct ProcessSpec {
  std::string name;               // for messages: "decode-0"
  std::vector<std::string> argv;  // argv[0] is the executable's path
  // Added to (or replacing in) the supervisor's environment; for a key given twice the later value wins.
  std::vector<std::pair<std::string, std::string>> env;
};

struct RestartPolicy {
  int max_restarts = 5;  // per process
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds healthy_after{30000};
};

struct ProcessEvent {
  enum class Kind { kStarted, kExited, kGaveUp };
  Kind kind = Kind::kStarted;
  int id = -1;
  std::string name;
  pid_t pid = 0;
  int exit_code = -1;  // kExited by exit(): the code; -1 otherwise
  int signal = 0;      // kExited by a signal: its number
  int restarts = 0;    // restarts so far
  bool restarting = false;  // kExited: a restart is scheduled

  bool failed() const { return kind == Kind::kExited && (signal != 0 || exit_code != 0); }
  // "decode-0 (pid 123) was killed by signal 9 (Killed)", "... exited with code 3", ...
  std::string Describe() const;
};

class ProcessSupervisor {
 public:
  // `on_event` runs on the monitor thread whenever a child exits (e.g. rings the caller's doorbell); it
  // must not call back into the supervisor.
  explicit ProcessSupervisor(RestartPolicy policy = {}, std::function<void()> on_event = {});
  ~ProcessSupervisor();  // StopAll with a short grace
  ProcessSupervisor(const ProcessSupervisor&) = delete;
  ProcessSupervisor& operator=(const ProcessSupervisor&) = delete;

  // Starts a process; returns its id (stable across restarts). Fails if it could not be exec'ed.
  Expected<int> Start(ProcessSpec spec, bool restart_on_failure = true);
  // Events since the last call, after starting the restarts that are due. A process is restarted in a
  // later call than the one reporting its exit, so the caller sees the death first.
  std::vector<ProcessEvent> Poll();
  // How long until the next scheduled restart (for the caller's wait); nothing if none is scheduled.
  std::optional<std::chrono::steady_clock::duration> NextRestartIn() const;
  // Current pid of a process, 0 while it is down.
  pid_t pid(int id) const;
  int running_count() const;
  // Whether a process that fails from now on is restarted.
  void SetRestartOnFailure(int id, bool restart);
  Status Signal(int id, int signal);
  // SIGTERM to every running process, SIGKILL to those still alive after `grace`; waits until all are
  // reaped and cancels scheduled restarts. Processes exiting here produce no kExited events.
  void StopAll(std::chrono::milliseconds grace);

 private:
  struct Child;
  struct Exit {
    int id;
    pid_t pid;
    int exit_code;
    int signal;
  };

  Status Launch(Child& child);
  void MonitorLoop();
  void WakeMonitor();

  RestartPolicy policy_;
  std::function<void()> on_event_;
  mutable std::mutex mutex_;
  std::condition_variable exited_;
  std::vector<std::unique_ptr<Child>> children_;
  std::vector<Exit> exits_;        // reaped by the monitor, not yet seen by Poll
  std::vector<ProcessEvent> pending_events_;  // kStarted from Start()
  bool stopping_ = false;
  bool shutdown_ = false;
  int wake_fd_ = -1;               // eventfd: makes the monitor rebuild its poll set
  std::thread monitor_;
};

}  // namespace vidscan::ipc
