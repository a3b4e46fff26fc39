#include "support/test_support.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>

extern "C" {
#include <libavutil/adler32.h>
}

namespace fs = std::filesystem;

namespace vidscan::testing {

std::string DataDir() {
  if (const char* env = std::getenv("VIDSCAN_DATA_DIR"); env && *env) return env;
  return (fs::path(VIDSCAN_SOURCE_DIR) / ".." / "shared" / "data").lexically_normal().string();
}

std::optional<std::string> DataFile(const std::string& relative) {
  fs::path p = fs::path(DataDir()) / relative;
  if (!fs::exists(p)) return std::nullopt;
  return p.string();
}

std::string TempDir(const std::string& tag) {
  static int counter = 0;
  fs::path p = fs::temp_directory_path() / fmt::format("vidscan-test-{}-{}-{}", getpid(), tag, counter++);
  // A directory of this name is left by an earlier test process that had the same pid (pids wrap around):
  // its files must not pass for this test's outputs.
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p);
  return p.string();
}

int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return -1;
  std::array<char, 4096> buf;
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  if (output) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool HaveTool(const std::string& tool) {
  return RunCommand(fmt::format("command -v {} >/dev/null 2>&1", tool)) == 0;
}

std::string VidscanBinary() {
  if (const char* env = std::getenv("VIDSCAN_BIN"); env && *env) return env;
  // Test binaries live in build/tests/, the command in build/src/.
  fs::path self = fs::read_symlink("/proc/self/exe");
  return (self.parent_path().parent_path() / "src" / "vidscan").string();
}

std::string SourceDir() { return VIDSCAN_SOURCE_DIR; }

std::string EvalPython() {
  if (const char* env = std::getenv("VIDSCAN_EVAL_PYTHON"); env && *env) return env;
  fs::path venv = fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "eval-venv" / "bin" / "python";
  return fs::exists(venv) ? venv.string() : "python3";
}

std::optional<std::string> MakeVariant(const std::string& kind, std::string* why_missing) {
  static std::recursive_mutex mutex;
  static std::map<std::string, std::string> made;
  std::unique_lock lock(mutex);
  if (auto it = made.find(kind); it != made.end()) return it->second;
  if (const char* fixtures = std::getenv("VIDSCAN_FIXTURES_DIR"); fixtures && *fixtures) {
    // Pre-made variants (machines without ffmpeg, e.g. the GPU machine): scripts/make_gpu_fixtures.sh.
    fs::path p = fs::path(fixtures) / ("variant." + kind);
    if (!fs::exists(p)) {
      *why_missing = "variant " + kind + " is not among the fixtures in " + std::string(fixtures);
      return std::nullopt;
    }
    return made[kind] = p.string();
  }
  auto src = DataFile(kRealVideo);
  if (!src) {
    *why_missing = fmt::format("test data {} is absent from {}", kRealVideo, DataDir());
    return std::nullopt;
  }
  if (!HaveTool("ffmpeg")) {
    *why_missing = "'ffmpeg' is not installed (scripts/install-deps.sh installs it)";
    return std::nullopt;
  }
  static const std::string dir = TempDir("variants");
  // Each recipe names its own inputs: {src} is the real AVI, {mp4} the mp4 variant (the AVI's declared
  // 50 fps would otherwise be copied into the Matroska default duration).
  const std::map<std::string, std::string> recipes = {
      {"mp4", "-fflags +genpts -i {src} -map 0:v -c copy"},
      {"mkv", "-i {mp4} -i {src} -map 0:v -map 1:a -c copy"},
      {"ts", "-i {mp4} -map 0:v -c copy"},
      {"h264", "-i {mp4} -map 0:v -c copy -bsf:v h264_mp4toannexb -f h264"},
      {"hevc8.mp4", "-i {mp4} -map 0:v -t 3 -c:v libx265 -preset ultrafast -x265-params log-level=none -pix_fmt yuv420p"},
      {"hevc10.mkv", "-i {mp4} -map 0:v -t 3 -c:v libx265 -preset ultrafast -x265-params log-level=none -pix_fmt yuv420p10le"},
      {"mpeg4.avi", "-i {mp4} -map 0:v -t 1 -c:v mpeg4"},
      {"av1.mp4", "-i {mp4} -map 0:v -t 2 -vf scale=640:360 -c:v libsvtav1 -preset 12 -pix_fmt yuv420p"},
  };
  auto recipe = recipes.find(kind);
  if (recipe == recipes.end()) {
    *why_missing = "unknown variant " + kind;
    return std::nullopt;
  }
  std::string args = recipe->second;
  if (args.find("{mp4}") != std::string::npos) {
    auto mp4 = MakeVariant("mp4", why_missing);
    if (!mp4) return std::nullopt;
    args.replace(args.find("{mp4}"), 5, "'" + *mp4 + "'");
  }
  if (auto pos = args.find("{src}"); pos != std::string::npos) args.replace(pos, 5, "'" + *src + "'");
  std::string out = (fs::path(dir) / ("variant." + kind)).string();
  std::string cmd = fmt::format("ffmpeg -nostdin -v error -y {} '{}' 2>&1", args, out);
  std::string log;
  if (RunCommand(cmd, &log) != 0) {
    *why_missing = "ffmpeg could not make the variant: " + log;
    ADD_FAILURE() << kind << ": " << *why_missing;  // tools and data are there: this is a real failure
    return std::nullopt;
  }
  made[kind] = out;
  return out;
}

std::optional<std::string> CorruptSetDir(std::string* why_missing) {
  if (const char* fixtures = std::getenv("VIDSCAN_FIXTURES_DIR"); fixtures && *fixtures) {
    fs::path dir = fs::path(fixtures) / "corrupt";
    if (fs::exists(dir / "manifest.json")) return dir.string();
    *why_missing = "no corrupt set among the fixtures in " + std::string(fixtures);
    return std::nullopt;
  }
  auto source = DataFile(kRealVideo);
  if (!source) {
    *why_missing = fmt::format("test data {} is absent from {}", kRealVideo, DataDir());
    return std::nullopt;
  }
  for (const char* tool : {"ffmpeg", "python3"}) {
    if (!HaveTool(tool)) {
      *why_missing = fmt::format("'{}' is not installed (scripts/install-deps.sh installs it)", tool);
      return std::nullopt;
    }
  }
  std::string dir = TempDir("corrupt-set");
  std::string script = std::string(VIDSCAN_SOURCE_DIR) + "/scripts/make_corrupt_set.py";
  std::string log;
  if (RunCommand(fmt::format("python3 '{}' '{}' --source '{}' 2>&1", script, dir, *source), &log) != 0) {
    ADD_FAILURE() << "make_corrupt_set.py failed: " << log;
    *why_missing = "make_corrupt_set.py failed";
    return std::nullopt;
  }
  return dir;
}

void CheckCorruptSetThroughBench(const std::string& dir, const std::string& device) {
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(dir + "/manifest.json"));
  ASSERT_GE(manifest.size(), 20u);
  std::string files;
  for (const auto& m : manifest) files += " '" + dir + "/" + m["file"].get<std::string>() + "'";
  std::string out;
  int rc = RunCommand(
      fmt::format("'{}' bench decode --device {} --sessions 2 --json {} 2>/dev/null", VidscanBinary(), device, files), &out);
  EXPECT_EQ(rc, 3) << "exit status 3 = some files failed";
  nlohmann::json result = nlohmann::json::parse(out);
  std::map<std::string, std::string> errors;
  for (const auto& e : result["errors"]) errors[e["path"]] = e["error"];
  int64_t good_frames = 0;
  size_t bad_files = 0;
  for (const auto& m : manifest) {
    std::string path = dir + "/" + m["file"].get<std::string>();
    if (m["expect"] == "error") {
      ++bad_files;
      EXPECT_TRUE(errors.count(path)) << path << " (" << m["why"] << ") was not reported on " << device;
      if (errors.count(path)) EXPECT_NE(errors[path].find(path), std::string::npos) << "names the file: " << errors[path];
    } else {
      EXPECT_FALSE(errors.count(path)) << path << ": " << errors[path];
      good_frames += m["frames"].get<int64_t>();
    }
  }
  EXPECT_EQ(errors.size(), bad_files);
  // Good files decode fully: their frames are all in the total (bad files add their partial frames).
  EXPECT_GE(result["frames_decoded"].get<int64_t>(), good_frames);
  std::printf("%s: %zu bad files reported, %zu good files decoded, %lld frames\n", device.c_str(), errors.size(),
              manifest.size() - bad_files, static_cast<long long>(result["frames_decoded"].get<int64_t>()));
}

PlaneHashes HashFrame(const FrameInfo& info, const uint8_t* luma, const uint8_t* chroma, int luma_pitch,
                      int chroma_pitch) {
  const int bps = BytesPerSample(info.format);
  const int shift = info.format == PixelFormat::kP016 ? 6 : 0;  // FFmpeg's 10-bit planes hold the plain value
  const int cw = (info.width + 1) / 2, ch = info.chroma_height();
  PlaneHashes h;
  h.y = h.u = h.v = 0;  // showinfo starts each plane's Adler-32 at 0, not at the usual 1
  std::vector<uint8_t> row(static_cast<size_t>(info.width) * bps);
  for (int y = 0; y < info.height; ++y) {
    const uint8_t* src = luma + static_cast<size_t>(y) * luma_pitch;
    if (shift) {
      for (int x = 0; x < info.width; ++x) {
        uint16_t v = reinterpret_cast<const uint16_t*>(src)[x] >> shift;
        std::memcpy(&row[2 * x], &v, 2);
      }
      src = row.data();
    }
    h.y = av_adler32_update(h.y, src, info.width * bps);
  }
  std::vector<uint8_t> u(static_cast<size_t>(cw) * bps), v(static_cast<size_t>(cw) * bps);
  for (int y = 0; y < ch; ++y) {
    const uint8_t* src = chroma + static_cast<size_t>(y) * chroma_pitch;
    for (int x = 0; x < cw; ++x) {
      if (bps == 1) {
        u[x] = src[2 * x];
        v[x] = src[2 * x + 1];
      } else {
        const auto* s16 = reinterpret_cast<const uint16_t*>(src);
        uint16_t uu = s16[2 * x] >> shift, vv = s16[2 * x + 1] >> shift;
        std::memcpy(&u[2 * x], &uu, 2);
        std::memcpy(&v[2 * x], &vv, 2);
      }
    }
    h.u = av_adler32_update(h.u, u.data(), u.size());
    h.v = av_adler32_update(h.v, v.data(), v.size());
  }
  return h;
}

std::vector<PlaneHashes> FfmpegPlaneHashes(const std::string& path) {
  std::string log;
  if (!HaveTool("ffmpeg") && fs::exists(path + ".showinfo")) {
    // Machines without ffmpeg (the GPU machine) read the log saved when the fixture was made.
    std::ifstream in(path + ".showinfo");
    log.assign(std::istreambuf_iterator<char>(in), {});
  } else RunCommand(fmt::format("ffmpeg -nostdin -hide_banner -i '{}' -map 0:v:0 -fps_mode passthrough "
                         "-vf showinfo -f null - 2>&1",
                         path),
             &log);
  std::vector<PlaneHashes> out;
  static const std::regex re(R"(plane_checksum:\[([0-9A-Fa-f]+) ([0-9A-Fa-f]+) ([0-9A-Fa-f]+)\])");
  std::istringstream lines(log);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      out.push_back({static_cast<uint32_t>(std::stoul(m[1], nullptr, 16)),
                     static_cast<uint32_t>(std::stoul(m[2], nullptr, 16)),
                     static_cast<uint32_t>(std::stoul(m[3], nullptr, 16))});
    }
  }
  return out;
}

}  // namespace vidscan::testing
