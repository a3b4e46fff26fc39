#include "media/sampling.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "media/demuxer.h"

namespace vidscan {

Expected<SamplingPolicy> SamplingPolicy::Parse(const std::string& text) {
  SamplingPolicy p;
  auto bad = [&](const std::string& why) {
    return MakeError(StatusCode::kInvalidArgument,
                     fmt::format("--sample '{}': {} (use all, every:N, fps:X or keyframes)", text, why));
  };
  if (text == "all") return p;
  if (text == "keyframes") {
    p.mode = Mode::kKeyframes;
    return p;
  }
  auto colon = text.find(':');
  if (colon == std::string::npos) return bad("unknown mode");
  std::string kind = text.substr(0, colon);
  std::string value = text.substr(colon + 1);
  char* end = nullptr;
  if (kind == "every") {
    long n = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || n < 1 || n > 1000000) return bad("N must be a whole number >= 1");
    p.mode = Mode::kEveryNth;
    p.every_nth = static_cast<int>(n);
    return p;
  }
  if (kind == "fps") {
    double fps = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(fps > 0) || fps > 1000) return bad("X must be a number > 0");
    p.mode = Mode::kTargetFps;
    p.target_fps = fps;
    return p;
  }
  return bad("unknown mode");
}

std::string SamplingPolicy::ToString() const {
  switch (mode) {
    case Mode::kAll: return "all";
    case Mode::kEveryNth: return fmt::format("every:{}", every_nth);
    case Mode::kTargetFps: return fmt::format("fps:{:g}", target_fps);
    case Mode::kKeyframes: return "keyframes";
  }
  return "all";
}

bool FrameSampler::Keep(int64_t frame_index, double pts_seconds, bool keyframe) {
  switch (policy_.mode) {
    case SamplingPolicy::Mode::kAll: return true;
    case SamplingPolicy::Mode::kEveryNth: return frame_index % policy_.every_nth == 0;
    case SamplingPolicy::Mode::kKeyframes: return keyframe;
    case SamplingPolicy::Mode::kTargetFps: {
      // One frame per 1/target_fps interval: the first frame whose time falls in a new interval. A small
      // epsilon keeps frames at exact multiples (0.2 s at 5 fps) in the interval they start.
      int64_t bucket = static_cast<int64_t>(std::floor(pts_seconds * policy_.target_fps + 1e-6));
      if (bucket <= last_bucket_) return false;
      last_bucket_ = bucket;
      return true;
    }
  }
  return true;
}

double FrameClock::TicksToSeconds(int64_t ticks) const {
  return static_cast<double>(ticks) * tb_num_ / tb_den_;
}

double FrameClock::Seconds(int64_t pts, int64_t frame_index) const {
  if (pts != EncodedPacket::kNoTimestamp) return TicksToSeconds(pts - start_pts_);
  return fps_ > 0 ? static_cast<double>(frame_index) / fps_ : 0.0;
}

int64_t FrameClock::IndexAt(double seconds) const {
  return fps_ > 0 ? std::llround(seconds * fps_) : 0;
}

}  // namespace vidscan
