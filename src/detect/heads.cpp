#include "detect/heads.h"

#include <algorithm>
#include <cmath>
#include <string>

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

// Maps a network-pixel box to the source, clips it to the frame and appends it unless nothing is left.
void Emit(const FrameGeometry& g, float x1, float y1, float x2, float y2, float score, int class_id, int64_t index,
          std::vector<Candidate>* out) {
  float box[4] = {x1, y1, x2, y2};
  g.transform.NetworkBoxToSource(box);
  const float w = static_cast<float>(g.source_width), h = static_cast<float>(g.source_height);
  Candidate c;
  c.x1 = std::clamp(box[0], 0.0f, w);
  c.y1 = std::clamp(box[1], 0.0f, h);
  c.x2 = std::clamp(box[2], 0.0f, w);
  c.y2 = std::clamp(box[3], 0.0f, h);
  if (!(c.x2 > c.x1 && c.y2 > c.y1)) return;
  c.score = score;
  c.class_id = class_id;
  c.index = static_cast<int32_t>(index);
  out->push_back(c);
}

Expected<std::vector<Candidate>> DecodeDetectNetV2(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                                   int frame, const FrameGeometry& g) {
  if (outputs.size() != 2) return BadOutput(model, "needs 2 outputs (coverage, bbox), got " + std::to_string(outputs.size()));
  const HeadTensor* cov = &outputs[0];
  const HeadTensor* bbox = &outputs[1];
  if (cov->shape.size() != 4 || bbox->shape.size() != 4) {
    return BadOutput(model, "outputs must be 4-D, got " + ShapeString(cov->shape) + " and " + ShapeString(bbox->shape));
  }
  if (cov->shape[1] == 4 * bbox->shape[1]) std::swap(cov, bbox);
  const int64_t classes = cov->shape[1], grid_h = cov->shape[2], grid_w = cov->shape[3];
  const int stride = model.detectnet_v2.stride;
  if (bbox->shape[1] != 4 * classes || bbox->shape[2] != grid_h || bbox->shape[3] != grid_w ||
      bbox->shape[0] != cov->shape[0]) {
    return BadOutput(model, "bbox " + ShapeString(bbox->shape) + " does not match coverage " + ShapeString(cov->shape) +
                                " (expected [N, 4C, H, W])");
  }
  if (classes != model.num_classes()) {
    return BadOutput(model, "coverage has " + std::to_string(classes) + " classes, the description names " +
                                std::to_string(model.num_classes()));
  }
  // DeepStream derives the stride as ceil(input / grid); the description states it, so both must agree.
  if (grid_w != (model.input.width + stride - 1) / stride || grid_h != (model.input.height + stride - 1) / stride) {
    return BadOutput(model, "grid " + std::to_string(grid_w) + "x" + std::to_string(grid_h) + " does not match input " +
                                std::to_string(model.input.width) + "x" + std::to_string(model.input.height) +
                                " at stride " + std::to_string(stride));
  }
  if (frame < 0 || frame >= cov->shape[0]) return BadOutput(model, "batch has no frame " + std::to_string(frame));

  // DetectNet_v2 box convention, from NVIDIA DeepStream's sample parser NvDsInferParseCustomResnet
  // (sources/libs/nvdsinfer_customparser/nvdsinfer_custombboxparser.cpp), which decodes TAO DetectNet_v2 /
  // PeopleNet outputs: the grid-cell centre gc = (cell * stride + 0.5) / bbox_norm, and
  //   x1 = (gc_x - o1) * bbox_norm,  y1 = (gc_y - o2) * bbox_norm,
  //   x2 = (o3 + gc_x) * bbox_norm,  y2 = (o4 + gc_y) * bbox_norm,
  // in network-input pixels, where o1..o4 are the 4 bbox planes of the class (plane 4c + k). bbox_norm is 35
  // for PeopleNet (TAO's bbox_rasterizer_config / DeepStream's bboxNormX/Y).
  const float norm = model.detectnet_v2.bbox_norm, offset = model.detectnet_v2.offset;
  const int64_t cells = grid_h * grid_w;
  const float* cov_frame = cov->data + static_cast<size_t>(frame) * classes * cells;
  const float* bbox_frame = bbox->data + static_cast<size_t>(frame) * 4 * classes * cells;
  std::vector<Candidate> out;
  for (int64_t c = 0; c < classes; ++c) {
    const float threshold = model.threshold(static_cast<int>(c));
    const float* planes = bbox_frame + 4 * c * cells;
    for (int64_t row = 0; row < grid_h; ++row) {
      const float centre_y = (static_cast<float>(row * stride) + offset) / norm;
      for (int64_t col = 0; col < grid_w; ++col) {
        const int64_t cell = row * grid_w + col;
        const float score = cov_frame[c * cells + cell];
        if (!(score >= threshold)) continue;
        const float centre_x = (static_cast<float>(col * stride) + offset) / norm;
        const float x1 = (centre_x - planes[cell]) * norm;
        const float y1 = (centre_y - planes[cells + cell]) * norm;
        const float x2 = (planes[2 * cells + cell] + centre_x) * norm;
        const float y2 = (planes[3 * cells + cell] + centre_y) * norm;
        Emit(g, x1, y1, x2, y2, score, static_cast<int>(c), c * cells + cell, &out);
      }
    }
  }
  return out;
}

// Index of the best class among `count` scores `step` apart (the first of equal maxima).
int BestClass(const float* scores, int64_t count, int64_t step) {
  int best = 0;
  for (int64_t c = 1; c < count; ++c) {
    if (scores[c * step] > scores[best * step]) best = static_cast<int>(c);
  }
  return best;
}

Expected<std::vector<Candidate>> DecodeYolox(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                             int frame, const FrameGeometry& g) {
  if (outputs.size() != 1) return BadOutput(model, "needs 1 output, got " + std::to_string(outputs.size()));
  const HeadTensor& t = outputs[0];
  const int64_t anchors = YoloxAnchorCount(model.input.width, model.input.height);
  if (t.shape.size() != 3 || t.shape[1] != anchors || t.shape[2] != 5 + model.num_classes()) {
    return BadOutput(model, "output " + ShapeString(t.shape) + ", expected [N, " + std::to_string(anchors) + ", " +
                                std::to_string(5 + model.num_classes()) + "] for input " + std::to_string(model.input.width) +
                                "x" + std::to_string(model.input.height) + " and " + std::to_string(model.num_classes()) +
                                " classes");
  }
  if (frame < 0 || frame >= t.shape[0]) return BadOutput(model, "batch has no frame " + std::to_string(frame));
  const int64_t row_len = t.shape[2], classes = model.num_classes();
  const float* rows = t.data + static_cast<size_t>(frame) * anchors * row_len;
  std::vector<Candidate> out;
  int64_t anchor = 0;
  for (int stride : kYoloxStrides) {
    const int grid_w = model.input.width / stride, grid_h = model.input.height / stride;
    for (int gy = 0; gy < grid_h; ++gy) {
      for (int gx = 0; gx < grid_w; ++gx, ++anchor) {
        const float* r = rows + anchor * row_len;
        const int best = BestClass(r + 5, classes, 1);
        const float score = r[4] * r[5 + best];
        if (!(score >= model.threshold(best))) continue;
        const float s = static_cast<float>(stride);
        const float cx = (r[0] + static_cast<float>(gx)) * s;
        const float cy = (r[1] + static_cast<float>(gy)) * s;
        const float w = std::exp(r[2]) * s;
        const float h = std::exp(r[3]) * s;
        Emit(g, cx - 0.5f * w, cy - 0.5f * h, cx + 0.5f * w, cy + 0.5f * h, score, best, anchor, &out);
      }
    }
  }
  return out;
}

Expected<std::vector<Candidate>> DecodeYoloV8(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                              int frame, const FrameGeometry& g) {
  if (outputs.size() != 1) return BadOutput(model, "needs 1 output, got " + std::to_string(outputs.size()));
  const HeadTensor& t = outputs[0];
  if (t.shape.size() != 3 || t.shape[1] != 4 + model.num_classes()) {
    return BadOutput(model, "output " + ShapeString(t.shape) + ", expected [N, " + std::to_string(4 + model.num_classes()) +
                                ", A] for " + std::to_string(model.num_classes()) + " classes");
  }
  if (frame < 0 || frame >= t.shape[0]) return BadOutput(model, "batch has no frame " + std::to_string(frame));
  const int64_t anchors = t.shape[2], classes = model.num_classes();
  const float* planes = t.data + static_cast<size_t>(frame) * (4 + classes) * anchors;
  std::vector<Candidate> out;
  for (int64_t a = 0; a < anchors; ++a) {
    const int best = BestClass(planes + 4 * anchors + a, classes, anchors);
    const float score = planes[(4 + best) * anchors + a];
    if (!(score >= model.threshold(best))) continue;
    const float cx = planes[a], cy = planes[anchors + a], w = planes[2 * anchors + a], h = planes[3 * anchors + a];
    Emit(g, cx - 0.5f * w, cy - 0.5f * h, cx + 0.5f * w, cy + 0.5f * h, score, best, a, &out);
  }
  return out;
}

}  // namespace

int64_t YoloxAnchorCount(int input_width, int input_height) {
  int64_t n = 0;
  for (int s : kYoloxStrides) n += static_cast<int64_t>(input_width / s) * (input_height / s);
  return n;
}

Expected<std::vector<Candidate>> DecodeHeadCpu(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                               int frame, const FrameGeometry& geometry) {
  for (const HeadTensor& t : outputs) {
    if (t.data == nullptr) return BadOutput(model, "output tensor without data");
  }
  if (geometry.source_width <= 0 || geometry.source_height <= 0) {
    return BadOutput(model, "frame " + std::to_string(frame) + " has no source size");
  }
  switch (model.family) {
    case ModelFamily::kDetectNetV2: return DecodeDetectNetV2(model, outputs, frame, geometry);
    case ModelFamily::kYolox: return DecodeYolox(model, outputs, frame, geometry);
    case ModelFamily::kYoloV8: return DecodeYoloV8(model, outputs, frame, geometry);
  }
  return BadOutput(model, "unknown family");
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
