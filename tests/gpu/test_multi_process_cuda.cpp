// Issue 7 on the GPU:
//  - zero copy: a producer process writes a known pattern into a slot of its device pool; this process
//    maps the pool (cuMemCreate + fd over SCM_RIGHTS, or legacy CUDA IPC), waits on the slot's IPC event on
//    a stream and reads the exact bytes through its mapping — device memory, no host copy in between;
//  - `vidscan run --device gpu --workers decode=2,infer=1` writes the same bytes as `--workers single`;
//  - an infer worker SIGKILLed mid-run is restarted and the outputs are still those bytes.
#include <gtest/gtest.h>
#include <cuda_runtime.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "cuda_test_support.h"
#include "ipc/device_slot_pool.h"
#include "ipc/frame_channel.h"
#include "ipc/shm_region.h"
#include "support/test_support.h"

extern char** environ;

namespace vidscan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kEnvChannel = "VIDSCAN_TEST_DEVICE_POOL_CHANNEL";
constexpr int kWidth = 256, kHeight = 64, kSlots = 4;

FrameInfo PatternInfo() {
  FrameInfo info;
  info.width = kWidth;
  info.height = kHeight;
  info.pitch = 512;  // wider than a row: the padding travels too
  info.format = PixelFormat::kNV12;
  info.frame_index = 7;
  return info;
}

// The frame's bytes (luma rows, then chroma rows, `pitch` apart), padding included.
std::vector<uint8_t> Pattern(const FrameInfo& info) {
  std::vector<uint8_t> bytes(info.luma_bytes() + info.chroma_bytes());
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  return bytes;
}

// Runs only as the producer the zero-copy test starts (it sets the channel's name in the environment).
TEST(DeviceSlotPoolIpcProducer, Process) {
  const char* channel_name = std::getenv(kEnvChannel);
  if (channel_name == nullptr) GTEST_SKIP() << "the producer half of DeviceSlotPoolIpc.ConsumerReadsTheProducersBytes";
  auto how = ipc::DevicePoolExportFromEnvironment();
  ASSERT_TRUE(how.ok()) << how.status().ToString();
  const FrameInfo info = PatternInfo();
  auto pool = ipc::DeviceSlotPool::Create(std::string(channel_name) + "-pool", kSlots, info.luma_bytes() + info.chroma_bytes(), 0, *how);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  auto channel = ipc::FrameChannel::Create(channel_name, (*pool)->locator(), 8);
  ASSERT_TRUE(channel.ok()) << channel.status().ToString();
  int slot = -1;
  ASSERT_EQ(channel->AcquireSlot(&slot, 10s), ipc::RingWait::kOk);
  const std::vector<uint8_t> bytes = Pattern(info);
  FrameView frame;
  frame.info = info;
  frame.memory = MemoryKind::kHost;
  frame.luma = const_cast<uint8_t*>(bytes.data());
  frame.chroma = frame.luma + info.luma_bytes();
  ipc::FrameDescriptor d = ipc::MakeFrameDescriptor(1, 1, slot, info, static_cast<uint32_t>(info.luma_bytes()));
  ASSERT_TRUE((*pool)->WriteFrame(slot, frame, d.chroma_offset, d.cuda_event_handle).ok());
  d.has_cuda_event = 1;
  ASSERT_EQ(channel->Send(d, 10s), ipc::RingWait::kOk);
  ASSERT_TRUE((*pool)->WaitForWrites().ok());
  // Stay (and keep the pool) until the consumer has read the slot and given it back.
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (channel->free_slots() < static_cast<uint32_t>(kSlots) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(channel->free_slots(), static_cast<uint32_t>(kSlots));
}

class DeviceSlotPoolIpc : public ::testing::TestWithParam<const char*> {};

TEST_P(DeviceSlotPoolIpc, ConsumerReadsTheProducersBytes) {
  SKIP_WITHOUT_GPU();
  const std::string export_kind = GetParam();
  auto name = ipc::ShmName(getpid(), "gputest", "chan" + export_kind);
  ASSERT_TRUE(name.ok());
  // The producer: this test binary again, in a process of its own (no CUDA state inherited).
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  std::vector<std::string> args = {self, "--gtest_filter=DeviceSlotPoolIpcProducer.Process"};
  std::vector<std::string> env_strings = {std::string(kEnvChannel) + "=" + *name, "VIDSCAN_DEVICE_POOL_EXPORT=" + export_kind};
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t producer = 0;
  ASSERT_EQ(posix_spawn(&producer, self.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);

  std::optional<ipc::FrameChannel> channel;
  for (auto deadline = std::chrono::steady_clock::now() + 60s; !channel && std::chrono::steady_clock::now() < deadline;) {
    auto opened = ipc::FrameChannel::Open(*name);
    if (opened.ok()) {
      channel.emplace(std::move(*opened));
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  ASSERT_TRUE(channel) << "the producer made no channel";
  ipc::FrameDescriptor d;
  ASSERT_EQ(channel->Receive(&d, 60s), ipc::RingWait::kOk);
  auto pool = ipc::DeviceSlotPool::Open(channel->pool());
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_EQ(ipc::DevicePoolExportName((*pool)->export_kind()), export_kind);
  auto view = (*pool)->View(d);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->memory, MemoryKind::kDevice);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, view->luma), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice) << "the slot is device memory mapped into this process";

  auto event = (*pool)->WriteDoneEvent(d);
  ASSERT_TRUE(event.ok()) << event.status().ToString();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(stream, static_cast<cudaEvent_t>(*event), 0), cudaSuccess);
  const FrameInfo info = view->info;
  std::vector<uint8_t> read(info.luma_bytes() + info.chroma_bytes());
  // The check's own copy to the host, after the wait: what the mapping holds is what the producer wrote.
  ASSERT_EQ(cudaMemcpyAsync(read.data(), view->luma, info.luma_bytes(), cudaMemcpyDeviceToHost, stream), cudaSuccess);
  ASSERT_EQ(cudaMemcpyAsync(read.data() + info.luma_bytes(), view->chroma, info.chroma_bytes(), cudaMemcpyDeviceToHost, stream),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  cudaStreamDestroy(stream);
  EXPECT_EQ(read, Pattern(PatternInfo())) << "the consumer reads the exact bytes the producer wrote";
  // Unmapped before the slot goes back: the producer frees the pool once it has it.
  pool->reset();
  ASSERT_TRUE(channel->ReturnSlot(d.slot).ok());
  int status = 0;
  ASSERT_EQ(waitpid(producer, &status, 0), producer);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "producer status " << status;
}

INSTANTIATE_TEST_SUITE_P(Exports, DeviceSlotPoolIpc, ::testing::Values("fd", "legacy"));

// Per-video output files under <out>/videos.
std::map<std::string, std::string> VideoOutputs(const fs::path& out) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(out / "videos")) {
    if (e.is_regular_file()) files[fs::relative(e.path(), out / "videos").string()] = testing::ReadFile(e.path());
  }
  return files;
}

// The real video under several names (each its own video, decoder, tracker and output folder).
std::string Inputs(const std::string& video, int copies) {
  const fs::path dir = testing::TempDir("gpu_mp_inputs");
  std::string inputs;
  for (int i = 0; i < copies; ++i) {
    const fs::path link = dir / ("copy" + std::to_string(i) + fs::path(video).extension().string());
    // Real copies: the job takes a path and its symlinks for one video (duplicates are dropped).
    fs::copy_file(video, link, fs::copy_options::overwrite_existing);
    inputs += " '" + link.string() + "'";
  }
  return inputs;
}

std::string ShmLeftovers(pid_t supervisor) {
  std::string left;
  const std::string prefix = "vidscan-" + std::to_string(getuid()) + "-" + std::to_string(supervisor) + "-";
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) left += e.path().filename().string() + " ";
  }
  return left;
}

pid_t StartVidscan(const std::string& args, const std::string& log) {
  const pid_t child = fork();
  if (child == 0) {
    const std::string cmd = "exec " + testing::VidscanBinary() + " run " + args + " >'" + log + "' 2>&1";
    execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return child;
}

int WaitExitCode(pid_t child) {
  int status = 0;
  if (waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

pid_t FindInferWorker0(pid_t supervisor) {
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(e.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(line.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent != supervisor || state == 'Z') continue;
    std::ifstream environ_file(e.path() / "environ", std::ios::binary);
    std::string env((std::istreambuf_iterator<char>(environ_file)), std::istreambuf_iterator<char>());
    if (env.find(std::string("VIDSCAN_IPC_ROLE=infer") + '\0') != std::string::npos &&
        env.find(std::string("VIDSCAN_IPC_INDEX=0") + '\0') != std::string::npos) {
      return std::stoi(name);
    }
  }
  return 0;
}

int CompletedVideos(const fs::path& out) {
  int n = 0;
  if (!fs::exists(out / "videos")) return 0;
  for (const auto& e : fs::recursive_directory_iterator(out / "videos")) n += e.path().filename() == "summary.json";
  return n;
}

TEST(MultiProcessRunGpu, OutputsEqualTheSingleProcessRunAndSurviveAKilledInferWorker) {
  SKIP_WITHOUT_GPU();
  VS_REQUIRE_DATA(video, testing::kRealVideo);
  VS_REQUIRE_DATA(model, "models/yolox_nano_coco_416.onnx");
  constexpr int kCopies = 6;
  const std::string inputs = Inputs(video, kCopies);
  // One cuDNN algorithm table for the three jobs: each would otherwise time cuDNN's algorithms itself, and
  // two choices may round differently in the last digits (docs/pipeline.md, --cudnn-algorithms).
  const std::string table = (fs::path(testing::TempDir("gpu_mp_table")) / "cudnn_algorithms.json").string();
  const std::string common = " --device gpu --model '" + model + "' --family yolox --batch 16 --progress none" +
                             " --cudnn-algorithms '" + table + "'";

  const fs::path single = testing::TempDir("gpu_mp_single");
  std::string log;
  ASSERT_EQ(testing::RunCommand(testing::VidscanBinary() + " run" + inputs + " -o " + single.string() + common +
                                    " --workers single 2>&1",
                                &log),
            0)
      << log;
  const auto reference = VideoOutputs(single);
  ASSERT_EQ(reference.size(), 3u * kCopies);

  // Undisturbed, then with infer-0 SIGKILLed once a video is committed.
  for (const bool kill_one : {false, true}) {
    const fs::path out = testing::TempDir(kill_one ? "gpu_mp_killed" : "gpu_mp_multi");
    const std::string log_path = out.string() + ".log";
    const pid_t supervisor = StartVidscan(inputs + " -o " + out.string() + common + " --workers decode=2,infer=1", log_path);
    ASSERT_GT(supervisor, 0);
    if (kill_one) {
      pid_t victim = 0;
      for (auto give_up = std::chrono::steady_clock::now() + 5min; std::chrono::steady_clock::now() < give_up;) {
        if (CompletedVideos(out) >= 1 && (victim = FindInferWorker0(supervisor)) != 0) break;
        if (waitpid(supervisor, nullptr, WNOHANG) != 0) break;
        std::this_thread::sleep_for(1ms);
      }
      ASSERT_NE(victim, 0) << testing::ReadFile(log_path);
      EXPECT_LT(CompletedVideos(out), kCopies) << "killed after the last video: nothing was in flight";
      ASSERT_EQ(kill(victim, SIGKILL), 0);
    }
    ASSERT_EQ(WaitExitCode(supervisor), 0) << testing::ReadFile(log_path);
    std::printf("%s", testing::ReadFile(log_path).c_str());
    EXPECT_EQ(ShmLeftovers(supervisor), "");
    json summary = json::parse(testing::ReadFile(out / "job_summary.json"));
    EXPECT_EQ(summary["workers"], "decode=2,infer=1");
    EXPECT_EQ(summary["worker_deaths"], kill_one ? 1 : 0);
    const auto outputs = VideoOutputs(out);
    ASSERT_EQ(outputs.size(), reference.size());
    for (const auto& [name, bytes] : reference) {
      ASSERT_TRUE(outputs.count(name)) << name;
      EXPECT_EQ(outputs.at(name), bytes) << name << (kill_one ? " (infer worker killed)" : "")
                                         << " differs from the single-process GPU run";
    }
  }
}

}  // namespace
}  // namespace vidscan
