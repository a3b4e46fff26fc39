// Detector stage throughput: YOLOX-Nano-shaped outputs (416x416, 3549 anchors, 80 classes) with a few
// hundred candidates above threshold per frame, decoded and suppressed per batch.
//   BM_DetectCpu/B:    CPU heads + CPU NMS, one batch of B frames per iteration (the baseline).
//   BM_CudaDetector/B: decode kernels + batch NMS + the copy of kept boxes to the host, synchronised per
//                      batch; counter x_vs_cpu = its frames/s over BM_DetectCpu's on the same data, measured
//                      in the same run. Skips (with the reason) without a GPU.
//   BM_NmsCpu/N:       CPU NMS alone on N heavily overlapping candidates.
//
//   build/bench/bench_detect                      (all)
//   build/bench/bench_detect --benchmark_filter=Cuda
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "detect/heads.h"
#include "detect/model_description.h"
#include "detect/nms.h"
#if VIDSCAN_HAVE_CUDA
#include "detect/heads_cuda.h"
#endif

namespace {

using namespace vidscan;

struct YoloxBatch {
  ModelDescription model = DefaultModelDescription(ModelFamily::kYolox);
  std::vector<float> output;
  std::vector<int64_t> shape;
  std::vector<FrameGeometry> frames;
  HeadTensor tensor() const { return HeadTensor{output.data(), shape}; }
};

YoloxBatch MakeYoloxBatch(int batch) {
  YoloxBatch b;
  b.model.input.width = b.model.input.height = 416;
  const int64_t anchors = YoloxAnchorCount(416, 416), row = 85;
  b.shape = {batch, anchors, row};
  b.output.resize(static_cast<size_t>(batch) * anchors * row);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> u(0, 1);
  for (size_t i = 0; i < b.output.size(); ++i) {
    const int64_t k = static_cast<int64_t>(i % row);
    const float x = u(rng);
    // Objectness x^8 (about 14% of anchors above 0.3 before the class score), person scores high.
    b.output[i] = k < 2 ? x : k < 4 ? x * 2 - 1 : k == 4 ? x * x * x * x * x * x * x * x : k == 5 ? x : 0.1f * x;
  }
  // 1280x720 letterboxed top-left into 416x416.
  const float s = 416.0f / 1280.0f;
  b.frames.assign(batch, FrameGeometry{LetterboxTransform{s, s, 0, 0, 0, 0, 416, 234}, 1280, 720});
  return b;
}

double CpuFramesPerSecond(const YoloxBatch& b) {
  const HeadTensor t = b.tensor();
  const auto start = std::chrono::steady_clock::now();
  int runs = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500)) {
    benchmark::DoNotOptimize(DetectCpu(b.model, std::span(&t, 1), b.frames));
    ++runs;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return runs * static_cast<double>(b.frames.size()) / seconds;
}

void BM_DetectCpu(benchmark::State& state) {
  const YoloxBatch b = MakeYoloxBatch(static_cast<int>(state.range(0)));
  const HeadTensor t = b.tensor();
  size_t kept = 0;
  for (auto _ : state) {
    auto dets = DetectCpu(b.model, std::span(&t, 1), b.frames);
    if (!dets.ok()) state.SkipWithError(dets.status().ToString().c_str());
    for (const auto& f : *dets) kept += f.size();
  }
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(state.iterations() * b.frames.size()),
                                                  benchmark::Counter::kIsRate);
  state.counters["kept/frame"] = static_cast<double>(kept) / (state.iterations() * b.frames.size());
}
BENCHMARK(BM_DetectCpu)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond);

#if VIDSCAN_HAVE_CUDA
void BM_CudaDetector(benchmark::State& state) {
  if (Status st = CudaDeviceAvailable(0); !st.ok()) {
    state.SkipWithError(st.message().c_str());
    return;
  }
  const YoloxBatch b = MakeYoloxBatch(static_cast<int>(state.range(0)));
  auto device = DeviceBuffer::Allocate(b.output.size() * sizeof(float));
  auto stream = CudaStream::Create(cudaStreamNonBlocking);
  if (!device.ok() || !stream.ok()) {
    state.SkipWithError("CUDA allocation failed");
    return;
  }
  if (cudaMemcpy(device->data(), b.output.data(), b.output.size() * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) {
    state.SkipWithError("cudaMemcpy failed");
    return;
  }
  const HeadTensor t{device->as<float>(), b.shape};
  auto detector = CudaDetector::Create(b.model, std::span(&t, 1), static_cast<int>(b.frames.size()));
  if (!detector.ok()) {
    state.SkipWithError(detector.status().ToString().c_str());
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    Status st = detector->Enqueue(std::span(&t, 1), b.frames, stream->get());
    auto dets = st.ok() ? detector->Fetch(stream->get()) : Expected<std::vector<FrameDetections>>(st);
    if (!dets.ok()) {
      state.SkipWithError(dets.status().ToString().c_str());
      return;
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double frames = static_cast<double>(state.iterations() * b.frames.size());
  state.counters["frames/s"] = benchmark::Counter(frames, benchmark::Counter::kIsRate);
  // The ratio to the CPU path, both measured here on the same batch.
  const double cpu_fps = CpuFramesPerSecond(b);
  state.counters["cpu_frames/s"] = cpu_fps;
  state.counters["x_vs_cpu"] = frames / seconds / cpu_fps;
}
BENCHMARK(BM_CudaDetector)->Arg(1)->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

void BM_NmsCpu(benchmark::State& state) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(0, 1);
  std::vector<Candidate> c(static_cast<size_t>(state.range(0)));
  for (size_t i = 0; i < c.size(); ++i) {
    const float cx = 100 + 1000 * std::floor(u(rng) * 20) / 20, cy = 300 + 20 * u(rng);
    c[i] = Candidate{cx, cy, cx + 40 + 10 * u(rng), cy + 80, u(rng), static_cast<int32_t>(i % 2), static_cast<int32_t>(i)};
  }
  NmsParams p;
  p.top_k = static_cast<int>(c.size());
  for (auto _ : state) benchmark::DoNotOptimize(NmsCpu(c, p));
  state.counters["candidates/s"] = benchmark::Counter(static_cast<double>(state.iterations() * c.size()),
                                                      benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NmsCpu)->Arg(100)->Arg(1000)->Arg(4000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
