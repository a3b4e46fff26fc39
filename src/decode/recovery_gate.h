// After a damaged picture, later pictures that predict from it are damaged too even when the decoder does
// not flag them: drop every picture until the next intra picture, and count what was dropped. Shared by
// the CPU and NVDEC decoders so both recover the same way.
#pragma once

#include "decode/decoder.h"

namespace vidscan {

class RecoveryGate {
 public:
  // True when the picture may be used.
  bool Admit(bool damaged, bool intra, DecodeCounters* counters) {
    if (damaged) {
      ++counters->frames_corrupt;
      awaiting_intra_ = true;
      return false;
    }
    if (awaiting_intra_ && !intra) {
      ++counters->frames_skipped;
      return false;
    }
    awaiting_intra_ = false;
    return true;
  }

 private:
  bool awaiting_intra_ = false;
};

}  // namespace vidscan
