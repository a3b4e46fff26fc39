#!/usr/bin/env python3
"""Writes the ONNX fixtures of the inference engine's tests and benchmarks (needs the `onnx` and `numpy`
PyPI packages). Random weights, fixed seeds: the same files every run.

  make_models.py OUT_DIR ops        # small single-operator (and fusion-pattern) models: OUT_DIR/ops/*.onnx, then OUT_DIR/ops/COMPLETE
  make_models.py OUT_DIR detectnet  # DetectNet_v2 / ResNet-34 at 960x544 (PeopleNet architecture, 3 classes)

Files are written to a temporary name and renamed, so concurrent test processes never read half a file.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INT64_MAX = 9223372036854775807


def save(model, path):
    # Outputs are declared without shapes; shape inference fills them in (the checker requires one).
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    onnx.save(model, tmp)
    os.replace(tmp, path)


def make_model(nodes, inputs, outputs, initializers, opset=13, name="m"):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="vidscan-make_models")
    model.ir_version = 8
    return model


def tensor_in(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


class OpModels:
    """Each method returns one model whose single runtime input X has a dynamic batch N."""

    def __init__(self):
        self.rng = np.random.default_rng(1234)

    def randn(self, *shape, scale=1.0):
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def unary(self, op, shape, opset=13, **attrs):
        return make_model([helper.make_node(op, ["X"], ["Y"], name=op.lower(), **attrs)],
                          [tensor_in("X", ["N", *shape])], [tensor_in("Y", None)], [], opset)

    def conv(self, cin, cout, hw, kernel, group=1, bias=True, activation=None, bn=False, residual=False, **attrs):
        w = self.randn(cout, cin // group, *kernel, scale=np.sqrt(2.0 / (cin // group * kernel[0] * kernel[1])))
        inits = [const("W", w)]
        conv_inputs = ["X", "W"]
        if bias:
            inits.append(const("B", self.randn(cout, scale=0.1)))
            conv_inputs.append("B")
        nodes = [helper.make_node("Conv", conv_inputs, ["c"], name="conv", group=group, **attrs)]
        last = "c"
        if bn:
            inits += [const("gamma", self.rng.uniform(0.5, 1.5, cout).astype(np.float32)),
                      const("beta", self.randn(cout, scale=0.1)), const("mean", self.randn(cout, scale=0.1)),
                      const("var", self.rng.uniform(0.5, 1.5, cout).astype(np.float32))]
            nodes.append(helper.make_node("BatchNormalization", [last, "gamma", "beta", "mean", "var"], ["bn"], name="bn", epsilon=1e-3))
            last = "bn"
        inputs = [tensor_in("X", ["N", cin, *hw])]
        if residual:
            inputs.append(tensor_in("R", ["N", cout, *hw]))  # same-size conv only
            nodes.append(helper.make_node("Add", [last, "R"], ["sum"], name="residual"))
            last = "sum"
        if activation == "silu":
            nodes += [helper.make_node("Sigmoid", [last], ["sig"], name="silu_sigmoid"),
                      helper.make_node("Mul", [last, "sig"], ["Y"], name="silu_mul")]
        elif activation:
            attrs = {"alpha": 0.2} if activation == "LeakyRelu" else {}
            nodes.append(helper.make_node(activation, [last], ["Y"], name="act", **attrs))
        else:
            nodes.append(helper.make_node("Identity", [last], ["Y"], name="out"))
        return make_model(nodes, inputs, [tensor_in("Y", None)], inits)

    def binary(self, op, a_shape, b_const_shape=None):
        inputs = [tensor_in("A", ["N", *a_shape])]
        inits = []
        if b_const_shape is None:
            inputs.append(tensor_in("B", ["N", *a_shape]))
        else:
            b = self.rng.uniform(0.5, 2.0, b_const_shape).astype(np.float32) * self.rng.choice([-1, 1], b_const_shape).astype(np.float32)
            inits.append(const("B", b))
        return make_model([helper.make_node(op, ["A", "B"], ["Y"], name=op.lower())], inputs, [tensor_in("Y", None)], inits)

    def resize(self, hw, mode, coord, nearest=None, scales=None, sizes=None, opset=13):
        attrs = {"mode": mode, "coordinate_transformation_mode": coord}
        if nearest:
            attrs["nearest_mode"] = nearest
        inits = [const("roi", np.array([], dtype=np.float32))]
        if sizes is None:
            inits.append(const("scales", np.array(scales, dtype=np.float32)))
            ins = ["X", "roi", "scales"]
        else:
            inits.append(const("scales", np.array([], dtype=np.float32)))
            inits.append(const("sizes", np.array(sizes, dtype=np.int64)))
            ins = ["X", "roi", "scales", "sizes"]
        # `sizes` fixes the batch, so those models run at batch sizes[0] only.
        batch = "N" if sizes is None else sizes[0]
        return make_model([helper.make_node("Resize", ins, ["Y"], name="resize", **attrs)],
                          [tensor_in("X", [batch, 3, *hw])], [tensor_in("Y", None)], inits, opset)

    def all(self):
        m = {}
        # Convolution: every geometry the CPU path distinguishes (GEMM, pointwise, depthwise, grouped).
        m["conv_3x3"] = self.conv(8, 16, [17, 19], [3, 3], pads=[1, 1, 1, 1])
        m["conv_stride_asym_pad"] = self.conv(8, 12, [17, 19], [3, 3], strides=[2, 2], pads=[0, 1, 2, 1])
        m["conv_dilation"] = self.conv(8, 10, [20, 18], [3, 3], dilations=[2, 2], pads=[2, 2, 2, 2])
        m["conv_group"] = self.conv(8, 16, [15, 15], [3, 3], group=4, pads=[1, 1, 1, 1])
        m["conv_depthwise"] = self.conv(8, 8, [15, 16], [3, 3], group=8, strides=[2, 2], pads=[1, 1, 1, 1])
        m["conv_depthwise_dilated_asym_pad"] = self.conv(8, 8, [14, 15], [3, 3], group=8, dilations=[2, 2], pads=[2, 1, 0, 3])
        m["conv_depthwise_5x5_s3"] = self.conv(6, 6, [17, 19], [5, 5], group=6, strides=[3, 3], pads=[2, 2, 2, 2])
        m["conv_same_upper"] = self.conv(6, 9, [13, 14], [4, 4], strides=[2, 2], auto_pad="SAME_UPPER")
        m["conv_valid"] = self.conv(6, 9, [13, 14], [5, 5], auto_pad="VALID")
        m["conv_1x1_nobias"] = self.conv(16, 24, [9, 11], [1, 1], bias=False)
        m["conv_7x7_s2"] = self.conv(3, 32, [64, 80], [7, 7], strides=[2, 2], pads=[3, 3, 3, 3])
        m["conv_deep_k"] = self.conv(64, 130, [20, 24], [3, 3], pads=[1, 1, 1, 1])
        # Fusion patterns (BN folding, epilogues).
        m["conv_bn_relu"] = self.conv(8, 16, [12, 13], [3, 3], bn=True, activation="Relu", pads=[1, 1, 1, 1])
        m["conv_bn_add_relu"] = self.conv(16, 16, [12, 13], [3, 3], bias=False, bn=True, residual=True, activation="Relu", pads=[1, 1, 1, 1])
        m["conv_silu"] = self.conv(8, 16, [12, 13], [3, 3], activation="silu", pads=[1, 1, 1, 1])
        m["conv_leaky_relu"] = self.conv(8, 16, [12, 13], [3, 3], activation="LeakyRelu", pads=[1, 1, 1, 1])
        m["conv_sigmoid"] = self.conv(8, 4, [12, 13], [1, 1], activation="Sigmoid")
        # BatchNormalization alone.
        bn_inits = [const("gamma", self.rng.uniform(0.5, 1.5, 5).astype(np.float32)), const("beta", self.randn(5)),
                    const("mean", self.randn(5)), const("var", self.rng.uniform(0.5, 1.5, 5).astype(np.float32))]
        m["batchnorm"] = make_model([helper.make_node("BatchNormalization", ["X", "gamma", "beta", "mean", "var"], ["Y"], name="bn")],
                                    [tensor_in("X", ["N", 5, 6, 7])], [tensor_in("Y", None)], bn_inits)
        m["relu"] = self.unary("Relu", [4, 5, 6])
        m["leaky_relu"] = self.unary("LeakyRelu", [4, 5, 6], alpha=0.1)
        m["sigmoid"] = self.unary("Sigmoid", [4, 5, 6])
        m["identity"] = self.unary("Identity", [4, 5, 6])
        m["global_average_pool"] = self.unary("GlobalAveragePool", [6, 9, 11])
        m["flatten"] = self.unary("Flatten", [4, 5, 6], axis=2)
        m["transpose"] = self.unary("Transpose", [4, 5, 6], perm=[0, 2, 3, 1])
        m["softmax_13"] = self.unary("Softmax", [4, 5, 6], axis=1)
        m["softmax_11"] = self.unary("Softmax", [4, 5, 6], opset=11, axis=2)
        m["maxpool_3x3_s2"] = self.unary("MaxPool", [4, 17, 19], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        m["maxpool_ceil"] = self.unary("MaxPool", [4, 17, 20], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
        m["maxpool_5x5_s1"] = self.unary("MaxPool", [4, 13, 13], kernel_shape=[5, 5], pads=[2, 2, 2, 2])
        m["maxpool_same_upper"] = self.unary("MaxPool", [4, 13, 14], kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_UPPER")
        m["avgpool_exclude_pad"] = self.unary("AveragePool", [4, 17, 19], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
        m["avgpool_include_pad"] = self.unary("AveragePool", [4, 17, 19], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)
        m["avgpool_2x2"] = self.unary("AveragePool", [4, 16, 18], kernel_shape=[2, 2], strides=[2, 2])
        # Element-wise with numpy broadcasting.
        for op in ["Add", "Sub", "Mul", "Div"]:
            m[f"{op.lower()}_broadcast"] = self.binary(op, [4, 5, 6], [4, 1, 6])
            m[f"{op.lower()}_same_shape"] = self.binary(op, [3, 4, 5])
        m["add_scalar"] = self.binary("Add", [3, 4, 5], [])
        # Resize: the modes YOLOX (asymmetric/floor), YOLOv8 and torchvision (half_pixel, pytorch_half_pixel,
        # align_corners) exports use.
        m["resize_nearest_asymmetric_floor"] = self.resize([7, 9], "nearest", "asymmetric", "floor", scales=[1, 1, 2, 2], opset=11)
        m["resize_nearest_half_pixel"] = self.resize([7, 9], "nearest", "half_pixel", "round_prefer_floor", scales=[1, 1, 1.5, 2.5])
        m["resize_nearest_align_corners_ceil"] = self.resize([7, 9], "nearest", "align_corners", "round_prefer_ceil", scales=[1, 1, 2, 3])
        m["resize_linear_half_pixel"] = self.resize([7, 9], "linear", "half_pixel", scales=[1, 1, 2, 2])
        m["resize_linear_pytorch_half_pixel"] = self.resize([7, 9], "linear", "pytorch_half_pixel", scales=[1, 1, 1.7, 0.5])
        m["resize_linear_align_corners"] = self.resize([7, 9], "linear", "align_corners", scales=[1, 1, 2, 2])
        m["resize_linear_asymmetric_sizes"] = self.resize([7, 9], "linear", "asymmetric", sizes=[2, 3, 10, 4])
        # Data movement.
        m["split_concat"] = make_model(
            [helper.make_node("Split", ["X", "split"], ["a", "b", "c"], name="split", axis=1),
             helper.make_node("Concat", ["c", "a", "b"], ["Y"], name="concat", axis=1)],
            [tensor_in("X", ["N", 8, 5, 6])], [tensor_in("Y", None)], [const("split", np.array([2, 3, 3], dtype=np.int64))])
        m["split_11_equal"] = make_model(
            [helper.make_node("Split", ["X"], ["Y", "Z"], name="split", axis=3)],
            [tensor_in("X", ["N", 3, 5, 6])], [tensor_in("Y", None), tensor_in("Z", None)], [], opset=11)
        m["slice_steps"] = make_model(
            [helper.make_node("Slice", ["X", "s", "e", "a", "st"], ["Y"], name="slice")],
            [tensor_in("X", ["N", 6, 10, 12])], [tensor_in("Y", None)],
            [const("s", np.array([1, -8, 0], dtype=np.int64)), const("e", np.array([5, INT64_MAX, 12], dtype=np.int64)),
             const("a", np.array([1, 2, 3], dtype=np.int64)), const("st", np.array([2, 1, 3], dtype=np.int64))])
        m["slice_negative_step"] = make_model(
            [helper.make_node("Slice", ["X", "s", "e", "a", "st"], ["Y"], name="slice")],
            [tensor_in("X", ["N", 6, 10, 12])], [tensor_in("Y", None)],
            [const("s", np.array([-1], dtype=np.int64)), const("e", np.array([-1000], dtype=np.int64)),
             const("a", np.array([-1], dtype=np.int64)), const("st", np.array([-2], dtype=np.int64))])
        m["reshape"] = make_model([helper.make_node("Reshape", ["X", "shape"], ["Y"], name="reshape")],
                                  [tensor_in("X", ["N", 4, 6, 5])], [tensor_in("Y", None)], [const("shape", np.array([0, -1, 5], dtype=np.int64))])
        m["constant_identity"] = make_model(
            [helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(self.randn(1, 4, 1, 1), "k")),
             helper.make_node("Identity", ["X"], ["x"], name="id"),
             helper.make_node("Add", ["x", "k"], ["Y"], name="add")],
            [tensor_in("X", ["N", 4, 3, 3])], [tensor_in("Y", None)], [])
        # Shape arithmetic (what PyTorch exports around a Reshape/Flatten), run on int64 tensors.
        m["shape_arithmetic"] = make_model(
            [helper.make_node("Shape", ["X"], ["shape"], name="shape"),
             helper.make_node("Gather", ["shape", "zero"], ["n"], name="gather", axis=0),
             helper.make_node("Unsqueeze", ["n", "axes0"], ["n1"], name="unsqueeze"),
             helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
             helper.make_node("Reshape", ["X", "target"], ["flat"], name="reshape"),
             helper.make_node("ConstantOfShape", ["shape"], ["twos"], name="fill", value=numpy_helper.from_array(np.array([2.0], dtype=np.float32))),
             helper.make_node("Mul", ["X", "twos"], ["Y2"], name="mul"),
             helper.make_node("Cast", ["shape"], ["Y3"], name="cast", to=TensorProto.FLOAT),
             helper.make_node("Squeeze", ["X", "axes2"], ["sq"], name="squeeze"),
             helper.make_node("Unsqueeze", ["sq", "axes3"], ["Y4"], name="unsqueeze2"),
             helper.make_node("Identity", ["flat"], ["Y1"], name="out")],
            [tensor_in("X", ["N", 4, 1, 8])],
            [tensor_in("Y1", ["N", 32]), tensor_in("Y2", ["N", 4, 1, 8]), tensor_in("Y3", [4]), tensor_in("Y4", ["N", 4, 8, 1])],
            [const("zero", np.array(0, dtype=np.int64)), const("axes0", np.array([0], dtype=np.int64)),
             const("minus1", np.array([-1], dtype=np.int64)), const("axes2", np.array([2], dtype=np.int64)),
             const("axes3", np.array([3], dtype=np.int64))])
        m["squeeze_11"] = make_model(
            [helper.make_node("Squeeze", ["X"], ["s"], name="squeeze", axes=[2]),
             helper.make_node("Unsqueeze", ["s"], ["Y"], name="unsqueeze", axes=[1])],
            [tensor_in("X", ["N", 4, 1, 8])], [tensor_in("Y", None)], [], opset=11)
        # Constant folding: a chain of constant-only nodes feeding the runtime graph.
        m["constant_folding"] = make_model(
            [helper.make_node("Mul", ["c1", "c2"], ["c3"], name="fold_mul"),
             helper.make_node("Reshape", ["c3", "shape"], ["c4"], name="fold_reshape"),
             helper.make_node("Add", ["X", "c4"], ["Y"], name="add")],
            [tensor_in("X", ["N", 4, 3, 3])], [tensor_in("Y", None)],
            [const("c1", self.randn(4)), const("c2", self.randn(4)), const("shape", np.array([1, 4, 1, 1], dtype=np.int64))], opset=17)
        return m


def basic_block(nodes, inits, rng, x, cin, cout, stride, prefix):
    """ResNet BasicBlock: conv3x3-BN-ReLU-conv3x3-BN (+ projection shortcut) - add - ReLU, as Keras/TAO export it."""

    def conv_bn(inp, ci, co, k, s, name, relu, gamma_scale=1.0):
        w = (rng.standard_normal((co, ci, k, k)) * np.sqrt(2.0 / (ci * k * k))).astype(np.float32)
        inits.extend([const(f"{name}.w", w), const(f"{name}.b", (rng.standard_normal(co) * 0.05).astype(np.float32)),
                      const(f"{name}.gamma", (rng.uniform(0.5, 1.0, co) * gamma_scale).astype(np.float32)),
                      const(f"{name}.beta", (rng.standard_normal(co) * 0.05).astype(np.float32)),
                      const(f"{name}.mean", (rng.standard_normal(co) * 0.05).astype(np.float32)),
                      const(f"{name}.var", rng.uniform(0.5, 1.5, co).astype(np.float32))])
        nodes.append(helper.make_node("Conv", [inp, f"{name}.w", f"{name}.b"], [f"{name}.conv"], name=f"{name}/convolution",
                                      kernel_shape=[k, k], strides=[s, s], pads=[k // 2] * 4))
        nodes.append(helper.make_node("BatchNormalization", [f"{name}.conv", f"{name}.gamma", f"{name}.beta", f"{name}.mean", f"{name}.var"],
                                      [f"{name}.bn"], name=f"{name}/bn", epsilon=1e-3))
        if not relu:
            return f"{name}.bn"
        nodes.append(helper.make_node("Relu", [f"{name}.bn"], [f"{name}.relu"], name=f"{name}/relu"))
        return f"{name}.relu"

    y = conv_bn(x, cin, cout, 3, stride, f"{prefix}_conv_1", True)
    # A small gamma on the block's last BN keeps activations bounded over 16 residual blocks.
    y = conv_bn(y, cout, cout, 3, 1, f"{prefix}_conv_2", False, gamma_scale=0.3)
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = conv_bn(x, cin, cout, 1, stride, f"{prefix}_conv_shortcut", False)
    nodes.append(helper.make_node("Add", [y, shortcut], [f"{prefix}_add"], name=f"{prefix}_add"))
    nodes.append(helper.make_node("Relu", [f"{prefix}_add"], [f"{prefix}_relu"], name=f"{prefix}_relu"))
    return f"{prefix}_relu"


def detectnet_v2_resnet34(num_classes=3, height=544, width=960):
    """PeopleNet's architecture: ResNet-34 to stride 16 (the last stage keeps stride 1), then 1x1 heads:
    coverage (sigmoid) [N, C, H/16, W/16] and bbox [N, 4C, H/16, W/16]."""
    rng = np.random.default_rng(34)
    nodes, inits = [], []

    def stem():
        w = (rng.standard_normal((64, 3, 7, 7)) * np.sqrt(2.0 / 147)).astype(np.float32)
        inits.extend([const("conv1.w", w), const("conv1.b", np.zeros(64, np.float32)),
                      const("bn_conv1.gamma", rng.uniform(0.5, 1.0, 64).astype(np.float32)),
                      const("bn_conv1.beta", (rng.standard_normal(64) * 0.05).astype(np.float32)),
                      const("bn_conv1.mean", (rng.standard_normal(64) * 0.05).astype(np.float32)),
                      const("bn_conv1.var", rng.uniform(0.5, 1.5, 64).astype(np.float32))])
        nodes.append(helper.make_node("Conv", ["input_1", "conv1.w", "conv1.b"], ["conv1"], name="conv1/convolution",
                                      kernel_shape=[7, 7], strides=[2, 2], pads=[3, 3, 3, 3]))
        nodes.append(helper.make_node("BatchNormalization", ["conv1", "bn_conv1.gamma", "bn_conv1.beta", "bn_conv1.mean", "bn_conv1.var"],
                                      ["bn_conv1"], name="bn_conv1", epsilon=1e-3))
        nodes.append(helper.make_node("Relu", ["bn_conv1"], ["activation_1"], name="activation_1/Relu"))
        nodes.append(helper.make_node("MaxPool", ["activation_1"], ["pool1"], name="max_pooling2d_1",
                                      kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
        return "pool1"

    x = stem()
    cin = 64
    for stage, (cout, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 1)], start=1):
        for b in range(blocks):
            x = basic_block(nodes, inits, rng, x, cin, cout, stride if b == 0 else 1, f"block_{stage}{chr(ord('a') + b)}")
            cin = cout
    inits.extend([const("cov.w", (rng.standard_normal((num_classes, 512, 1, 1)) * 0.02).astype(np.float32)),
                  const("cov.b", np.zeros(num_classes, np.float32)),
                  const("bbox.w", (rng.standard_normal((4 * num_classes, 512, 1, 1)) * 0.02).astype(np.float32)),
                  const("bbox.b", np.zeros(4 * num_classes, np.float32))])
    nodes.append(helper.make_node("Conv", [x, "cov.w", "cov.b"], ["output_cov"], name="output_cov/convolution", kernel_shape=[1, 1]))
    nodes.append(helper.make_node("Sigmoid", ["output_cov"], ["output_cov/Sigmoid"], name="output_cov/Sigmoid"))
    nodes.append(helper.make_node("Conv", [x, "bbox.w", "bbox.b"], ["output_bbox/BiasAdd"], name="output_bbox/convolution", kernel_shape=[1, 1]))
    gh, gw = height // 16, width // 16
    return make_model(nodes, [tensor_in("input_1", ["N", 3, height, width])],
                      [tensor_in("output_cov/Sigmoid", ["N", num_classes, gh, gw]),
                       tensor_in("output_bbox/BiasAdd", ["N", 4 * num_classes, gh, gw])], inits, opset=13, name="detectnet_v2_resnet34")


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("ops", "detectnet"):
        sys.exit(__doc__)
    out_dir, what = sys.argv[1], sys.argv[2]
    if what == "ops":
        for name, model in OpModels().all().items():
            save(model, os.path.join(out_dir, "ops", f"{name}.onnx"))
        # Written last: a reader that sees it knows every model is in place.
        with open(os.path.join(out_dir, "ops", "COMPLETE"), "w") as f:
            f.write("all single-operator models written\n")
    else:
        save(detectnet_v2_resnet34(), os.path.join(out_dir, "detectnet_v2_resnet34_960x544.onnx"))


if __name__ == "__main__":
    main()
