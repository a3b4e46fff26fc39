// Shared test helpers: where the real data lives, generated fixtures, GPU and tool checks that skip with
// a reason instead of failing.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/frame.h"

namespace vidscan::testing {

// ../shared/data beside the repository, or $VIDSCAN_DATA_DIR (the GPU machine gets a carried copy).
std::string DataDir();
// Full path of a data file, or nullopt when it is absent.
std::optional<std::string> DataFile(const std::string& relative);
// The real H.264 test video.
inline const char* kRealVideo = "videos/people_walking_720p_h264.avi";

// A fresh directory under the system temp dir, removed by nobody: tests are small and names unique.
std::string TempDir(const std::string& tag);
// Runs a shell command; returns its exit status and stdout.
int RunCommand(const std::string& command, std::string* output = nullptr);
bool HaveTool(const std::string& tool);  // on PATH
// A whole file's bytes ("" when it cannot be read), and its lines.
std::string ReadFile(const std::string& path);
std::vector<std::string> ReadLines(const std::string& path);
// Path of the built `vidscan` binary, or $VIDSCAN_BIN.
std::string VidscanBinary();
// The repository root (for tools/ scripts).
std::string SourceDir();
// The Python for tools/ scripts: $VIDSCAN_EVAL_PYTHON, else the venv scripts/setup-eval-env.sh makes beside
// the tests (build/eval-venv), else python3.
std::string EvalPython();

// Variants of the real video made with Debian's ffmpeg (cached per run): "mp4", "mkv", "ts", "h264"
// (raw Annex-B), "hevc8.mp4", "hevc10.mkv", "mpeg4.avi", "av1.mp4" (a codec vidscan does not decode). nullopt when
// the data or ffmpeg is missing.
std::optional<std::string> MakeVariant(const std::string& kind, std::string* why_missing);

// The corrupt-input set of scripts/make_corrupt_set.py: generated here, or pre-made among the fixtures.
std::optional<std::string> CorruptSetDir(std::string* why_missing);
// Runs the whole set through `vidscan bench decode --device DEVICE`: one error per bad file naming it,
// good files fully decoded, exit status 3.
void CheckCorruptSetThroughBench(const std::string& dir, const std::string& device);

// Adler-32 of each plane's visible bytes, planes as FFmpeg lays out yuv420p (Y, U, V): the checksum
// FFmpeg's showinfo filter prints, computed from an NV12/P016 frame in host memory.
struct PlaneHashes {
  uint32_t y = 0, u = 0, v = 0;
  bool operator==(const PlaneHashes&) const = default;
};
PlaneHashes HashFrame(const FrameInfo& info, const uint8_t* luma, const uint8_t* chroma, int luma_pitch,
                      int chroma_pitch);
// Per-frame plane checksums from `ffmpeg -vf showinfo` (FFmpeg's own software decode); without ffmpeg,
// from PATH.showinfo saved beside a fixture by scripts/make_gpu_fixtures.sh.
std::vector<PlaneHashes> FfmpegPlaneHashes(const std::string& path);

}  // namespace vidscan::testing

#define VS_REQUIRE_DATA(var, relative)                                                                  \
  std::string var;                                                                                      \
  do {                                                                                                  \
    auto vs_path_ = ::vidscan::testing::DataFile(relative);                                             \
    if (!vs_path_) GTEST_SKIP() << "test data " << relative << " is absent from " << ::vidscan::testing::DataDir(); \
    var = *vs_path_;                                                                                    \
  } while (0)

// Skips unless EvalPython() imports onnxruntime and numpy (the ONNX Runtime reference scripts in tools/).
#define VS_REQUIRE_ORT_PYTHON()                                                                              \
  if (::vidscan::testing::RunCommand(::vidscan::testing::EvalPython() +                                        \
                                     " -c 'import onnxruntime, numpy' 2>/dev/null") != 0)                     \
  GTEST_SKIP() << "onnxruntime is not importable by " << ::vidscan::testing::EvalPython()                      \
               << " (scripts/setup-eval-env.sh installs it)"

#define VS_REQUIRE_TOOL(tool) \
  if (!::vidscan::testing::HaveTool(tool)) GTEST_SKIP() << "'" << tool << "' is not installed (scripts/install-deps.sh installs it)"
