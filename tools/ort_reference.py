#!/usr/bin/env python3
"""Reference outputs from ONNX Runtime (PyPI `onnxruntime`) for the inference engine's tests.

  ort_reference.py OUT_DIR SEED BATCH [--uniform LOW HIGH] MODEL...

For each MODEL writes OUT_DIR/<model file stem>/: random inputs (dim 0 = BATCH unless the model fixes
it; standard normal, or uniform in [LOW, HIGH)), ONNX Runtime's outputs, each as raw little-endian float32
(.bin), and manifest.txt, one line per tensor: `input|output <name> <file> <rank> <dims...>`.
"""
import os
import sys

import numpy as np
import onnxruntime as ort


def main():
    args = sys.argv[1:]
    if len(args) < 4:
        sys.exit(__doc__)
    out_dir, seed, batch = args[0], int(args[1]), int(args[2])
    models = args[3:]
    uniform = None
    if models[0] == "--uniform":
        uniform = (float(models[1]), float(models[2]))
        models = models[3:]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    for model in models:
        rng = np.random.default_rng(seed)
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        target = os.path.join(out_dir, os.path.splitext(os.path.basename(model))[0])
        os.makedirs(target, exist_ok=True)
        lines, feeds = [], {}
        for k, info in enumerate(session.get_inputs()):
            shape = [d if isinstance(d, int) else batch for d in info.shape]
            if uniform:
                data = rng.uniform(uniform[0], uniform[1], shape).astype(np.float32)
            else:
                data = rng.standard_normal(shape).astype(np.float32)
            feeds[info.name] = data
            data.tofile(os.path.join(target, f"in{k}.bin"))
            lines.append(f"input {info.name} in{k}.bin {data.ndim} {' '.join(map(str, data.shape))}")
        results = session.run(None, feeds)
        for k, (info, data) in enumerate(zip(session.get_outputs(), results)):
            data = np.ascontiguousarray(data, dtype=np.float32)
            data.tofile(os.path.join(target, f"out{k}.bin"))
            lines.append(f"output {info.name} out{k}.bin {data.ndim} {' '.join(map(str, data.shape))}")
        with open(os.path.join(target, "manifest.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
