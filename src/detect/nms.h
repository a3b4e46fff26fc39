// Non-maximum suppression, CPU reference: greedy, in order of score (higher first, then lower candidate
// index), class-aware unless told otherwise. The CUDA batch NMS (nms_cuda.h) keeps exactly the same set.
#pragma once

#include <span>
#include <vector>

#include "detect/detection.h"

namespace vidscan {

// True when `a` goes before `b`: higher score, then lower index.
inline bool CandidateBefore(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  return a.index < b.index;
}

// The kept candidates, best first: the best params.top_k enter suppression; at most
// params.max_detections come out.
std::vector<Candidate> NmsCpu(std::span<const Candidate> candidates, const NmsParams& params);

}  // namespace vidscan
