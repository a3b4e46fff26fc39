// The CUDA executor against the float32 CPU executor (itself checked against ONNX Runtime in
// tests/test_infer.cpp): every single-operator model, DetectNet_v2/ResNet-34 960x544 at batch 1 and 4, and
// YOLOX-Nano. Tolerances (relative L2 over each output): FP32 1e-4 (cuDNN with FMA math, no TF32, differs
// from the CPU only by summation order); FP16 1e-2 (half storage and tensor-core products, float accumulation).
// Every output must be free of NaN/Inf. The CUDA-graph replay (third run) must equal the first, op-by-op
// run (same kernels, same algorithms: identical up to non-deterministic cuDNN reductions, so <= 1e-6).
//
// Models: the single-op models from $VIDSCAN_MODELS_DIR/ops when set (as tools/make_models.py writes them),
// else generated into <build>/test_models like the CPU tests (needs python3 with onnx and numpy);
// DetectNet built in C++ (MakeDetectNetV2ResNet34, no file); YOLOX from <data>/models/yolox_nano_coco_416.onnx
// (skips if absent).
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "infer/algorithm_table.h"
#include "infer/builtin_models.h"
#include "infer/infer.h"
#include "preprocess/cuda_buffers.h"
#include "support/test_support.h"

namespace vidscan::infer {
namespace {

namespace fs = std::filesystem;

#if !defined(VIDSCAN_HAVE_CUDNN)
TEST(CudaExecutor, NeedsCudnn) { GTEST_SKIP() << "built without cuDNN: the CUDA executor is not in this build"; }
#else

#define SKIP_WITHOUT_GPU()                                                              \
  do {                                                                                  \
    if (Status st = CudaDeviceAvailable(0); !st.ok()) GTEST_SKIP() << st.message();     \
  } while (0)

std::string Python() {
  const char* env = std::getenv("VIDSCAN_PYTHON");
  if (env && *env) return env;
  const std::string venv = std::string(VIDSCAN_BINARY_DIR) + "/eval-venv/bin/python";
  return fs::exists(venv) ? venv : "python3";
}

// Where the generated models are: $VIDSCAN_MODELS_DIR, else the CPU tests' cache (generated on demand).
// Empty (and *why set) when they are neither there nor can be made.
std::string ModelsDir(const std::string& what, const std::string& check, std::string* why) {
  const char* env = std::getenv("VIDSCAN_MODELS_DIR");
  if (env && *env) {
    if (fs::exists(std::string(env) + "/" + check)) return env;
    *why = std::string("VIDSCAN_MODELS_DIR=") + env + " lacks " + check;
    return "";
  }
  const std::string dir = std::string(VIDSCAN_BINARY_DIR) + "/test_models";
  const std::string tool = std::string(VIDSCAN_SOURCE_DIR) + "/tools/make_models.py";
  std::error_code ec;
  if (fs::exists(dir + "/" + check) && fs::last_write_time(dir + "/" + check, ec) >= fs::last_write_time(tool, ec)) return dir;
  if (::vidscan::testing::RunCommand(Python() + " -c 'import onnx, numpy' 2>/dev/null") != 0) {
    *why = "no VIDSCAN_MODELS_DIR and " + Python() + " lacks onnx/numpy to generate the models";
    return "";
  }
  std::string output;
  if (::vidscan::testing::RunCommand(Python() + " " + tool + " " + dir + " " + what + " 2>&1", &output) != 0 || !fs::exists(dir + "/" + check)) {
    *why = "make_models.py failed: " + output;
    return "";
  }
  return dir;
}

double RelativeL2(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return 1e9;
  double diff = 0, norm = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    diff += (static_cast<double>(got[k]) - want[k]) * (static_cast<double>(got[k]) - want[k]);
    norm += static_cast<double>(want[k]) * want[k];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

size_t NonFinite(const std::vector<float>& data) {
  return static_cast<size_t>(std::count_if(data.begin(), data.end(), [](float v) { return !std::isfinite(v); }));
}

struct Inputs {
  std::vector<std::vector<float>> data;
  std::vector<HostTensorView> views;
};

// Random inputs for the model's declared shapes at `batch`: normal(0, 1), or uniform(lo, hi) when lo < hi.
Inputs MakeInputs(const std::vector<ValueInfo>& declared, int batch, uint32_t seed, float lo = 0, float hi = 0) {
  Inputs in;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> uniform(lo, hi);
  in.data.resize(declared.size());
  for (size_t k = 0; k < declared.size(); ++k) {
    std::vector<int64_t> shape = declared[k].shape;
    shape[0] = batch;
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    in.data[k].resize(count);
    for (float& v : in.data[k]) v = lo < hi ? uniform(rng) : normal(rng);
    in.views.push_back({shape, nullptr});
  }
  for (size_t k = 0; k < declared.size(); ++k) in.views[k].data = in.data[k].data();
  return in;
}

// The first `batch` images of every input.
Inputs FirstImages(const Inputs& all, int batch) {
  Inputs in;
  for (size_t k = 0; k < all.views.size(); ++k) {
    std::vector<int64_t> shape = all.views[k].shape;
    const size_t per_image = all.data[k].size() / static_cast<size_t>(shape[0]);
    shape[0] = batch;
    in.data.emplace_back(all.data[k].begin(), all.data[k].begin() + static_cast<std::ptrdiff_t>(per_image * batch));
    in.views.push_back({shape, nullptr});
  }
  for (size_t k = 0; k < in.views.size(); ++k) in.views[k].data = in.data[k].data();
  return in;
}

struct Comparison {
  double error = 0;          // worst relative L2 over outputs (first run vs CPU)
  double replay_error = 0;   // worst relative L2, third run (graph replay) vs first run
  size_t non_finite = 0;
  double replay_ms = 0;      // wall time of one replayed RunHost (includes the copies)
};

// Runs `exec` three times (op by op, capture, replay) on `inputs` and compares with `want`.
Comparison CompareRuns(CudaExecutor& exec, const Inputs& inputs, const std::vector<HostTensor>& want, const std::string& what) {
  Comparison c;
  std::vector<HostTensor> first, second, third;
  Status st = exec.RunHost(inputs.views, &first);
  EXPECT_TRUE(st.ok()) << what << ": " << st.ToString();
  if (!st.ok()) return {1e9, 1e9, 0, 0};
  st = exec.RunHost(inputs.views, &second);
  EXPECT_TRUE(st.ok()) << what << " (graph capture): " << st.ToString();
  const auto start = std::chrono::steady_clock::now();
  st = exec.RunHost(inputs.views, &third);
  c.replay_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(st.ok()) << what << " (graph replay): " << st.ToString();
  EXPECT_EQ(first.size(), want.size()) << what;
  for (size_t k = 0; k < std::min(first.size(), want.size()); ++k) {
    EXPECT_EQ(first[k].shape, want[k].shape) << what << " output " << k;
    c.error = std::max(c.error, RelativeL2(first[k].data, want[k].data));
    c.non_finite += NonFinite(first[k].data) + (k < third.size() ? NonFinite(third[k].data) : 0);
    if (k < third.size()) c.replay_error = std::max(c.replay_error, RelativeL2(third[k].data, first[k].data));
  }
  EXPECT_EQ(c.non_finite, 0u) << what << ": NaN or Inf in the outputs";
  EXPECT_LE(c.replay_error, 1e-6) << what << ": graph replay differs from the first run";
  return c;
}

constexpr double kFp32Tolerance = 1e-4;
constexpr double kFp16Tolerance = 1e-2;

Expected<std::vector<HostTensor>> CpuReference(const Model& model, int max_batch, const Inputs& inputs) {
  VS_ASSIGN_OR_RETURN(CpuExecutor cpu, CpuExecutor::Create(model, max_batch));
  std::vector<HostTensor> out;
  VS_RETURN_IF_ERROR(cpu.Run(inputs.views, &out));
  return out;
}

TEST(CudaExecutor, EverySingleOperatorModelMatchesCpu) {
  SKIP_WITHOUT_GPU();
  std::string why;
  const std::string dir = ModelsDir("ops", "ops/COMPLETE", &why);
  if (dir.empty()) GTEST_SKIP() << why;
  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir + "/ops"))
    if (entry.path().extension() == ".onnx") paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());
  ASSERT_GE(paths.size(), 50u);
  std::printf("  %-36s %10s %10s %10s %10s\n", "model", "fp32 err", "fp16 err", "replay32", "replay16");
  int checked = 0;
  for (const std::string& path : paths) {
    const std::string name = fs::path(path).stem().string();
    SCOPED_TRACE(name);
    auto model = LoadOnnx(path);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const int64_t fixed = model->graph.inputs[0].shape[0];
    const int batch = fixed > 1 ? static_cast<int>(fixed) : 3;
    const int max_batch = fixed > 1 ? static_cast<int>(fixed) : 4;
    const Inputs inputs = MakeInputs(model->graph.inputs, batch, 17);
    auto want = CpuReference(*model, max_batch, inputs);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    Comparison results[2];
    const Precision precisions[2] = {Precision::kFloat32, Precision::kFloat16};
    for (int p = 0; p < 2; ++p) {
      CudaExecutorOptions options;
      options.precision = precisions[p];
      auto exec = CudaExecutor::Create(*model, max_batch, options);
      if (!exec.ok()) {  // report and go on: one run should show every model's state
        ADD_FAILURE() << PrecisionName(precisions[p]) << ": " << exec.status().ToString();
        results[p] = {1e9, 1e9, 0, 0};
        continue;
      }
      results[p] = CompareRuns(*exec, inputs, *want, name + " " + PrecisionName(precisions[p]));
      EXPECT_LE(results[p].error, p == 0 ? kFp32Tolerance : kFp16Tolerance) << PrecisionName(precisions[p]);
      EXPECT_TRUE(exec->graph_ready(batch));
      // Dynamic batch: batch 1 on the same executor against the CPU on the first image.
      if (fixed <= 1) {
        const Inputs one = FirstImages(inputs, 1);
        auto want_one = CpuReference(*model, max_batch, one);
        ASSERT_TRUE(want_one.ok()) << want_one.status().ToString();
        std::vector<HostTensor> got;
        Status st = exec->RunHost(one.views, &got);
        EXPECT_TRUE(st.ok()) << st.ToString();
        for (size_t k = 0; k < got.size() && k < want_one->size(); ++k)
          EXPECT_LE(RelativeL2(got[k].data, (*want_one)[k].data), p == 0 ? kFp32Tolerance : kFp16Tolerance) << "batch 1, output " << k;
      }
    }
    std::printf("  %-36s %10.2e %10.2e %10.2e %10.2e\n", name.c_str(), results[0].error, results[1].error, results[0].replay_error,
                results[1].replay_error);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(paths.size()));
}

TEST(CudaExecutor, DetectNetV2ResNet34Batch1And4) {
  SKIP_WITHOUT_GPU();
  // Built in C++ (make_models.py's architecture, checked by BuiltinModels.DetectNetMatchesMakeModelsArchitecture):
  // no 82 MB file to carry to the GPU machine.
  const Expected<Model> model = MakeDetectNetV2ResNet34();
  const Inputs four = MakeInputs(model->graph.inputs, 4, 23);
  const auto cpu_start = std::chrono::steady_clock::now();
  auto want4 = CpuReference(*model, 4, four);
  ASSERT_TRUE(want4.ok()) << want4.status().ToString();
  std::printf("  CPU reference batch 4: %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - cpu_start).count());
  const Inputs one = FirstImages(four, 1);
  auto want1 = CpuReference(*model, 1, one);
  ASSERT_TRUE(want1.ok()) << want1.status().ToString();
  for (Precision precision : {Precision::kFloat32, Precision::kFloat16}) {
    CudaExecutorOptions options;
    options.precision = precision;
    auto exec = CudaExecutor::Create(*model, 4, options);
    ASSERT_TRUE(exec.ok()) << exec.status().ToString();
    const double tolerance = precision == Precision::kFloat32 ? kFp32Tolerance : kFp16Tolerance;
    const Comparison c4 = CompareRuns(*exec, four, *want4, std::string("detectnet batch 4 ") + PrecisionName(precision));
    const Comparison c1 = CompareRuns(*exec, one, *want1, std::string("detectnet batch 1 ") + PrecisionName(precision));
    EXPECT_LE(c4.error, tolerance);
    EXPECT_LE(c1.error, tolerance);
    std::printf("  DetectNet_v2/ResNet-34 %s: batch 4 rel L2 %.2e (replay %.1e, %.2f ms incl. copies), batch 1 rel L2 %.2e (replay %.1e, %.2f ms), arena %.1f MiB\n",
                PrecisionName(precision), c4.error, c4.replay_error, c4.replay_ms, c1.error, c1.replay_error, c1.replay_ms,
                static_cast<double>(exec->arena_bytes()) / (1 << 20));
  }
}

// A pinned algorithm table: the executor records one choice per convolution; a second executor (another
// process in the pipeline) planning with the table uses every one of them as recorded and computes the
// same bits. Returns the number of entries the first executor recorded.
size_t ExpectPinnedPlanningComputesTheSameBits(const Model& model, const Inputs& inputs, const std::string& path) {
  ConvAlgorithmTable first_table(path);
  CudaExecutorOptions options;
  options.precision = Precision::kFloat16;
  options.algorithm_table = &first_table;
  std::vector<HostTensor> first_out, second_out;
  ConvAlgorithmChoices first_choices;
  {
    auto exec = CudaExecutor::Create(model, 2, options);
    EXPECT_TRUE(exec.ok()) << exec.status().ToString();
    if (!exec.ok()) return 0;
    EXPECT_TRUE(exec->RunHost(inputs.views, &first_out).ok());
    first_choices = exec->algorithm_choices();
  }
  // Convolutions of one shape after the first take the first one's choice from the table.
  EXPECT_GT(first_choices.measured, 0) << "the first planning times cuDNN's algorithms";
  EXPECT_EQ(first_choices.pins_ignored, 0);
  const int convolutions = first_choices.pinned + first_choices.measured + first_choices.heuristic;
  const size_t recorded = first_table.size();
  EXPECT_TRUE(first_table.Save().ok());

  ConvAlgorithmTable second_table(path);
  EXPECT_TRUE(second_table.Load().ok());
  EXPECT_EQ(second_table.size(), recorded);
  options.algorithm_table = &second_table;
  {
    auto exec = CudaExecutor::Create(model, 2, options);
    EXPECT_TRUE(exec.ok()) << exec.status().ToString();
    if (!exec.ok()) return recorded;
    EXPECT_TRUE(exec->RunHost(inputs.views, &second_out).ok());
    const ConvAlgorithmChoices second = exec->algorithm_choices();
    EXPECT_EQ(second.pinned, convolutions) << "every convolution uses the pinned algorithm";
    EXPECT_EQ(second.measured + second.heuristic + second.pins_ignored, 0) << "nothing is chosen again";
  }
  EXPECT_EQ(second_table.size(), recorded);
  EXPECT_EQ(first_out.size(), second_out.size());
  for (size_t i = 0; i < std::min(first_out.size(), second_out.size()); ++i) {
    EXPECT_EQ(first_out[i].data, second_out[i].data) << "output " << i << ": the pinned planning computes the same bits";
  }
  return recorded;
}

// ... and a pinned algorithm cuDNN does not offer is ignored (chosen as usual), not an error.
TEST(CudaExecutor, AlgorithmTablePinsTheChoicesOfTheFirstPlanning) {
  SKIP_WITHOUT_GPU();
  const Expected<Model> model = MakeDetectNetV2ResNet34();
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const Inputs two = MakeInputs(model->graph.inputs, 2, 77);
  const std::string path = (fs::path(testing::TempDir("algo_table")) / "cudnn.json").string();
  const size_t recorded = ExpectPinnedPlanningComputesTheSameBits(*model, two, path);
  // One entry per distinct convolution, not per node: ResNet-34's 36 convolutions have 11 shapes (the 7x7
  // stem; 3x3 64->64 in stage 1; per later stage the strided 3x3, the 1x1 downsample and the 3x3 of the
  // rest) plus DetectNet's two 1x1 heads. (Seen on the H200: 13.)
  EXPECT_EQ(recorded, 13u) << "one entry per distinct convolution shape";

  // The same table with algorithm 97 (no such cuDNN algorithm) pinned everywhere: chosen as usual.
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  int replaced = 0;
  for (size_t at = text.find("\"algo\": "); at != std::string::npos; at = text.find("\"algo\": ", at + 1), ++replaced) {
    const size_t end = text.find_first_of(",}\n", at);
    text.replace(at, end - at, "\"algo\": 97");
  }
  EXPECT_EQ(static_cast<size_t>(replaced), recorded);
  { std::ofstream(path + ".bogus") << text; }
  ConvAlgorithmTable bogus(path + ".bogus");
  ASSERT_TRUE(bogus.Load().ok());
  CudaExecutorOptions options;
  options.precision = Precision::kFloat16;
  options.algorithm_table = &bogus;
  std::vector<HostTensor> bogus_out;
  auto exec = CudaExecutor::Create(*model, 2, options);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  ASSERT_TRUE(exec->RunHost(two.views, &bogus_out).ok()) << "an algorithm cuDNN does not offer is not used";
  const ConvAlgorithmChoices bogus_choices = exec->algorithm_choices();
  EXPECT_EQ(bogus_choices.pinned, 0);
  EXPECT_GT(bogus_choices.pins_ignored, 0);
  EXPECT_EQ(bogus_choices.pins_ignored, bogus_choices.measured + bogus_choices.heuristic) << "each ignored pin chosen anew";
}

// YOLOX nano: depthwise (grouped) convolutions, whose measured algorithm/math pairs cuDNN's heuristic list
// may not hold. A restarted infer worker pinned to the first worker's table computed other bits (H200:
// boxes 0.01 px apart in 2 of 341 frames) while the pins were looked up in that list.
TEST(CudaExecutor, AlgorithmTablePinsYoloxNanoBitForBit) {
  SKIP_WITHOUT_GPU();
  VS_REQUIRE_DATA(path, "models/yolox_nano_coco_416.onnx");
  auto model = LoadOnnx(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const Inputs two = MakeInputs(model->graph.inputs, 2, 91, 0.0f, 255.0f);
  EXPECT_GT(ExpectPinnedPlanningComputesTheSameBits(*model, two, (fs::path(testing::TempDir("algo_table_yolox")) / "cudnn.json").string()), 0u);
}

TEST(CudaExecutor, RealYoloxNano) {
  SKIP_WITHOUT_GPU();
  VS_REQUIRE_DATA(path, "models/yolox_nano_coco_416.onnx");
  auto model = LoadOnnx(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  std::vector<ValueInfo> declared = model->graph.inputs;
  const Inputs two = MakeInputs(declared, 2, 5, 0.0f, 255.0f);
  auto want2 = CpuReference(*model, 2, two);
  ASSERT_TRUE(want2.ok()) << want2.status().ToString();
  const Inputs one = FirstImages(two, 1);
  auto want1 = CpuReference(*model, 2, one);
  ASSERT_TRUE(want1.ok()) << want1.status().ToString();
  for (Precision precision : {Precision::kFloat32, Precision::kFloat16}) {
    CudaExecutorOptions options;
    options.precision = precision;
    auto exec = CudaExecutor::Create(*model, 2, options);
    ASSERT_TRUE(exec.ok()) << exec.status().ToString();
    const double tolerance = precision == Precision::kFloat32 ? kFp32Tolerance : kFp16Tolerance;
    const Comparison c1 = CompareRuns(*exec, one, *want1, std::string("yolox batch 1 ") + PrecisionName(precision));
    const Comparison c2 = CompareRuns(*exec, two, *want2, std::string("yolox batch 2 ") + PrecisionName(precision));
    EXPECT_LE(c1.error, tolerance);
    EXPECT_LE(c2.error, tolerance);
    std::printf("  YOLOX-Nano 416 %s: batch 1 rel L2 %.2e (replay %.1e, %.2f ms), batch 2 rel L2 %.2e (replay %.1e, %.2f ms)\n", PrecisionName(precision),
                c1.error, c1.replay_error, c1.replay_ms, c2.error, c2.replay_error, c2.replay_ms);
  }
}

// Run() on device buffers and a caller's stream gives what RunHost gives; bad arguments are errors.
TEST(CudaExecutor, DeviceRunMatchesHostRunAndChecksArguments) {
  SKIP_WITHOUT_GPU();
  std::string why;
  const std::string dir = ModelsDir("ops", "ops/COMPLETE", &why);
  if (dir.empty()) GTEST_SKIP() << why;
  const std::string path = dir + "/ops/conv_bn_add_relu.onnx";
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent";
  auto model = LoadOnnx(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto exec = CudaExecutor::Create(*model, 4);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  const Inputs inputs = MakeInputs(model->graph.inputs, 2, 9);
  std::vector<HostTensor> host;
  ASSERT_TRUE(exec->RunHost(inputs.views, &host).ok());
  auto stream = CudaStream::Create(cudaStreamNonBlocking);
  ASSERT_TRUE(stream.ok());
  std::vector<DeviceBuffer> in_buffers, out_buffers;
  std::vector<DeviceTensorView> in_views;
  for (size_t k = 0; k < inputs.data.size(); ++k) {
    auto b = DeviceBuffer::Allocate(inputs.data[k].size() * sizeof(float));
    ASSERT_TRUE(b.ok());
    ASSERT_EQ(cudaMemcpy(b->data(), inputs.data[k].data(), inputs.data[k].size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    in_views.push_back({inputs.views[k].shape, b->as<float>()});
    in_buffers.push_back(std::move(*b));
  }
  auto shapes = exec->OutputShapes(2);
  ASSERT_TRUE(shapes.ok());
  std::vector<float*> out_ptrs;
  for (const auto& shape : *shapes) {
    size_t count = 1;
    for (int64_t d : shape) count *= static_cast<size_t>(d);
    auto b = DeviceBuffer::Allocate(count * sizeof(float));
    ASSERT_TRUE(b.ok());
    out_ptrs.push_back(b->as<float>());
    out_buffers.push_back(std::move(*b));
  }
  for (int run = 0; run < 3; ++run) {  // op by op, capture, replay
    ASSERT_TRUE(exec->Run(in_views, out_ptrs, stream->get()).ok());
    ASSERT_EQ(cudaStreamSynchronize(stream->get()), cudaSuccess);
    for (size_t k = 0; k < host.size(); ++k) {
      std::vector<float> got(host[k].data.size());
      ASSERT_EQ(cudaMemcpy(got.data(), out_ptrs[k], got.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
      EXPECT_LE(RelativeL2(got, host[k].data), 1e-6) << "run " << run;
    }
  }
  // Batch above max_batch, wrong rank: errors, not crashes.
  Inputs too_many = MakeInputs(model->graph.inputs, 5, 1);
  std::vector<HostTensor> out;
  EXPECT_FALSE(exec->RunHost(too_many.views, &out).ok());
  HostTensorView wrong{{2, 3}, inputs.data[0].data()};
  EXPECT_FALSE(exec->RunHost({&wrong, 1}, &out).ok());
}

#endif  // VIDSCAN_HAVE_CUDNN

}  // namespace
}  // namespace vidscan::infer
