#include "job/inputs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <system_error>
#include <unordered_set>

#include "core/log.h"
#include "media/sampling.h"

namespace fs = std::filesystem;

namespace vidscan {
namespace {

constexpr size_t kMaxKeyLength = 120;
constexpr const char* kArgumentOrigin = "argument";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// FNV-1a, 64 bits: stable across compilers and runs (std::hash is neither), folded to 8 hex digits.
std::string ShortHash(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:08x}", static_cast<uint32_t>(h ^ (h >> 32)));
}

std::string AbsolutePathOf(const fs::path& p) {
  std::error_code ec;
  fs::path canonical = fs::canonical(p, ec);
  if (!ec) return canonical.string();
  return fs::absolute(p, ec).lexically_normal().string();
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

struct PendingInput {
  VideoInput input;
  std::string base_key;  // sanitised, before collisions are resolved
  bool explicit_key = false;
};

// Per-entry options a manifest line may carry.
struct EntryOptions {
  std::string sampling;
  std::string key;  // explicit key, "" = derived
};

class Collector {
 public:
  explicit Collector(const InputOptions& options) {
    for (const std::string& e : options.extensions.empty() ? DefaultVideoExtensions() : options.extensions) {
      std::string ext = Lower(e);
      if (!ext.empty() && ext.front() == '.') ext.erase(0, 1);
      extensions_.insert(ext);
    }
  }

  // A path named by an argument, a manifest line or stdin: a file, a directory, or something missing.
  Status AddNamed(const fs::path& path, const std::string& origin, const EntryOptions& entry) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (fs::is_directory(st)) {
      if (!entry.key.empty()) {
        return MakeError(StatusCode::kInvalidArgument,
                         fmt::format("{}: \"key\" names one video, but {} is a directory", origin, path.string()));
      }
      const size_t before = items_.size();
      std::set<std::string> visited;
      // Files found under a directory argument name that directory; under a manifest line, the line.
      WalkDirectory(path, fs::path(), origin == kArgumentOrigin ? path.string() : origin, entry.sampling, visited);
      if (items_.size() == before) spdlog::warn("{}: no video files (extensions: {})", path.string(), ExtensionList());
      return Status::Ok();
    }
    std::string error;
    if (ec || !fs::exists(st)) {
      error = fmt::format("{}: {}", path.string(), ec ? ec.message() : std::strerror(ENOENT));
    } else if (!fs::is_regular_file(st)) {
      error = fmt::format("{}: not a regular file or directory", path.string());
    } else {
      error = ReadabilityError(path);
    }
    Add(path, path.filename().string(), origin, entry, std::move(error));
    return Status::Ok();
  }

  std::vector<VideoInput> Finish() &&;
  bool empty() const { return items_.empty(); }

 private:
  std::string ExtensionList() const {
    std::string out;
    for (const std::string& e : extensions_) out += (out.empty() ? "" : " ") + e;
    return out;
  }

  static std::string ReadabilityError(const fs::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fmt::format("{}: cannot open: {}", path.string(), std::strerror(errno));
    ::close(fd);
    return {};
  }

  bool WantedExtension(const fs::path& p) const {
    std::string ext = p.extension().string();
    if (ext.size() < 2) return false;
    return extensions_.contains(Lower(ext.substr(1)));
  }

  // Sorted per level, depth first; `visited` holds canonical directories so that a symlink loop ends.
  void WalkDirectory(const fs::path& root, const fs::path& relative, const std::string& origin,
                     const std::string& sampling, std::set<std::string>& visited) {
    const fs::path dir = relative.empty() ? root : root / relative;
    std::error_code ec;
    if (!visited.insert(AbsolutePathOf(dir)).second) return;
    std::vector<std::string> names;
    fs::directory_iterator it(dir, ec);
    for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (!name.empty() && name.front() != '.') names.push_back(std::move(name));
    }
    if (ec) {
      // An unreadable folder is recorded like an unreadable video: the job reports it and goes on.
      const std::string key_source = relative.empty() ? root.filename().string() : relative.generic_string();
      Add(dir, key_source, origin, EntryOptions{sampling, ""},
          fmt::format("{}: cannot list directory: {}", dir.string(), ec.message()));
      return;
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const fs::path child_relative = relative / name;
      const fs::path child = root / child_relative;
      const fs::file_status st = fs::status(child, ec);
      if (!ec && fs::is_directory(st)) {
        WalkDirectory(root, child_relative, origin, sampling, visited);
        continue;
      }
      if (!WantedExtension(child)) continue;
      std::string error;
      if (ec || !fs::exists(st)) {
        error = fmt::format("{}: {}", child.string(), ec ? ec.message() : "broken symbolic link");
      } else if (!fs::is_regular_file(st)) {
        continue;  // a fifo or device named like a video is not one
      } else {
        error = ReadabilityError(child);
      }
      Add(child, child_relative.generic_string(), origin, EntryOptions{sampling, ""}, std::move(error));
    }
  }

  void Add(const fs::path& path, const std::string& key_source, const std::string& origin, const EntryOptions& entry,
           std::string error) {
    PendingInput p;
    p.input.path = path.lexically_normal().string();
    p.input.absolute_path = AbsolutePathOf(path);
    if (!seen_.insert(p.input.absolute_path).second) return;  // the first occurrence wins
    p.input.sampling = entry.sampling;
    p.input.origin = origin;
    p.input.error = std::move(error);
    p.explicit_key = !entry.key.empty();
    p.base_key = SanitizeKey(p.explicit_key ? entry.key : key_source);
    items_.push_back(std::move(p));
  }

  std::set<std::string> extensions_;
  std::unordered_set<std::string> seen_;
  std::vector<PendingInput> items_;
};

std::vector<VideoInput> Collector::Finish() && {
  std::map<std::string, int> group_size;  // by lower-case base key
  for (const PendingInput& p : items_) ++group_size[Lower(p.base_key)];

  // Explicit keys are taken first (the first claim of each wins), so derived keys step around them.
  std::set<std::string> taken;
  std::map<std::string, std::string> explicit_owner;  // lower key -> path of its owner
  std::vector<bool> keeps_explicit(items_.size(), false);
  for (size_t i = 0; i < items_.size(); ++i) {
    PendingInput& p = items_[i];
    if (!p.explicit_key) continue;
    auto [it, inserted] = explicit_owner.emplace(Lower(p.base_key), p.input.path);
    if (inserted) {
      keeps_explicit[i] = true;
      taken.insert(it->first);
    } else if (p.input.error.empty()) {
      p.input.error = fmt::format("{}: key '{}' is already used by {}", p.input.origin, p.base_key, it->second);
    }
  }

  std::vector<VideoInput> out;
  out.reserve(items_.size());
  for (size_t i = 0; i < items_.size(); ++i) {
    PendingInput& p = items_[i];
    std::string key = p.base_key;
    if (!keeps_explicit[i]) {
      if (group_size[Lower(p.base_key)] > 1) key += "-" + ShortHash(p.input.absolute_path);
      // Only a name that already looks like "<name>-<hash>" can still clash; a counter settles it.
      const std::string stem = key;
      for (int n = 2; taken.contains(Lower(key)); ++n) key = fmt::format("{}-{}", stem, n);
      taken.insert(Lower(key));
    }
    p.input.key = std::move(key);
    out.push_back(std::move(p.input));
  }
  return out;
}

// One manifest (or stdin) line: a path, or a JSON object {"path": ..., "sample": ..., "key": ...}.
Status AddManifestLine(Collector& collector, const std::string& line, const fs::path& base_dir,
                       const std::string& where) {
  auto bad = [&](const std::string& why) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("{}: {}", where, why));
  };
  std::string path_text;
  EntryOptions entry;
  if (line.front() == '{') {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return bad("not a valid JSON object");
    for (const auto& [name, value] : j.items()) {
      if (name != "path" && name != "sample" && name != "key") {
        return bad(fmt::format("unknown field \"{}\" (known: path, sample, key)", name));
      }
      if (!value.is_string()) return bad(fmt::format("\"{}\" must be a string", name));
    }
    path_text = j.value("path", "");
    if (path_text.empty()) return bad("no \"path\"");
    entry.sampling = j.value("sample", "");
    entry.key = j.value("key", "");
    if (j.contains("key") && entry.key.empty()) return bad("\"key\" is empty");
    if (j.contains("sample")) {
      auto policy = SamplingPolicy::Parse(entry.sampling);
      if (!policy.ok()) return bad(policy.status().message());
    }
  } else {
    path_text = line;
  }
  fs::path path(path_text);
  if (path.is_relative() && !base_dir.empty()) path = base_dir / path;
  return collector.AddNamed(path.lexically_normal(), where, entry);
}

Status AddManifestText(Collector& collector, std::istream& in, const fs::path& base_dir, const std::string& name) {
  std::string raw;
  int line_number = 0;
  while (std::getline(in, raw)) {
    ++line_number;
    std::string line = Trim(raw);
    if (line.empty() || line.front() == '#') continue;
    VS_RETURN_IF_ERROR(AddManifestLine(collector, line, base_dir, fmt::format("{}:{}", name, line_number)));
  }
  if (in.bad()) return MakeError(StatusCode::kIoError, fmt::format("{}: read failed", name));
  return Status::Ok();
}

Status AddManifestFile(Collector& collector, const std::string& manifest) {
  std::error_code ec;
  if (fs::is_directory(manifest, ec)) {
    return MakeError(StatusCode::kInvalidArgument, fmt::format("manifest {}: is a directory", manifest));
  }
  std::ifstream in(manifest);
  if (!in) {
    return MakeError(errno == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError,
                     fmt::format("manifest {}: cannot open: {}", manifest, std::strerror(errno)));
  }
  return AddManifestText(collector, in, fs::path(manifest).parent_path(), manifest);
}

}  // namespace

const std::vector<std::string>& DefaultVideoExtensions() {
  static const std::vector<std::string> kExtensions = {"mp4", "m4v",  "mov", "mkv", "webm", "avi",
                                                       "ts",  "m2ts", "mts", "mpg", "mpeg", "flv",
                                                       "h264", "264", "h265", "265", "hevc"};
  return kExtensions;
}

std::string SanitizeKey(std::string_view name) {
  std::string key;
  key.reserve(name.size());
  for (char c : name) {
    const bool safe = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    key += safe ? c : '_';
  }
  if (key.empty()) key = "_";
  if (key.front() == '.') key.front() = '_';  // no hidden folders, no "." or ".."
  if (key.size() > kMaxKeyLength) {
    // The hash keeps two long names that differ only at the end apart.
    key = key.substr(0, kMaxKeyLength - 9) + "-" + ShortHash(name);
  }
  return key;
}

Expected<std::vector<VideoInput>> CollectInputs(std::span<const std::string> args, const InputOptions& options,
                                                std::istream& stdin_stream) {
  Collector collector(options);
  bool stdin_read = false;
  for (const std::string& arg : args) {
    if (arg == "-") {
      if (stdin_read) continue;
      stdin_read = true;
      VS_RETURN_IF_ERROR(AddManifestText(collector, stdin_stream, fs::path(), "<stdin>"));
    } else if (arg.size() > 1 && arg.front() == '@') {
      VS_RETURN_IF_ERROR(AddManifestFile(collector, arg.substr(1)));
    } else if (arg.empty()) {
      return MakeError(StatusCode::kInvalidArgument, "an empty input path");
    } else {
      VS_RETURN_IF_ERROR(collector.AddNamed(fs::path(arg), kArgumentOrigin, {}));
    }
  }
  for (const std::string& manifest : options.manifests) VS_RETURN_IF_ERROR(AddManifestFile(collector, manifest));
  if (collector.empty()) {
    std::string extensions;
    for (const std::string& e : options.extensions.empty() ? DefaultVideoExtensions() : options.extensions) {
      extensions += (extensions.empty() ? "" : " ") + e;
    }
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("no videos to process: the inputs name no video files (directories are searched "
                                 "for the extensions {})",
                                 extensions));
  }
  return std::move(collector).Finish();
}

}  // namespace vidscan
