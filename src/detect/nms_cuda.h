// Batched, class-aware NMS on the GPU: every frame of a batch in one set of launches, keeping exactly the
// set the CPU reference NmsCpu keeps (same order: higher score first, then lower candidate index).
//
// Per frame: candidates are keyed by (score descending, index ascending) and sorted with one CUB
// segmented radix sort over the batch; the best top_k are gathered; a kernel fills the upper-triangular
// bitmask "row box suppresses column box" (same class and IoU above the threshold, computed by the
// box_iou.h function the CPU uses); one warp per frame then walks the sorted boxes, keeping a box unless a
// kept one already suppressed it. Only the kept boxes go back to the host.
//
// Needs the CUDA runtime: include only from .cu files, *_cuda.cpp files or code under VIDSCAN_HAVE_CUDA.
#pragma once

#include <cuda_runtime.h>

#include <vector>

#include "core/status.h"
#include "detect/detection.h"
#include "preprocess/cuda_buffers.h"

namespace vidscan {

class CudaBatchNms {
 public:
  // Buffers for up to `max_frames` frames of up to `capacity` candidates each, allocated once here.
  static Expected<CudaBatchNms> Create(int max_frames, int capacity, const NmsParams& params);

  // Enqueues NMS on `stream`. Frame f's candidates are d_candidates[f * capacity + i] for
  // i < min(d_counts[f], capacity) (a count above the capacity, e.g. from a decode kernel that ran out of
  // room, is clamped); both arrays live in device memory. Candidate indices must be unique within a frame.
  Status Enqueue(const Candidate* d_candidates, const int* d_counts, int frames, cudaStream_t stream);
  // Copies the kept boxes of the last Enqueue to the host and waits for them: result[f] best first.
  Expected<std::vector<std::vector<Candidate>>> Fetch(cudaStream_t stream);
  // Fetch in two halves: queue the copy right behind the suppression (so a later batch queued on the same
  // stream does not delay it), and later wait for that copy alone.
  Status EnqueueCopyOut(cudaStream_t stream);
  Expected<std::vector<std::vector<Candidate>>> WaitCopyOut();

  int max_frames() const { return max_frames_; }
  int capacity() const { return capacity_; }
  const NmsParams& params() const { return params_; }

 private:
  int max_frames_ = 0, capacity_ = 0, top_k_ = 0, words_ = 0, frames_ = 0;
  NmsParams params_;
  size_t sort_temp_bytes_ = 0;
  DeviceBuffer keys_, sorted_keys_, slots_, sorted_slots_, segment_begin_, segment_end_, sort_temp_;
  DeviceBuffer sorted_, sorted_count_, mask_, kept_, kept_count_;
  PinnedBuffer host_kept_, host_kept_count_;
  CudaEvent copied_;
  bool copy_pending_ = false;
};

}  // namespace vidscan
