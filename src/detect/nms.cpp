#include "detect/nms.h"

#include <algorithm>

#include "detect/box_iou.h"

namespace vidscan {

std::vector<Candidate> NmsCpu(std::span<const Candidate> candidates, const NmsParams& params) {
  std::vector<Candidate> sorted(candidates.begin(), candidates.end());
  std::sort(sorted.begin(), sorted.end(), CandidateBefore);
  if (params.top_k >= 0 && sorted.size() > static_cast<size_t>(params.top_k)) sorted.resize(params.top_k);

  std::vector<Candidate> kept;
  std::vector<bool> removed(sorted.size(), false);
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (removed[i]) continue;
    if (kept.size() >= static_cast<size_t>(std::max(params.max_detections, 0))) break;
    const Candidate& a = sorted[i];
    kept.push_back(a);
    for (size_t j = i + 1; j < sorted.size(); ++j) {
      const Candidate& b = sorted[j];
      if (removed[j] || (params.class_aware && a.class_id != b.class_id)) continue;
      if (BoxIou(a.x1, a.y1, a.x2, a.y2, b.x1, b.y1, b.x2, b.y2) > params.iou_threshold) removed[j] = true;
    }
  }
  return kept;
}

}  // namespace vidscan
