// GEMM of the CPU executor on convolution-shaped problems, per instruction-set variant. The baseline is
// the same code built for plain x86-64; `vs_baseline` is how many times faster a variant is.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <random>
#include <vector>

#include "infer/gemm.h"

namespace {

using vidscan::infer::GemmIsa;

// (M, N, K) of ResNet-34 convs at 960x544: layer1 3x3 (64 x 136*240 x 576), layer3 3x3 (256 x 34*60 x 2304).
struct Problem {
  int64_t m, n, k;
};
const Problem kProblems[] = {{64, 136 * 240, 576}, {256, 34 * 60, 2304}};

struct Matrices {
  std::vector<float> a, b, c;
  explicit Matrices(const Problem& p) : a(p.m * p.k), b(p.k * p.n), c(p.m * p.n) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-1, 1);
    for (float& v : a) v = u(rng);
    for (float& v : b) v = u(rng);
  }
};

double SecondsPerGemm(GemmIsa isa, const Problem& p, Matrices& m, int repeats) {
  const auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < repeats; ++r)
    vidscan::infer::GemmWithIsa(isa, p.m, p.n, p.k, m.a.data(), p.k, m.b.data(), p.n, m.c.data(), p.n, nullptr);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeats;
}

void BM_Gemm(benchmark::State& state) {
  const auto isa = static_cast<GemmIsa>(state.range(0));
  const Problem& p = kProblems[state.range(1)];
  if (!vidscan::infer::GemmIsaSupported(isa)) {
    state.SkipWithError("this CPU lacks the instruction set");
    return;
  }
  Matrices m(p);
  static std::map<int64_t, double> baseline_seconds;  // per problem, measured once
  if (!baseline_seconds.count(state.range(1))) baseline_seconds[state.range(1)] = SecondsPerGemm(GemmIsa::kBaseline, p, m, 2);
  double total = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    total += SecondsPerGemm(isa, p, m, 1);
    ++runs;
    benchmark::DoNotOptimize(m.c.data());
  }
  const double flops = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * static_cast<double>(runs) / 1e9, benchmark::Counter::kIsRate);
  state.counters["vs_baseline"] = baseline_seconds[state.range(1)] / (total / static_cast<double>(runs));
}

// Args: (isa: 0 baseline, 1 AVX2, 2 AVX-512; problem index). One thread: the per-core kernel speed.
BENCHMARK(BM_Gemm)->ArgsProduct({{0, 1, 2}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
