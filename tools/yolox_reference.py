#!/usr/bin/env python3
"""Reference detections for the end-to-end check: YOLOX-Nano (COCO, 416) on one frame of the real video,
through ONNX Runtime with a plain, independent preprocessing and post-processing (no vidscan code).

  build/eval-venv/bin/python tools/yolox_reference.py [--time 5] [--out boxes.json] [--raw-output out.f32]

Steps, each the straightforward one:
  - decode the first frame whose timestamp is >= --time with the ffmpeg CLI (PyAV or OpenCV are not
    needed) to BGR24, converting with the stream's BT.709 limited-range matrix;
  - letterbox at the top-left: r = min(416 / w, 416 / h), resize to (int(w r), int(h r)) with bilinear
    interpolation on pixel centres (OpenCV's INTER_LINEAR, written in NumPy), pad with 114, BGR 0..255 as
    float32 NCHW (the model's export: no mean/std);
  - decode the YOLOX output [1, A, 85] (strides 8, 16, 32): cx = (x + grid_x) * s, w = exp(w) * s, score =
    objectness * best class score (both sigmoided in the export); keep score >= --score;
  - map boxes back to source pixels (divide by r; top-left placement has no offset), clip to the frame;
  - greedy class-aware NMS at IoU > --iou, higher score first, then lower anchor index.
Prints a summary and writes JSON: frame info, count, per-class counts and every box in source pixels.
Needs numpy and onnxruntime (scripts/setup-eval-env.sh installs both into build/eval-venv).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("VIDSCAN_DATA_DIR", os.path.join(REPO, "..", "shared", "data"))
INPUT_SIZE = 416
STRIDES = (8, 16, 32)
PAD = 114.0


def probe_size(video):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", video],
                         check=True, capture_output=True, text=True).stdout.strip()
    w, h = out.split(",")[:2]
    return int(w), int(h)


def decode_frame_bgr(video, time_s, index=None):
    """The first frame with timestamp >= time_s (or the frame with display index `index`), as an HxWx3 uint8
    BGR array, and its timestamp. Selecting by index is exact where timestamps are guessed (AVI stores none:
    FFmpeg's guess is one frame late there)."""
    w, h = probe_size(video)
    select = f"eq(n\\,{index})" if index is not None else f"gte(t\\,{time_s})"
    vf = (f"select='{select}',showinfo,"
          "scale=in_color_matrix=bt709:in_range=tv:out_range=pc:flags=bilinear+accurate_rnd+full_chroma_int,"
          "format=bgr24")
    proc = subprocess.run(["ffmpeg", "-v", "info", "-nostdin", "-i", video, "-an", "-vf", vf, "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], check=True, capture_output=True)
    raw = proc.stdout
    if len(raw) != w * h * 3:
        sys.exit(f"yolox_reference: ffmpeg gave {len(raw)} bytes for a {w}x{h} BGR frame")
    pts = None
    for line in proc.stderr.decode(errors="replace").splitlines():
        if pts is None and "Parsed_showinfo" in line and "pts_time:" in line:  # the filter may run ahead
            pts = float(line.split("pts_time:")[1].split()[0])
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3), pts


def resize_bilinear(img, out_w, out_h):
    """OpenCV INTER_LINEAR: sample at ((dst + 0.5) * in / out - 0.5), clamped to the edges."""
    in_h, in_w = img.shape[:2]
    src = img.astype(np.float32)

    def axis(out_n, in_n):
        pos = (np.arange(out_n, dtype=np.float64) + 0.5) * (in_n / out_n) - 0.5
        pos = np.clip(pos, 0, in_n - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, in_n - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = axis(out_h, in_h)
    x0, x1, fx = axis(out_w, in_w)
    top = src[y0][:, x0] * (1 - fx)[None, :, None] + src[y0][:, x1] * fx[None, :, None]
    bottom = src[y1][:, x0] * (1 - fx)[None, :, None] + src[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def letterbox_top_left(img):
    h, w = img.shape[:2]
    r = min(INPUT_SIZE / w, INPUT_SIZE / h)
    rw, rh = int(w * r), int(h * r)
    canvas = np.full((INPUT_SIZE, INPUT_SIZE, 3), PAD, np.float32)
    canvas[:rh, :rw] = resize_bilinear(img, rw, rh)
    return canvas.transpose(2, 0, 1)[None].copy(), r


def decode_yolox(out, score_thr):
    """out [A, 5 + C] -> boxes (network pixels, xyxy), scores, classes, anchor indices above score_thr."""
    grids, strides = [], []
    for s in STRIDES:
        n = INPUT_SIZE // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel()], 1))
        strides.append(np.full((n * n, 1), s))
    grid = np.concatenate(grids).astype(np.float32)
    stride = np.concatenate(strides).astype(np.float32)
    if out.shape[0] != grid.shape[0]:
        sys.exit(f"yolox_reference: {out.shape[0]} anchors, expected {grid.shape[0]}")
    cxcy = (out[:, :2] + grid) * stride
    wh = np.exp(out[:, 2:4]) * stride
    cls = out[:, 5:].argmax(1)
    scores = out[:, 4] * out[np.arange(out.shape[0]), 5 + cls]
    keep = np.nonzero(scores >= score_thr)[0]
    boxes = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1)
    return boxes[keep], scores[keep], cls[keep], keep


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes, scores, classes, anchors, iou_thr):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], anchors[i]))
    kept, removed = [], set()
    for pos, i in enumerate(order):
        if i in removed:
            continue
        kept.append(i)
        for j in order[pos + 1:]:
            if j not in removed and classes[j] == classes[i] and iou(boxes[i], boxes[j]) > iou_thr:
                removed.add(j)
    return kept


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=os.path.join(DATA, "videos", "people_walking_720p_h264.avi"))
    ap.add_argument("--model", default=os.path.join(DATA, "models", "yolox_nano_coco_416.onnx"))
    ap.add_argument("--time", type=float, default=5.0, help="seconds; the first frame at or after it")
    ap.add_argument("--frame", type=int, help="display index of the frame (0-based); overrides --time")
    ap.add_argument("--score", type=float, default=0.3)
    ap.add_argument("--iou", type=float, default=0.45)
    ap.add_argument("--out", help="write the JSON here (default: stdout only)")
    ap.add_argument("--raw-output", help="also write the network output [1, A, 85] here, float32 little-endian, "
                    "for tests that run vidscan's own head on it")
    args = ap.parse_args()
    import onnxruntime as ort

    frame, pts = decode_frame_bgr(args.video, args.time, args.frame)
    h, w = frame.shape[:2]
    tensor, r = letterbox_top_left(frame)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: tensor})
    if args.raw_output:
        output.astype("<f4").tofile(args.raw_output)
    boxes, scores, classes, anchors = decode_yolox(output[0], args.score)
    boxes = boxes / r
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    kept = nms(boxes.tolist(), scores.tolist(), classes.tolist(), anchors.tolist(), args.iou)

    detections = [{"class_id": int(classes[i]), "score": round(float(scores[i]), 5), "anchor": int(anchors[i]),
                   "box": [round(float(v), 2) for v in boxes[i]]} for i in kept]
    per_class = {}
    for d in detections:
        per_class[str(d["class_id"])] = per_class.get(str(d["class_id"]), 0) + 1
    result = {"video": os.path.basename(args.video), "model": os.path.basename(args.model), "time_s": args.time, "frame_index": args.frame,
              "frame_pts_s": pts, "frame_size": [w, h], "letterbox_scale": r, "score_threshold": args.score,
              "nms_iou": args.iou, "onnxruntime": ort.__version__, "count": len(detections),
              "count_per_class": per_class, "detections": detections}
    text = json.dumps(result, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(f"{len(detections)} detections ({per_class.get('0', 0)} people) in the frame at {pts} s", file=sys.stderr)
    print(text)


if __name__ == "__main__":
    main()
