#include <gtest/gtest.h>

#include "decode/nvdec/nvdec_decoder.h"

namespace vidscan {
namespace {

// Names the GPU the gpu-labelled tests ran on, so logs say where they ran.
TEST(GpuEnvironment, ReportsDevice) {
  Status st = NvdecAvailable(0);
  if (!st.ok()) GTEST_SKIP() << "no GPU: " << st.message();
  auto name = GpuName(0);
  ASSERT_TRUE(name.ok()) << name.status().ToString();
  std::printf("GPU 0: %s\n", name->c_str());
}

}  // namespace
}  // namespace vidscan
