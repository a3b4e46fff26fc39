// The model description file that sits beside an ONNX detector (`model.onnx` -> `model.json`): which
// output head the network has, what its input wants (size, normalisation, letterbox or stretch) and how to
// turn its output into detections (thresholds, NMS). Every field but `family` has a per-family default.
//
//   {
//     "family": "yolox" | "yolov8" | "detectnet_v2",
//     "input": {"width": 416, "height": 416},
//     "normalisation": {"order": "BGR", "scale": 1.0, "mean": [0, 0, 0], "std": 1.0},  // (x*scale - mean) / std
//     "resize": {"mode": "letterbox" | "stretch", "placement": "top_left" | "centre", "pad": 114},
//     "class_names": ["person", ...],
//     "score_threshold": 0.3  or  [one per class],
//     "nms": {"iou": 0.45, "top_k": 1000, "max_detections": 300, "class_aware": true},
//     "detectnet_v2": {"stride": 16, "bbox_norm": 35.0, "offset": 0.5}
//   }
// scale/mean/std/pad: one number for all channels or three, per tensor channel (B first for BGR), 0..255 units,
// as PreprocessParams takes them.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "detect/detection.h"
#include "preprocess/preprocess.h"

namespace vidscan {

enum class ModelFamily { kDetectNetV2, kYolox, kYoloV8 };
const char* ModelFamilyName(ModelFamily family);

// DetectNet_v2 grid conventions (TAO / DeepStream; see heads.cpp for the formula and its source).
struct DetectNetV2Params {
  int stride = 16;
  float bbox_norm = 35.0f;
  float offset = 0.5f;
};

struct ModelDescription {
  ModelFamily family = ModelFamily::kYolox;
  // Network input size, channel order, normalisation, resize mode, placement and pad. Layout and precision
  // are the inference engine's choice and keep their defaults here.
  PreprocessParams input;
  std::vector<std::string> class_names;
  // One per class (a single global threshold is repeated for every class).
  std::vector<float> score_thresholds;
  NmsParams nms;
  DetectNetV2Params detectnet_v2;

  int num_classes() const { return static_cast<int>(class_names.size()); }
  float threshold(int class_id) const { return score_thresholds[static_cast<size_t>(class_id)]; }
};

// The defaults of a family (what an empty description with only "family" gives).
ModelDescription DefaultModelDescription(ModelFamily family);
// `model.onnx` -> `model.json` (any extension is replaced; none: `.json` appended).
std::string ModelDescriptionPathFor(const std::string& onnx_path);
// Parses a description; `source` names it in errors ("model.json: field 'nms.iou': must be in [0, 1]").
Expected<ModelDescription> ParseModelDescription(const std::string& json_text, const std::string& source);
Expected<ModelDescription> LoadModelDescription(const std::string& path);

}  // namespace vidscan
