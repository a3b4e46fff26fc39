#!/usr/bin/env python3
"""Reference detections for the end-to-end check: YOLOX-Nano (COCO, 416) on one frame of the real video,
through ONNX Runtime with a plain, independent preprocessing and post-processing (no vidscan code).

  build/eval-venv/bin/python tools/yolox_reference.py [--time 5 | --frame N] [--preprocess spec|swscale]
      [--out boxes.json] [--raw-output out.f32] [--input-tensor in.f32]

Steps, each the straightforward one:
  - preprocessing, one of two independent ways (--preprocess):
    spec (default): vidscan's documented preprocess function (src/preprocess/preprocess.h, docs/preprocess.md)
      written out again in NumPy, float64, from the decoded YUV 4:2:0 planes that the ffmpeg CLI gives
      (-pix_fmt yuv420p rawvideo: the decoder's own planes, no conversion). Content rectangle
      round(w s) x round(h s), s = min(416 / w, 416 / h), at the top-left; output pixel (ox, oy) samples the
      source at sx = (ox + 0.5) * w / content_w - 0.5 (same for y), clamped to [0, w - 1]; one bilinear tap
      (YOLOX: "antialias" off); Y bilinear in the luma plane, U and V bilinear in the chroma plane at
      (sx / 2, sy / 2 - 0.25), clamped to the chroma samples; the stream's matrix and range (BT.709
      limited here: Y' = (Y - 16) / 219, C' = (C - 128) / 224, R = Y' + 2 (1 - Kr) V', ...) times 255,
      clamped to 0..255, no rounding to 8 bits; BGR; pad 114.
    swscale: FFmpeg's swscale converts the frame to 8-bit BGR24 (BT.709 limited -> full), then a bilinear
      resize on pixel centres (OpenCV's INTER_LINEAR, written in NumPy) to (int(w r), int(h r)) at the
      top-left, pad 114. A fully independent colour conversion, rounded to 8 bits twice.
    Either way BGR 0..255 as float32 NCHW (the model's export: no mean/std);
  - decode the YOLOX output [1, A, 85] (strides 8, 16, 32): cx = (x + grid_x) * s, w = exp(w) * s, score =
    objectness * best class score (both sigmoided in the export); keep score >= --score;
  - map boxes back to source pixels (divide by content / source size per axis; top-left placement has no
    offset), clip to the frame;
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


def probe_stream(video):
    """Width, height and the colour tags (matrix, range) of the first video stream."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height,color_space,color_range", "-of", "json", video],
                         check=True, capture_output=True, text=True).stdout
    stream = json.loads(out)["streams"][0]
    return int(stream["width"]), int(stream["height"]), stream.get("color_space"), stream.get("color_range")


def probe_size(video):
    w, h, _, _ = probe_stream(video)
    return w, h


def frame_selector(time_s, index):
    """The ffmpeg select expression: the frame with display index `index`, else the first with t >= time_s.
    Selecting by index is exact where timestamps are guessed (AVI stores none: FFmpeg's guess is one frame
    late there)."""
    return f"eq(n\\,{index})" if index is not None else f"gte(t\\,{time_s})"


def showinfo_pts(stderr):
    for line in stderr.decode(errors="replace").splitlines():
        if "Parsed_showinfo" in line and "pts_time:" in line:  # the first one: the filter may run ahead
            return float(line.split("pts_time:")[1].split()[0])
    return None


def decode_frame_bgr(video, time_s, index=None):
    """The selected frame (frame_selector) as an HxWx3 uint8 BGR array converted by swscale, and its
    timestamp."""
    w, h = probe_size(video)
    vf = (f"select='{frame_selector(time_s, index)}',showinfo,"
          "scale=in_color_matrix=bt709:in_range=tv:out_range=pc:flags=bilinear+accurate_rnd+full_chroma_int,"
          "format=bgr24")
    proc = subprocess.run(["ffmpeg", "-v", "info", "-nostdin", "-i", video, "-an", "-vf", vf, "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "bgr24", "-"], check=True, capture_output=True)
    raw = proc.stdout
    if len(raw) != w * h * 3:
        sys.exit(f"yolox_reference: ffmpeg gave {len(raw)} bytes for a {w}x{h} BGR frame")
    return np.frombuffer(raw, np.uint8).reshape(h, w, 3), showinfo_pts(proc.stderr)


def decode_frame_yuv420p(video, time_s, index=None):
    """The selected frame's decoded planes as they come out of the decoder (the stream is 8-bit 4:2:0, so
    -pix_fmt yuv420p is no conversion; anything else is refused rather than silently converted): Y (h, w),
    U and V (ceil(h/2), ceil(w/2)) uint8, and the timestamp."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=pix_fmt",
                          "-of", "csv=p=0", video], check=True, capture_output=True, text=True).stdout.strip()
    if out not in ("yuv420p", "yuvj420p"):
        sys.exit(f"yolox_reference: the spec preprocessing reads 8-bit 4:2:0 planes; the stream is {out}")
    w, h = probe_size(video)
    cw, ch = (w + 1) // 2, (h + 1) // 2
    vf = f"select='{frame_selector(time_s, index)}',showinfo"
    proc = subprocess.run(["ffmpeg", "-v", "info", "-nostdin", "-i", video, "-an", "-vf", vf, "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], check=True, capture_output=True)
    raw = np.frombuffer(proc.stdout, np.uint8)
    if raw.size != w * h + 2 * cw * ch:
        sys.exit(f"yolox_reference: ffmpeg gave {raw.size} bytes for a {w}x{h} yuv420p frame")
    y = raw[:w * h].reshape(h, w)
    u = raw[w * h:w * h + cw * ch].reshape(ch, cw)
    v = raw[w * h + cw * ch:].reshape(ch, cw)
    return y, u, v, showinfo_pts(proc.stderr)


# Kr, Kb of the matrices vidscan knows (ITU-R BT.601, BT.709, BT.2020 non-constant luminance), by ffprobe's
# color_space tag. An untagged stream gets what vidscan's demuxer assumes (src/media/demuxer.cpp): BT.709
# from 720 lines up, BT.601 below (8-bit streams).
MATRICES = {"bt709": (0.2126, 0.0722), "bt470bg": (0.299, 0.114), "smpte170m": (0.299, 0.114),
            "bt2020nc": (0.2627, 0.0593)}


def matrix_for(color_space, height):
    if color_space in MATRICES:
        return MATRICES[color_space]
    if color_space not in (None, "unknown"):
        sys.exit(f"yolox_reference: colour matrix '{color_space}' is not one the spec preprocessing knows")
    return MATRICES["bt709"] if height >= 720 else MATRICES["bt470bg"]


def bilinear(plane, pos_x, pos_y):
    """Plane sampled at every (pos_y[i], pos_x[j]), positions already clamped into the plane: the two
    neighbours along each axis (the upper one clamped to the last sample), lerped along x, then y."""
    plane = plane.astype(np.float64)
    max_y, max_x = plane.shape[0] - 1, plane.shape[1] - 1
    x0 = np.floor(pos_x).astype(np.int64)
    y0 = np.floor(pos_y).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, max_x), np.minimum(y0 + 1, max_y)
    wx, wy = (pos_x - x0)[None, :], (pos_y - y0)[:, None]
    top = plane[y0][:, x0] + (plane[y0][:, x1] - plane[y0][:, x0]) * wx
    bottom = plane[y1][:, x0] + (plane[y1][:, x1] - plane[y1][:, x0]) * wx
    return top + (bottom - top) * wy


def preprocess_spec(y, u, v, color_space, color_range):
    """vidscan's documented preprocess function for the YOLOX description (whole frame as the ROI, letterbox
    top-left, pad 114, one bilinear tap per output pixel, BGR 0..255, no normalisation), in float64.
    Returns the 1x3x416x416 float32 tensor and the content size (content_w, content_h)."""
    h, w = y.shape
    s = min(INPUT_SIZE / w, INPUT_SIZE / h)
    # Content size: round(roi * s) per axis (half away from zero, as C's lround), 1..input size.
    content_w = min(max(int(np.floor(w * s + 0.5)), 1), INPUT_SIZE)
    content_h = min(max(int(np.floor(h * s + 0.5)), 1), INPUT_SIZE)
    # Output pixel centre -> source pixel-centre position; clamped to the border pixel centres.
    sx = np.clip((np.arange(content_w) + 0.5) * (w / content_w) - 0.5, 0, w - 1)
    sy = np.clip((np.arange(content_h) + 0.5) * (h / content_h) - 0.5, 0, h - 1)
    # Chroma: sample i of a chroma row is co-sited with luma column 2i; chroma row j lies halfway between
    # luma rows 2j and 2j+1. Clamped to the chroma samples (the whole frame is the ROI).
    cx = np.clip(sx / 2, 0, u.shape[1] - 1)
    cy = np.clip(sy / 2 - 0.25, 0, u.shape[0] - 1)
    Y, U, V = bilinear(y, sx, sy), bilinear(u, cx, cy), bilinear(v, cx, cy)
    kr, kb = matrix_for(color_space, h)
    kg = 1 - kr - kb
    if color_range in ("pc", "jpeg"):
        yn, un, vn = Y / 255, (U - 128) / 255, (V - 128) / 255
    else:  # limited ("tv", or untagged: what the demuxer assumes too)
        yn, un, vn = (Y - 16) / 219, (U - 128) / 224, (V - 128) / 224
    r = yn + 2 * (1 - kr) * vn
    g = yn - 2 * kb * (1 - kb) / kg * un - 2 * kr * (1 - kr) / kg * vn
    b = yn + 2 * (1 - kb) * un
    bgr = np.clip(np.stack([b, g, r]) * 255, 0, 255)
    tensor = np.full((3, INPUT_SIZE, INPUT_SIZE), PAD, np.float64)
    tensor[:, :content_h, :content_w] = bgr
    return tensor[None].astype(np.float32), (content_w, content_h)


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
    ap.add_argument("--preprocess", choices=("spec", "swscale"), default="spec",
                    help="spec: vidscan's documented preprocess function from the YUV planes (default); "
                    "swscale: FFmpeg's BGR24 conversion, then an OpenCV-style bilinear resize")
    ap.add_argument("--raw-output", help="also write the network output [1, A, 85] here, float32 little-endian, "
                    "for tests that run vidscan's own head on it")
    ap.add_argument("--input-tensor", help="also write the network input [1, 3, 416, 416] here, float32 "
                    "little-endian (BGR, 0..255), to compare preprocessing")
    args = ap.parse_args()
    import onnxruntime as ort

    w, h, color_space, color_range = probe_stream(args.video)
    if args.preprocess == "spec":
        y, u, v, pts = decode_frame_yuv420p(args.video, args.time, args.frame)
        tensor, (content_w, content_h) = preprocess_spec(y, u, v, color_space, color_range)
        scale_x, scale_y = content_w / w, content_h / h
    else:
        frame, pts = decode_frame_bgr(args.video, args.time, args.frame)
        tensor, r = letterbox_top_left(frame)
        scale_x = scale_y = r
    if args.input_tensor:
        tensor.astype("<f4").tofile(args.input_tensor)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: tensor})
    if args.raw_output:
        output.astype("<f4").tofile(args.raw_output)
    boxes, scores, classes, anchors = decode_yolox(output[0], args.score)
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] / scale_x).clip(0, w)
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] / scale_y).clip(0, h)
    kept = nms(boxes.tolist(), scores.tolist(), classes.tolist(), anchors.tolist(), args.iou)

    detections = [{"class_id": int(classes[i]), "score": round(float(scores[i]), 5), "anchor": int(anchors[i]),
                   "box": [round(float(v), 2) for v in boxes[i]]} for i in kept]
    per_class = {}
    for d in detections:
        per_class[str(d["class_id"])] = per_class.get(str(d["class_id"]), 0) + 1
    result = {"video": os.path.basename(args.video), "model": os.path.basename(args.model), "time_s": args.time, "frame_index": args.frame,
              "frame_pts_s": pts, "frame_size": [w, h], "preprocess": args.preprocess,
              "letterbox_scale": [scale_x, scale_y], "score_threshold": args.score,
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
