// The whole detector stage on the GPU for a batch: decode kernels turn the network outputs (device memory)
// into candidates in source pixels (the same head_math.h formulas as the CPU heads), the batch NMS
// (nms_cuda.h) suppresses them, and only the kept boxes cross to the host.
//
// Needs the CUDA runtime: include only from .cu files, *_cuda.cpp files or code under VIDSCAN_HAVE_CUDA.
#pragma once

#include <cuda_runtime.h>

#include <span>
#include <vector>

#include "core/status.h"
#include "detect/detection.h"
#include "detect/heads.h"
#include "detect/model_description.h"
#include "detect/nms_cuda.h"
#include "preprocess/cuda_buffers.h"

namespace vidscan {

class CudaDetector {
 public:
  // `outputs` gives the output shapes (data unused); buffers for up to `max_frames` frames are allocated
  // here, with room for every candidate a frame can give (one per anchor, or per cell and class), so no
  // candidate is ever dropped for lack of space.
  static Expected<CudaDetector> Create(const ModelDescription& model, std::span<const HeadTensor> outputs,
                                       int max_frames);

  // Enqueues decode and NMS for frames 0..frames.size()-1 of `outputs` (device memory, the shapes given
  // to Create) on `stream`.
  Status Enqueue(std::span<const HeadTensor> outputs, std::span<const FrameGeometry> frames, cudaStream_t stream);
  // Waits for the last Enqueue and returns each frame's detections, best first.
  Expected<std::vector<FrameDetections>> Fetch(cudaStream_t stream);
  // Fetch in two halves (see CudaBatchNms::EnqueueCopyOut): queue the copy now, wait for it later.
  Status EnqueueFetch(cudaStream_t stream);
  Expected<std::vector<FrameDetections>> WaitFetch();

  // The decoded candidates of the last Enqueue (device memory): frame f's are
  // device_candidates()[f * capacity() + i] for i < device_counts()[f], in no particular order.
  const Candidate* device_candidates() const { return candidates_.as<Candidate>(); }
  const int* device_counts() const { return counts_.as<int>(); }
  int capacity() const { return capacity_; }

 private:
  ModelDescription model_;
  HeadLayout layout_;
  int max_frames_ = 0, capacity_ = 0;
  DeviceBuffer candidates_, counts_, thresholds_, geometry_;
  PinnedBuffer host_geometry_;
  CudaEvent geometry_copied_;  // the pinned staging buffer may be rewritten once this has passed
  CudaBatchNms nms_;
};

}  // namespace vidscan
