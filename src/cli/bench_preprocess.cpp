// `vidscan bench preprocess`: the fused NV12 -> tensor kernel on a batch of synthetic frames in device
// memory, against the device-to-device copy bandwidth of the same GPU and against the same conversion
// done as three separate passes (colour convert, resize, normalise) through memory.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "cli/bench.h"
#include "preprocess/preprocess.h"

#ifdef VIDSCAN_HAVE_CUDA
#include <cuda_runtime.h>

#include "preprocess/cuda_buffers.h"
#include "preprocess/float16.h"
#include "preprocess/unfused_cuda.h"
#endif

namespace vidscan::cli {
namespace {

struct BenchPreprocessArgs {
  int batch = 32;
  int width = 1920;
  int height = 1080;
  std::string format = "nv12";
  int net_width = 960;
  int net_height = 544;
  std::string type = "fp16";
  std::string layout = "nchw";
  std::string resize = "stretch";
  int iterations = 200;
  int warmup = 20;
  int gpu = 0;
  bool json = false;
  std::string variant = "all";
  std::string timing = "graph";
  int rounds = 3;
};

#ifdef VIDSCAN_HAVE_CUDA

int Fail(const Status& st) {
  fmt::print(stderr, "error: {}\n", st.ToString());
  return kExitFatal;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct GraphDeleter {
  void operator()(cudaGraph_t g) const { (void)cudaGraphDestroy(g); }
};
struct GraphExecDeleter {
  void operator()(cudaGraphExec_t g) const { (void)cudaGraphExecDestroy(g); }
};

// How a timed run is made (runs go back to back on one stream, each bracketed by events):
// kCalls: each timed run is a call of `enqueue` from the host. When the host takes longer to prepare a call
// than the GPU takes to run it (the preprocessor builds and uploads 32 frame descriptors per call), the
// GPU waits for the host inside the bracket, and the time is the host's.
// kGraph: one call is captured into a CUDA graph, and each timed run replays it (a few microseconds of
// host work): the GPU time of the work itself, as in the pipeline, where the next batch's call is made
// while the GPU still runs the previous batch's inference. The work is the same: the graph holds the
// call's descriptor upload and kernels.
enum class Timing { kGraph, kCalls };
using GraphExec = std::unique_ptr<CUgraphExec_st, GraphExecDeleter>;

// One call of `enqueue` captured into a CUDA graph, replayed `warmup` times. Once per preprocessor: the call
// leaves its upload event to the graph, and a second capture's call could not wait on it.
Expected<GraphExec> CaptureCall(cudaStream_t stream, int warmup, const std::function<Status()>& enqueue) {
  VS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  // Relaxed: the preprocessor waits on the host for its previous upload before it rewrites the staging.
  VS_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  const Status captured = enqueue();
  cudaGraph_t raw = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &raw);
  std::unique_ptr<CUgraph_st, GraphDeleter> graph(raw);
  VS_RETURN_IF_ERROR(captured);
  VS_CUDA_RETURN_IF_ERROR(ended);
  cudaGraphExec_t exec = nullptr;
  VS_CUDA_RETURN_IF_ERROR(cudaGraphInstantiate(&exec, graph.get(), 0));
  GraphExec graph_exec(exec);
  for (int i = 0; i < std::max(1, warmup); ++i) VS_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graph_exec.get(), stream));
  return graph_exec;
}

// Milliseconds each of `iterations` runs takes on `stream`, bracketed by events, after `warmup` untimed
// runs: a run is a replay of `graph` if given (kGraph), else a host call of `enqueue` (kCalls).
Expected<std::vector<double>> TimeRuns(cudaStream_t stream, int warmup, int iterations, cudaGraphExec_t graph,
                                       const std::function<Status()>& enqueue) {
  auto run = [&]() -> Status {
    if (graph != nullptr) return CudaStatus(cudaGraphLaunch(graph, stream), "cudaGraphLaunch");
    return enqueue();
  };
  for (int i = 0; i < warmup; ++i) VS_RETURN_IF_ERROR(run());
  std::vector<CudaEvent> events;
  for (int i = 0; i < 2 * iterations; ++i) {
    VS_ASSIGN_OR_RETURN(CudaEvent e, CudaEvent::Create(cudaEventDefault));
    events.push_back(std::move(e));
  }
  for (int i = 0; i < iterations; ++i) {
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(events[2 * i].get(), stream));
    VS_RETURN_IF_ERROR(run());
    VS_CUDA_RETURN_IF_ERROR(cudaEventRecord(events[2 * i + 1].get(), stream));
  }
  VS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  std::vector<double> ms(iterations);
  for (int i = 0; i < iterations; ++i) {
    float elapsed = 0;
    VS_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&elapsed, events[2 * i].get(), events[2 * i + 1].get()));
    ms[i] = elapsed;
  }
  return ms;
}

// A timed piece of work: captured once into a graph (kGraph) or called from the host each run (kCalls).
struct TimedWork {
  std::function<Status()> enqueue;
  GraphExec graph;
  Expected<std::vector<double>> Time(cudaStream_t stream, int warmup, int iterations, Timing timing) {
    if (timing == Timing::kGraph && !graph) {
      VS_ASSIGN_OR_RETURN(graph, CaptureCall(stream, warmup, enqueue));
    }
    return TimeRuns(stream, warmup, iterations, timing == Timing::kGraph ? graph.get() : nullptr, enqueue);
  }
};

// Runs `gpu` once on the batch and returns the largest |gpu - cpu| over the whole tensor, in 8-bit levels
// (the CPU reference, FP32, is computed into `reference` on the first call and reused).
Expected<double> MaxErrorAgainstCpu(const PreprocessParams& params, const FrameInfo& info,
                                    std::vector<uint8_t>& host_frames, size_t frame_bytes, int batch,
                                    Preprocessor& gpu, const std::vector<PreprocessInput>& inputs,
                                    const BatchTensor& output, cudaStream_t stream, std::vector<uint8_t>& reference) {
  PreprocessParams reference_params = params;
  reference_params.type = TensorType::kFloat32;
  if (reference.empty()) {
    std::vector<PreprocessInput> host_inputs(inputs.begin(), inputs.end());
    for (int i = 0; i < batch; ++i) {
      uint8_t* base = host_frames.data() + frame_bytes * i;
      host_inputs[i].frame = FrameView{info, MemoryKind::kHost, base, base + info.luma_bytes()};
    }
    VS_ASSIGN_OR_RETURN(auto cpu, CreatePreprocessor(reference_params, {.max_batch = batch}));
    reference.resize(reference_params.slot_bytes() * batch);
    VS_ASSIGN_OR_RETURN(auto transforms, cpu->Run(host_inputs, {reference.data(), batch, MemoryKind::kHost}));
    (void)transforms;
  }
  VS_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(output.data, 0xff, params.slot_bytes() * batch, stream));  // NaN
  VS_ASSIGN_OR_RETURN(auto transforms, gpu.Run(inputs, output));
  (void)transforms;
  std::vector<uint8_t> result(params.slot_bytes() * batch);
  VS_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  VS_CUDA_RETURN_IF_ERROR(cudaMemcpy(result.data(), output.data, result.size(), cudaMemcpyDeviceToHost));
  const size_t plane = static_cast<size_t>(params.width) * params.height;
  double worst = 0;
  for (size_t i = 0; i < params.slot_elements() * batch; ++i) {
    const size_t e = i % params.slot_elements();
    const int channel = params.layout == TensorLayout::kNCHW ? static_cast<int>(e / plane) : static_cast<int>(e % 3);
    const double level = std::fabs(params.scale[channel] / params.std[channel]);
    const float got = TensorElementAsFloat(result.data(), params.type, i);
    if (!std::isfinite(got)) return MakeError(StatusCode::kInternal, "element " + std::to_string(i) + " not written");
    worst = std::max(worst, std::fabs(got - TensorElementAsFloat(reference.data(), TensorType::kFloat32, i)) / level);
  }
  return worst;
}

int RunBenchPreprocess(const BenchPreprocessArgs& args) {
  if (Status st = CudaDeviceAvailable(args.gpu); !st.ok()) {
    fmt::print(stderr, "error: bench preprocess needs a CUDA GPU: {}\n", st.message());
    return kExitFatal;
  }
  if (Status st = CudaStatus(cudaSetDevice(args.gpu), "cudaSetDevice"); !st.ok()) return Fail(st);
  cudaDeviceProp props{};
  if (Status st = CudaStatus(cudaGetDeviceProperties(&props, args.gpu), "cudaGetDeviceProperties"); !st.ok()) {
    return Fail(st);
  }
  const Timing timing = args.timing == "calls" ? Timing::kCalls : Timing::kGraph;
  auto stream = CudaStream::Create(cudaStreamNonBlocking);
  if (!stream.ok()) return Fail(stream.status());

  PreprocessParams params;
  params.width = args.net_width;
  params.height = args.net_height;
  params.type = args.type == "fp16" ? TensorType::kFloat16 : TensorType::kFloat32;
  params.layout = args.layout == "nchw" ? TensorLayout::kNCHW : TensorLayout::kNHWC;
  params.resize = args.resize == "stretch" ? ResizeMode::kStretch : ResizeMode::kLetterbox;
  params.scale = {1.0f / 255, 1.0f / 255, 1.0f / 255};
  if (Status st = ValidateParams(params); !st.ok()) return Fail(st);

  // Synthetic frames laid out as NVDEC does: one pitch (256-byte aligned) for both planes.
  FrameInfo info;
  info.width = args.width;
  info.height = args.height;
  info.format = args.format == "nv12" ? PixelFormat::kNV12 : PixelFormat::kP016;
  info.pitch = (std::max(info.row_bytes(), info.chroma_row_bytes()) + 255) / 256 * 256;
  const size_t frame_bytes = info.luma_bytes() + info.chroma_bytes();
  auto frames = DeviceBuffer::Allocate(frame_bytes * args.batch);
  if (!frames.ok()) return Fail(frames.status());
  std::vector<uint8_t> host_frames(frame_bytes * args.batch);  // kept for the CPU reference check
  {
    std::mt19937_64 rng(42);
    for (size_t i = 0; i + 8 <= host_frames.size(); i += 8) {
      uint64_t r = rng();
      if (info.format == PixelFormat::kP016) r &= 0xffc0ffc0ffc0ffc0ull;  // 10-bit values << 6
      std::memcpy(&host_frames[i], &r, 8);
    }
    if (Status st = CudaStatus(cudaMemcpy(frames->data(), host_frames.data(), host_frames.size(),
                                          cudaMemcpyHostToDevice),
                               "cudaMemcpy");
        !st.ok()) {
      return Fail(st);
    }
  }
  std::vector<PreprocessInput> inputs(args.batch);
  for (int i = 0; i < args.batch; ++i) {
    uint8_t* base = frames->as<uint8_t>() + frame_bytes * i;
    inputs[i].frame = FrameView{info, MemoryKind::kDevice, base, base + info.luma_bytes()};
    inputs[i].frame.info.stream_id = i;
    inputs[i].slot = i;
  }
  auto tensor = DeviceBuffer::Allocate(params.slot_bytes() * args.batch);
  if (!tensor.ok()) return Fail(tensor.status());
  const BatchTensor output{tensor->data(), args.batch, MemoryKind::kDevice};

  // Every selected kernel variant: checked against the CPU reference on this very batch, then timed.
  std::vector<CudaPreprocessVariant> variants;
  for (CudaPreprocessVariant v : AllCudaPreprocessVariants()) {
    if (args.variant == "all" || args.variant == CudaPreprocessVariantName(v)) variants.push_back(v);
  }
  std::vector<uint8_t> reference;  // FP32, computed on the first use
  struct VariantResult {
    CudaPreprocessVariant variant;
    std::unique_ptr<Preprocessor> preprocessor;
    TimedWork work;  // a call of the preprocessor
    double max_error_levels = 0;
    double calls_batch_s = 0;            // timed as host calls (Timing::kCalls), first round
    std::vector<double> batch_s;         // per round: the median of its timed runs
    std::vector<double> percent_of_copy; // per round: against that round's copy
    double median_batch_s() const { return Median(batch_s); }
    double median_percent() const { return Median(percent_of_copy); }
  };
  std::vector<VariantResult> results;
  for (CudaPreprocessVariant variant : variants) {
    auto fused = CreatePreprocessor(params, {.device = PreprocessDevice::kCuda,
                                             .max_batch = args.batch,
                                             .gpu_index = args.gpu,
                                             .stream = stream->get(),
                                             .cuda_variant = variant});
    if (!fused.ok()) return Fail(fused.status());
    auto max_error = MaxErrorAgainstCpu(params, info, host_frames, frame_bytes, args.batch, **fused, inputs, output,
                                        stream->get(), reference);
    if (!max_error.ok()) return Fail(max_error.status());
    // The same calls made from the host one after another: what a caller that cannot queue ahead sees.
    // Before any graph: once a call was captured into a graph, the preprocessor's upload event belongs to the
    // graph and the next host call cannot wait on it.
    Preprocessor& preprocessor = **fused;
    auto calls_ms = TimeRuns(stream->get(), args.warmup, args.iterations, nullptr,
                             [&] { return preprocessor.Run(inputs, output).status(); });
    if (!calls_ms.ok()) return Fail(calls_ms.status());
    VariantResult result{variant, std::move(*fused), {}, *max_error, Median(*calls_ms) / 1e3, {}, {}};
    result.work.enqueue = [&inputs, &output, p = result.preprocessor.get()] { return p->Run(inputs, output).status(); };
    results.push_back(std::move(result));
  }

  // Device-to-device copy of as many bytes as the fused pass reads, counted as read + written.
  const size_t visible_frame_bytes =
      static_cast<size_t>(info.row_bytes()) * info.height + static_cast<size_t>(info.chroma_row_bytes()) * info.chroma_height();
  const size_t fused_bytes = (visible_frame_bytes + params.slot_bytes()) * args.batch;
  const size_t copy_bytes = std::max<size_t>(fused_bytes / 2, 64u << 20);
  auto copy_src = DeviceBuffer::Allocate(copy_bytes);
  auto copy_dst = DeviceBuffer::Allocate(copy_bytes);
  if (!copy_src.ok()) return Fail(copy_src.status());
  if (!copy_dst.ok()) return Fail(copy_dst.status());
  // Rounds: the copy, then every variant, `rounds` times over. One pass in a fixed order measured the copy
  // long after the first variants, and the same variant differed by up to 10 % between processes (H200,
  // 2026-11-30): each round compares its variants with its own copy, and the medians over rounds are
  // reported with their spread.
  std::vector<double> copy_gbps_rounds;
  TimedWork copy{[&] {
    return CudaStatus(cudaMemcpyAsync(copy_dst->data(), copy_src->data(), copy_bytes, cudaMemcpyDeviceToDevice, stream->get()),
                      "cudaMemcpyAsync");
  }, nullptr};
  for (int round = 0; round < args.rounds; ++round) {
    auto copy_ms = copy.Time(stream->get(), args.warmup, args.iterations, timing);
    if (!copy_ms.ok()) return Fail(copy_ms.status());
    const double round_copy_gbps = 2.0 * copy_bytes / (Median(*copy_ms) / 1e3) / 1e9;
    copy_gbps_rounds.push_back(round_copy_gbps);
    for (VariantResult& r : results) {
      auto fused_ms = r.work.Time(stream->get(), args.warmup, args.iterations, timing);
      if (!fused_ms.ok()) return Fail(fused_ms.status());
      const double batch_s = Median(*fused_ms) / 1e3;
      r.batch_s.push_back(batch_s);
      r.percent_of_copy.push_back(100.0 * fused_bytes / batch_s / 1e9 / round_copy_gbps);
    }
  }

  auto unfused = UnfusedPreprocessor::Create(params, args.width, args.height, args.batch, stream->get());
  Expected<std::vector<double>> unfused_ms = unfused.ok() ? Expected<std::vector<double>>(std::vector<double>{})
                                                          : Expected<std::vector<double>>(unfused.status());
  if (unfused.ok()) {
    TimedWork unfused_work{[&] { return (*unfused)->Run(inputs, output); }, nullptr};
    unfused_ms = unfused_work.Time(stream->get(), args.warmup, args.iterations, timing);
  }

  const double copy_gbps = Median(copy_gbps_rounds);
  const VariantResult& best = *std::min_element(results.begin(), results.end(), [](const VariantResult& x, const VariantResult& y) {
    return x.median_batch_s() < y.median_batch_s();
  });
  const double fused_s = best.median_batch_s();
  const double fused_gbps = fused_bytes / fused_s / 1e9;
  const double percent_of_copy = best.median_percent();
  const auto [lowest_percent, highest_percent] = std::minmax_element(best.percent_of_copy.begin(), best.percent_of_copy.end());
  const double fused_us_per_frame = fused_s * 1e6 / args.batch;
  double unfused_us_per_frame = 0, unfused_gbps = 0, speedup = 0;
  if (unfused_ms.ok()) {
    const double unfused_s = Median(*unfused_ms) / 1e3;
    unfused_us_per_frame = unfused_s * 1e6 / args.batch;
    unfused_gbps = static_cast<double>((*unfused)->BytesMovedPerFrame()) * args.batch / unfused_s / 1e9;
    speedup = unfused_s / fused_s;
  }
  const std::string output_desc = fmt::format("{}x{} {} {} {}", params.width, params.height, args.type, args.layout,
                                              args.resize);
  if (args.json) {
    nlohmann::json variant_list = nlohmann::json::array();
    for (const VariantResult& r : results) {
      variant_list.push_back({{"variant", CudaPreprocessVariantName(r.variant)},
                              {"max_error_levels", r.max_error_levels},
                              {"batch_us", r.median_batch_s() * 1e6},
                              {"host_calls_batch_us", r.calls_batch_s * 1e6},
                              {"us_per_frame", r.median_batch_s() * 1e6 / args.batch},
                              {"gb_per_s", fused_bytes / r.median_batch_s() / 1e9},
                              {"percent_of_copy", r.median_percent()},
                              {"percent_of_copy_per_round", r.percent_of_copy}});
    }
    nlohmann::json out = {{"gpu", props.name},
                          {"batch", args.batch},
                          {"input", fmt::format("{}x{} {}", args.width, args.height, args.format)},
                          {"output", output_desc},
                          {"iterations", args.iterations},
                          {"timing", args.timing},
                          {"variants", variant_list},
                          {"fused_variant", CudaPreprocessVariantName(best.variant)},
                          {"fused_us_per_frame", fused_us_per_frame},
                          {"fused_batch_us", fused_s * 1e6},
                          {"fused_bytes_per_batch", fused_bytes},
                          {"fused_gb_per_s", fused_gbps},
                          {"copy_gb_per_s", copy_gbps},
                          {"copy_gb_per_s_per_round", copy_gbps_rounds},
                          {"rounds", args.rounds},
                          {"fused_percent_of_copy", percent_of_copy}};
    if (unfused_ms.ok()) {
      out["unfused_us_per_frame"] = unfused_us_per_frame;
      out["unfused_gb_per_s"] = unfused_gbps;
      out["fused_speedup_over_unfused"] = speedup;
    } else {
      out["unfused_error"] = unfused_ms.status().ToString();
    }
    std::cout << out.dump(2) << "\n";
  } else {
    fmt::print("GPU              {} (GPU {})\n", props.name, args.gpu);
    fmt::print("input            {} x {}x{} {} (synthetic, device memory, pitch {})\n", args.batch, args.width,
               args.height, args.format, info.pitch);
    fmt::print("output           {}\n", output_desc);
    fmt::print("device copy      {:.1f} GB/s (cudaMemcpyDeviceToDevice of {} MiB, read + write; median of {} rounds: {:.0f})\n",
               copy_gbps, copy_bytes >> 20, args.rounds, fmt::join(copy_gbps_rounds, " "));
    for (const VariantResult& r : results) {
      const double gbps = fused_bytes / r.median_batch_s() / 1e9;
      const auto [low, high] = std::minmax_element(r.percent_of_copy.begin(), r.percent_of_copy.end());
      fmt::print("fused {:<16} {:.2f} us/frame, {:.1f} us/batch, {:.1f} GB/s = {:.1f} % of copy ({:.1f}-{:.1f} % over {} "
                 "rounds; source read once + tensor written once; median of {} runs, {}); as host calls {:.1f} us/batch; "
                 "max error vs CPU reference {:.4f} levels\n",
                 CudaPreprocessVariantName(r.variant), r.median_batch_s() * 1e6 / args.batch, r.median_batch_s() * 1e6,
                 gbps, r.median_percent(), *low, *high, args.rounds, args.iterations,
                 args.timing == "graph" ? "graph replay" : "host calls", r.calls_batch_s * 1e6, r.max_error_levels);
    }
    fmt::print("fused / copy     {:.1f} % (fastest variant: {}; median of {} rounds, range {:.1f}-{:.1f} %)\n",
               percent_of_copy, CudaPreprocessVariantName(best.variant), args.rounds, *lowest_percent, *highest_percent);
    if (unfused_ms.ok()) {
      fmt::print("unfused 3 passes {:.2f} us/frame, {:.1f} GB/s of its own traffic; fused is {:.2f}x faster\n",
                 unfused_us_per_frame, unfused_gbps, speedup);
    } else {
      fmt::print("unfused 3 passes not run: {}\n", unfused_ms.status().message());
    }
  }
  return kExitOk;
}

#else

int RunBenchPreprocess(const BenchPreprocessArgs&) {
  fmt::print(stderr, "error: bench preprocess needs CUDA, and this vidscan was built without it\n");
  return kExitFatal;
}

#endif

}  // namespace

void AddBenchPreprocess(CLI::App& bench, int* exit_code) {
  auto args = std::make_shared<BenchPreprocessArgs>();
  auto* cmd = bench.add_subcommand(
      "preprocess",
      "Time the fused NV12/P016 -> tensor kernel on a batch of synthetic frames in GPU memory: us per frame,\n"
      "GB/s (source bytes read once + tensor bytes written once) against cudaMemcpy device-to-device\n"
      "bandwidth, and the speed-up over the same conversion in three separate passes.");
  cmd->add_option("--batch", args->batch, "Frames per launch")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--width", args->width, "Source frame width")->check(CLI::Range(2, 8192))->capture_default_str();
  cmd->add_option("--height", args->height, "Source frame height")->check(CLI::Range(2, 8192))->capture_default_str();
  cmd->add_option("--format", args->format, "Source surface format")
      ->check(CLI::IsMember({"nv12", "p016"}))
      ->capture_default_str();
  cmd->add_option("--net-width", args->net_width, "Network input width")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  cmd->add_option("--net-height", args->net_height, "Network input height")
      ->check(CLI::Range(1, 16384))
      ->capture_default_str();
  cmd->add_option("--type", args->type, "Tensor element type")
      ->check(CLI::IsMember({"fp16", "fp32"}))
      ->capture_default_str();
  cmd->add_option("--layout", args->layout, "Tensor layout")
      ->check(CLI::IsMember({"nchw", "nhwc"}))
      ->capture_default_str();
  cmd->add_option("--resize", args->resize, "stretch or letterbox (centred)")
      ->check(CLI::IsMember({"stretch", "letterbox"}))
      ->capture_default_str();
  cmd->add_option("--iterations", args->iterations, "Timed runs (the median is reported)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--warmup", args->warmup, "Untimed runs first")->check(CLI::Range(0, 100000))->capture_default_str();
  cmd->add_option("--gpu", args->gpu, "GPU index")->check(CLI::NonNegativeNumber);
  std::vector<std::string> variant_names{"all"};
  for (CudaPreprocessVariant v : AllCudaPreprocessVariants()) variant_names.push_back(CudaPreprocessVariantName(v));
  cmd->add_option("--variant", args->variant,
                  "Fused kernel variant(s) to check against the CPU reference and time: v1 (chunk + shared tile), "
                  "v2 (staged source rows), v2-* (v2 with other tunings), v3 and v3-* (staged rows, column "
                  "pairs, integer taps; within 0.02 levels), all (docs/preprocess.md)")
      ->check(CLI::IsMember(variant_names))
      ->capture_default_str();
  cmd->add_option("--timing", args->timing,
                  "graph: each timed run replays one call captured as a CUDA graph, the GPU time of the work itself "
                  "(in the pipeline the next call is made while the GPU runs the previous batch); calls: each timed "
                  "run is a host call, so host preparation slower than the GPU shows. Fused variants print both")
      ->check(CLI::IsMember({"graph", "calls"}))
      ->capture_default_str();
  cmd->add_option("--rounds", args->rounds,
                  "Times the copy and every variant this many times over, alternating; each round's variants are "
                  "compared with its own copy, and the medians over rounds are reported with their range")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Machine-readable result on stdout");
  cmd->callback([args, exit_code] { *exit_code = RunBenchPreprocess(*args); });
}

}  // namespace vidscan::cli
