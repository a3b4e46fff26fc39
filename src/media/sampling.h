// Which decoded frames go on to analysis. Deciding before the frame is copied or converted saves that
// work; keyframes-only also lets the decoder skip every other packet.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace vidscan {

struct SamplingPolicy {
  enum class Mode : uint8_t { kAll, kEveryNth, kTargetFps, kKeyframes };
  Mode mode = Mode::kAll;
  int every_nth = 1;        // kEveryNth: frames 0, n, 2n, ...
  double target_fps = 0;    // kTargetFps: at most this many frames per second of video, evenly spaced

  // "all", "every:N", "fps:X", "keyframes".
  static Expected<SamplingPolicy> Parse(const std::string& text);
  std::string ToString() const;
  bool keyframes_only() const { return mode == Mode::kKeyframes; }
};

// Stateful per stream: frames must be offered in display order.
class FrameSampler {
 public:
  explicit FrameSampler(SamplingPolicy policy) : policy_(policy) {}
  bool Keep(int64_t frame_index, double pts_seconds, bool keyframe);

 private:
  SamplingPolicy policy_;
  int64_t last_bucket_ = INT64_MIN;
};

// Presentation times for one stream. Containers without presentation timestamps (AVI stores only decode
// times) get times from the display-order frame index and the stream's real frame rate, so the CPU and
// GPU decoders agree on every frame's time.
class FrameClock {
 public:
  FrameClock(double fps, int time_base_num, int time_base_den, int64_t start_pts)
      : fps_(fps), tb_num_(time_base_num), tb_den_(time_base_den), start_pts_(start_pts) {}
  // pts may be EncodedPacket::kNoTimestamp.
  double Seconds(int64_t pts, int64_t frame_index) const;
  // The display index of a frame known only by its time (keyframes-only decoding).
  int64_t IndexAt(double seconds) const;
  double TicksToSeconds(int64_t ticks) const;

 private:
  double fps_;
  int tb_num_;
  int tb_den_;
  int64_t start_pts_;
};

}  // namespace vidscan
