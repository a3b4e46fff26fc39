#include "detect/heads_cuda.h"

#include <algorithm>
#include <cstring>

#include "detect/head_math.h"

namespace vidscan {
namespace {

struct DeviceGeometry {
  LetterboxTransform transform;
  int source_width, source_height;
};

struct DecodeArgs {
  const float* out0;  // YOLOX / YOLOv8 output, DetectNet_v2 coverage
  const float* out1;  // DetectNet_v2 bbox
  const float* thresholds;
  const DeviceGeometry* geometry;
  Candidate* candidates;
  int* counts;
  int classes;
  int64_t positions;  // anchors or cells
  int grid_w;
  int input_width, input_height;
  int stride;
  float bbox_norm, offset;
  int capacity;
};

__device__ void Emit(const DecodeArgs& a, int frame, float* box, float score, int class_id, int64_t index) {
  const DeviceGeometry& g = a.geometry[frame];
  if (!head_math::MapAndClip(g.transform, g.source_width, g.source_height, box)) return;
  const int slot = atomicAdd(&a.counts[frame], 1);
  if (slot >= a.capacity) return;  // cannot happen: the capacity is the most a frame can give
  a.candidates[static_cast<size_t>(frame) * a.capacity + slot] =
      Candidate{box[0], box[1], box[2], box[3], score, class_id, static_cast<int32_t>(index)};
}

__global__ void YoloxDecodeKernel(DecodeArgs a) {
  const int frame = blockIdx.y;
  const int64_t anchor = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (anchor >= a.positions) return;
  const int row_len = 5 + a.classes;
  const float* r = a.out0 + (static_cast<size_t>(frame) * a.positions + anchor) * row_len;
  const int best = head_math::BestClass(r + 5, a.classes, 1);
  const float score = __fmul_rn(r[4], r[5 + best]);  // as on the host: one rounded product
  if (!(score >= a.thresholds[best])) return;
  float box[4];
  head_math::YoloxBox(r, head_math::YoloxCellOf(static_cast<int>(anchor), a.input_width, a.input_height), box);
  Emit(a, frame, box, score, best, anchor);
}

__global__ void YoloV8DecodeKernel(DecodeArgs a) {
  const int frame = blockIdx.y;
  const int64_t anchor = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (anchor >= a.positions) return;
  const int64_t n = a.positions;
  const float* planes = a.out0 + static_cast<size_t>(frame) * (4 + a.classes) * n;
  const int best = head_math::BestClass(planes + 4 * n + anchor, a.classes, static_cast<int>(n));
  const float score = planes[(4 + best) * n + anchor];
  if (!(score >= a.thresholds[best])) return;
  float box[4];
  head_math::CentreSizeToCorners(planes[anchor], planes[n + anchor], planes[2 * n + anchor], planes[3 * n + anchor], box);
  Emit(a, frame, box, score, best, anchor);
}

__global__ void DetectNetV2DecodeKernel(DecodeArgs a) {
  const int c = blockIdx.y, frame = blockIdx.z;
  const int64_t cell = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t cells = a.positions;
  if (cell >= cells) return;
  const float score = a.out0[(static_cast<size_t>(frame) * a.classes + c) * cells + cell];
  if (!(score >= a.thresholds[c])) return;
  const float* planes = a.out1 + (static_cast<size_t>(frame) * a.classes + c) * 4 * cells;
  float box[4];
  head_math::DetectNetBox(planes[cell], planes[cells + cell], planes[2 * cells + cell], planes[3 * cells + cell],
                          static_cast<int>(cell / a.grid_w), static_cast<int>(cell % a.grid_w), a.stride, a.bbox_norm,
                          a.offset, box);
  Emit(a, frame, box, score, c, c * cells + cell);
}

}  // namespace

Expected<CudaDetector> CudaDetector::Create(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                            int max_frames) {
  VS_ASSIGN_OR_RETURN(const HeadLayout layout, ResolveHeadLayout(model, outputs));
  if (max_frames <= 0 || max_frames > layout.batch) {
    return MakeError(StatusCode::kInvalidArgument, "CudaDetector: max_frames " + std::to_string(max_frames) +
                                                       " outside the outputs' batch of " + std::to_string(layout.batch));
  }
  CudaDetector d;
  d.model_ = model;
  d.layout_ = layout;
  d.max_frames_ = max_frames;
  d.capacity_ = static_cast<int>(layout.max_candidates());
  VS_ASSIGN_OR_RETURN(d.candidates_, DeviceBuffer::Allocate(static_cast<size_t>(max_frames) * d.capacity_ * sizeof(Candidate)));
  VS_ASSIGN_OR_RETURN(d.counts_, DeviceBuffer::Allocate(static_cast<size_t>(max_frames) * sizeof(int)));
  VS_ASSIGN_OR_RETURN(d.thresholds_, DeviceBuffer::Allocate(model.score_thresholds.size() * sizeof(float)));
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpy(d.thresholds_.data(), model.score_thresholds.data(),
                                     model.score_thresholds.size() * sizeof(float), cudaMemcpyHostToDevice));
  VS_ASSIGN_OR_RETURN(d.geometry_, DeviceBuffer::Allocate(static_cast<size_t>(max_frames) * sizeof(DeviceGeometry)));
  VS_ASSIGN_OR_RETURN(d.host_geometry_, PinnedBuffer::Allocate(static_cast<size_t>(max_frames) * sizeof(DeviceGeometry)));
  VS_ASSIGN_OR_RETURN(d.geometry_copied_, CudaEvent::Create(cudaEventDisableTiming));
  VS_ASSIGN_OR_RETURN(d.nms_, CudaBatchNms::Create(max_frames, d.capacity_, model.nms));
  return Expected<CudaDetector>(std::move(d));
}

Status CudaDetector::Enqueue(std::span<const HeadTensor> outputs, std::span<const FrameGeometry> frames,
                             cudaStream_t stream) {
  VS_ASSIGN_OR_RETURN(const HeadLayout layout, ResolveHeadLayout(model_, outputs));
  if (layout.batch != layout_.batch || layout.positions != layout_.positions || layout.coverage != layout_.coverage) {
    return MakeError(StatusCode::kInvalidArgument, "CudaDetector: outputs shaped differently from those at Create");
  }
  const int n = static_cast<int>(frames.size());
  if (n <= 0 || n > max_frames_) {
    return MakeError(StatusCode::kInvalidArgument, "CudaDetector: " + std::to_string(n) + " frames, at most " +
                                                       std::to_string(max_frames_));
  }
  for (const HeadTensor& t : outputs) {
    cudaPointerAttributes attr{};
    VS_CUDA_RETURN_IF_ERROR(cudaPointerGetAttributes(&attr, t.data));
    if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
      return MakeError(StatusCode::kInvalidArgument, "CudaDetector: outputs must be in device memory");
    }
  }
  for (const FrameGeometry& g : frames) {
    if (g.source_width <= 0 || g.source_height <= 0) {
      return MakeError(StatusCode::kInvalidArgument, "CudaDetector: a frame without a source size");
    }
  }
  // The previous Enqueue's copy must have left the staging buffer before it is rewritten.
  VS_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(geometry_copied_.get()));
  DeviceGeometry* staged = host_geometry_.as<DeviceGeometry>();
  for (int f = 0; f < n; ++f) staged[f] = DeviceGeometry{frames[f].transform, frames[f].source_width, frames[f].source_height};
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(geometry_.data(), staged, n * sizeof(DeviceGeometry), cudaMemcpyHostToDevice, stream));
  VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(geometry_copied_.get(), stream));
  VS_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(counts_.data(), 0, n * sizeof(int), stream));

  DecodeArgs a{};
  a.out0 = outputs[model_.family == ModelFamily::kDetectNetV2 ? layout_.coverage : 0].data;
  a.out1 = model_.family == ModelFamily::kDetectNetV2 ? outputs[layout_.bbox].data : nullptr;
  a.thresholds = thresholds_.as<float>();
  a.geometry = geometry_.as<DeviceGeometry>();
  a.candidates = candidates_.as<Candidate>();
  a.counts = counts_.as<int>();
  a.classes = layout_.classes;
  a.positions = layout_.positions;
  a.grid_w = layout_.grid_w;
  a.input_width = model_.input.width;
  a.input_height = model_.input.height;
  a.stride = model_.detectnet_v2.stride;
  a.bbox_norm = model_.detectnet_v2.bbox_norm;
  a.offset = model_.detectnet_v2.offset;
  a.capacity = capacity_;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>((layout_.positions + threads - 1) / threads);
  switch (model_.family) {
    case ModelFamily::kYolox: YoloxDecodeKernel<<<dim3(blocks, n), threads, 0, stream>>>(a); break;
    case ModelFamily::kYoloV8: YoloV8DecodeKernel<<<dim3(blocks, n), threads, 0, stream>>>(a); break;
    case ModelFamily::kDetectNetV2:
      DetectNetV2DecodeKernel<<<dim3(blocks, layout_.classes, n), threads, 0, stream>>>(a);
      break;
  }
  VS_CUDA_RETURN_IF_ERROR(cudaGetLastError());
  return nms_.Enqueue(candidates_.as<Candidate>(), counts_.as<int>(), n, stream);
}

Expected<std::vector<FrameDetections>> CudaDetector::Fetch(cudaStream_t stream) {
  VS_RETURN_IF_ERROR(EnqueueFetch(stream));
  return WaitFetch();
}

Status CudaDetector::EnqueueFetch(cudaStream_t stream) { return nms_.EnqueueCopyOut(stream); }

Expected<std::vector<FrameDetections>> CudaDetector::WaitFetch() {
  VS_ASSIGN_OR_RETURN(std::vector<std::vector<Candidate>> kept, nms_.WaitCopyOut());
  std::vector<FrameDetections> result(kept.size());
  for (size_t f = 0; f < kept.size(); ++f) {
    for (const Candidate& c : kept[f]) {
      result[f].push_back(Detection{static_cast<int>(f), c.class_id, c.score, c.x1, c.y1, c.x2, c.y2});
    }
  }
  return result;
}

}  // namespace vidscan
