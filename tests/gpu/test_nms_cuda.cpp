// The CUDA batch NMS against the CPU reference on random batches: random frame counts and candidate
// counts (empty frames, counts above the capacity), a few classes, boxes clustered so that most overlap
// heavily, scores drawn from a handful of values so that ties are common, shuffled candidate indices, and
// top_k / max_detections caps that bite. Tolerance: none. Both sides decide each pair with the same
// box_iou.h function (explicitly rounded on the device) and order by the same key, so the GPU must keep
// exactly the CPU's boxes, in the CPU's order, bit for bit.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "detect/nms.h"
#include "detect/nms_cuda.h"
#include "gpu/cuda_test_support.h"
#include "preprocess/cuda_buffers.h"

namespace vidscan {
namespace {

std::vector<Candidate> RandomFrame(std::mt19937_64& rng, int count, int classes) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  // A few cluster centres per frame: boxes jittered around them overlap heavily.
  const int clusters = 1 + static_cast<int>(rng() % 6);
  std::vector<std::array<float, 4>> centres(clusters);
  for (auto& c : centres) c = {unit(rng) * 1000, unit(rng) * 600, 20 + unit(rng) * 200, 20 + unit(rng) * 200};
  std::vector<int32_t> indices(count);
  std::iota(indices.begin(), indices.end(), 0);
  std::shuffle(indices.begin(), indices.end(), rng);
  std::vector<Candidate> out(count);
  for (int i = 0; i < count; ++i) {
    const auto& c = centres[rng() % clusters];
    const float jitter = rng() % 4 == 0 ? 0.0f : 0.3f;  // some exact duplicates
    const float cx = c[0] + (unit(rng) - 0.5f) * jitter * c[2];
    const float cy = c[1] + (unit(rng) - 0.5f) * jitter * c[3];
    const float w = c[2] * (1 + (unit(rng) - 0.5f) * jitter), h = c[3] * (1 + (unit(rng) - 0.5f) * jitter);
    Candidate& k = out[i];
    k.x1 = cx - w / 2;
    k.y1 = cy - h / 2;
    k.x2 = cx + w / 2;
    k.y2 = cy + h / 2;
    if (rng() % 50 == 0) k.x2 = k.x1;  // now and then a box with no area
    k.score = rng() % 3 == 0 ? static_cast<float>(rng() % 8) / 8.0f : unit(rng);  // many ties
    k.class_id = static_cast<int32_t>(rng() % classes);
    k.index = indices[i] * 7 - 100;  // unique, not in order, some negative
  }
  return out;
}

void ExpectSame(const std::vector<Candidate>& cpu, const std::vector<Candidate>& gpu, const std::string& where) {
  ASSERT_EQ(cpu.size(), gpu.size()) << where;
  for (size_t i = 0; i < cpu.size(); ++i) {
    EXPECT_EQ(std::memcmp(&cpu[i], &gpu[i], sizeof(Candidate)), 0)
        << where << " kept #" << i << ": CPU index " << cpu[i].index << " score " << cpu[i].score << ", GPU index "
        << gpu[i].index << " score " << gpu[i].score;
  }
}

TEST(CudaBatchNms, KeepsExactlyWhatTheCpuKeepsOnRandomBatches) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = FreshSeed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto stream = CudaStream::Create(cudaStreamNonBlocking);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();

  for (int round = 0; round < 40; ++round) {
    const int max_frames = 1 + static_cast<int>(rng() % 24);
    const int capacity = 1 + static_cast<int>(rng() % (round % 4 == 0 ? 3000 : 400));
    NmsParams params;
    params.iou_threshold = std::uniform_real_distribution<float>(0.1f, 0.9f)(rng);
    params.top_k = 1 + static_cast<int>(rng() % (capacity + 50));
    params.max_detections = 1 + static_cast<int>(rng() % 400);
    params.class_aware = rng() % 4 != 0;
    const int classes = 1 + static_cast<int>(rng() % 4);
    auto nms = CudaBatchNms::Create(max_frames, capacity, params);
    ASSERT_TRUE(nms.ok()) << nms.status().ToString();

    const int frames = 1 + static_cast<int>(rng() % max_frames);
    std::vector<Candidate> host(static_cast<size_t>(frames) * capacity);
    std::vector<int> counts(frames);
    std::vector<std::vector<Candidate>> expected(frames);
    for (int f = 0; f < frames; ++f) {
      const int kind = static_cast<int>(rng() % 8);
      // Empty, over the capacity (clamped), or anything in between.
      counts[f] = kind == 0 ? 0 : kind == 1 ? capacity + 5 : static_cast<int>(rng() % (capacity + 1));
      const int n = std::min(counts[f], capacity);
      std::vector<Candidate> boxes = RandomFrame(rng, n, classes);
      std::copy(boxes.begin(), boxes.end(), host.begin() + static_cast<size_t>(f) * capacity);
      expected[f] = NmsCpu(boxes, params);
    }
    auto d_candidates = DeviceBuffer::Allocate(host.size() * sizeof(Candidate));
    auto d_counts = DeviceBuffer::Allocate(counts.size() * sizeof(int));
    ASSERT_TRUE(d_candidates.ok() && d_counts.ok());
    ASSERT_EQ(cudaMemcpy(d_candidates->data(), host.data(), host.size() * sizeof(Candidate), cudaMemcpyHostToDevice),
              cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d_counts->data(), counts.data(), counts.size() * sizeof(int), cudaMemcpyHostToDevice),
              cudaSuccess);
    Status st = nms->Enqueue(d_candidates->as<Candidate>(), d_counts->as<int>(), frames, stream->get());
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto kept = nms->Fetch(stream->get());
    ASSERT_TRUE(kept.ok()) << kept.status().ToString();
    ASSERT_EQ(kept->size(), static_cast<size_t>(frames));
    for (int f = 0; f < frames; ++f) {
      ExpectSame(expected[f], (*kept)[f],
                 "round " + std::to_string(round) + " frame " + std::to_string(f) + " (count " +
                     std::to_string(counts[f]) + ", capacity " + std::to_string(capacity) + ")");
    }
  }
}

TEST(CudaBatchNms, RejectsMoreFramesThanItWasBuiltFor) {
  SKIP_WITHOUT_GPU();
  auto nms = CudaBatchNms::Create(2, 10, NmsParams{});
  ASSERT_TRUE(nms.ok()) << nms.status().ToString();
  Status st = nms->Enqueue(nullptr, nullptr, 3, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(CudaBatchNms::Create(0, 10, NmsParams{}).ok());
}

}  // namespace
}  // namespace vidscan
