// `vidscan run --workers decode=2,infer=1 --mps on` on a real GPU with the real nvidia-cuda-mps-control:
// the job starts its private MPS daemon, every worker process is seen among the daemon's clients, the
// outputs are byte-identical to the single-process run, and the daemon and its directory are gone at the
// end. Skips without a GPU or without the MPS control binary.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "cuda_test_support.h"
#include "support/test_support.h"

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::map<std::string, std::string> Outputs(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out / "videos")) {
    if (e.is_regular_file()) files[fs::relative(e.path(), out / "videos").string()] = testing::ReadFile(e.path());
  }
  return files;
}

TEST(MpsGpu, MultiProcessRunWithMpsOnHasEveryWorkerAsAClient) {
  SKIP_WITHOUT_GPU();
  if (!testing::HaveTool("nvidia-cuda-mps-control")) GTEST_SKIP() << "nvidia-cuda-mps-control is not on PATH";
  VS_REQUIRE_DATA(video, testing::kRealVideo);
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  const fs::path inputs_dir = testing::TempDir("mps_gpu_inputs");
  std::string inputs;
  for (int i = 0; i < 4; ++i) {
    const fs::path copy = inputs_dir / ("copy" + std::to_string(i) + fs::path(video).extension().string());
    fs::copy_file(video, copy, fs::copy_options::overwrite_existing);
    inputs += " '" + copy.string() + "'";
  }
  // One cuDNN algorithm table for both jobs, so that only MPS differs between them.
  const std::string table = (fs::path(testing::TempDir("mps_gpu_table")) / "cudnn_algorithms.json").string();
  const std::string common = " --device gpu --model '" + model + "' --family yolox --batch 16 --progress none" +
                             " --cudnn-algorithms '" + table + "'";
  const fs::path single = testing::TempDir("mps_gpu_single");
  std::string log;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run" + inputs + " -o " + single.string() + common +
                                    " --workers single 2>&1",
                                &log),
            0)
      << log;

  // TMPDIR: the session directory goes there, so the test can see it is removed.
  const std::string root = testing::TempDir("mps_gpu_root");
  const fs::path out = testing::TempDir("mps_gpu_multi");
  ASSERT_EQ(testing::RunCommand("TMPDIR='" + root + "' " + testing::VidscanBinary() + " run" + inputs + " -o " +
                                    out.string() + common + " --workers decode=2,infer=1 --mps on 2>&1",
                                &log),
            0)
      << log;
  std::printf("%s", log.c_str());
  const json summary = json::parse(testing::ReadFile(out / "job_summary.json"));
  const json& mps = summary.at("mps");
  EXPECT_EQ(mps["used"], true) << mps.dump();
  EXPECT_EQ(mps["daemon_started_by_job"], true) << mps.dump();
  EXPECT_EQ(mps["worker_processes"], 3) << mps.dump();
  EXPECT_GT(mps["worker_clients_seen"].get<int>(), 0) << mps.dump();
  EXPECT_EQ(mps["worker_clients_seen"], 3) << "every worker has a CUDA context: " << mps.dump();
  EXPECT_FALSE(fs::exists(mps["pipe_dir"].get<std::string>()));
  for (const auto& e : fs::directory_iterator(root)) ADD_FAILURE() << "left behind: " << e.path();
  EXPECT_EQ(Outputs(out), Outputs(single)) << "MPS must not change results";
}

}  // namespace
}  // namespace vidscan
