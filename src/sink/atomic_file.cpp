#include "sink/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

namespace fs = std::filesystem;

namespace vidscan {
namespace {

constexpr size_t kBufferBytes = 1 << 16;
constexpr std::string_view kPartialSuffix = ".partial";

Status ErrnoError(const std::string& path, const char* call, int err) {
  return MakeError(StatusCode::kIoError, fmt::format("{}: {} failed: {}", path, call, std::strerror(err)));
}

std::string DirectoryOf(const std::string& path) {
  std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

}  // namespace

std::string PartialPathFor(const std::string& final_path) {
  fs::path p(final_path);
  return (p.parent_path() / ("." + p.filename().string() + std::string(kPartialSuffix))).string();
}

bool IsPartialFileName(std::string_view name) {
  return name.size() > 1 + kPartialSuffix.size() && name.front() == '.' && name.ends_with(kPartialSuffix);
}

Status SyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(dir, "open (directory)", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems (and /proc-like ones) refuse fsync on directories; EINVAL means "nothing to do".
  if (rc != 0 && err != EINVAL) return ErrnoError(dir, "fsync (directory)", err);
  return Status::Ok();
}

Expected<AtomicFile> AtomicFile::Create(const std::string& final_path) {
  if (fs::path(final_path).filename().empty()) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("'{}': not a file path", final_path));
  }
  std::string temp_path = PartialPathFor(final_path);
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(temp_path, "create", errno);
  return AtomicFile(fd, final_path, std::move(temp_path));
}

AtomicFile::AtomicFile(int fd, std::string final_path, std::string temp_path)
    : fd_(fd), final_path_(std::move(final_path)), temp_path_(std::move(temp_path)) {
  buffer_.reserve(kBufferBytes);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      final_path_(std::move(other.final_path_)),
      temp_path_(std::move(other.temp_path_)),
      buffer_(std::move(other.buffer_)),
      committed_(other.committed_) {}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
  if (this != &other) {
    Abandon();
    fd_ = std::exchange(other.fd_, -1);
    final_path_ = std::move(other.final_path_);
    temp_path_ = std::move(other.temp_path_);
    buffer_ = std::move(other.buffer_);
    committed_ = other.committed_;
  }
  return *this;
}

AtomicFile::~AtomicFile() { Abandon(); }

void AtomicFile::Abandon() {
  if (fd_ < 0) return;
  ::close(std::exchange(fd_, -1));
  ::unlink(temp_path_.c_str());
  buffer_.clear();
}

Status AtomicFile::FlushBuffer() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(temp_path_, "write", errno);
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
  return Status::Ok();
}

Status AtomicFile::Write(std::string_view bytes) {
  if (fd_ < 0) {
    return MakeError(StatusCode::kInternal, fmt::format("{}: write after commit or abandon", final_path_));
  }
  if (buffer_.size() + bytes.size() > kBufferBytes) VS_RETURN_IF_ERROR(FlushBuffer());
  buffer_.append(bytes);
  if (buffer_.size() >= kBufferBytes) VS_RETURN_IF_ERROR(FlushBuffer());
  return Status::Ok();
}

Status AtomicFile::Commit() {
  if (fd_ < 0) {
    return MakeError(StatusCode::kInternal, fmt::format("{}: commit after commit or abandon", final_path_));
  }
  Status status = FlushBuffer();
  // The data must be on disk before the rename makes it visible: otherwise a power loss can leave the final
  // name pointing at an empty or partly written file.
  if (status.ok() && ::fsync(fd_) != 0) status = ErrnoError(temp_path_, "fsync", errno);
  if (!status.ok()) {
    Abandon();
    return status;
  }
  if (::close(std::exchange(fd_, -1)) != 0) {
    int err = errno;
    ::unlink(temp_path_.c_str());
    return ErrnoError(temp_path_, "close", err);
  }
  if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_path_.c_str());
    return MakeError(StatusCode::kIoError,
                     fmt::format("{}: rename to {} failed: {}", temp_path_, final_path_, std::strerror(err)));
  }
  committed_ = true;
  // The rename lives in the directory; without this fsync a power loss could undo it.
  return SyncDirectory(DirectoryOf(final_path_));
}

Expected<int> RemoveStalePartialFiles(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot list directory: {}", dir, ec.message()));
  int removed = 0;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (!IsPartialFileName(it->path().filename().string())) continue;
    if (!it->is_regular_file(ec)) continue;
    if (fs::remove(it->path(), ec)) ++removed;
    if (ec) {
      return MakeError(StatusCode::kIoError, fmt::format("{}: cannot remove: {}", it->path().string(), ec.message()));
    }
  }
  if (ec) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot list directory: {}", dir, ec.message()));
  return removed;
}

}  // namespace vidscan
