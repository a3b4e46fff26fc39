#include "sink/mot_format.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace vidscan {
namespace {

// Splits on commas and whitespace; empty fields between two commas are kept as empty strings so that
// "1,,2" is reported instead of silently shifting the columns.
std::vector<std::string_view> SplitFields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  const size_t n = line.size();
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (i < n && is_space(line[i])) ++i;
  while (i < n) {
    size_t start = i;
    while (i < n && line[i] != ',' && !is_space(line[i])) ++i;
    fields.push_back(line.substr(start, i - start));
    while (i < n && is_space(line[i])) ++i;
    if (i < n && line[i] == ',') {
      ++i;
      while (i < n && is_space(line[i])) ++i;
      if (i == n) fields.push_back({});  // trailing comma: an empty last field
    }
  }
  return fields;
}

bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  std::string tmp(s);  // strtod needs a terminator; from_chars for double is not in every libstdc++ we use
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(tmp.c_str(), &end);
  return end == tmp.c_str() + tmp.size() && errno == 0 && std::isfinite(*out);
}

}  // namespace

Expected<std::vector<MotRecord>> ParseMotText(const std::string& text, const std::string& source_name) {
  std::vector<MotRecord> records;
  size_t pos = 0;
  int line_number = 0;
  static const char* kNames[] = {"frame", "id", "x", "y", "w", "h", "score"};
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line(text.data() + pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    auto fields = SplitFields(line);
    if (fields.empty()) continue;
    auto error = [&](const std::string& what) {
      return MakeError(StatusCode::kCorruptData, fmt::format("{}:{}: {}", source_name, line_number, what));
    };
    if (fields.size() < 7) {
      return error(fmt::format("expected at least 7 fields (frame,id,x,y,w,h,score), found {}", fields.size()));
    }
    double v[7];
    for (int k = 0; k < 7; ++k) {
      if (!ParseDouble(fields[k], &v[k])) {
        return error(fmt::format("field {} ({}) is not a finite number: '{}'", k + 1, kNames[k], fields[k]));
      }
    }
    if (v[0] < 1 || v[0] != std::floor(v[0])) return error(fmt::format("frame must be an integer >= 1, got {}", fields[0]));
    if (v[1] != std::floor(v[1])) return error(fmt::format("id must be an integer, got {}", fields[1]));
    if (v[4] < 0 || v[5] < 0) return error(fmt::format("negative box size {}x{}", fields[4], fields[5]));
    records.push_back({static_cast<int64_t>(v[0]), static_cast<int64_t>(v[1]), static_cast<float>(v[2]),
                       static_cast<float>(v[3]), static_cast<float>(v[4]), static_cast<float>(v[5]),
                       static_cast<float>(v[6])});
  }
  return records;
}

Expected<std::vector<MotRecord>> ReadMotFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return MakeError(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                     fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return MakeError(StatusCode::kIoError, fmt::format("{}: read failed", path));
  return ParseMotText(buf.str(), path);
}

std::string FormatMotLine(const MotRecord& r) {
  return fmt::format("{},{},{:.2f},{:.2f},{:.2f},{:.2f},{:.4f},-1,-1,-1\n", r.frame, r.id, r.x, r.y, r.w, r.h,
                     r.score);
}

Expected<MotWriter> MotWriter::Open(const std::string& path) {
  if (path == "-") return MotWriter(stdout, "<stdout>", false);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return MakeError(StatusCode::kIoError, fmt::format("{}: cannot create: {}", path, std::strerror(errno)));
  return MotWriter(f, path, true);
}

MotWriter::MotWriter(MotWriter&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)), path_(std::move(other.path_)), owns_(other.owns_) {}

MotWriter::~MotWriter() { (void)Close(); }

Status MotWriter::Write(const MotRecord& record) {
  if (!file_) return MakeError(StatusCode::kInternal, path_ + ": write after close");
  const std::string line = FormatMotLine(record);
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
    return MakeError(StatusCode::kIoError, fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  return Status::Ok();
}

Status MotWriter::Close() {
  if (!file_) return Status::Ok();
  std::FILE* f = std::exchange(file_, nullptr);
  const bool flushed = std::fflush(f) == 0;
  const bool closed = owns_ ? std::fclose(f) == 0 : true;
  if (!flushed || !closed) {
    return MakeError(StatusCode::kIoError, fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  return Status::Ok();
}

}  // namespace vidscan
