// Output heads on the CPU: raw network outputs -> candidate boxes in source pixels -> NMS -> detections.
// The reference for the GPU path and the path used without a GPU.
//
// Families (see model_description.h) and the outputs each expects, batch first, float32, host memory:
//   detectnet_v2: coverage [N, C, H/s, W/s] (sigmoid applied) and bbox [N, 4C, H/s, W/s], in either order;
//   yolox:        [N, A, 5 + C], A = sum over strides 8, 16, 32 of (H/s)(W/s), raw box terms, scores sigmoided;
//   yolov8:       [N, 4 + C, A], boxes (cx, cy, w, h) in input pixels, class scores sigmoided.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "detect/detection.h"
#include "detect/model_description.h"
#include "preprocess/letterbox.h"

namespace vidscan {

struct HeadTensor {
  const float* data = nullptr;
  std::vector<int64_t> shape;
};

// Where a frame of the batch came from: the preprocess stage's mapping and the source frame's size, to
// which boxes are clipped.
struct FrameGeometry {
  LetterboxTransform transform;
  int source_width = 0;
  int source_height = 0;
};

// What the outputs of a head look like, checked against the description: shared by the CPU heads and the
// CUDA decoder (heads_cuda.h).
struct HeadLayout {
  int64_t batch = 0;           // N
  int classes = 0;
  int64_t positions = 0;       // anchors (YOLOX, YOLOv8) or grid cells (DetectNet_v2)
  int grid_w = 0, grid_h = 0;  // DetectNet_v2
  int coverage = 0, bbox = 1;  // DetectNet_v2: which output is which
  // The most candidates one frame can give: one per anchor, or one per cell and class.
  int64_t max_candidates() const { return grid_w > 0 ? positions * classes : positions; }
};
Expected<HeadLayout> ResolveHeadLayout(const ModelDescription& model, std::span<const HeadTensor> outputs);

// The candidates of batch entry `frame`: every box whose score reaches its class threshold, mapped to
// source pixels and clipped to the frame (a box left with no area, i.e. entirely in the padding, is
// dropped). One candidate per anchor (its best class) for YOLOX/YOLOv8, one per cell and class for
// DetectNet_v2, whose classes are independent coverage maps.
Expected<std::vector<Candidate>> DecodeHeadCpu(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                               int frame, const FrameGeometry& geometry);

// Decode and CPU NMS for frames 0..frames.size()-1 of the batch; result[i] holds frame i's detections,
// best first.
Expected<std::vector<FrameDetections>> DetectCpu(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                                 std::span<const FrameGeometry> frames);

// The strides of the YOLOX grids and the anchor count they give for an input size.
inline constexpr int kYoloxStrides[3] = {8, 16, 32};
int64_t YoloxAnchorCount(int input_width, int input_height);

}  // namespace vidscan
