// What a decoded frame is, wherever it lives: the description every stage after the decoder reads.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vidscan {

// NV12: 8-bit luma plane + interleaved UV plane at half resolution.
// P016: the same layout with 16-bit samples, the value in the most significant bits (10-bit video
// decodes to value << 6, exactly as NVDEC writes it).
enum class PixelFormat : uint8_t { kNV12, kP016 };
enum class ColorSpace : uint8_t { kBT601, kBT709, kBT2020 };
enum class ColorRange : uint8_t { kLimited, kFull };
enum class MemoryKind : uint8_t { kHost, kDevice };

const char* PixelFormatName(PixelFormat f);
const char* ColorSpaceName(ColorSpace c);
const char* ColorRangeName(ColorRange r);

inline int BytesPerSample(PixelFormat f) { return f == PixelFormat::kNV12 ? 1 : 2; }

struct FrameInfo {
  int stream_id = 0;
  int64_t frame_index = 0;  // display-order index in the stream, counting frames not sampled too
  double pts_seconds = 0;   // presentation time from the stream start
  int width = 0;
  int height = 0;
  int pitch = 0;            // bytes per row, the same for both planes
  PixelFormat format = PixelFormat::kNV12;
  ColorSpace color_space = ColorSpace::kBT709;
  ColorRange color_range = ColorRange::kLimited;
  bool keyframe = false;

  int chroma_height() const { return (height + 1) / 2; }
  size_t luma_bytes() const { return static_cast<size_t>(pitch) * height; }
  size_t chroma_bytes() const { return static_cast<size_t>(pitch) * chroma_height(); }
  int row_bytes() const { return width * BytesPerSample(format); }  // visible bytes of a luma row
  int chroma_row_bytes() const { return ((width + 1) / 2) * 2 * BytesPerSample(format); }
};

// A frame's pixels: two planes in host or device memory.
struct FrameView {
  FrameInfo info;
  MemoryKind memory = MemoryKind::kHost;
  uint8_t* luma = nullptr;
  uint8_t* chroma = nullptr;
};

}  // namespace vidscan
