#!/usr/bin/env python3
"""Scores MOTChallenge tracking results against ground truth with py-motmetrics, next to a baseline.

The baseline is the plain IoU tracker (Bochinski et al., AVSS 2017): each track greedily takes the
detection of the next frame that overlaps its last box most (IoU >= 0.5), unmatched detections start
tracks, and finished tracks shorter than 2 frames or never scoring >= 0.5 are dropped. It runs here on
the same detections the tracker under test got, so the comparison isolates the association.

    python3 tools/eval_mot.py --gt gt.txt --det det.txt --result vidscan.txt [--json out.json]

Prints MOTA, IDF1, ID switches (and the counts behind them) for both. A match is IoU >= 0.5, as in the
MOTChallenge 2D benchmark. Ground-truth rows whose 7th column is 0 (MOT16+ "ignore") are skipped.
Needs motmetrics (scripts/setup-eval-env.sh installs it into build/eval-venv).
"""
import argparse
import json
import sys
from collections import defaultdict


def load_mot(path, is_gt=False):
    """frame -> list of (id, [x, y, w, h], score)."""
    frames = defaultdict(list)
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = [v for v in line.replace(",", " ").split()]
            if len(fields) < 6:
                sys.exit(f"{path}:{n}: expected frame,id,x,y,w,h,...")
            try:
                frame, tid = int(float(fields[0])), int(float(fields[1]))
                box = [float(v) for v in fields[2:6]]
                score = float(fields[6]) if len(fields) > 6 else 1.0
            except ValueError as e:
                sys.exit(f"{path}:{n}: {e}")
            if is_gt and len(fields) > 6 and score == 0:
                continue
            frames[frame].append((tid, box, score))
    return frames


def iou(a, b):
    ix = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    iy = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def iou_tracker(dets, every=1, sigma_l=0.0, sigma_h=0.5, sigma_iou=0.5, t_min=2):
    """The IoU tracker on frames 1, 1+every, ...; returns frame -> list of (id, box, score)."""
    active, finished = [], []
    last = max(dets) if dets else 0
    for frame in range(1, last + 1, every):
        remaining = [d for d in dets.get(frame, []) if d[2] >= sigma_l]
        updated = []
        for t in active:
            if remaining:
                best = max(remaining, key=lambda d: iou(t["boxes"][-1][1], d[1]))
                if iou(t["boxes"][-1][1], best[1]) >= sigma_iou:
                    t["boxes"].append((frame, best[1], best[2]))
                    t["max_score"] = max(t["max_score"], best[2])
                    updated.append(t)
                    remaining.remove(best)
                    continue
            if t["max_score"] >= sigma_h and len(t["boxes"]) >= t_min:
                finished.append(t)
        active = updated + [{"boxes": [(frame, d[1], d[2])], "max_score": d[2]} for d in remaining]
    finished += [t for t in active if t["max_score"] >= sigma_h and len(t["boxes"]) >= t_min]
    out = defaultdict(list)
    for tid, t in enumerate(finished, 1):
        for frame, box, score in t["boxes"]:
            out[frame].append((tid, box, score))
    return out


def score(gt, hyp, name, every=1):
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for frame in range(1, max(list(gt) + list(hyp) + [0]) + 1, every):
        g, h = gt.get(frame, []), hyp.get(frame, [])
        dist = mm.distances.iou_matrix([b for _, b, _ in g], [b for _, b, _ in h], max_iou=0.5)
        acc.update([i for i, _, _ in g], [i for i, _, _ in h], dist)
    mh = mm.metrics.create()
    names = ["mota", "motp", "idf1", "num_switches", "num_false_positives", "num_misses", "num_objects",
             "num_unique_objects", "mostly_tracked", "precision", "recall"]
    summary = mh.compute(acc, metrics=names, name=name)
    row = summary.loc[name]
    result = {k: float(row[k]) for k in names}
    result["num_tracks"] = len({i for boxes in hyp.values() for i, _, _ in boxes})
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gt", required=True, help="ground truth (MOT gt.txt)")
    ap.add_argument("--det", required=True, help="detections the tracker was given (MOT det.txt)")
    ap.add_argument("--result", required=True, help="tracking result to score (MOT format)")
    ap.add_argument("--name", default="bytetrack", help="label of the result in the report")
    ap.add_argument("--every", type=int, default=1,
                    help="the result covers only frames 1, 1+N, ... (vidscan track --every N): score those")
    ap.add_argument("--json", help="also write the metrics as JSON here")
    ap.add_argument("--baseline-out", help="write the IoU tracker's result here (MOT format)")
    args = ap.parse_args()

    gt = load_mot(args.gt, is_gt=True)
    result = load_mot(args.result)
    baseline = iou_tracker(load_mot(args.det), every=args.every)
    if args.baseline_out:
        with open(args.baseline_out, "w") as f:
            for frame in sorted(baseline):
                for tid, b, s in baseline[frame]:
                    f.write(f"{frame},{tid},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{s:.4f},-1,-1,-1\n")
    report = {args.name: score(gt, result, args.name, args.every),
              "iou_baseline": score(gt, baseline, "iou_baseline", args.every)}
    print(f"{'':14} {'MOTA':>7} {'IDF1':>7} {'IDsw':>6} {'FP':>6} {'FN':>6} {'tracks':>7} {'MT':>4}  (GT: "
          f"{int(report[args.name]['num_objects'])} boxes, {int(report[args.name]['num_unique_objects'])} ids)")
    for name, m in report.items():
        print(f"{name:14} {m['mota']:7.3f} {m['idf1']:7.3f} {int(m['num_switches']):6d} "
              f"{int(m['num_false_positives']):6d} {int(m['num_misses']):6d} {m['num_tracks']:7d} "
              f"{int(m['mostly_tracked']):4d}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
