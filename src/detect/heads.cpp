#include "detect/heads.h"

#include <algorithm>
#include <string>

#include "detect/head_math.h"
#include "detect/nms.h"

namespace vidscan {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status BadOutput(const ModelDescription& model, const std::string& what) {
  return MakeError(StatusCode::kInvalidArgument, std::string(ModelFamilyName(model.family)) + " head: " + what);
}

Status CheckOutputCount(const ModelDescription& model, std::span<const HeadTensor> outputs, size_t expected) {
  if (outputs.size() == expected) return Status::Ok();
  return BadOutput(model, "needs " + std::to_string(expected) + " output(s), got " + std::to_string(outputs.size()));
}

Expected<HeadLayout> DetectNetV2Layout(const ModelDescription& model, std::span<const HeadTensor> outputs) {
  VS_RETURN_IF_ERROR(CheckOutputCount(model, outputs, 2));
  HeadLayout l;
  if (outputs[0].shape.size() != 4 || outputs[1].shape.size() != 4) {
    return BadOutput(model, "outputs must be 4-D, got " + ShapeString(outputs[0].shape) + " and " + ShapeString(outputs[1].shape));
  }
  // Either order: the bbox tensor has four times the coverage tensor's channels.
  if (outputs[0].shape[1] == 4 * outputs[1].shape[1]) std::swap(l.coverage, l.bbox);
  const std::vector<int64_t>& cov = outputs[l.coverage].shape;
  const std::vector<int64_t>& bbox = outputs[l.bbox].shape;
  if (bbox[0] != cov[0] || bbox[1] != 4 * cov[1] || bbox[2] != cov[2] || bbox[3] != cov[3]) {
    return BadOutput(model, "bbox " + ShapeString(bbox) + " does not match coverage " + ShapeString(cov) +
                                " (expected [N, 4C, H, W])");
  }
  if (cov[1] != model.num_classes()) {
    return BadOutput(model, "coverage has " + std::to_string(cov[1]) + " classes, the description names " +
                                std::to_string(model.num_classes()));
  }
  // DeepStream derives the stride as ceil(input / grid); the description states it, so both must agree.
  const int stride = model.detectnet_v2.stride;
  if (cov[3] != (model.input.width + stride - 1) / stride || cov[2] != (model.input.height + stride - 1) / stride) {
    return BadOutput(model, "grid " + std::to_string(cov[3]) + "x" + std::to_string(cov[2]) + " does not match input " +
                                std::to_string(model.input.width) + "x" + std::to_string(model.input.height) +
                                " at stride " + std::to_string(stride));
  }
  l.batch = cov[0];
  l.classes = model.num_classes();
  l.grid_w = static_cast<int>(cov[3]);
  l.grid_h = static_cast<int>(cov[2]);
  l.positions = cov[2] * cov[3];
  return l;
}

Expected<HeadLayout> YoloxLayout(const ModelDescription& model, std::span<const HeadTensor> outputs) {
  VS_RETURN_IF_ERROR(CheckOutputCount(model, outputs, 1));
  const std::vector<int64_t>& shape = outputs[0].shape;
  const int64_t anchors = YoloxAnchorCount(model.input.width, model.input.height);
  if (shape.size() != 3 || shape[1] != anchors || shape[2] != 5 + model.num_classes()) {
    return BadOutput(model, "output " + ShapeString(shape) + ", expected [N, " + std::to_string(anchors) + ", " +
                                std::to_string(5 + model.num_classes()) + "] for input " + std::to_string(model.input.width) +
                                "x" + std::to_string(model.input.height) + " and " + std::to_string(model.num_classes()) +
                                " classes");
  }
  HeadLayout l;
  l.batch = shape[0];
  l.classes = model.num_classes();
  l.positions = anchors;
  return l;
}

Expected<HeadLayout> YoloV8Layout(const ModelDescription& model, std::span<const HeadTensor> outputs) {
  VS_RETURN_IF_ERROR(CheckOutputCount(model, outputs, 1));
  const std::vector<int64_t>& shape = outputs[0].shape;
  if (shape.size() != 3 || shape[1] != 4 + model.num_classes()) {
    return BadOutput(model, "output " + ShapeString(shape) + ", expected [N, " + std::to_string(4 + model.num_classes()) +
                                ", A] for " + std::to_string(model.num_classes()) + " classes");
  }
  HeadLayout l;
  l.batch = shape[0];
  l.classes = model.num_classes();
  l.positions = shape[2];
  return l;
}

// Maps a network-pixel box to the source, clips it to the frame and appends it unless nothing is left.
void Emit(const FrameGeometry& g, float* box, float score, int class_id, int64_t index, std::vector<Candidate>* out) {
  if (!head_math::MapAndClip(g.transform, g.source_width, g.source_height, box)) return;
  out->push_back(Candidate{box[0], box[1], box[2], box[3], score, class_id, static_cast<int32_t>(index)});
}

// DetectNet_v2 box convention, from NVIDIA DeepStream's sample parser NvDsInferParseCustomResnet
// (sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp), which decodes TAO DetectNet_v2 /
// PeopleNet outputs: the grid-cell centre gc = (cell * stride + 0.5) / bbox_norm, and
//   x1 = (gc_x - o1) * bbox_norm,  y1 = (gc_y - o2) * bbox_norm,
//   x2 = (o3 + gc_x) * bbox_norm,  y2 = (o4 + gc_y) * bbox_norm,
// in network-input pixels, where o1..o4 are the 4 bbox planes of the class (planes 4c .. 4c + 3) and
// bbox_norm is 35 for PeopleNet (DeepStream's bboxNormX/Y; TAO's bbox_rasterizer_config). Each class has
// its own coverage map, so a cell yields one candidate per class above that class's threshold.
void DecodeDetectNetV2(const ModelDescription& model, const HeadLayout& l, std::span<const HeadTensor> outputs,
                       int frame, const FrameGeometry& g, std::vector<Candidate>* out) {
  const int64_t cells = l.positions;
  const float* cov = outputs[l.coverage].data + static_cast<size_t>(frame) * l.classes * cells;
  const float* bbox = outputs[l.bbox].data + static_cast<size_t>(frame) * 4 * l.classes * cells;
  for (int c = 0; c < l.classes; ++c) {
    const float* planes = bbox + 4 * c * cells;
    for (int64_t cell = 0; cell < cells; ++cell) {
      const float score = cov[c * cells + cell];
      if (!(score >= model.threshold(c))) continue;
      float box[4];
      head_math::DetectNetBox(planes[cell], planes[cells + cell], planes[2 * cells + cell], planes[3 * cells + cell],
                              static_cast<int>(cell / l.grid_w), static_cast<int>(cell % l.grid_w),
                              model.detectnet_v2.stride, model.detectnet_v2.bbox_norm, model.detectnet_v2.offset, box);
      Emit(g, box, score, c, c * cells + cell, out);
    }
  }
}

// YOLOX (Megvii, exported with decode_in_inference off): per anchor of the stride-8/16/32 grids,
// cx = (x + gx) * s, cy = (y + gy) * s, w = e^w * s, h = e^h * s; score = objectness * class score.
void DecodeYolox(const ModelDescription& model, const HeadLayout& l, std::span<const HeadTensor> outputs, int frame,
                 const FrameGeometry& g, std::vector<Candidate>* out) {
  const int row_len = 5 + l.classes;
  const float* rows = outputs[0].data + static_cast<size_t>(frame) * l.positions * row_len;
  for (int64_t anchor = 0; anchor < l.positions; ++anchor) {
    const float* r = rows + anchor * row_len;
    const int best = head_math::BestClass(r + 5, l.classes, 1);
    const float score = r[4] * r[5 + best];
    if (!(score >= model.threshold(best))) continue;
    float box[4];
    head_math::YoloxBox(r, head_math::YoloxCellOf(static_cast<int>(anchor), model.input.width, model.input.height), box);
    Emit(g, box, score, best, anchor, out);
  }
}

// YOLOv8 (Ultralytics export): planes cx, cy, w, h (input pixels), then one sigmoided score per class.
void DecodeYoloV8(const ModelDescription& model, const HeadLayout& l, std::span<const HeadTensor> outputs, int frame,
                  const FrameGeometry& g, std::vector<Candidate>* out) {
  const int64_t a_count = l.positions;
  const float* planes = outputs[0].data + static_cast<size_t>(frame) * (4 + l.classes) * a_count;
  for (int64_t a = 0; a < a_count; ++a) {
    const int best = head_math::BestClass(planes + 4 * a_count + a, l.classes, static_cast<int>(a_count));
    const float score = planes[(4 + best) * a_count + a];
    if (!(score >= model.threshold(best))) continue;
    float box[4];
    head_math::CentreSizeToCorners(planes[a], planes[a_count + a], planes[2 * a_count + a], planes[3 * a_count + a], box);
    Emit(g, box, score, best, a, out);
  }
}

}  // namespace

int64_t YoloxAnchorCount(int input_width, int input_height) {
  int64_t n = 0;
  for (int s : kYoloxStrides) n += static_cast<int64_t>(input_width / s) * (input_height / s);
  return n;
}

Expected<HeadLayout> ResolveHeadLayout(const ModelDescription& model, std::span<const HeadTensor> outputs) {
  Expected<HeadLayout> layout = BadOutput(model, "unknown family");
  switch (model.family) {
    case ModelFamily::kDetectNetV2: layout = DetectNetV2Layout(model, outputs); break;
    case ModelFamily::kYolox: layout = YoloxLayout(model, outputs); break;
    case ModelFamily::kYoloV8: layout = YoloV8Layout(model, outputs); break;
  }
  if (!layout.ok()) return layout;
  // Candidate indices are int32 (the CUDA NMS sort key holds them in 32 bits).
  if (layout->max_candidates() > (int64_t{1} << 30)) return BadOutput(model, "more than 2^30 candidates per frame");
  return layout;
}

Expected<std::vector<Candidate>> DecodeHeadCpu(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                               int frame, const FrameGeometry& geometry) {
  VS_ASSIGN_OR_RETURN(const HeadLayout layout, ResolveHeadLayout(model, outputs));
  for (const HeadTensor& t : outputs) {
    if (t.data == nullptr) return BadOutput(model, "output tensor without data");
  }
  if (frame < 0 || frame >= layout.batch) return BadOutput(model, "batch has no frame " + std::to_string(frame));
  if (geometry.source_width <= 0 || geometry.source_height <= 0) {
    return BadOutput(model, "frame " + std::to_string(frame) + " has no source size");
  }
  std::vector<Candidate> out;
  switch (model.family) {
    case ModelFamily::kDetectNetV2: DecodeDetectNetV2(model, layout, outputs, frame, geometry, &out); break;
    case ModelFamily::kYolox: DecodeYolox(model, layout, outputs, frame, geometry, &out); break;
    case ModelFamily::kYoloV8: DecodeYoloV8(model, layout, outputs, frame, geometry, &out); break;
  }
  return out;
}

Expected<std::vector<FrameDetections>> DetectCpu(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                                 std::span<const FrameGeometry> frames) {
  std::vector<FrameDetections> result(frames.size());
  for (size_t f = 0; f < frames.size(); ++f) {
    VS_ASSIGN_OR_RETURN(std::vector<Candidate> candidates,
                        DecodeHeadCpu(model, outputs, static_cast<int>(f), frames[f]));
    for (const Candidate& c : NmsCpu(candidates, model.nms)) {
      result[f].push_back(Detection{static_cast<int>(f), c.class_id, c.score, c.x1, c.y1, c.x2, c.y2});
    }
  }
  return result;
}

}  // namespace vidscan
