// A generated tracking scene with known identities: boxes moving at constant velocity and bouncing off
// the image border (so paths cross), detections with position noise, random misses, low scores and
// misses for boxes hidden behind nearer ones, and false positives. Used by the tracker's tests and
// benchmark, where real ground truth is not at hand or the load must be controlled.
#pragma once

#include <cstdint>
#include <vector>

#include "track/byte_tracker.h"

namespace vidscan::track {

struct SyntheticSceneParams {
  int objects = 20;
  int frames = 300;
  float width = 1920, height = 1080;
  float min_speed = 0.5f, max_speed = 4.f;  // pixels per frame
  float min_box_width = 30, max_box_width = 70;  // height is 2 to 3 times the width (people-like)
  float position_noise = 1.5f;   // pixels, standard deviation of each box edge
  float miss_rate = 0.05f;       // a visible object is not detected
  float low_score_rate = 0.1f;   // a visible object is detected with a score in [0.2, 0.55)
  float occlusion_iou = 0.3f;    // hidden behind a nearer (lower bottom edge) box overlapping this much:
                                 // detected at a low score half of the time, else missed
  float false_positives_per_frame = 0.5f;  // scored in [0.1, 0.7)
  uint32_t seed = 1;
};

struct SyntheticFrame {
  std::vector<Detection> detections;
  std::vector<int> gt_ids;       // 1-based identity of every object in this frame (all are in view)
  std::vector<BoxTlwh> gt_boxes;  // exact boxes, same order as gt_ids
};

std::vector<SyntheticFrame> MakeSyntheticScene(const SyntheticSceneParams& params);

}  // namespace vidscan::track
