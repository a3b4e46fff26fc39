#include "core/frame.h"

namespace vidscan {

const char* PixelFormatName(PixelFormat f) { return f == PixelFormat::kNV12 ? "nv12" : "p016"; }

const char* ColorSpaceName(ColorSpace c) {
  switch (c) {
    case ColorSpace::kBT601: return "bt601";
    case ColorSpace::kBT709: return "bt709";
    case ColorSpace::kBT2020: return "bt2020";
  }
  return "unknown";
}

const char* ColorRangeName(ColorRange r) { return r == ColorRange::kLimited ? "limited" : "full"; }

}  // namespace vidscan
