// Inference engine: bounds-checked ONNX import (malformed files are errors, never crashes), graph passes,
// and the float32 CPU executor against ONNX Runtime (within 1e-4 relative L2) on single-operator models,
// a DetectNet_v2/ResNet-34 at 960x544 and the real YOLOX-Nano.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "infer/builtin_models.h"
#include "infer/gemm.h"
#include "infer/infer.h"
#include "infer/protobuf_reader.h"
#include "support/test_support.h"

namespace vidscan::infer {
namespace {

namespace fs = std::filesystem;

// ---- a tiny protobuf writer, to build ONNX files (valid and broken) without Python --------------------

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string IntField(int number, uint64_t v) { return Varint(static_cast<uint64_t>(number) << 3) + Varint(v); }
std::string BytesField(int number, const std::string& bytes) {
  return Varint((static_cast<uint64_t>(number) << 3) | 2) + Varint(bytes.size()) + bytes;
}

std::string TensorShape(const std::vector<int64_t>& dims) {  // TensorShapeProto; -1 -> dim_param "N"
  std::string shape;
  for (int64_t d : dims) shape += BytesField(1, d < 0 ? BytesField(2, "N") : IntField(1, static_cast<uint64_t>(d)));
  return shape;
}
std::string ValueInfo(const std::string& name, const std::vector<int64_t>& dims) {
  const std::string tensor_type = IntField(1, 1) + BytesField(2, TensorShape(dims));
  return BytesField(1, name) + BytesField(2, BytesField(1, tensor_type));
}
std::string NodeProto(const std::string& op, const std::string& name, const std::vector<std::string>& inputs,
                      const std::vector<std::string>& outputs) {
  std::string node;
  for (const auto& i : inputs) node += BytesField(1, i);
  for (const auto& o : outputs) node += BytesField(2, o);
  return node + BytesField(3, name) + BytesField(4, op);
}
std::string FloatTensor(const std::string& name, const std::vector<uint64_t>& dims, const std::string& raw) {
  std::string t;
  for (uint64_t d : dims) t += IntField(1, d);
  return t + IntField(2, 1) + BytesField(8, name) + BytesField(9, raw);
}
std::string ModelBytes(const std::string& graph, int opset = 13) {
  return IntField(1, 8) + BytesField(2, "vidscan-test") + BytesField(7, graph) + BytesField(8, IntField(2, static_cast<uint64_t>(opset)));
}
std::string IntsAttribute(const std::string& name, const std::vector<int64_t>& values) {
  std::string a = BytesField(1, name) + IntField(20, 7);
  for (int64_t v : values) a += IntField(8, static_cast<uint64_t>(v));
  return a;
}
std::string StringAttribute(const std::string& name, const std::string& value) {
  return BytesField(1, name) + IntField(20, 3) + BytesField(4, value);
}
std::string RawTensor(const std::string& name, int data_type, const std::vector<int64_t>& dims, const void* data, size_t bytes) {
  std::string t;
  for (int64_t d : dims) t += IntField(1, static_cast<uint64_t>(d));
  return t + IntField(2, static_cast<uint64_t>(data_type)) + BytesField(8, name) + BytesField(9, std::string(static_cast<const char*>(data), bytes));
}
// X [N,3,8,8] -> Conv 3x3 -> Relu -> MaxPool 2x2 -> Resize x2 -> Slice -> Transpose -> Reshape -> Y: the
// attribute and initializer kinds real detectors use, for the mutation test.
std::string SmallDetectorModel() {
  std::vector<float> weight(4 * 3 * 3 * 3), bias(4), scales = {1, 1, 2, 2};
  for (size_t k = 0; k < weight.size(); ++k) weight[k] = static_cast<float>(k % 7) * 0.1f - 0.3f;
  for (size_t k = 0; k < bias.size(); ++k) bias[k] = 0.05f * static_cast<float>(k);
  const std::vector<int64_t> starts = {0}, ends = {2}, axes = {1}, shape = {0, -1};
  auto node = [](const std::string& op, const std::string& name, const std::vector<std::string>& in, const std::vector<std::string>& out,
                 const std::vector<std::string>& attributes) {
    std::string n = NodeProto(op, name, in, out);
    for (const auto& a : attributes) n += BytesField(5, a);
    return BytesField(1, n);
  };
  std::string graph =
      node("Conv", "conv", {"X", "W", "B"}, {"c"}, {IntsAttribute("pads", {1, 1, 1, 1}), IntsAttribute("strides", {1, 1}), IntsAttribute("kernel_shape", {3, 3})}) +
      node("Relu", "relu", {"c"}, {"r"}, {}) +
      node("MaxPool", "pool", {"r"}, {"p"}, {IntsAttribute("kernel_shape", {2, 2}), IntsAttribute("strides", {2, 2})}) +
      node("Resize", "up", {"p", "", "scales"}, {"u"}, {StringAttribute("mode", "nearest"), StringAttribute("coordinate_transformation_mode", "asymmetric"), StringAttribute("nearest_mode", "floor")}) +
      node("Slice", "slice", {"u", "starts", "ends", "axes"}, {"s"}, {}) +
      node("Transpose", "transpose", {"s"}, {"t"}, {IntsAttribute("perm", {0, 2, 3, 1})}) +
      node("Reshape", "reshape", {"t", "shape"}, {"Y"}, {}) +
      BytesField(5, RawTensor("W", 1, {4, 3, 3, 3}, weight.data(), weight.size() * 4)) + BytesField(5, RawTensor("B", 1, {4}, bias.data(), 16)) +
      BytesField(5, RawTensor("scales", 1, {4}, scales.data(), 16)) + BytesField(5, RawTensor("starts", 7, {1}, starts.data(), 8)) +
      BytesField(5, RawTensor("ends", 7, {1}, ends.data(), 8)) + BytesField(5, RawTensor("axes", 7, {1}, axes.data(), 8)) +
      BytesField(5, RawTensor("shape", 7, {2}, shape.data(), 16)) + BytesField(11, ValueInfo("X", {-1, 3, 8, 8})) +
      BytesField(12, ValueInfo("Y", {-1, 128}));
  return ModelBytes(graph, 11);
}

// X [N,2,3] -> Relu -> Y.
std::string ReluGraph() {
  return BytesField(1, NodeProto("Relu", "relu1", {"X"}, {"Y"})) + BytesField(2, "g") + BytesField(11, ValueInfo("X", {-1, 2, 3})) +
         BytesField(12, ValueInfo("Y", {-1, 2, 3}));
}

// ---- ONNX Runtime references via tools/ort_reference.py ---------------------------------------------

// $VIDSCAN_PYTHON, else the venv scripts/setup-eval-env.sh makes in the build tree, else python3.
std::string Python() {
  const char* env = std::getenv("VIDSCAN_PYTHON");
  if (env && *env) return env;
  const std::string venv = std::string(VIDSCAN_BINARY_DIR) + "/eval-venv/bin/python";
  return std::filesystem::exists(venv) ? venv : "python3";
}

// Empty when python3 with onnx, onnxruntime and numpy is usable; else why not.
std::string PythonMissing() {
  static const std::string why = [] {
    if (::vidscan::testing::RunCommand(Python() + " -c 'import onnx, onnxruntime, numpy' 2>/dev/null") == 0) return std::string();
    return Python() + " lacks onnx/onnxruntime/numpy (python3 -m pip install onnx onnxruntime numpy, or set VIDSCAN_PYTHON)";
  }();
  return why;
}
#define VS_REQUIRE_ORT() \
  if (!PythonMissing().empty()) GTEST_SKIP() << PythonMissing()

std::string Tool(const std::string& script) { return std::string(VIDSCAN_SOURCE_DIR) + "/tools/" + script; }

// Generated models are cached in the build tree (each written atomically, the ops set marked complete by a
// file written last, so parallel tests may race safely).
std::string ModelsDir() { return std::string(VIDSCAN_BINARY_DIR) + "/test_models"; }

// Regenerates when tools/make_models.py is newer than the cached file.
bool MakeModels(const std::string& what, const std::string& check_file) {
  std::error_code ec;
  if (fs::exists(check_file) && fs::last_write_time(check_file, ec) >= fs::last_write_time(Tool("make_models.py"), ec)) return true;
  std::string output;
  const int rc = ::vidscan::testing::RunCommand(Python() + " " + Tool("make_models.py") + " " + ModelsDir() + " " + what + " 2>&1", &output);
  EXPECT_EQ(rc, 0) << output;
  return rc == 0 && fs::exists(check_file);
}

struct RefTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};
struct Reference {
  std::vector<RefTensor> inputs, outputs;
};

std::vector<float> ReadFloats(const std::string& path, size_t count) {
  std::vector<float> data(count);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(count * sizeof(float)));
  EXPECT_TRUE(f.good()) << path;
  return data;
}

Reference ReadReference(const std::string& dir) {
  Reference ref;
  std::ifstream manifest(dir + "/manifest.txt");
  EXPECT_TRUE(manifest.good()) << dir;
  std::string kind;
  while (manifest >> kind) {
    RefTensor t;
    std::string file;
    int rank = 0;
    manifest >> t.name >> file >> rank;
    size_t count = 1;
    for (int d = 0; d < rank; ++d) {
      int64_t dim = 0;
      manifest >> dim;
      t.shape.push_back(dim);
      count *= static_cast<size_t>(dim);
    }
    t.data = ReadFloats(dir + "/" + file, count);
    (kind == "input" ? ref.inputs : ref.outputs).push_back(std::move(t));
  }
  return ref;
}

// Runs ort_reference.py on the models; returns the directory holding one subfolder per model.
std::string OrtReferences(const std::vector<std::string>& models, int seed, int batch, const std::string& extra = "") {
  const std::string out = ::vidscan::testing::TempDir("ort");
  std::string command = Python() + " " + Tool("ort_reference.py") + " " + out + " " + std::to_string(seed) + " " + std::to_string(batch) + " " + extra;
  for (const auto& m : models) command += " " + m;
  std::string output;
  EXPECT_EQ(::vidscan::testing::RunCommand(command + " 2>&1", &output), 0) << output;
  return out;
}

double RelativeL2(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0, norm = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    diff += (static_cast<double>(got[k]) - want[k]) * (static_cast<double>(got[k]) - want[k]);
    norm += static_cast<double>(want[k]) * want[k];
  }
  return std::sqrt(diff) / std::max(std::sqrt(norm), 1e-12);
}

constexpr double kTolerance = 1e-4;

// Shape inference on the optimised model gives the shapes the executor actually produced.
void ExpectInferredShapes(const CpuExecutor& executor, const Reference& ref, const std::vector<HostTensor>& produced) {
  std::vector<std::vector<int64_t>> input_shapes;
  for (const auto& t : ref.inputs) input_shapes.push_back(t.shape);
  auto shapes = InferShapes(executor.optimized_model(), input_shapes);
  ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
  for (size_t k = 0; k < produced.size() && k < executor.outputs().size(); ++k)
    EXPECT_EQ(shapes->at(executor.outputs()[k].name), produced[k].shape) << "inferred shape of " << executor.outputs()[k].name;
}

std::vector<HostTensorView> Views(const std::vector<RefTensor>& tensors) {
  std::vector<HostTensorView> views;
  for (const auto& t : tensors) views.push_back({t.shape, t.data.data()});
  return views;
}

// Our outputs on the reference's inputs, compared output by output; returns the worst relative L2.
double CompareWithReference(CpuExecutor& executor, const Reference& ref, std::vector<HostTensor>* outputs = nullptr) {
  std::vector<HostTensor> ours;
  Status st = executor.Run(Views(ref.inputs), &ours);
  EXPECT_TRUE(st.ok()) << st.ToString();
  if (!st.ok()) return 1e9;
  EXPECT_EQ(ours.size(), ref.outputs.size());
  double worst = 0;
  for (size_t k = 0; k < std::min(ours.size(), ref.outputs.size()); ++k) {
    EXPECT_EQ(ours[k].shape, ref.outputs[k].shape) << "output " << ref.outputs[k].name;
    if (ours[k].shape != ref.outputs[k].shape) return 1e9;
    const double err = RelativeL2(ours[k].data, ref.outputs[k].data);
    EXPECT_LE(err, kTolerance) << "output " << ref.outputs[k].name;
    worst = std::max(worst, err);
  }
  if (outputs) *outputs = std::move(ours);
  return worst;
}

// ---- GEMM: every instruction-set variant against a plain triple loop ---------------------------------

TEST(Gemm, EveryIsaMatchesNaiveProduct) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  // Sizes straddle the tiles (6/12 rows, 16/32 columns) and the blocks (120 rows, 256 columns, 256 deep).
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {5, 17, 3}, {13, 33, 300}, {121, 257, 257}, {64, 40, 576}, {7, 300, 9}};
  for (GemmIsa isa : {GemmIsa::kBaseline, GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (!GemmIsaSupported(isa)) continue;
    for (const auto& [M, N, K] : sizes) {
      SCOPED_TRACE(::testing::Message() << "isa " << static_cast<int>(isa) << " M=" << M << " N=" << N << " K=" << K);
      // Leading dimensions larger than the rows, as for a group's slice of a weight or output tensor.
      const int64_t lda = K + 3, ldb = N + 5, ldc = N + 2;
      std::vector<float> A(static_cast<size_t>(M * lda)), B(static_cast<size_t>(K * ldb)), C(static_cast<size_t>(M * ldc), -7.0f);
      for (float& v : A) v = normal(rng);
      for (float& v : B) v = normal(rng);
      GemmWithIsa(isa, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, nullptr);
      double diff = 0, norm = 0;
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < N; ++n) {
          double want = 0;
          for (int64_t k = 0; k < K; ++k) want += static_cast<double>(A[m * lda + k]) * B[k * ldb + n];
          diff += (C[m * ldc + n] - want) * (C[m * ldc + n] - want);
          norm += want * want;
        }
        for (int64_t n = N; n < ldc; ++n) ASSERT_EQ(C[m * ldc + n], -7.0f) << "wrote past column N";
      }
      EXPECT_LE(std::sqrt(diff / norm), 1e-6);
    }
  }
}

// ---- protobuf reader and import errors ---------------------------------------------------------------

TEST(ProtoReader, RejectsLengthsBeyondTheBuffer) {
  const std::string declared_too_long = Varint((1 << 3) | 2) + Varint(1000) + "abc";
  ProtoReader reader(declared_too_long);
  WireField field;
  Status st = reader.Next(&field);
  EXPECT_EQ(st.code(), StatusCode::kCorruptData);
  EXPECT_NE(st.message().find("declares 1000 bytes"), std::string::npos) << st.message();

  const std::string endless_varint(12, '\xff');
  ProtoReader varint_reader(endless_varint);
  EXPECT_EQ(varint_reader.Next(&field).code(), StatusCode::kCorruptData);

  std::vector<int64_t> ints;
  WireField packed{1, WireType::kLengthDelimited, 0, std::string_view("\x96\x01\x05", 3)};
  ASSERT_TRUE(ProtoReader::AppendInt64s(packed, &ints).ok());
  EXPECT_EQ(ints, (std::vector<int64_t>{150, 5}));
  std::vector<float> floats;
  WireField odd{2, WireType::kLengthDelimited, 0, std::string_view("\0\0\0", 3)};
  EXPECT_FALSE(ProtoReader::AppendFloats(odd, &floats).ok());
}

TEST(OnnxImport, HandBuiltModelLoadsAndRuns) {
  auto model = ParseOnnx(ModelBytes(ReluGraph()), "relu.onnx");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->opset, 13);
  ASSERT_EQ(model->graph.inputs.size(), 1u);
  EXPECT_EQ(model->graph.inputs[0].shape, (std::vector<int64_t>{-1, 2, 3}));
  auto exec = CpuExecutor::Create(*model, 2, {1});
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  const std::vector<float> x = {-1, 2, -3, 4, -5, 6, 7, -8, 9, -10, 11, -12};
  std::vector<HostTensor> out;
  HostTensorView view{{2, 2, 3}, x.data()};
  ASSERT_TRUE(exec->Run({&view, 1}, &out).ok());
  EXPECT_EQ(out[0].data, (std::vector<float>{0, 2, 0, 4, 0, 6, 7, 0, 9, 0, 11, 0}));
  HostTensorView too_big{{3, 2, 3}, x.data()};
  Status st = exec->Run({&too_big, 1}, &out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("outside 1..2"), std::string::npos) << st.message();
  HostTensorView wrong_shape{{1, 3, 2}, x.data()};
  EXPECT_EQ(exec->Run({&wrong_shape, 1}, &out).code(), StatusCode::kInvalidArgument);
}

TEST(OnnxImport, EveryTruncationIsAnError) {
  const std::string bytes = ModelBytes(ReluGraph());
  for (size_t length = 0; length < bytes.size(); ++length) {
    auto model = ParseOnnx(std::string_view(bytes).substr(0, length), "truncated.onnx");
    EXPECT_FALSE(model.ok()) << "prefix of " << length << " bytes was accepted";
    if (!model.ok()) {
      EXPECT_EQ(model.status().code(), StatusCode::kCorruptData) << model.status().ToString();
      EXPECT_NE(model.status().message().find("truncated.onnx"), std::string::npos);
    }
  }
}

TEST(OnnxImport, GarbageAndWrongFilesAreErrors) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string junk(rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    EXPECT_FALSE(ParseOnnx(junk, "junk.onnx").ok());  // must not crash, hang or allocate wildly
  }
  // Bit flips in a valid model: errors or a model, never a crash.
  const std::string valid = ModelBytes(ReluGraph());
  for (size_t k = 0; k < valid.size() * 8; ++k) {
    std::string flipped = valid;
    flipped[k / 8] = static_cast<char>(flipped[k / 8] ^ (1 << (k % 8)));
    (void)ParseOnnx(flipped, "flipped.onnx");
  }
  auto png = ParseOnnx(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16), "image.png");
  ASSERT_FALSE(png.ok());
  EXPECT_NE(png.status().message().find("not a valid ONNX model"), std::string::npos) << png.status().ToString();
  auto text = ParseOnnx("hello, this is a text file\n", "notes.txt");
  EXPECT_FALSE(text.ok());
  auto empty = ParseOnnx("", "empty.onnx");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("not an ONNX model"), std::string::npos) << empty.status().ToString();
  auto missing = LoadOnnx("/nonexistent/model.onnx");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

TEST(OnnxImport, MutatedModelsLoadRunOrFailCleanly) {
  const std::string valid = SmallDetectorModel();
  {
    auto model = ParseOnnx(valid, "small.onnx");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    auto exec = CpuExecutor::Create(*model, 2, {1});
    ASSERT_TRUE(exec.ok()) << exec.status().ToString();
    std::vector<float> x(2 * 3 * 8 * 8, 0.5f);
    HostTensorView view{{2, 3, 8, 8}, x.data()};
    std::vector<HostTensor> out;
    Status st = exec->Run({&view, 1}, &out);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(out[0].shape, (std::vector<int64_t>{2, 128}));
  }
  // Overwrite, insert or delete random bytes; whatever still loads must also optimise and run (or say
  // why not) without a crash, an out-of-bounds access (run this under VIDSCAN_ASAN) or a huge allocation.
  std::mt19937 rng(17);
  int loaded = 0, ran = 0;
  constexpr int kTrials = 20000;
  for (int trial = 0; trial < kTrials; ++trial) {
    std::string bytes = valid;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % bytes.size();
      switch (rng() % 3) {
        case 0: bytes[at] = static_cast<char>(rng()); break;
        case 1: bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rng())); break;
        default: bytes.erase(at, 1); break;
      }
    }
    auto model = ParseOnnx(bytes, "mutated.onnx");
    if (!model.ok()) continue;
    ++loaded;
    auto exec = CpuExecutor::Create(*model, 2, {1});
    if (!exec.ok() || exec->inputs().size() != 1) continue;
    std::vector<int64_t> shape = exec->inputs()[0].shape;
    int64_t count = 1;
    for (int64_t& d : shape) {
      d = d < 0 ? 2 : d;
      count *= std::min<int64_t>(d, 1 << 16);
    }
    if (shape.empty() || count > (1 << 16)) continue;
    std::vector<float> x(static_cast<size_t>(count), 0.25f);
    HostTensorView view{shape, x.data()};
    std::vector<HostTensor> out;
    if (exec->Run({&view, 1}, &out).ok()) ++ran;
  }
  std::printf("  %d mutants: %d loaded, %d ran to completion\n", kTrials, loaded, ran);
  EXPECT_GT(loaded, 0);
}

TEST(OnnxImport, HugeDeclaredDimsAreRefused) {
  // Element count overflowing int64.
  std::string overflow = ReluGraph() + BytesField(5, FloatTensor("w", {uint64_t{1} << 40, uint64_t{1} << 40}, "abcd"));
  auto a = ParseOnnx(ModelBytes(overflow), "overflow.onnx");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("elements refused"), std::string::npos) << a.status().ToString();
  // Within the cap, but not backed by the bytes in the file.
  std::string unbacked = ReluGraph() + BytesField(5, FloatTensor("w", {uint64_t{1} << 30}, "abcd"));
  auto b = ParseOnnx(ModelBytes(unbacked), "unbacked.onnx");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("carries 4 bytes"), std::string::npos) << b.status().ToString();
  // A graph input declaring an absurd shape.
  std::string huge_input = BytesField(1, NodeProto("Relu", "r", {"X"}, {"Y"})) + BytesField(11, ValueInfo("X", {1 << 30, 1 << 30, 1 << 30})) +
                           BytesField(12, ValueInfo("Y", {-1}));
  auto c = ParseOnnx(ModelBytes(huge_input), "huge_input.onnx");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("graph input 'X'"), std::string::npos) << c.status().ToString();
  // Negative dims.
  std::string negative = ReluGraph() + BytesField(5, FloatTensor("w", {static_cast<uint64_t>(-4)}, "abcd"));
  EXPECT_FALSE(ParseOnnx(ModelBytes(negative), "negative.onnx").ok());
}

TEST(OnnxImport, ConstantFoldingCannotAllocateWithoutBound) {
  // ConstantOfShape of a constant [2^14, 2^14]: valid ONNX, but folding it would allocate 1 GiB at load.
  std::string shape_raw(16, '\0');
  const int64_t dims[2] = {int64_t{1} << 14, int64_t{1} << 14};
  std::memcpy(shape_raw.data(), dims, 16);
  std::string shape_tensor = IntField(1, 2) + IntField(2, 7) + BytesField(8, "big_shape") + BytesField(9, shape_raw);
  std::string graph = BytesField(1, NodeProto("ConstantOfShape", "fill", {"big_shape"}, {"big"})) +
                      BytesField(1, NodeProto("Add", "add", {"X", "big"}, {"Y"})) + BytesField(5, shape_tensor) +
                      BytesField(11, ValueInfo("X", {-1, 2})) + BytesField(12, ValueInfo("Y", {-1, 2}));
  auto model = ParseOnnx(ModelBytes(graph), "big_fill.onnx");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto exec = CpuExecutor::Create(*model, 1);
  ASSERT_FALSE(exec.ok());
  EXPECT_EQ(exec.status().code(), StatusCode::kOutOfMemory) << exec.status().ToString();
  EXPECT_NE(exec.status().message().find("'fill'"), std::string::npos) << exec.status().ToString();
}

TEST(OnnxImport, UnknownOperatorNamesOpAndNode) {
  std::string graph = BytesField(1, NodeProto("FancyOp", "fancy_node_7", {"X"}, {"Y"})) + BytesField(11, ValueInfo("X", {-1, 2})) +
                      BytesField(12, ValueInfo("Y", {-1, 2}));
  auto model = ParseOnnx(ModelBytes(graph), "fancy.onnx");
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(model.status().message().find("FancyOp"), std::string::npos) << model.status().ToString();
  EXPECT_NE(model.status().message().find("fancy_node_7"), std::string::npos) << model.status().ToString();
}

TEST(OnnxImport, CyclicGraphIsAnError) {
  std::string graph = BytesField(1, NodeProto("Add", "a", {"X", "c"}, {"b"})) + BytesField(1, NodeProto("Relu", "r", {"b"}, {"c"})) +
                      BytesField(1, NodeProto("Relu", "out", {"b"}, {"Y"})) + BytesField(11, ValueInfo("X", {-1, 2})) +
                      BytesField(12, ValueInfo("Y", {-1, 2}));
  auto model = ParseOnnx(ModelBytes(graph), "cycle.onnx");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("cycle"), std::string::npos) << model.status().ToString();
  // A read of a value nothing produces.
  std::string dangling = BytesField(1, NodeProto("Relu", "r", {"ghost"}, {"Y"})) + BytesField(11, ValueInfo("X", {-1, 2})) +
                         BytesField(12, ValueInfo("Y", {-1, 2}));
  auto d = ParseOnnx(ModelBytes(dangling), "dangling.onnx");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("ghost"), std::string::npos) << d.status().ToString();
}

TEST(OnnxImport, OpsetOutsideRangeIsRefused) {
  auto old = ParseOnnx(ModelBytes(ReluGraph(), 9), "old.onnx");
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(old.status().message().find("opset 9"), std::string::npos) << old.status().ToString();
}

// ---- executor against ONNX Runtime -------------------------------------------------------------------

TEST(CpuExecutorVsOrt, EverySingleOperatorModel) {
  VS_REQUIRE_ORT();
  const std::string ops_dir = ModelsDir() + "/ops";
  ASSERT_TRUE(MakeModels("ops", ops_dir + "/COMPLETE"));
  std::vector<std::string> models;
  for (const auto& entry : fs::directory_iterator(ops_dir))
    if (entry.path().extension() == ".onnx") models.push_back(entry.path().string());
  std::sort(models.begin(), models.end());
  ASSERT_GE(models.size(), 50u);
  constexpr int kBatch = 3;
  const std::string refs = OrtReferences(models, 11, kBatch);
  for (const std::string& path : models) {
    const std::string name = fs::path(path).stem().string();
    SCOPED_TRACE(name);
    auto model = LoadOnnx(path);
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const int64_t fixed_batch = model->graph.inputs[0].shape[0];  // a Resize with `sizes` fixes it
    auto exec = CpuExecutor::Create(*model, fixed_batch > 1 ? static_cast<int>(fixed_batch) : 4, {2});
    ASSERT_TRUE(exec.ok()) << exec.status().ToString();
    const Reference ref = ReadReference(refs + "/" + name);
    std::vector<HostTensor> ours;
    const double err = CompareWithReference(*exec, ref, &ours);
    std::printf("  %-36s rel L2 %.2e\n", name.c_str(), err);
    ExpectInferredShapes(*exec, ref, ours);

    // Dynamic batch: the same executor on the first sample alone gives the first slice of each output.
    const RefTensor& input = ref.inputs[0];
    if (ref.inputs.size() == 1 && input.shape[0] == kBatch) {
      RefTensor first = input;
      first.shape[0] = 1;
      first.data.resize(first.data.size() / kBatch);
      std::vector<HostTensor> single;
      HostTensorView view{first.shape, first.data.data()};
      ASSERT_TRUE(exec->Run({&view, 1}, &single).ok());
      for (size_t k = 0; k < single.size(); ++k) {
        if (ours[k].shape.empty() || ours[k].shape[0] != kBatch) continue;  // e.g. Cast(Shape(x))
        const std::vector<float> slice(ours[k].data.begin(), ours[k].data.begin() + static_cast<std::ptrdiff_t>(ours[k].data.size() / kBatch));
        EXPECT_LE(RelativeL2(single[k].data, slice), 1e-6) << "batch 1 vs batch 3, output " << k;
      }
    }
  }
}

TEST(GraphPasses, FoldBatchNormAndFuseEpilogues) {
  VS_REQUIRE_ORT();
  const std::string ops_dir = ModelsDir() + "/ops";
  ASSERT_TRUE(MakeModels("ops", ops_dir + "/COMPLETE"));
  struct Case {
    const char* model;
    Activation activation;
    bool residual;
  };
  for (const Case& c : {Case{"conv_bn_relu", Activation::kRelu, false}, Case{"conv_bn_add_relu", Activation::kRelu, true},
                        Case{"conv_silu", Activation::kSilu, false}, Case{"conv_leaky_relu", Activation::kLeakyRelu, false},
                        Case{"conv_sigmoid", Activation::kSigmoid, false}}) {
    SCOPED_TRACE(c.model);
    auto model = LoadOnnx(ops_dir + "/" + c.model + ".onnx");
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    ASSERT_TRUE(OptimizeForInference(&*model).ok());
    ASSERT_EQ(model->graph.nodes.size(), 1u) << model->graph.nodes[1].Describe();
    const Node& conv = model->graph.nodes[0];
    EXPECT_EQ(conv.op_type, "Conv");
    EXPECT_EQ(conv.fused_activation, c.activation);
    EXPECT_EQ(conv.fused_residual, c.residual);
    EXPECT_EQ(conv.outputs[0], "Y");
  }
  auto folded = LoadOnnx(ops_dir + "/constant_folding.onnx");
  ASSERT_TRUE(folded.ok());
  ASSERT_TRUE(OptimizeForInference(&*folded).ok());
  ASSERT_EQ(folded->graph.nodes.size(), 1u);
  EXPECT_EQ(folded->graph.nodes[0].name, "add");
  EXPECT_EQ(folded->graph.initializers.size(), 1u);  // c1, c2, shape are dead once c4 is folded
}

TEST(CpuExecutorVsOrt, DetectNetV2ResNet34At960x544) {
  VS_REQUIRE_ORT();
  const std::string path = ModelsDir() + "/detectnet_v2_resnet34_960x544.onnx";
  ASSERT_TRUE(MakeModels("detectnet", path));
  auto model = LoadOnnx(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto exec = CpuExecutor::Create(*model, 2);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  for (const Node& node : exec->optimized_model().graph.nodes) {
    EXPECT_NE(node.op_type, "BatchNormalization");  // folded
    EXPECT_NE(node.op_type, "Relu");                // fused into the convs
    EXPECT_NE(node.op_type, "Add");
  }
  const Reference ref = ReadReference(OrtReferences({path}, 3, 1) + "/detectnet_v2_resnet34_960x544");
  ASSERT_EQ(ref.outputs.size(), 2u);
  EXPECT_EQ(ref.outputs[0].shape, (std::vector<int64_t>{1, 3, 34, 60}));
  EXPECT_EQ(ref.outputs[1].shape, (std::vector<int64_t>{1, 12, 34, 60}));
  std::vector<HostTensor> ours;
  const auto start = std::chrono::steady_clock::now();
  const double err = CompareWithReference(*exec, ref, &ours);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  DetectNet_v2/ResNet-34 960x544 batch 1: rel L2 %.2e, CPU executor %.2f s\n", err, seconds);
  const auto infer_start = std::chrono::steady_clock::now();
  ExpectInferredShapes(*exec, ref, ours);
  std::printf("  shape inference: %.4f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - infer_start).count());
}

TEST(CpuExecutorVsOrt, RealYoloxNano) {
  VS_REQUIRE_DATA(path, "models/yolox_nano_coco_416.onnx");
  VS_REQUIRE_ORT();
  auto model = LoadOnnx(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  EXPECT_EQ(model->opset, 11);
  // Max batch 2 although the file fixes batch 1: the executor serves it batch-agnostically.
  auto exec = CpuExecutor::Create(*model, 2);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  const Reference ref = ReadReference(OrtReferences({path}, 5, 1, "--uniform 0 255") + "/yolox_nano_coco_416");
  ASSERT_EQ(ref.outputs.size(), 1u);
  EXPECT_EQ(ref.outputs[0].shape, (std::vector<int64_t>{1, 3549, 85}));
  std::vector<HostTensor> single;
  const auto start = std::chrono::steady_clock::now();
  const double err = CompareWithReference(*exec, ref, &single);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  YOLOX-Nano 416 batch 1: rel L2 %.2e, CPU executor %.3f s\n", err, seconds);
  ExpectInferredShapes(*exec, ref, single);

  // Batch 2 of the same image twice: each half equals the batch-1 result.
  RefTensor pair = ref.inputs[0];
  pair.shape[0] = 2;
  pair.data.insert(pair.data.end(), ref.inputs[0].data.begin(), ref.inputs[0].data.end());
  HostTensorView view{pair.shape, pair.data.data()};
  std::vector<HostTensor> doubled;
  Status st = exec->Run({&view, 1}, &doubled);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(doubled[0].shape, (std::vector<int64_t>{2, 3549, 85}));
  auto batch2_shapes = InferShapes(exec->optimized_model(), std::vector<std::vector<int64_t>>{pair.shape});
  ASSERT_TRUE(batch2_shapes.ok()) << batch2_shapes.status().ToString();
  EXPECT_EQ(batch2_shapes->at("output"), doubled[0].shape);
  const size_t half = doubled[0].data.size() / 2;
  EXPECT_LE(RelativeL2(std::vector<float>(doubled[0].data.begin(), doubled[0].data.begin() + half), single[0].data), 1e-6);
  EXPECT_LE(RelativeL2(std::vector<float>(doubled[0].data.begin() + half, doubled[0].data.end()), single[0].data), 1e-6);
}

// The C++-built DetectNet (for GPU machines without Python/onnx) is make_models.py's architecture: the same
// nodes (op, name, inputs, outputs, attributes) and initializer shapes as the generated ONNX file.
TEST(BuiltinModels, DetectNetMatchesMakeModelsArchitecture) {
  const Model built = MakeDetectNetV2ResNet34();
  auto shapes = InferShapes(built, std::vector<std::vector<int64_t>>{{2, 3, 544, 960}});
  ASSERT_TRUE(shapes.ok()) << shapes.status().ToString();
  EXPECT_EQ(shapes->at("output_cov/Sigmoid"), (std::vector<int64_t>{2, 3, 34, 60}));
  EXPECT_EQ(shapes->at("output_bbox/BiasAdd"), (std::vector<int64_t>{2, 12, 34, 60}));
  auto prepared = CpuExecutor::Create(built, 2);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  EXPECT_EQ(prepared->optimized_model().graph.nodes.size(), 39u);  // as the ONNX file: every BN, ReLU and residual fused
  auto via_name = LoadModelOrBuiltin(kBuiltinDetectNet);
  ASSERT_TRUE(via_name.ok());

  VS_REQUIRE_ORT();
  const std::string path = ModelsDir() + "/detectnet_v2_resnet34_960x544.onnx";
  ASSERT_TRUE(MakeModels("detectnet", path));
  auto file = LoadOnnx(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ(built.graph.nodes.size(), file->graph.nodes.size());
  for (size_t k = 0; k < built.graph.nodes.size(); ++k) {
    const Node& a = built.graph.nodes[k];
    const Node& b = file->graph.nodes[k];
    SCOPED_TRACE(b.name);
    EXPECT_EQ(a.op_type, b.op_type);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.inputs, b.inputs);
    EXPECT_EQ(a.outputs, b.outputs);
    for (const char* attribute : {"kernel_shape", "strides", "pads"}) EXPECT_EQ(a.Ints(attribute), b.Ints(attribute)) << attribute;
    EXPECT_EQ(a.Float("epsilon", 0), b.Float("epsilon", 0));
  }
  ASSERT_EQ(built.graph.initializers.size(), file->graph.initializers.size());
  for (const auto& [name, tensor] : file->graph.initializers) {
    ASSERT_TRUE(built.graph.initializers.count(name)) << name;
    EXPECT_EQ(built.graph.initializers.at(name).shape, tensor.shape) << name;
  }
  ASSERT_EQ(built.graph.outputs.size(), file->graph.outputs.size());
  for (size_t k = 0; k < built.graph.outputs.size(); ++k) EXPECT_EQ(built.graph.outputs[k].name, file->graph.outputs[k].name);
  EXPECT_EQ(built.graph.inputs[0].name, file->graph.inputs[0].name);
}

}  // namespace
}  // namespace vidscan::infer
