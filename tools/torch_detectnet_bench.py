#!/usr/bin/env python3
"""PyTorch baseline for `vidscan bench infer ... --device gpu`: the DetectNet_v2/ResNet-34 960x544 that
tools/make_models.py writes (PeopleNet's architecture), FP16, channels_last, BatchNorm folded into the convs
(as vidscan's passes do), whole forward captured in a CUDA graph and replayed; frames/s per batch as JSON.

Architecture (make_models.py detectnet_v2_resnet34): torchvision's resnet34 trunk (conv1 7x7/2, BN, ReLU,
maxpool 3x3/2, layer1..layer4 with [3, 4, 6, 3] BasicBlocks of 64/128/256/512 channels) with layer4 at
stride 1 (output stride 16: 34x60 at 960x544), then two 1x1 heads on the 512-channel map: coverage
(3 classes, sigmoid) and bbox (12 = 4 x 3). Weights are random: speed does not depend on them.

  python3 tools/torch_detectnet_bench.py [--batches 1,8,32] [--iterations 100] [--precision fp16|fp32]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_eval


class DetectNetV2ResNet34(nn.Module):
    def __init__(self, num_classes=3):
        super().__init__()
        r = torchvision.models.resnet34(weights=None)
        # Output stride 16: the last stage keeps stride 1 (first block's conv1 and its projection shortcut).
        r.layer4[0].conv1.stride = (1, 1)
        r.layer4[0].downsample[0].stride = (1, 1)
        self.trunk = nn.Sequential(r.conv1, r.bn1, r.relu, r.maxpool, r.layer1, r.layer2, r.layer3, r.layer4)
        self.cov = nn.Conv2d(512, num_classes, 1)
        self.bbox = nn.Conv2d(512, 4 * num_classes, 1)

    def forward(self, x):
        f = self.trunk(x)
        return torch.sigmoid(self.cov(f)), self.bbox(f)


def fold_batchnorm(module):
    """Replaces every Conv2d followed by BatchNorm2d (in Sequential order or a BasicBlock) by one conv."""
    for name, child in module.named_children():
        fold_batchnorm(child)
    if isinstance(module, torchvision.models.resnet.BasicBlock):
        module.conv1 = fuse_conv_bn_eval(module.conv1, module.bn1)
        module.bn1 = nn.Identity()
        module.conv2 = fuse_conv_bn_eval(module.conv2, module.bn2)
        module.bn2 = nn.Identity()  # the downsample Sequential (conv, bn) was folded by the recursion
    if isinstance(module, nn.Sequential):
        items = list(module)
        out = []
        k = 0
        while k < len(items):
            if k + 1 < len(items) and isinstance(items[k], nn.Conv2d) and isinstance(items[k + 1], nn.BatchNorm2d):
                out.append(fuse_conv_bn_eval(items[k], items[k + 1]))
                k += 2
            else:
                out.append(items[k])
                k += 1
        for i in range(len(module)):
            del module[0]
        for m in out:
            module.append(m)
    return module


def conv_flops(model, x):
    """2 * N * Ho * Wo * Cout * Cin/groups * Kh * Kw summed over every Conv2d (as vidscan counts)."""
    total = [0]

    def hook(m, inp, out):
        n, co, ho, wo = out.shape
        total[0] += 2 * n * ho * wo * co * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--precision", choices=["fp16", "fp32"], default="fp16")
    parser.add_argument("--height", type=int, default=544)
    parser.add_argument("--width", type=int, default=960)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    torch.backends.cudnn.benchmark = True
    if args.precision == "fp32":  # comparable with vidscan's FP32 (FMA, no TF32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = torch.float16 if args.precision == "fp16" else torch.float32
    device = torch.device("cuda")
    model = fold_batchnorm(DetectNetV2ResNet34().eval())
    model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last)
    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        static_x = torch.rand(batch, 3, args.height, args.width, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        flops = conv_flops(model, static_x)
        with torch.no_grad():
            # Warm-up on a side stream (cudnn.benchmark picks algorithms here), then capture.
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(5):
                    model(static_x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = model(static_x)
            for _ in range(3):
                graph.replay()
            torch.cuda.synchronize()
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(args.iterations):
                graph.replay()
            stop.record()
            torch.cuda.synchronize()
            ms = start.elapsed_time(stop) / args.iterations
            # Eager (no graph) for reference.
            t0 = time.perf_counter()
            for _ in range(10):
                model(static_x)
            torch.cuda.synchronize()
            eager_ms = (time.perf_counter() - t0) * 1000 / 10
        assert all(torch.isfinite(o).all().item() for o in static_out)
        results.append({"batch": batch, "frames_per_second": batch / (ms / 1000), "ms_per_batch": ms,
                        "eager_ms_per_batch": eager_ms, "conv_gflop_per_batch": flops / 1e9,
                        "conv_tflops": flops / (ms / 1000) / 1e12})
        del graph, static_out, static_x
        torch.cuda.empty_cache()
    print(json.dumps({"framework": "pytorch " + torch.__version__, "torchvision": torchvision.__version__,
                      "device": torch.cuda.get_device_name(), "precision": args.precision, "channels_last": True,
                      "cuda_graphs": True, "bn_folded": True, "input": [3, args.height, args.width], "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
