// The DetectNet_v2/ResNet-34 of tools/make_models.py (detectnet_v2_resnet34), built as IR directly.
#include "infer/builtin_models.h"

#include <cmath>
#include <random>
#include <vector>

#include "infer/infer.h"

namespace vidscan::infer {
namespace {

class Builder {
 public:
  explicit Builder(uint32_t seed) : rng_(seed) {}

  std::vector<float> Normal(size_t n, float scale) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> v(n);
    for (float& x : v) x = normal(rng_) * scale;
    return v;
  }
  std::vector<float> Uniform(size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> uniform(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = uniform(rng_);
    return v;
  }
  void Constant(const std::string& name, std::vector<int64_t> shape, std::vector<float> data) {
    graph.initializers[name] = Tensor::Float(std::move(shape), std::move(data));
  }
  static Attribute Ints(std::vector<int64_t> values) {
    Attribute a;
    a.kind = Attribute::Kind::kInts;
    a.ints = std::move(values);
    return a;
  }
  void Add(const std::string& op, const std::string& name, std::vector<std::string> inputs, const std::string& output,
           std::map<std::string, Attribute> attributes = {}) {
    Node node;
    node.op_type = op;
    node.name = name;
    node.inputs = std::move(inputs);
    node.outputs = {output};
    node.attributes = std::move(attributes);
    graph.nodes.push_back(std::move(node));
  }

  // Conv(k x k, stride, pad k/2, bias) + BatchNorm (+ Relu), make_models.py's conv_bn.
  std::string ConvBn(const std::string& x, int64_t cin, int64_t cout, int64_t k, int64_t stride, const std::string& name, bool relu,
                     float gamma_scale = 1.0f) {
    Constant(name + ".w", {cout, cin, k, k}, Normal(static_cast<size_t>(cout * cin * k * k), std::sqrt(2.0f / static_cast<float>(cin * k * k))));
    Constant(name + ".b", {cout}, Normal(static_cast<size_t>(cout), 0.05f));
    std::vector<float> gamma = Uniform(static_cast<size_t>(cout), 0.5f, 1.0f);
    for (float& g : gamma) g *= gamma_scale;
    Constant(name + ".gamma", {cout}, gamma);
    Constant(name + ".beta", {cout}, Normal(static_cast<size_t>(cout), 0.05f));
    Constant(name + ".mean", {cout}, Normal(static_cast<size_t>(cout), 0.05f));
    Constant(name + ".var", {cout}, Uniform(static_cast<size_t>(cout), 0.5f, 1.5f));
    Add("Conv", name + "/convolution", {x, name + ".w", name + ".b"}, name + ".conv",
        {{"kernel_shape", Ints({k, k})}, {"strides", Ints({stride, stride})}, {"pads", Ints({k / 2, k / 2, k / 2, k / 2})}});
    Attribute epsilon;
    epsilon.kind = Attribute::Kind::kFloat;
    epsilon.f = 1e-3f;
    Add("BatchNormalization", name + "/bn", {name + ".conv", name + ".gamma", name + ".beta", name + ".mean", name + ".var"}, name + ".bn",
        {{"epsilon", epsilon}});
    if (!relu) return name + ".bn";
    Add("Relu", name + "/relu", {name + ".bn"}, name + ".relu");
    return name + ".relu";
  }

  std::string BasicBlock(const std::string& x, int64_t cin, int64_t cout, int64_t stride, const std::string& prefix) {
    std::string y = ConvBn(x, cin, cout, 3, stride, prefix + "_conv_1", true);
    // A small gamma on the block's last BN keeps activations bounded over 16 residual blocks.
    y = ConvBn(y, cout, cout, 3, 1, prefix + "_conv_2", false, 0.3f);
    std::string shortcut = x;
    if (stride != 1 || cin != cout) shortcut = ConvBn(x, cin, cout, 1, stride, prefix + "_conv_shortcut", false);
    Add("Add", prefix + "_add", {y, shortcut}, prefix + "_add");
    Add("Relu", prefix + "_relu", {prefix + "_add"}, prefix + "_relu");
    return prefix + "_relu";
  }

  Graph graph;

 private:
  std::mt19937 rng_;
};

}  // namespace

Model MakeDetectNetV2ResNet34(int height, int width, int classes, uint32_t seed) {
  Builder b(seed);
  b.graph.inputs.push_back({"input_1", DType::kFloat32, {-1, 3, height, width}});
  // Stem: conv 7x7/2 (zero bias) + BN + Relu + MaxPool 3x3/2.
  b.Constant("conv1.w", {64, 3, 7, 7}, b.Normal(64 * 3 * 49, std::sqrt(2.0f / 147.0f)));
  b.Constant("conv1.b", {64}, std::vector<float>(64, 0.0f));
  b.Constant("bn_conv1.gamma", {64}, b.Uniform(64, 0.5f, 1.0f));
  b.Constant("bn_conv1.beta", {64}, b.Normal(64, 0.05f));
  b.Constant("bn_conv1.mean", {64}, b.Normal(64, 0.05f));
  b.Constant("bn_conv1.var", {64}, b.Uniform(64, 0.5f, 1.5f));
  b.Add("Conv", "conv1/convolution", {"input_1", "conv1.w", "conv1.b"}, "conv1",
        {{"kernel_shape", Builder::Ints({7, 7})}, {"strides", Builder::Ints({2, 2})}, {"pads", Builder::Ints({3, 3, 3, 3})}});
  Attribute epsilon;
  epsilon.kind = Attribute::Kind::kFloat;
  epsilon.f = 1e-3f;
  b.Add("BatchNormalization", "bn_conv1", {"conv1", "bn_conv1.gamma", "bn_conv1.beta", "bn_conv1.mean", "bn_conv1.var"}, "bn_conv1",
        {{"epsilon", epsilon}});
  b.Add("Relu", "activation_1/Relu", {"bn_conv1"}, "activation_1");
  b.Add("MaxPool", "max_pooling2d_1", {"activation_1"}, "pool1",
        {{"kernel_shape", Builder::Ints({3, 3})}, {"strides", Builder::Ints({2, 2})}, {"pads", Builder::Ints({1, 1, 1, 1})}});
  std::string x = "pool1";
  int64_t cin = 64;
  const struct { int64_t cout, blocks, stride; } stages[] = {{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 1}};
  for (int s = 0; s < 4; ++s)
    for (int64_t k = 0; k < stages[s].blocks; ++k) {
      const std::string prefix = "block_" + std::to_string(s + 1) + static_cast<char>('a' + k);
      x = b.BasicBlock(x, cin, stages[s].cout, k == 0 ? stages[s].stride : 1, prefix);
      cin = stages[s].cout;
    }
  b.Constant("cov.w", {classes, 512, 1, 1}, b.Normal(static_cast<size_t>(classes) * 512, 0.02f));
  b.Constant("cov.b", {classes}, std::vector<float>(static_cast<size_t>(classes), 0.0f));
  b.Constant("bbox.w", {4 * classes, 512, 1, 1}, b.Normal(static_cast<size_t>(4 * classes) * 512, 0.02f));
  b.Constant("bbox.b", {4 * classes}, std::vector<float>(static_cast<size_t>(4 * classes), 0.0f));
  b.Add("Conv", "output_cov/convolution", {x, "cov.w", "cov.b"}, "output_cov", {{"kernel_shape", Builder::Ints({1, 1})}});
  b.Add("Sigmoid", "output_cov/Sigmoid", {"output_cov"}, "output_cov/Sigmoid");
  b.Add("Conv", "output_bbox/convolution", {x, "bbox.w", "bbox.b"}, "output_bbox/BiasAdd", {{"kernel_shape", Builder::Ints({1, 1})}});
  const int64_t gh = height / 16, gw = width / 16;
  b.graph.outputs.push_back({"output_cov/Sigmoid", DType::kFloat32, {-1, classes, gh, gw}});
  b.graph.outputs.push_back({"output_bbox/BiasAdd", DType::kFloat32, {-1, 4 * classes, gh, gw}});
  Model model;
  model.graph = std::move(b.graph);
  model.opset = 13;
  model.ir_version = 8;
  model.producer = "vidscan builtin";
  return model;
}

Expected<Model> LoadModelOrBuiltin(const std::string& path_or_builtin) {
  if (path_or_builtin == kBuiltinDetectNet) return MakeDetectNetV2ResNet34();
  return LoadOnnx(path_or_builtin);
}

}  // namespace vidscan::infer
