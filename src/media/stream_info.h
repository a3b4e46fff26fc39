// What a container says about its video stream, normalised: the facts `vidscan probe` prints and every
// decoder is configured from.
#pragma once

#include <cstdint>
#include <string>

#include "core/frame.h"

namespace vidscan {

enum class VideoCodec : uint8_t { kH264, kHEVC, kAV1, kOther };
const char* VideoCodecName(VideoCodec c);

struct VideoStreamInfo {
  std::string path;
  std::string container;       // libavformat's short name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi"
  VideoCodec codec = VideoCodec::kOther;
  std::string codec_name;      // libavcodec's name, also for codecs vidscan does not decode
  std::string profile;         // "High", "Main 10", ...
  int stream_index = -1;       // index of the video stream inside the container
  int width = 0;
  int height = 0;
  int bit_depth = 8;
  int chroma_format_idc = 1;   // 0 = 4:0:0, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4
  // The frame rate the frames really come at. Containers lie (AVI's average rate may be double the real
  // one), so this prefers the stream's real base rate (r_frame_rate) over the declared average.
  double fps = 0;
  double declared_avg_fps = 0;
  double duration_seconds = 0;
  int64_t frame_count_estimate = 0;
  int64_t bit_rate = 0;
  int time_base_num = 1;
  int time_base_den = 1;
  int64_t start_pts = 0;        // stream start in time-base units (0 if the container gives none)
  ColorSpace color_space = ColorSpace::kBT709;
  ColorRange color_range = ColorRange::kLimited;
  bool color_space_guessed = false;  // the stream does not say; chosen from the resolution
  std::string color_primaries;
  std::string color_transfer;
  int audio_streams = 0;        // present and ignored

  // The decoded surface format: NV12 for 8-bit, P016 for 10/12-bit.
  PixelFormat surface_format() const { return bit_depth > 8 ? PixelFormat::kP016 : PixelFormat::kNV12; }
};

}  // namespace vidscan
