// infer/algorithm_table.h: the file that pins cuDNN's algorithm choices across processes. The GPU side (an
// executor planning with it) is CudaExecutor.AlgorithmTablePinsTheChoicesOfTheFirstPlanning in tests/gpu.
#include "infer/algorithm_table.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/test_support.h"

namespace vidscan::infer {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string TablePath(const char* name) { return (fs::path(testing::TempDir(name)) / "cudnn.json").string(); }

TEST(ConvAlgorithmTable, TheFirstChoiceWinsAndSurvivesTheFile) {
  const std::string path = TablePath("algo_roundtrip");
  ConvAlgorithmTable table(path);
  ASSERT_TRUE(table.Load().ok()) << "an absent file is an empty table";
  EXPECT_EQ(table.size(), 0u);
  table.Record("H200|cudnn91900|fp16|x32x64x272x480", {1, 1});
  table.Record("H200|cudnn91900|fp16|x32x64x272x480", {6, 0});  // a later choice for the same key is ignored
  table.Record("H200|cudnn91900|fp16|x32x128x136x240", {7, 2});
  ASSERT_TRUE(table.Save().ok());
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(getpid()))) << "the temporary file is renamed";

  ConvAlgorithmTable again(path);
  ASSERT_TRUE(again.Load().ok());
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(again.Find("H200|cudnn91900|fp16|x32x64x272x480"), (ConvAlgorithm{1, 1}));
  EXPECT_EQ(again.Find("H200|cudnn91900|fp16|x32x128x136x240"), (ConvAlgorithm{7, 2}));
  EXPECT_FALSE(again.Find("H100|cudnn91900|fp16|x32x64x272x480").has_value());
}

TEST(ConvAlgorithmTable, AFileThatIsNotATableIsAnErrorNotOverwritten) {
  const std::string path = TablePath("algo_bad");
  for (const char* text : {"not json", "[1, 2]", "{\"version\": 2, \"convolutions\": {}}",
                           "{\"version\": 1, \"convolutions\": {\"k\": {\"algo\": \"fast\", \"math\": 0}}}"}) {
    { std::ofstream(path) << text; }
    ConvAlgorithmTable table(path);
    Status loaded = table.Load();
    ASSERT_FALSE(loaded.ok()) << text;
    EXPECT_EQ(loaded.code(), StatusCode::kCorruptData) << text;
    EXPECT_NE(loaded.message().find(path), std::string::npos) << loaded.ToString();
    EXPECT_NE(loaded.message().find("remove it"), std::string::npos) << loaded.ToString();
  }
}

// Two processes planning at once: the second waits for the first's lock, then sees (and keeps) its choice.
TEST(ConvAlgorithmTable, TheLockMakesASecondProcessWaitAndAgree) {
  const std::string path = TablePath("algo_lock");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ConvAlgorithmTable table(path);
    auto lock = table.Lock();
    if (!lock.ok() || !table.Load().ok()) _exit(1);
    (void)!write(ready[1], "x", 1);
    std::this_thread::sleep_for(400ms);  // "planning"
    table.Record("conv-a", {5, 1});
    _exit(table.Save().ok() ? 0 : 2);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  const auto start = std::chrono::steady_clock::now();
  ConvAlgorithmTable table(path);
  auto lock = table.Lock();
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms) << "the lock was not held by the other process";
  ASSERT_TRUE(table.Load().ok());
  table.Record("conv-a", {1, 0});  // this process would have chosen otherwise: the recorded choice stays
  table.Record("conv-b", {2, 0});
  ASSERT_TRUE(table.Save().ok());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(ready[0]);
  close(ready[1]);

  ConvAlgorithmTable final_table(path);
  ASSERT_TRUE(final_table.Load().ok());
  EXPECT_EQ(final_table.Find("conv-a"), (ConvAlgorithm{5, 1}));
  EXPECT_EQ(final_table.Find("conv-b"), (ConvAlgorithm{2, 0}));
}

}  // namespace
}  // namespace vidscan::infer
