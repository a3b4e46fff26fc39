#include "ipc/shm_region.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <utility>

#include <fmt/format.h>

namespace vidscan::ipc {
namespace {

// glibc's shm_open puts objects here; listing it is the only way to find a dead job's objects.
constexpr const char* kShmDir = "/dev/shm";

std::string ErrnoText(int err) { return std::strerror(err); }

Status CheckName(const std::string& name) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 255) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("shared memory name '{}' must be '/' and up to 254 characters without '/'", name));
  }
  return Status::Ok();
}

// Whether a process is gone for our purposes: no such pid, or a zombie (it has exited; its workers were
// killed by PR_SET_PDEATHSIG when it did).
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  if (!stat) return false;  // no /proc: trust kill()
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
  size_t close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] == 'Z';
}

}  // namespace

Expected<std::string> ShmJobPrefix(pid_t supervisor_pid, std::string_view tag) {
  if (tag.empty() || tag.size() > 64) {
    return MakeError(StatusCode::kInvalidArgument, "shared memory job tag must have 1 to 64 characters");
  }
  for (char c : tag) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
    if (!ok) {
      return MakeError(StatusCode::kInvalidArgument,
                       fmt::format("shared memory job tag '{}' may hold only letters, digits, '.' and '_'", tag));
    }
  }
  return fmt::format("/vidscan-{}-{}-{}-", getuid(), supervisor_pid, tag);
}

Expected<std::string> ShmName(pid_t supervisor_pid, std::string_view tag, std::string_view what) {
  VS_ASSIGN_OR_RETURN(std::string prefix, ShmJobPrefix(supervisor_pid, tag));
  std::string name = prefix + std::string(what);
  VS_RETURN_IF_ERROR(CheckName(name));
  return name;
}

Expected<ShmRegion> ShmRegion::Create(const std::string& name, size_t bytes) {
  VS_RETURN_IF_ERROR(CheckName(name));
  if (bytes == 0) return MakeError(StatusCode::kInvalidArgument, fmt::format("shm {}: size 0", name));
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    return MakeError(err == EEXIST ? StatusCode::kInvalidArgument : StatusCode::kIoError,
                     fmt::format("shm_open({}, O_CREAT|O_EXCL): {}", name, ErrnoText(err)));
  }
  ShmRegion region;
  region.name_ = name;
  region.owns_name_ = true;  // from here on, any failure unlinks the half-made object
  // The umask may have narrowed 0600 further, never widened it; fchmod makes the mode exactly 0600.
  if (fchmod(fd, 0600) != 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    int err = errno;
    close(fd);
    return MakeError(StatusCode::kIoError, fmt::format("shm {}: ftruncate({}): {}", name, bytes, ErrnoText(err)));
  }
  // tmpfs allocates on first touch; reserving now turns "out of /dev/shm" (64 MiB in a default Docker
  // container) into an error here instead of a SIGBUS in the middle of a frame.
  if (int err = posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0 && err != EOPNOTSUPP && err != EINVAL) {
    close(fd);
    return MakeError(err == ENOSPC ? StatusCode::kOutOfMemory : StatusCode::kIoError,
                     fmt::format("shm {}: reserving {} bytes: {}", name, bytes, ErrnoText(err)));
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (data == MAP_FAILED) {
    return MakeError(StatusCode::kIoError, fmt::format("mmap shm {} ({} bytes): {}", name, bytes, ErrnoText(err)));
  }
  region.data_ = static_cast<std::byte*>(data);
  region.size_ = bytes;
  return region;
}

Expected<ShmRegion> ShmRegion::Open(const std::string& name) {
  VS_RETURN_IF_ERROR(CheckName(name));
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    return MakeError(err == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                     fmt::format("shm_open({}): {}", name, ErrnoText(err)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    int err = errno;
    close(fd);
    return MakeError(StatusCode::kIoError, fmt::format("shm {}: empty or unreadable ({})", name, ErrnoText(err)));
  }
  size_t bytes = static_cast<size_t>(st.st_size);
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (data == MAP_FAILED) {
    return MakeError(StatusCode::kIoError, fmt::format("mmap shm {} ({} bytes): {}", name, bytes, ErrnoText(err)));
  }
  ShmRegion region;
  region.name_ = name;
  region.data_ = static_cast<std::byte*>(data);
  region.size_ = bytes;
  return region;
}

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owns_name_(std::exchange(other.owns_name_, false)) {}

ShmRegion& ShmRegion::operator=(ShmRegion&& other) noexcept {
  if (this != &other) {
    Reset();
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owns_name_ = std::exchange(other.owns_name_, false);
  }
  return *this;
}

ShmRegion::~ShmRegion() { Reset(); }

void ShmRegion::Reset() {
  if (data_) munmap(data_, size_);
  if (owns_name_) shm_unlink(name_.c_str());
  data_ = nullptr;
  size_ = 0;
  owns_name_ = false;
}

Status ShmRegion::Unlink() {
  owns_name_ = false;
  return UnlinkShm(name_);
}

Status UnlinkShm(const std::string& name) {
  if (shm_unlink(name.c_str()) != 0 && errno != ENOENT) {
    return MakeError(StatusCode::kIoError, fmt::format("shm_unlink({}): {}", name, ErrnoText(errno)));
  }
  return Status::Ok();
}

std::vector<std::string> ListShm(std::string_view prefix) {
  std::vector<std::string> names;
  std::string_view bare = prefix.starts_with('/') ? prefix.substr(1) : prefix;
  DIR* dir = opendir(kShmDir);
  if (!dir) return names;
  while (dirent* entry = readdir(dir)) {
    std::string_view entry_name = entry->d_name;
    if (entry_name.starts_with(bare)) names.push_back("/" + std::string(entry_name));
  }
  closedir(dir);
  return names;
}

std::vector<std::string> RemoveStaleShm() {
  std::vector<std::string> removed;
  const std::string mine = fmt::format("vidscan-{}-", getuid());
  int dir_fd = open(kShmDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return removed;
  for (const std::string& name : ListShm("/" + mine)) {
    std::string_view rest = std::string_view(name).substr(1 + mine.size());
    pid_t pid = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (ec != std::errc() || pid <= 0 || end == rest.data() + rest.size() || *end != '-') continue;
    if (pid == getpid() || !ProcessGone(pid)) continue;
    // The uid in the name is only a claim; the file's owner is the truth (/dev/shm is world-writable).
    struct stat st {};
    if (fstatat(dir_fd, name.c_str() + 1, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_uid != getuid()) continue;
    if (shm_unlink(name.c_str()) == 0) removed.push_back(name);
  }
  close(dir_fd);
  return removed;
}

}  // namespace vidscan::ipc
