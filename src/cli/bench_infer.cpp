// `vidscan bench infer`: latency and throughput of the float32 CPU executor on an ONNX model, with the
// time per operator type. The baseline the cuDNN executor is measured against.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/bench.h"
#include "infer/infer.h"

namespace vidscan::cli {
namespace {

struct BenchInferArgs {
  std::string model;
  int batch = 1;
  int iterations = 5;
  int threads = 0;
  bool json = false;
};

int RunBenchInfer(const BenchInferArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto model = infer::LoadOnnx(args.model);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().ToString());
    return kExitFatal;
  }
  const size_t imported_nodes = model->graph.nodes.size();
  auto executor = infer::CpuExecutor::Create(*model, args.batch, {args.threads});
  if (!executor.ok()) {
    fmt::print(stderr, "error: {}\n", executor.status().ToString());
    return kExitFatal;
  }
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

  // Uniform [0, 1) inputs, batch `args.batch`; the speed of these kernels does not depend on the values.
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<std::vector<float>> buffers;
  std::vector<infer::HostTensorView> inputs;
  for (const infer::ValueInfo& info : executor->inputs()) {
    std::vector<int64_t> shape = info.shape;
    shape[0] = args.batch;
    int64_t count = 1;
    for (int64_t& d : shape) {
      if (d < 0) {
        fmt::print(stderr, "error: input '{}' has a symbolic dim besides the batch\n", info.name);
        return kExitFatal;
      }
      count *= d;
    }
    buffers.emplace_back(static_cast<size_t>(count));
    for (float& v : buffers.back()) v = uniform(rng);
    inputs.push_back({shape, buffers.back().data()});
  }
  std::vector<infer::HostTensor> outputs;
  if (Status st = executor->Run(inputs, &outputs); !st.ok()) {  // warm-up: sizes every buffer
    fmt::print(stderr, "error: {}\n", st.ToString());
    return kExitFatal;
  }
  std::vector<double> latencies;
  infer::RunProfile profile;
  for (int i = 0; i < args.iterations; ++i) {
    const auto start = Clock::now();
    if (Status st = executor->Run(inputs, &outputs, i == 0 ? &profile : nullptr); !st.ok()) {
      fmt::print(stderr, "error: {}\n", st.ToString());
      return kExitFatal;
    }
    latencies.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(latencies.begin(), latencies.end());
  const double median = latencies[latencies.size() / 2];
  const double images_per_second = args.batch / median;

  if (args.json) {
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& e : profile.entries) ops.push_back({{"op", e.op}, {"nodes", e.nodes}, {"seconds", e.seconds}});
    nlohmann::json out = {{"model", args.model},       {"batch", args.batch},
                          {"iterations", args.iterations}, {"load_seconds", load_seconds},
                          {"imported_nodes", imported_nodes}, {"optimized_nodes", executor->optimized_model().graph.nodes.size()},
                          {"latency_min_seconds", latencies.front()}, {"latency_median_seconds", median},
                          {"images_per_second", images_per_second}, {"ops", ops}};
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  fmt::print("model            {}\n", args.model);
  fmt::print("nodes            {} imported, {} after folding and fusion\n", imported_nodes, executor->optimized_model().graph.nodes.size());
  fmt::print("load + optimise  {:.3f} s\n", load_seconds);
  fmt::print("batch            {}\n", args.batch);
  fmt::print("latency          median {:.4f} s, min {:.4f} s over {} runs\n", median, latencies.front(), args.iterations);
  fmt::print("images/s         {:.2f}\n", images_per_second);
  fmt::print("time per operator (first timed run):\n");
  for (const auto& e : profile.entries) fmt::print("  {:<24} {:>4} nodes  {:8.4f} s\n", e.op, e.nodes, e.seconds);
  return kExitOk;
}

}  // namespace

void AddBenchInfer(CLI::App& bench, int* exit_code) {
  auto args = std::make_shared<BenchInferArgs>();
  auto* cmd = bench.add_subcommand("infer",
                                   "Run an ONNX model on the float32 CPU executor and report latency, images/s and the\n"
                                   "time per operator type (inputs are uniform random; speed does not depend on them).");
  cmd->add_option("model", args->model, "ONNX file")->required();
  cmd->add_option("--batch", args->batch, "Batch size")->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--iterations", args->iterations, "Timed runs after one warm-up")->check(CLI::Range(1, 100000))->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "Machine-readable result on stdout");
  cmd->callback([args, exit_code] { *exit_code = RunBenchInfer(*args); });
}

}  // namespace vidscan::cli
