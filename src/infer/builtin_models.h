// Models built in C++ (no ONNX file): the DetectNet_v2/ResNet-34 that tools/make_models.py writes, with
// random weights from a seed. For GPU tests and benchmarks on machines without Python/onnx to generate the
// 82 MB file (it is the same architecture; the weights differ, speed does not depend on them).
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "infer/graph.h"

namespace vidscan::infer {

// PeopleNet's architecture: ResNet-34 to stride 16 (layer4 at stride 1), conv biases and inference
// BatchNorms (eps 1e-3) as a TAO export has them, 1x1 heads: coverage (sigmoid) [N, classes, H/16, W/16]
// and bbox [N, 4 * classes, H/16, W/16]. Input "input_1" [N, 3, height, width]; opset 13.
Model MakeDetectNetV2ResNet34(int height = 544, int width = 960, int classes = 3, uint32_t seed = 34);

// "builtin:detectnet_v2_resnet34_960x544" -> that model; anything else -> LoadOnnx(path).
inline constexpr const char* kBuiltinDetectNet = "builtin:detectnet_v2_resnet34_960x544";
Expected<Model> LoadModelOrBuiltin(const std::string& path_or_builtin);

}  // namespace vidscan::infer
