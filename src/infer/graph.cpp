#include "infer/graph.h"

namespace vidscan::infer {

Expected<int64_t> CheckedElementCount(const std::vector<int64_t>& shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return MakeError(StatusCode::kCorruptData, "negative dimension " + std::to_string(d));
    if (d != 0 && count > kMaxTensorElements / d)
      return MakeError(StatusCode::kCorruptData, "tensor of more than " + std::to_string(kMaxTensorElements) + " elements refused");
    count *= d;
  }
  return count;
}

Tensor Tensor::Float(std::vector<int64_t> shape, std::vector<float> data) {
  Tensor t;
  t.dtype = DType::kFloat32;
  t.shape = std::move(shape);
  t.f = std::move(data);
  return t;
}

Tensor Tensor::Int64(std::vector<int64_t> shape, std::vector<int64_t> data) {
  Tensor t;
  t.dtype = DType::kInt64;
  t.shape = std::move(shape);
  t.i = std::move(data);
  return t;
}

const char* ActivationName(Activation activation) {
  switch (activation) {
    case Activation::kNone: return "none";
    case Activation::kRelu: return "relu";
    case Activation::kLeakyRelu: return "leaky_relu";
    case Activation::kSigmoid: return "sigmoid";
    case Activation::kSilu: return "silu";
  }
  return "?";
}

const Attribute* Node::Find(const std::string& attribute) const {
  auto it = attributes.find(attribute);
  return it == attributes.end() ? nullptr : &it->second;
}

int64_t Node::Int(const std::string& attribute, int64_t fallback) const {
  const Attribute* a = Find(attribute);
  return a && a->kind == Attribute::Kind::kInt ? a->i : fallback;
}

float Node::Float(const std::string& attribute, float fallback) const {
  const Attribute* a = Find(attribute);
  return a && a->kind == Attribute::Kind::kFloat ? a->f : fallback;
}

std::string Node::String(const std::string& attribute, const std::string& fallback) const {
  const Attribute* a = Find(attribute);
  return a && a->kind == Attribute::Kind::kString ? a->s : fallback;
}

std::vector<int64_t> Node::Ints(const std::string& attribute) const {
  const Attribute* a = Find(attribute);
  return a && a->kind == Attribute::Kind::kInts ? a->ints : std::vector<int64_t>{};
}

std::string Node::Describe() const { return op_type + " node '" + name + "'"; }

}  // namespace vidscan::infer
