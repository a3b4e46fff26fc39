// ByteTrack throughput on one core: S streams, each with its own tracker, about B boxes per frame
// (B objects in view, with noise, misses, occlusions and false positives from the synthetic scene).
// One benchmark iteration = one frame of every stream; the counter stream_frames/s is the figure of
// merit (target: > 20,000 at 1,000 streams x 50 boxes, the 1000/53 case).
//
//   build/bench/bench_track --benchmark_filter='BM_ByteTrack/1000/53'
#include <benchmark/benchmark.h>

#include "track/byte_tracker.h"
#include "track/synthetic_scene.h"

namespace {

using vidscan::track::ByteTracker;
using vidscan::track::SyntheticFrame;
using vidscan::track::TrackedObject;

void BM_ByteTrack(benchmark::State& state) {
  const int streams = static_cast<int>(state.range(0));
  const int objects = static_cast<int>(state.range(1));
  // A handful of distinct scenes shared by the streams (at different phases), so the input does not
  // dominate memory; each stream still has its own tracker state.
  constexpr int kScenes = 8, kFrames = 600;
  std::vector<std::vector<SyntheticFrame>> scenes;
  for (int s = 0; s < kScenes; ++s) {
    vidscan::track::SyntheticSceneParams p;
    p.objects = objects;
    p.frames = kFrames;
    p.seed = 100 + s;
    scenes.push_back(vidscan::track::MakeSyntheticScene(p));
  }
  std::vector<ByteTracker> trackers(streams);
  std::vector<TrackedObject> out;
  int64_t frame = 0, boxes = 0, tracked = 0;
  for (auto _ : state) {
    ++frame;
    for (int s = 0; s < streams; ++s) {
      const auto& f = scenes[s % kScenes][(frame + s * 37) % kFrames];
      if (!trackers[s].Update(frame, f.detections, &out).ok()) state.SkipWithError("Update failed");
      boxes += f.detections.size();
      tracked += out.size();
    }
  }
  const double stream_frames = static_cast<double>(state.iterations()) * streams;
  state.counters["stream_frames/s"] = benchmark::Counter(stream_frames, benchmark::Counter::kIsRate);
  state.counters["boxes/frame"] = boxes / stream_frames;
  state.counters["tracked/frame"] = tracked / stream_frames;
}

// 53 objects give about 50 boxes per frame after misses and false positives.
BENCHMARK(BM_ByteTrack)->Args({1000, 53})->Args({100, 53})->Args({1000, 10})->Args({100, 100})->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
