#include "ipc/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

extern char** environ;

namespace vidscan::ipc {

using Clock = std::chrono::steady_clock;

struct ProcessSupervisor::Child {
  int id = -1;
  ProcessSpec spec;
  bool restart_on_failure = true;
  pid_t pid = 0;
  int pidfd = -1;
  int restarts = 0;
  int consecutive_failures = 0;
  Clock::time_point started_at;
  std::optional<Clock::time_point> restart_at;
  bool gave_up = false;
};

namespace {

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

// argv and envp as exec wants them, built before fork: the child may only make async-signal-safe calls.
struct ExecArgs {
  std::vector<std::string> strings_argv, strings_env;
  std::vector<char*> argv, envp;

  explicit ExecArgs(const ProcessSpec& spec) : strings_argv(spec.argv) {
    std::map<std::string, std::string> overrides;  // a later entry for a key replaces an earlier one
    for (const auto& [key, value] : spec.env) overrides[key] = value;
    for (char** e = environ; e && *e; ++e) {
      std::string entry = *e;
      std::string key = entry.substr(0, entry.find('='));
      if (!overrides.count(key)) strings_env.push_back(std::move(entry));
    }
    for (const auto& [key, value] : overrides) strings_env.push_back(key + "=" + value);
    for (auto& s : strings_argv) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : strings_env) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

}  // namespace

std::string ProcessEvent::Describe() const {
  std::string who = fmt::format("{} (pid {})", name, pid);
  switch (kind) {
    case Kind::kStarted:
      return fmt::format("{} started{}", who, restarts ? fmt::format(" (restart {})", restarts) : "");
    case Kind::kGaveUp:
      return fmt::format("{} is not restarted again after {} restarts", name, restarts);
    case Kind::kExited:
      break;
  }
  if (signal != 0) return fmt::format("{} was killed by signal {} ({})", who, signal, strsignal(signal));
  if (exit_code >= 0) return fmt::format("{} exited with code {}", who, exit_code);
  return fmt::format("{} is gone (exit status unknown)", who);
}

ProcessSupervisor::ProcessSupervisor(RestartPolicy policy, std::function<void()> on_event)
    : policy_(policy), on_event_(std::move(on_event)) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  monitor_ = std::thread([this] { MonitorLoop(); });
}

ProcessSupervisor::~ProcessSupervisor() {
  StopAll(std::chrono::milliseconds(1000));
  {
    std::lock_guard lock(mutex_);
    shutdown_ = true;
  }
  WakeMonitor();
  monitor_.join();
  for (auto& child : children_) {
    if (child->pidfd >= 0) close(child->pidfd);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

void ProcessSupervisor::WakeMonitor() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

Status ProcessSupervisor::Launch(Child& child) {
  const ProcessSpec& spec = child.spec;
  if (spec.argv.empty() || spec.argv[0].find('/') == std::string::npos) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("{}: argv[0] must be a path to the executable", spec.name));
  }
  ExecArgs args(spec);
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return MakeError(StatusCode::kInternal, fmt::format("{}: pipe2: {}", spec.name, strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    return MakeError(StatusCode::kUnavailable, fmt::format("{}: fork: {}", spec.name, strerror(err)));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only until exec.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    int err = 0;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
      err = errno;
    } else if (getppid() != parent) {
      _exit(127);  // the supervisor died before PR_SET_PDEATHSIG took hold
    } else {
      execve(args.argv[0], args.argv.data(), args.envp.data());
      err = errno;
    }
    (void)!write(exec_pipe[1], &err, sizeof(err));
    _exit(127);
  }
  close(exec_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {
    // exec failed; the child is exiting. Nobody monitors it yet, so reap it here.
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return MakeError(child_errno == ENOENT ? StatusCode::kNotFound : StatusCode::kUnavailable,
                     fmt::format("{}: exec {}: {}", spec.name, spec.argv[0], strerror(child_errno)));
  }
  int pidfd = PidfdOpen(pid);  // works on a child that already exited (it stays a zombie until reaped)
  {
    std::lock_guard lock(mutex_);
    child.pid = pid;
    child.pidfd = pidfd;
    child.started_at = Clock::now();
    child.restart_at.reset();
  }
  WakeMonitor();
  return Status::Ok();
}

Expected<int> ProcessSupervisor::Start(ProcessSpec spec, bool restart_on_failure) {
  auto child = std::make_unique<Child>();
  child->spec = std::move(spec);
  child->restart_on_failure = restart_on_failure;
  {
    std::lock_guard lock(mutex_);
    child->id = static_cast<int>(children_.size());
    stopping_ = false;
  }
  Child* raw = child.get();
  {
    std::lock_guard lock(mutex_);
    children_.push_back(std::move(child));
  }
  if (Status launched = Launch(*raw); !launched.ok()) {
    std::lock_guard lock(mutex_);
    raw->gave_up = true;
    return launched;
  }
  std::lock_guard lock(mutex_);
  ProcessEvent event;
  event.kind = ProcessEvent::Kind::kStarted;
  event.id = raw->id;
  event.name = raw->spec.name;
  event.pid = raw->pid;
  pending_events_.push_back(event);
  return raw->id;
}

void ProcessSupervisor::MonitorLoop() {
  std::vector<pollfd> fds;
  std::vector<std::pair<int, pid_t>> watched;  // (id, pid) per pollfd after the first
  for (;;) {
    bool need_polling = false;
    fds.clear();
    watched.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    {
      std::lock_guard lock(mutex_);
      if (shutdown_) return;
      for (auto& child : children_) {
        if (child->pid == 0) continue;
        watched.emplace_back(child->id, child->pid);
        fds.push_back({child->pidfd, POLLIN, 0});  // a negative fd is ignored by poll
        if (child->pidfd < 0) need_polling = true;
      }
    }
    // Without pidfds (kernels before 5.3), look at the children with waitpid every 20 ms.
    int rc = poll(fds.data(), fds.size(), need_polling ? 20 : -1);
    if (rc < 0 && errno != EINTR) {
      spdlog::error("process supervisor: poll: {}", strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof(count));
    }
    bool any_exit = false;
    for (size_t i = 0; i < watched.size(); ++i) {
      const pollfd& fd = fds[i + 1];
      if (fd.fd >= 0 && !(fd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      auto [id, pid] = watched[i];
      siginfo_t info{};
      int waited = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG);
      Exit exit{id, pid, -1, 0};
      if (waited == 0 && info.si_pid == 0) continue;  // still running
      if (waited == 0) {
        if (info.si_code == CLD_EXITED) {
          exit.exit_code = info.si_status;
        } else {
          exit.signal = info.si_status;
        }
      } else if (errno != ECHILD) {
        continue;
      }  // ECHILD: someone else reaped it; report it gone with an unknown status
      std::lock_guard lock(mutex_);
      Child& child = *children_[id];
      if (child.pid != pid) continue;
      if (child.pidfd >= 0) close(child.pidfd);
      child.pidfd = -1;
      child.pid = 0;
      exits_.push_back(exit);
      any_exit = true;
    }
    if (any_exit) {
      exited_.notify_all();
      if (on_event_) on_event_();
    }
  }
}

std::vector<ProcessEvent> ProcessSupervisor::Poll() {
  std::vector<ProcessEvent> events;
  std::vector<Child*> due;
  const auto now = Clock::now();
  {
    std::lock_guard lock(mutex_);
    events = std::move(pending_events_);
    pending_events_.clear();
    // Restarts due now, chosen before this call's exits schedule new ones: a process is never restarted in
    // the Poll that reports its death, so the caller can clean up after the dead one (its rings, its
    // names) before the new one exists.
    for (auto& child : children_) {
      if (child->restart_at && *child->restart_at <= now && child->pid == 0) due.push_back(child.get());
    }
    for (const Exit& exit : exits_) {
      Child& child = *children_[exit.id];
      ProcessEvent event;
      event.kind = ProcessEvent::Kind::kExited;
      event.id = exit.id;
      event.name = child.spec.name;
      event.pid = exit.pid;
      event.exit_code = exit.exit_code;
      event.signal = exit.signal;
      event.restarts = child.restarts;
      bool failed = event.failed();
      if (now - child.started_at >= policy_.healthy_after) child.consecutive_failures = 0;
      if (failed && child.restart_on_failure && !stopping_ && !child.gave_up) {
        if (child.consecutive_failures < policy_.max_restarts) {
          ++child.consecutive_failures;
          auto backoff = policy_.initial_backoff * (1LL << std::min(child.consecutive_failures - 1, 20));
          child.restart_at = now + std::min<Clock::duration>(backoff, policy_.max_backoff);
          event.restarting = true;
          events.push_back(event);
        } else {
          child.gave_up = true;
          events.push_back(event);
          ProcessEvent gave_up = event;
          gave_up.kind = ProcessEvent::Kind::kGaveUp;
          events.push_back(gave_up);
        }
      } else {
        events.push_back(event);
      }
    }
    exits_.clear();
  }
  for (Child* child : due) {
    Status launched = Launch(*child);
    std::lock_guard lock(mutex_);
    ++child->restarts;
    if (launched.ok()) {
      ProcessEvent event;
      event.kind = ProcessEvent::Kind::kStarted;
      event.id = child->id;
      event.name = child->spec.name;
      event.pid = child->pid;
      event.restarts = child->restarts;
      events.push_back(event);
    } else {
      spdlog::error("{}", launched.ToString());
      child->restart_at.reset();
      child->gave_up = true;
      ProcessEvent gave_up;
      gave_up.kind = ProcessEvent::Kind::kGaveUp;
      gave_up.id = child->id;
      gave_up.name = child->spec.name;
      gave_up.restarts = child->restarts;
      events.push_back(gave_up);
    }
  }
  return events;
}

std::optional<Clock::duration> ProcessSupervisor::NextRestartIn() const {
  std::lock_guard lock(mutex_);
  std::optional<Clock::duration> next;
  const auto now = Clock::now();
  for (const auto& child : children_) {
    if (!child->restart_at) continue;
    auto in = std::max<Clock::duration>(*child->restart_at - now, Clock::duration::zero());
    if (!next || in < *next) next = in;
  }
  return next;
}

pid_t ProcessSupervisor::pid(int id) const {
  std::lock_guard lock(mutex_);
  if (id < 0 || id >= static_cast<int>(children_.size())) return 0;
  return children_[id]->pid;
}

int ProcessSupervisor::running_count() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(std::count_if(children_.begin(), children_.end(), [](const auto& c) { return c->pid != 0; }));
}

void ProcessSupervisor::SetRestartOnFailure(int id, bool restart) {
  std::lock_guard lock(mutex_);
  if (id < 0 || id >= static_cast<int>(children_.size())) return;
  children_[id]->restart_on_failure = restart;
  if (!restart) children_[id]->restart_at.reset();
}

Status ProcessSupervisor::Signal(int id, int signal) {
  pid_t target = pid(id);
  if (target == 0) return MakeError(StatusCode::kNotFound, fmt::format("process {} is not running", id));
  if (kill(target, signal) != 0) {
    return MakeError(StatusCode::kInternal, fmt::format("kill({}, {}): {}", target, signal, strerror(errno)));
  }
  return Status::Ok();
}

void ProcessSupervisor::StopAll(std::chrono::milliseconds grace) {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  for (auto& child : children_) child->restart_at.reset();
  auto all_down = [&] {
    return std::all_of(children_.begin(), children_.end(), [](const auto& c) { return c->pid == 0; });
  };
  for (auto& child : children_) {
    if (child->pid != 0) kill(child->pid, SIGTERM);
  }
  if (!exited_.wait_for(lock, grace, all_down)) {
    for (auto& child : children_) {
      if (child->pid != 0) {
        spdlog::warn("{} (pid {}) did not stop within {} ms of SIGTERM; sending SIGKILL", child->spec.name,
                     child->pid, grace.count());
        kill(child->pid, SIGKILL);
      }
    }
    if (!exited_.wait_for(lock, std::chrono::seconds(10), all_down)) {
      spdlog::error("process supervisor: children still not reaped 10 s after SIGKILL");
    }
  }
  exits_.clear();
  pending_events_.clear();
}

}  // namespace vidscan::ipc
