// The inference graph IR: what an ONNX file becomes after import, what the passes rewrite and what an
// executor (CPU now, cuDNN later) consumes. Tensors hold float32 or int64 (shape arithmetic) only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace vidscan::infer {

enum class DType { kFloat32, kInt64 };

// Refuse any tensor larger than this many elements (8 GiB of float32): a corrupt or hostile file must
// not make the importer or executor allocate without bound. Constant folding uses a smaller cap.
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 31;
inline constexpr int64_t kMaxFoldedElements = int64_t{1} << 26;

// Element count of `shape`, or an error when a dim is negative or the product overflows the cap.
Expected<int64_t> CheckedElementCount(const std::vector<int64_t>& shape);

struct Tensor {
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<float> f;    // when dtype == kFloat32
  std::vector<int64_t> i;  // when dtype == kInt64

  int64_t size() const { return dtype == DType::kFloat32 ? static_cast<int64_t>(f.size()) : static_cast<int64_t>(i.size()); }
  int rank() const { return static_cast<int>(shape.size()); }
  static Tensor Float(std::vector<int64_t> shape, std::vector<float> data);
  static Tensor Int64(std::vector<int64_t> shape, std::vector<int64_t> data);
};

struct Attribute {
  enum class Kind { kFloat, kInt, kString, kTensor, kFloats, kInts, kStrings, kGraph };
  Kind kind = Kind::kInt;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

// What a Conv runs after its own bias, filled in by the fusion pass: out = act(conv + bias [+ residual]).
enum class Activation { kNone, kRelu, kLeakyRelu, kSigmoid, kSilu };
const char* ActivationName(Activation activation);

struct Node {
  std::string op_type;
  std::string name;
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;
  // Conv only, set by FuseConvEpilogues: a residual input is inputs[3].
  Activation fused_activation = Activation::kNone;
  float fused_alpha = 0.01f;  // LeakyRelu slope
  bool fused_residual = false;

  const Attribute* Find(const std::string& attribute) const;
  int64_t Int(const std::string& attribute, int64_t fallback) const;
  float Float(const std::string& attribute, float fallback) const;
  std::string String(const std::string& attribute, const std::string& fallback) const;
  std::vector<int64_t> Ints(const std::string& attribute) const;  // empty when absent
  std::string Describe() const;  // "Conv node 'conv1'"
};

// A graph input or output: its name and declared shape (-1 for a symbolic or unknown dim).
struct ValueInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
};

struct Graph {
  std::vector<Node> nodes;
  std::map<std::string, Tensor> initializers;  // constants, by value name
  std::vector<ValueInfo> inputs;               // runtime inputs only (initializers removed)
  std::vector<ValueInfo> outputs;
};

struct Model {
  Graph graph;
  int64_t opset = 0;  // the default-domain ("" / ai.onnx) opset
  int64_t ir_version = 0;
  std::string producer;
};

}  // namespace vidscan::infer
