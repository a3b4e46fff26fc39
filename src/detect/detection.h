// What the detector stage hands on: boxes in source-frame pixels, one vector per frame of a batch.
// Also the candidate box that the heads produce and NMS consumes (CPU and GPU share the layout).
#pragma once

#include <cstdint>
#include <vector>

namespace vidscan {

struct Detection {
  int frame = 0;     // slot of the frame in its batch (the caller maps it to a frame index)
  int class_id = 0;
  float score = 0;
  // Source-frame pixel-edge coordinates (pixel i covers [i, i+1)), clipped to the frame.
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

using FrameDetections = std::vector<Detection>;

// A box before suppression. `index` is its position in the head's output (anchor or grid cell, times the
// class count where a head emits one candidate per class): NMS breaks score ties by the lower index, so the
// result does not depend on the order in which a GPU kernel happened to compact the candidates.
struct Candidate {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  int32_t class_id = 0;
  int32_t index = 0;
};

struct NmsParams {
  float iou_threshold = 0.45f;  // a box is dropped when its IoU with a kept box of its class exceeds this
  int top_k = 1000;             // only the best top_k candidates of a frame enter suppression
  int max_detections = 300;     // kept boxes per frame, best first
  bool class_aware = true;      // false: boxes of different classes suppress each other too
};

}  // namespace vidscan
