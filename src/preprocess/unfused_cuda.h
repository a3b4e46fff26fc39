// The baseline `vidscan bench preprocess` compares the fused kernel against: the same conversion as
// three separate passes through device memory, the way it is usually assembled from library calls:
//   1. NV12 -> 8-bit RGB at source size (interleaved, channels already in output order),
//   2. bilinear resize of that RGB image to the network size (8-bit),
//   3. scale/mean/std, cast and layout into the tensor slot.
// Stretch only, whole frames, NV12 only, all frames of one size, no shrink beyond 2x (plain bilinear).
// The two 8-bit intermediates round twice, so it matches the fused result within 1 level, not exactly.
// CUDA builds only.
#pragma once

#include <memory>
#include <span>

#include "core/status.h"
#include "preprocess/preprocess.h"

namespace vidscan {

class UnfusedPreprocessor {
 public:
  // Allocates the intermediates for max_batch frames of frame_width x frame_height once.
  static Expected<std::unique_ptr<UnfusedPreprocessor>> Create(const PreprocessParams& params, int frame_width,
                                                               int frame_height, int max_batch,
                                                               CUstream_st* stream);
  virtual ~UnfusedPreprocessor() = default;
  // Enqueues the three passes on the stream.
  virtual Status Run(std::span<const PreprocessInput> inputs, const BatchTensor& output) = 0;
  // Bytes each pass reads plus writes per frame (what the memory system moves in the ideal case).
  virtual size_t BytesMovedPerFrame() const = 0;
};

}  // namespace vidscan
