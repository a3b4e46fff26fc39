#!/usr/bin/env python3
"""Decode throughput of PyNvVideoCodec (NVIDIA's Python NVDEC bindings): the baseline `vidscan bench decode`
is compared with. N threads (decoder calls release the GIL) each decode the clip L times, a new demuxer and
decoder per pass, as vidscan does per file; frames/s = all frames / wall time from the common start.

    tools/pynvc_decode_bench.py CLIP --sessions N --loops L [--json]
"""
import argparse
import json
import threading
import time

import PyNvVideoCodec as nvc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("clip")
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--loops", type=int, default=1, help="passes over the clip per session")
    ap.add_argument("--gpu", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    counts = [0] * args.sessions
    errors = []
    start_barrier = threading.Barrier(args.sessions + 1)

    def worker(i):
        start_barrier.wait()
        try:
            for _ in range(args.loops):
                demuxer = nvc.CreateDemuxer(filename=args.clip)
                decoder = nvc.CreateDecoder(gpuid=args.gpu, codec=demuxer.GetNvCodecId(), usedevicememory=True)
                for packet in demuxer:
                    counts[i] += len(decoder.Decode(packet))
                counts[i] += len(decoder.Decode(nvc.PacketData())) if hasattr(nvc, "PacketData") else 0
        except Exception as e:  # report, do not hide
            errors.append(f"session {i}: {e}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.sessions)]
    for t in threads:
        t.start()
    start_barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    frames = sum(counts)
    result = {"decoder": "PyNvVideoCodec " + getattr(nvc, "__version__", "?"), "sessions": args.sessions,
              "loops": args.loops, "frames": frames, "wall_seconds": wall, "frames_per_second": frames / wall,
              "errors": errors}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"PyNvVideoCodec: {args.sessions} sessions x {args.loops} passes: {frames} frames in {wall:.3f} s "
              f"= {frames / wall:.1f} frames/s" + (f"; errors: {errors}" if errors else ""))


if __name__ == "__main__":
    main()
