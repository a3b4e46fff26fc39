// The one mapping between network-input pixels and source-frame pixels, shared by the preprocess stage
// (which builds it) and the detector heads (which map boxes back with it). Header-only and host/device.
//
// Coordinates are continuous pixel-edge coordinates: pixel i covers [i, i+1). The resized image occupies
// the content rectangle of the network input, whose edges map exactly onto the edges of the source ROI:
//     network = source * scale + offset        source = (network - offset) / scale
// A box predicted in network pixels maps back to source pixels with NetworkToSource on its corners.
#pragma once

#if defined(__CUDACC__)
#define VS_LETTERBOX_HD __host__ __device__
#else
#define VS_LETTERBOX_HD
#endif

namespace vidscan {

struct LetterboxTransform {
  float scale_x = 1, scale_y = 1;    // network pixels per source pixel
  float offset_x = 0, offset_y = 0;  // network position of source point (0, 0)
  // Where the picture lies in the network input (the rest is padding), in whole network pixels.
  int content_x = 0, content_y = 0, content_width = 0, content_height = 0;

  VS_LETTERBOX_HD float NetworkToSourceX(float x) const { return (x - offset_x) / scale_x; }
  VS_LETTERBOX_HD float NetworkToSourceY(float y) const { return (y - offset_y) / scale_y; }
  VS_LETTERBOX_HD float SourceToNetworkX(float x) const { return x * scale_x + offset_x; }
  VS_LETTERBOX_HD float SourceToNetworkY(float y) const { return y * scale_y + offset_y; }

  // A box given by two corners (x1, y1, x2, y2), mapped in place.
  VS_LETTERBOX_HD void NetworkBoxToSource(float* box) const {
    box[0] = NetworkToSourceX(box[0]);
    box[1] = NetworkToSourceY(box[1]);
    box[2] = NetworkToSourceX(box[2]);
    box[3] = NetworkToSourceY(box[3]);
  }
};

}  // namespace vidscan
