// `vidscan bench infer`: latency and throughput of an ONNX model on the float32 CPU executor (with the time
// per operator type) or on the CUDA executor (--device gpu: FP16/FP32 cuDNN, CUDA-graph replay, timed with
// CUDA events after warm-up, frames/s and achieved convolution TFLOP/s).
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/bench.h"
#include "infer/builtin_models.h"
#include "infer/infer.h"

#if defined(VIDSCAN_HAVE_CUDNN)
#include <cuda_runtime.h>

#include "preprocess/cuda_buffers.h"
#endif

namespace vidscan::cli {
namespace {

struct BenchInferArgs {
  std::string model;
  std::vector<int> batches = {1};
  int batch = 1;  // the one being measured
  int iterations = 0;  // 0: 5 on the CPU, 100 on the GPU
  int threads = 0;
  std::string device = "cpu";
  std::string precision = "fp16";
  int workspace_mib = 1024;
  bool json = false;
};

int RunBenchInferCpu(const BenchInferArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto model = infer::LoadModelOrBuiltin(args.model);
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
  const int iterations = args.iterations > 0 ? args.iterations : 5;
  for (int i = 0; i < iterations; ++i) {
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
                          {"iterations", iterations}, {"device", "cpu"}, {"load_seconds", load_seconds},
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
  fmt::print("latency          median {:.4f} s, min {:.4f} s over {} runs\n", median, latencies.front(), iterations);
  fmt::print("images/s         {:.2f}\n", images_per_second);
  fmt::print("time per operator (first timed run):\n");
  for (const auto& e : profile.entries) fmt::print("  {:<24} {:>4} nodes  {:8.4f} s\n", e.op, e.nodes, e.seconds);
  return kExitOk;
}

#if defined(VIDSCAN_HAVE_CUDNN)
// One executor for the largest batch; per batch: device buffers, three warm-up runs (op by op, CUDA-graph
// capture, first replay), then back-to-back replays timed with CUDA events (throughput) and single
// synchronised runs (latency). Each run includes the device-to-device copies into and out of the arena.
int RunBenchInferGpu(const BenchInferArgs& args) {
  using Clock = std::chrono::steady_clock;
  const auto load_start = Clock::now();
  auto model = infer::LoadModelOrBuiltin(args.model);
  if (!model.ok()) {
    fmt::print(stderr, "error: {}\n", model.status().ToString());
    return kExitFatal;
  }
  infer::CudaExecutorOptions options;
  options.precision = args.precision == "fp32" ? infer::Precision::kFloat32 : infer::Precision::kFloat16;
  options.workspace_bytes = static_cast<size_t>(args.workspace_mib) << 20;
  const int max_batch = *std::max_element(args.batches.begin(), args.batches.end());
  auto executor = infer::CudaExecutor::Create(*model, max_batch, options);
  if (!executor.ok()) {
    fmt::print(stderr, "error: {}\n", executor.status().ToString());
    return kExitFatal;
  }
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();
  auto fail = [](const Status& st) {
    fmt::print(stderr, "error: {}\n", st.ToString());
    return kExitFatal;
  };
  auto stream = CudaStream::Create(cudaStreamNonBlocking);
  auto start_event = CudaEvent::Create(cudaEventDefault);
  auto stop_event = CudaEvent::Create(cudaEventDefault);
  if (!stream.ok()) return fail(stream.status());
  if (!start_event.ok()) return fail(start_event.status());
  if (!stop_event.ok()) return fail(stop_event.status());
  const int iterations = args.iterations > 0 ? args.iterations : 100;
  nlohmann::json results = nlohmann::json::array();
  if (!args.json) {
    fmt::print("model      {}\n", args.model);
    fmt::print("device     gpu, {}, CUDA graphs, arena {:.1f} MiB, load + plan {:.2f} s\n", infer::PrecisionName(options.precision),
               static_cast<double>(executor->arena_bytes()) / (1 << 20), load_seconds);
    fmt::print("{:>6} {:>12} {:>12} {:>12} {:>10}\n", "batch", "frames/s", "ms/batch", "latency ms", "TFLOP/s");
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  for (int batch : args.batches) {
    std::vector<DeviceBuffer> keep;
    std::vector<infer::DeviceTensorView> inputs;
    for (const infer::ValueInfo& info : executor->inputs()) {
      std::vector<int64_t> shape = info.shape;
      shape[0] = batch;
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      std::vector<float> host(static_cast<size_t>(count));
      for (float& v : host) v = uniform(rng);
      auto buffer = DeviceBuffer::Allocate(host.size() * sizeof(float));
      if (!buffer.ok()) return fail(buffer.status());
      if (Status st = CudaStatus(cudaMemcpy(buffer->data(), host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy"); !st.ok())
        return fail(st);
      inputs.push_back({shape, buffer->as<float>()});
      keep.push_back(std::move(*buffer));
    }
    auto shapes = executor->OutputShapes(batch);
    if (!shapes.ok()) return fail(shapes.status());
    std::vector<float*> outputs;
    for (const auto& shape : *shapes) {
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      auto buffer = DeviceBuffer::Allocate(static_cast<size_t>(count) * sizeof(float));
      if (!buffer.ok()) return fail(buffer.status());
      outputs.push_back(buffer->as<float>());
      keep.push_back(std::move(*buffer));
    }
    auto run = [&]() { return executor->Run(inputs, outputs, stream->get()); };
    for (int i = 0; i < 3; ++i)
      if (Status st = run(); !st.ok()) return fail(st);
    if (Status st = CudaStatus(cudaStreamSynchronize(stream->get()), "cudaStreamSynchronize"); !st.ok()) return fail(st);
    // Throughput: back-to-back replays between two events.
    cudaEventRecord(start_event->get(), stream->get());
    for (int i = 0; i < iterations; ++i)
      if (Status st = run(); !st.ok()) return fail(st);
    cudaEventRecord(stop_event->get(), stream->get());
    if (Status st = CudaStatus(cudaEventSynchronize(stop_event->get()), "cudaEventSynchronize"); !st.ok()) return fail(st);
    float total_ms = 0;
    cudaEventElapsedTime(&total_ms, start_event->get(), stop_event->get());
    const double ms = total_ms / iterations;
    // Latency: single synchronised runs, median.
    std::vector<float> latencies;
    for (int i = 0; i < std::min(iterations, 20); ++i) {
      cudaEventRecord(start_event->get(), stream->get());
      if (Status st = run(); !st.ok()) return fail(st);
      cudaEventRecord(stop_event->get(), stream->get());
      cudaEventSynchronize(stop_event->get());
      float one = 0;
      cudaEventElapsedTime(&one, start_event->get(), stop_event->get());
      latencies.push_back(one);
    }
    std::sort(latencies.begin(), latencies.end());
    const double latency_ms = latencies[latencies.size() / 2];
    auto flops = executor->ConvFlops(batch);
    if (!flops.ok()) return fail(flops.status());
    const double frames_per_second = batch / (ms / 1000.0);
    const double tflops = *flops / (ms / 1000.0) / 1e12;
    if (args.json) {
      results.push_back({{"batch", batch}, {"frames_per_second", frames_per_second}, {"ms_per_batch", ms}, {"latency_median_ms", latency_ms},
                         {"conv_gflop_per_batch", *flops / 1e9}, {"conv_tflops", tflops}, {"iterations", iterations}});
    } else {
      fmt::print("{:>6} {:>12.1f} {:>12.3f} {:>12.3f} {:>10.1f}\n", batch, frames_per_second, ms, latency_ms, tflops);
    }
  }
  if (args.json) {
    nlohmann::json out = {{"model", args.model}, {"device", "gpu"}, {"precision", infer::PrecisionName(options.precision)},
                          {"cuda_graphs", true}, {"load_seconds", load_seconds}, {"arena_bytes", executor->arena_bytes()},
                          {"results", results}};
    std::cout << out.dump(2) << "\n";
  }
  return kExitOk;
}
#endif

int RunBenchInfer(const BenchInferArgs& args) {
  if (args.device == "gpu") {
#if defined(VIDSCAN_HAVE_CUDNN)
    return RunBenchInferGpu(args);
#else
    fmt::print(stderr, "error: this build has no CUDA executor (built without CUDA or cuDNN)\n");
    return kExitFatal;
#endif
  }
  for (int batch : args.batches) {
    BenchInferArgs one = args;
    one.batch = batch;
    if (const int code = RunBenchInferCpu(one); code != kExitOk) return code;
  }
  return kExitOk;
}

}  // namespace

void AddBenchInfer(CLI::App& bench, int* exit_code) {
  auto args = std::make_shared<BenchInferArgs>();
  auto* cmd = bench.add_subcommand("infer",
                                   "Run an ONNX model on the float32 CPU executor (latency, images/s, time per operator\n"
                                   "type) or the CUDA executor (--device gpu: frames/s and conv TFLOP/s per batch size,\n"
                                   "CUDA-graph replay timed with CUDA events). Inputs are uniform random.");
  cmd->add_option("model", args->model, std::string("ONNX file, or ") + infer::kBuiltinDetectNet + " (built in C++, random weights)")->required();
  cmd->add_option("--batch", args->batches, "Batch size, or several: 1,8,32")->delimiter(',')->check(CLI::Range(1, 1024))->capture_default_str();
  cmd->add_option("--iterations", args->iterations, "Timed runs after warm-up (default 5 on the CPU, 100 on the GPU)")->check(CLI::Range(1, 100000));
  cmd->add_option("--device", args->device, "cpu or gpu")->check(CLI::IsMember({"cpu", "gpu"}))->capture_default_str();
  cmd->add_option("--precision", args->precision, "GPU precision: fp16 or fp32")->check(CLI::IsMember({"fp16", "fp32"}))->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--workspace-mib", args->workspace_mib,
                  "GPU: cuDNN workspace (allocated once; algorithms that need more are not considered)")
      ->check(CLI::Range(16, 16384))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable result on stdout");
  cmd->callback([args, exit_code] { *exit_code = RunBenchInfer(*args); });
}

}  // namespace vidscan::cli
