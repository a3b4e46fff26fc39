#include "infer/algorithm_table.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include <fmt/format.h>

namespace vidscan::infer {
namespace {
constexpr int kTableVersion = 1;
}  // namespace

std::optional<ConvAlgorithm> ConvAlgorithmTable::Find(const std::string& key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

void ConvAlgorithmTable::Record(const std::string& key, ConvAlgorithm choice) { entries_.emplace(key, choice); }

Status ConvAlgorithmTable::Load() {
  entries_.clear();
  std::ifstream in(path_);
  if (!in) {
    if (!std::filesystem::exists(path_)) return Status::Ok();
    return MakeError(StatusCode::kIoError, fmt::format("{}: cannot read: {}", path_, std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  auto bad = [&](const std::string& why) {
    return MakeError(StatusCode::kCorruptData,
                     fmt::format("{}: not a cuDNN algorithm table ({}); remove it to start a new one", path_, why));
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (j.value("version", 0) != kTableVersion) return bad("unknown version");
  if (!j.contains("convolutions") || !j["convolutions"].is_object()) return bad("no \"convolutions\" object");
  for (const auto& [key, value] : j["convolutions"].items()) {
    if (!value.is_object() || !value.contains("algo") || !value.contains("math") || !value["algo"].is_number_integer() ||
        !value["math"].is_number_integer()) {
      return bad("entry " + key + " is not {\"algo\": int, \"math\": int}");
    }
    entries_[key] = ConvAlgorithm{value["algo"].get<int>(), value["math"].get<int>()};
  }
  return Status::Ok();
}

Status ConvAlgorithmTable::Save() const {
  nlohmann::json j = {{"version", kTableVersion}, {"convolutions", nlohmann::json::object()}};
  for (const auto& [key, choice] : entries_) j["convolutions"][key] = {{"algo", choice.algo}, {"math", choice.math}};
  const std::string temp = fmt::format("{}.tmp.{}", path_, getpid());
  {
    std::ofstream out(temp, std::ios::trunc);
    out << j.dump(1) << "\n";
    out.flush();
    if (!out) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot write: {}", temp, std::strerror(errno)));
  }
  if (std::rename(temp.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(temp.c_str());
    return MakeError(StatusCode::kIoError, fmt::format("rename {} -> {}: {}", temp, path_, std::strerror(err)));
  }
  return Status::Ok();
}

ConvAlgorithmTable::FileLock& ConvAlgorithmTable::FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

ConvAlgorithmTable::FileLock::~FileLock() {
  if (fd_ >= 0) close(fd_);  // closing the descriptor releases the flock
}

Expected<ConvAlgorithmTable::FileLock> ConvAlgorithmTable::Lock() const {
  const std::string lock_path = path_ + ".lock";
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot open: {}", lock_path, std::strerror(errno)));
  FileLock lock(fd);
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) return MakeError(StatusCode::kIoError, fmt::format("flock {}: {}", lock_path, std::strerror(errno)));
  }
  return lock;
}

}  // namespace vidscan::infer
