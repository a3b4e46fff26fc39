// Helpers shared by the CUDA tests: skip (never fail) without a GPU, and a fresh seed per run for the
// random comparisons against CPU references (each test prints it, so a failure can be replayed).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "preprocess/cuda_buffers.h"

#define SKIP_WITHOUT_GPU()                                                                          \
  do {                                                                                              \
    if (::vidscan::Status st = ::vidscan::CudaDeviceAvailable(0); !st.ok()) GTEST_SKIP() << st.message(); \
  } while (0)

namespace vidscan {

inline uint64_t FreshSeed() {
  return static_cast<uint64_t>(std::chrono::high_resolution_clock::now().time_since_epoch().count());
}

}  // namespace vidscan
