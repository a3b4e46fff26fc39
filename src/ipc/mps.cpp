#include "ipc/mps.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "core/log.h"

extern char** environ;

namespace vidscan::ipc {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The daemon's files in its pipe directory: the control socket(s) and its pid file (removed when it stops;
// the sockets stay).
constexpr const char* kPidFileName = "nvidia-cuda-mps-control.pid";
constexpr const char* kLongestSocketName = "control_privileged";
constexpr size_t kUnixSocketPathLimit = 107;  // sun_path minus its terminating NUL
// What the control client prints when no daemon listens at its pipe directory.
constexpr const char* kNoDaemonMessage = "Cannot find MPS control daemon";
constexpr const char* kDirPrefix = "vidscan-mps-";

std::string OffHint() { return "run with --mps off (or --mps auto) to go without MPS"; }

// Whether a process is gone: no such pid, or a zombie.
bool ProcessGone(pid_t pid) {
  if (pid <= 0) return true;
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  if (!stat) return false;
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z';
}

std::vector<pid_t> ParsePids(const std::string& text) {
  std::vector<pid_t> pids;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos) {
      pid_t pid = 0;
      auto [ptr, ec] = std::from_chars(line.data() + first, line.data() + line.size(), pid);
      if (ec == std::errc() && ptr == line.data() + line.size() && pid > 0) pids.push_back(pid);
    }
    start = end + 1;
  }
  return pids;
}

pid_t ReadPidFile(const std::string& pipe_dir) {
  std::ifstream in(fs::path(pipe_dir) / kPidFileName);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

struct ProgramResult {
  int exit_code = -1;  // -1: killed by a signal or timed out
  bool timed_out = false;
  std::string out;  // stdout and stderr together
  bool ok() const { return !timed_out && exit_code == 0; }
  std::string Describe() const {
    std::string text = out;
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    std::string status = timed_out ? "timed out" : exit_code < 0 ? "was killed" : fmt::format("exit status {}", exit_code);
    return text.empty() ? status : fmt::format("{}: {}", status, text);
  }
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// The control client may exit before reading its stdin (no daemon to talk to): a write to its pipe then
// raises SIGPIPE, which would kill the supervisor. Blocked on this thread for the write, and a SIGPIPE it
// raised is taken off the pending set before the mask is restored.
void WriteIgnoringSigpipe(int fd, const std::string& data) {
  sigset_t pipe_only, old_mask, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  const ssize_t written = write(fd, data.data(), data.size());
  if (written < 0 && errno == EPIPE && !was_pending) {
    const timespec no_wait{0, 0};
    while (sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
}

// Runs `binary` with `args`, `input` on its stdin, the supervisor's environment with `env` replacing those
// keys; collects stdout+stderr until it exits or `timeout` (then SIGKILL). posix_spawn, not fork: the
// supervisor has threads. Pipes are close-on-exec so workers started meanwhile do not hold them (the
// duplicates on 0/1/2 are not). A daemonising child (`-d`) may keep our pipe open: we stop reading when
// the direct child exits. `new_session`: the daemon must not get the terminal's ^C.
Expected<ProgramResult> RunProgram(const std::string& binary, const std::vector<std::string>& args,
                                   const std::string& input, const std::vector<std::pair<std::string, std::string>>& env,
                                   std::chrono::milliseconds timeout, bool new_session = false) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) != 0) return MakeError(StatusCode::kIoError, fmt::format("pipe2: {}", strerror(errno)));
  Fd in_read(in_pipe[0]), in_write(in_pipe[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return MakeError(StatusCode::kIoError, fmt::format("pipe2: {}", strerror(errno)));
  Fd out_read(out_pipe[0]), out_write(out_pipe[1]);

  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    const std::string item = *e;
    const std::string key = item.substr(0, item.find('='));
    const bool replaced = std::any_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; });
    if (!replaced) env_strings.push_back(item);
  }
  for (const auto& [key, value] : env) env_strings.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings{binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_read.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, out_write.get(), 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Inherited ignored signals or a blocked mask would change how the daemon behaves: start it clean.
  sigset_t defaults, empty;
  sigemptyset(&defaults);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD}) sigaddset(&defaults, sig);
  sigemptyset(&empty);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &empty);
  short flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
#ifdef POSIX_SPAWN_SETSID
  if (new_session) flags |= POSIX_SPAWN_SETSID;
#else
  (void)new_session;
#endif
  posix_spawnattr_setflags(&attr, flags);
  pid_t child = 0;
  const int rc = posix_spawn(&child, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return MakeError(StatusCode::kUnavailable, fmt::format("{}: posix_spawn: {}", binary, strerror(rc)));
  in_read.reset();
  out_write.reset();
  // Commands are a line or two: far below the pipe's buffer, so this write does not block.
  if (!input.empty()) WriteIgnoringSigpipe(in_write.get(), input);
  in_write.reset();

  ProgramResult result;
  const auto deadline = Clock::now() + timeout;
  fcntl(out_read.get(), F_SETFL, O_NONBLOCK);
  bool eof = false;
  auto drain = [&] {
    char buffer[4096];
    for (;;) {
      const ssize_t n = read(out_read.get(), buffer, sizeof(buffer));
      if (n > 0) {
        if (result.out.size() < 64 * 1024) result.out.append(buffer, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) eof = true;
      return;
    }
  };
  int status = 0;
  for (;;) {
    const pid_t waited = waitpid(child, &status, WNOHANG);
    if (waited == child) break;
    if (waited < 0 && errno != EINTR) return MakeError(StatusCode::kInternal, fmt::format("waitpid: {}", strerror(errno)));
    if (Clock::now() >= deadline) {
      kill(child, SIGKILL);
      while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      drain();
      result.timed_out = true;
      return result;
    }
    if (!eof) {
      pollfd fd{out_read.get(), POLLIN, 0};
      poll(&fd, 1, 20);
      drain();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  drain();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string TempRoot(const MpsOptions& options) {
  if (!options.temp_root.empty()) return options.temp_root;
  // A pipe directory under $TMPDIR, if its longest socket path fits.
  if (const char* tmpdir = std::getenv("TMPDIR"); tmpdir && tmpdir[0] == '/') {
    const std::string example = fmt::format("{}/{}4194304-XXXXXX/pipe/{}", tmpdir, kDirPrefix, kLongestSocketName);
    if (example.size() <= kUnixSocketPathLimit && fs::is_directory(tmpdir)) return tmpdir;
  }
  return "/tmp";
}

// The supervisor pid in a directory name "vidscan-mps-<pid>-<random>", or 0.
pid_t PidOfDirectory(const std::string& name) {
  if (name.rfind(kDirPrefix, 0) != 0) return 0;
  const std::string rest = name.substr(std::strlen(kDirPrefix));
  pid_t pid = 0;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  if (ec != std::errc() || ptr == rest.data() || *ptr != '-') return 0;
  return pid;
}

Expected<ProgramResult> Control(const std::string& binary, const std::string& pipe_dir, const std::string& log_dir,
                                const std::string& command, std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::string>> env{{kEnvMpsPipeDirectory, pipe_dir}};
  if (!log_dir.empty()) env.emplace_back(kEnvMpsLogDirectory, log_dir);
  return RunProgram(binary, {}, command + "\n", env, timeout);
}

// A daemon answers at `pipe_dir`: a query succeeds and does not say it found none.
bool DaemonAnswers(const std::string& binary, const std::string& pipe_dir, std::chrono::milliseconds timeout,
                   std::string* why) {
  auto result = Control(binary, pipe_dir, "", "get_server_list", timeout);
  if (!result.ok()) {
    if (why) *why = result.status().ToString();
    return false;
  }
  if (!result->ok() || result->out.find(kNoDaemonMessage) != std::string::npos) {
    if (why) *why = result->Describe();
    return false;
  }
  return true;
}

// Tells the daemon at `pipe_dir` (pid `daemon_pid` when known) to quit and waits until it is gone.
Status QuitDaemon(const std::string& binary, const std::string& pipe_dir, const std::string& log_dir,
                  pid_t daemon_pid, const MpsOptions& options) {
  if (daemon_pid == 0) daemon_pid = ReadPidFile(pipe_dir);
  auto result = Control(binary, pipe_dir, log_dir, "quit", options.query_timeout);
  if (!result.ok()) return result.status();
  const auto deadline = Clock::now() + options.stop_timeout;
  for (;;) {
    // `quit` returns at once; the daemon stops its servers (their clients are gone by now) and exits, and
    // its pid file goes with it.
    const bool gone = daemon_pid > 0 ? ProcessGone(daemon_pid)
                                     : !fs::exists(fs::path(pipe_dir) / kPidFileName);
    if (gone) return Status::Ok();
    if (Clock::now() >= deadline) {
      return MakeError(StatusCode::kUnavailable,
                       fmt::format("the MPS control daemon at {} (pid {}) did not exit within {} ms of 'quit' ({})",
                                   pipe_dir, daemon_pid, options.stop_timeout.count(), result->Describe()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::string text = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }();
  if (text.size() > max_bytes) text = "..." + text.substr(text.size() - max_bytes);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// A fresh 0700 directory root/vidscan-mps-<pid>-XXXXXX (mkdtemp makes it 0700 and unique).
Expected<std::string> MakeSessionDir(const std::string& root) {
  std::string pattern = fmt::format("{}/{}{}-XXXXXX", root, kDirPrefix, getpid());
  if (mkdtemp(pattern.data()) == nullptr) {
    return MakeError(StatusCode::kIoError, fmt::format("{}: mkdtemp: {}", pattern, strerror(errno)));
  }
  return pattern;
}

Status MakePrivateDir(const std::string& path) {
  if (mkdir(path.c_str(), 0700) != 0) return MakeError(StatusCode::kIoError, fmt::format("{}: mkdir: {}", path, strerror(errno)));
  chmod(path.c_str(), 0700);  // whatever the umask
  return Status::Ok();
}

}  // namespace

const char* MpsModeName(MpsMode mode) {
  switch (mode) {
    case MpsMode::kAuto: return "auto";
    case MpsMode::kOn: return "on";
    case MpsMode::kOff: return "off";
  }
  return "?";
}

Expected<MpsMode> ParseMpsMode(std::string_view text) {
  if (text == "auto") return MpsMode::kAuto;
  if (text == "on") return MpsMode::kOn;
  if (text == "off") return MpsMode::kOff;
  return MakeError(StatusCode::kInvalidArgument, fmt::format("--mps {}: expected auto, on or off", text));
}

std::string MpsReport::Describe() const {
  if (!used) return fmt::format("MPS: not used ({}){}", MpsModeName(mode), note.empty() ? "" : ": " + note);
  std::string line = fmt::format("MPS: {} ({} at {}), {} of {} worker processes seen as MPS clients", MpsModeName(mode),
                                 started_by_us ? "private daemon started for the job" : "running daemon", pipe_dir,
                                 clients_seen, workers_watched);
  if (!note.empty()) line += "; " + note;
  return line;
}

Expected<std::string> FindMpsControl() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + kMpsControlBinary;
    if (access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
    start = end + 1;
  }
  return MakeError(StatusCode::kUnavailable,
                   fmt::format("{} is not on PATH ({}): CUDA MPS needs it (it comes with the NVIDIA driver's compute "
                               "utilities); {}", kMpsControlBinary, dirs.empty() ? "PATH is empty" : dirs, OffHint()));
}

std::vector<std::string> RemoveStaleMpsDirectories(const MpsOptions& options) {
  std::vector<std::string> removed;
  const std::string root = TempRoot(options);
  std::error_code ec;
  std::string binary;  // looked up once, when a directory needs it
  bool looked_up = false;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    const pid_t owner_pid = PidOfDirectory(name);
    if (owner_pid == 0 || owner_pid == getpid()) continue;
    struct stat st {};
    if (lstat(entry.path().c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid()) continue;
    if (!ProcessGone(owner_pid)) continue;
    const std::string pipe_dir = (entry.path() / "pipe").string();
    const pid_t daemon_pid = ReadPidFile(pipe_dir);
    if (daemon_pid > 0 && !ProcessGone(daemon_pid)) {
      if (!looked_up) {
        auto found = FindMpsControl();
        if (found.ok()) binary = *found;
        looked_up = true;
      }
      if (binary.empty()) {
        spdlog::warn("{}: the MPS control daemon of a killed vidscan job (pid {}) still runs, and {} is not on PATH "
                     "to stop it; left as it is", entry.path().string(), daemon_pid, kMpsControlBinary);
        continue;
      }
      Status st = QuitDaemon(binary, pipe_dir, (entry.path() / "log").string(), daemon_pid, options);
      if (!st.ok()) {
        spdlog::warn("{}: left as it is: {}", entry.path().string(), st.ToString());
        continue;
      }
      spdlog::info("stopped the MPS control daemon (pid {}) a killed vidscan job (pid {}) left running", daemon_pid, owner_pid);
    }
    fs::remove_all(entry.path(), ec);
    if (ec) {
      spdlog::warn("{}: cannot remove: {}", entry.path().string(), ec.message());
      continue;
    }
    removed.push_back(entry.path().string());
  }
  return removed;
}

MpsSession MpsSession::NotUsed(MpsMode mode, std::string why) {
  MpsSession session;
  session.report_.mode = mode;
  session.report_.note = std::move(why);
  return session;
}

Expected<MpsSession> MpsSession::Start(MpsMode mode, const MpsOptions& options) {
  MpsSession session;
  session.options_ = options;
  session.report_.mode = mode;

  if (mode == MpsMode::kAuto) {
    const char* env_dir = std::getenv(kEnvMpsPipeDirectory);
    const std::string pipe_dir = env_dir && *env_dir ? env_dir : kDefaultMpsPipeDirectory;
    auto binary = FindMpsControl();
    if (!binary.ok()) {
      session.report_.note = fmt::format("none running: {} is not on PATH", kMpsControlBinary);
      return session;
    }
    std::string why;
    if (!DaemonAnswers(*binary, pipe_dir, options.query_timeout, &why)) {
      session.report_.note = fmt::format("none running: no control daemon answers at {}", pipe_dir);
      spdlog::debug("MPS auto: {}: {}", pipe_dir, why);
      return session;
    }
    session.control_binary_ = *binary;
    session.report_.used = true;
    session.report_.pipe_dir = pipe_dir;
    return session;
  }

  const std::string root = TempRoot(options);
  if (mode == MpsMode::kOff) {
    // An empty pipe directory: a CUDA client finds no daemon there and runs without MPS, whatever daemon
    // runs at the default place.
    VS_ASSIGN_OR_RETURN(session.session_dir_, MakeSessionDir(root));
    const std::string pipe_dir = session.session_dir_ + "/pipe";
    VS_RETURN_IF_ERROR(MakePrivateDir(pipe_dir));
    session.report_.pipe_dir = pipe_dir;
    session.report_.note = "the workers were given an empty MPS pipe directory";
    return session;
  }

  // on
  for (const std::string& dir : RemoveStaleMpsDirectories(options)) {
    spdlog::info("removed {}, left by a killed vidscan job", dir);
  }
  VS_ASSIGN_OR_RETURN(session.control_binary_, FindMpsControl());
  VS_ASSIGN_OR_RETURN(session.session_dir_, MakeSessionDir(root));
  const std::string pipe_dir = session.session_dir_ + "/pipe";
  session.log_dir_ = session.session_dir_ + "/log";
  VS_RETURN_IF_ERROR(MakePrivateDir(pipe_dir));
  VS_RETURN_IF_ERROR(MakePrivateDir(session.log_dir_));
  session.report_.pipe_dir = pipe_dir;
  if (pipe_dir.size() + 1 + std::strlen(kLongestSocketName) > kUnixSocketPathLimit) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("MPS pipe directory {} is too long for the daemon's Unix socket (at most {} bytes "
                                 "with the socket name): use a shorter TMPDIR", pipe_dir, kUnixSocketPathLimit));
  }
  const std::vector<std::pair<std::string, std::string>> env{{kEnvMpsPipeDirectory, pipe_dir},
                                                             {kEnvMpsLogDirectory, session.log_dir_}};
  auto started = RunProgram(session.control_binary_, {"-d"}, "", env, options.start_timeout, /*new_session=*/true);
  auto log_tail = [&] {
    const std::string tail = Tail(session.log_dir_ + "/control.log", 1500);
    return tail.empty() ? std::string() : fmt::format("; its control.log ends: {}", tail);
  };
  if (!started.ok()) return started.status();
  if (!started->ok()) {
    return MakeError(StatusCode::kUnavailable,
                     fmt::format("{} -d (CUDA_MPS_PIPE_DIRECTORY={}) failed: {}{}; {}", session.control_binary_,
                                 pipe_dir, started->Describe(), log_tail(), OffHint()));
  }
  // The daemon forked into the background: wait until it answers at its socket.
  const auto deadline = Clock::now() + options.start_timeout;
  std::string why;
  for (;;) {
    session.daemon_pid_ = ReadPidFile(pipe_dir);
    if (DaemonAnswers(session.control_binary_, pipe_dir, options.query_timeout, &why)) break;
    if (Clock::now() >= deadline) {
      // Whatever did start must not outlive this error (Stop runs in the destructor).
      return MakeError(StatusCode::kUnavailable,
                       fmt::format("the MPS control daemon started with {} -d did not answer at {} within {} ms ({}){}; "
                                   "MPS needs the GPU in Default or Exclusive-process compute mode; {}",
                                   session.control_binary_, pipe_dir, options.start_timeout.count(), why, log_tail(),
                                   OffHint()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  session.daemon_pid_ = ReadPidFile(pipe_dir);
  session.report_.used = true;
  session.report_.started_by_us = true;
  spdlog::info("MPS: started a private control daemon (pid {}) at {}", session.daemon_pid_, pipe_dir);
  return session;
}

MpsSession::MpsSession(MpsSession&& other) noexcept { *this = std::move(other); }

MpsSession& MpsSession::operator=(MpsSession&& other) noexcept {
  if (this == &other) return *this;
  if (Status st = Stop(); !st.ok()) spdlog::warn("MPS: {}", st.ToString());
  report_ = std::move(other.report_);
  options_ = other.options_;
  control_binary_ = std::move(other.control_binary_);
  session_dir_ = std::move(other.session_dir_);
  log_dir_ = std::move(other.log_dir_);
  daemon_pid_ = other.daemon_pid_;
  clients_seen_ = std::move(other.clients_seen_);
  workers_watched_ = std::move(other.workers_watched_);
  stopped_ = other.stopped_;
  // The moved-from session owns nothing any more.
  other.session_dir_.clear();
  other.control_binary_.clear();
  other.daemon_pid_ = 0;
  other.report_.started_by_us = false;
  other.stopped_ = true;
  return *this;
}

MpsSession::~MpsSession() {
  if (Status st = Stop(); !st.ok()) spdlog::warn("MPS: {}", st.ToString());
}

std::vector<std::pair<std::string, std::string>> MpsSession::WorkerEnvironment() const {
  std::vector<std::pair<std::string, std::string>> env;
  if (report_.mode == MpsMode::kOff && !report_.pipe_dir.empty()) {
    env.emplace_back(kEnvMpsPipeDirectory, report_.pipe_dir);
  } else if (report_.used) {
    env.emplace_back(kEnvMpsPipeDirectory, report_.pipe_dir);
    if (!log_dir_.empty()) env.emplace_back(kEnvMpsLogDirectory, log_dir_);
  }
  return env;
}

Expected<std::vector<pid_t>> MpsSession::ClientPids() const {
  if (!report_.used || control_binary_.empty()) return std::vector<pid_t>{};
  VS_ASSIGN_OR_RETURN(ProgramResult servers, Control(control_binary_, report_.pipe_dir, log_dir_, "get_server_list", options_.query_timeout));
  if (!servers.ok()) {
    return MakeError(StatusCode::kUnavailable, fmt::format("MPS get_server_list at {}: {}", report_.pipe_dir, servers.Describe()));
  }
  std::vector<pid_t> clients;
  for (pid_t server : ParsePids(servers.out)) {
    VS_ASSIGN_OR_RETURN(ProgramResult list, Control(control_binary_, report_.pipe_dir, log_dir_,
                                                    fmt::format("get_client_list {}", server), options_.query_timeout));
    if (!list.ok()) {
      return MakeError(StatusCode::kUnavailable,
                       fmt::format("MPS get_client_list {} at {}: {}", server, report_.pipe_dir, list.Describe()));
    }
    for (pid_t client : ParsePids(list.out)) clients.push_back(client);
  }
  return clients;
}

Status MpsSession::ObserveClients(std::span<const pid_t> worker_pids) {
  workers_watched_.insert(worker_pids.begin(), worker_pids.end());
  report_.workers_watched = static_cast<int>(workers_watched_.size());
  if (!report_.used) return Status::Ok();
  VS_ASSIGN_OR_RETURN(std::vector<pid_t> clients, ClientPids());
  report_.daemon_clients = static_cast<int>(clients.size());
  for (pid_t pid : clients) {
    if (workers_watched_.count(pid)) clients_seen_.insert(pid);
  }
  report_.clients_seen = static_cast<int>(clients_seen_.size());
  return Status::Ok();
}

Status MpsSession::Stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  Status result = Status::Ok();
  if (report_.mode == MpsMode::kOn && !control_binary_.empty() && !session_dir_.empty()) {
    // Also after a start that failed half-way: a daemon may have come up after all.
    const pid_t pid = daemon_pid_ > 0 ? daemon_pid_ : ReadPidFile(report_.pipe_dir);
    if (report_.started_by_us || (pid > 0 && !ProcessGone(pid))) {
      result = QuitDaemon(control_binary_, report_.pipe_dir, log_dir_, pid, options_);
      if (result.ok()) spdlog::debug("MPS: stopped the private control daemon (pid {})", pid);
    }
  }
  if (!session_dir_.empty()) {
    if (!result.ok()) {
      // The daemon did not go: its directory stays, so the next `--mps on` run can try again.
      return MakeError(result.code(), fmt::format("{}; {} left for the next --mps on run to clean up", result.message(), session_dir_));
    }
    std::error_code ec;
    fs::remove_all(session_dir_, ec);
    if (ec) result = MakeError(StatusCode::kIoError, fmt::format("{}: cannot remove: {}", session_dir_, ec.message()));
  }
  return result;
}

}  // namespace vidscan::ipc
