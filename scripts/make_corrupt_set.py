#!/usr/bin/env python3
"""Writes a set of good and bad video files for robustness tests, with a manifest saying what each should do.

    scripts/make_corrupt_set.py OUTDIR [--source VIDEO] [--seed N]

Good files (expect "ok") are short clips of a real video in several containers and codecs. Bad files
(expect "error") cover: empty, text, random bytes, audio only, unsupported codecs, truncated files in
several containers, damaged headers, and payload damage (bit flips and overwritten blocks). Payload damage
is kept only when FFmpeg's own decoder reports errors on it, so every "error" file is one a careful decoder
must notice. Needs Debian's ffmpeg (libx264, libx265). Writes OUTDIR/manifest.json.
"""
import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SOURCE = os.path.join(HERE, "..", "..", "shared", "data", "videos", "people_walking_720p_h264.avi")


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def ffmpeg_reports_errors(path):
    """True when FFmpeg's software decoder complains about the file (or cannot read it)."""
    r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "null", "-"],
                       capture_output=True, text=True)
    return r.returncode != 0 or r.stderr.strip() != ""


def frame_count(path):
    r = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames", "-of", "csv=p=0", path], capture_output=True, text=True, check=True)
    return int(r.stdout.split()[0].split(",")[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--source", default=DEFAULT_SOURCE, help="real video to cut the clips from")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    if not os.path.exists(args.source):
        sys.exit(f"make_corrupt_set: source video {args.source} is absent")
    os.makedirs(args.outdir, exist_ok=True)
    rng = random.Random(args.seed)
    out = lambda name: os.path.join(args.outdir, name)
    manifest = []

    def add(name, expect, why, frames=None):
        manifest.append({"file": name, "expect": expect, "why": why, "frames": frames})

    # Good clips: 3 s at 640x360, a keyframe every second so damage is followed by a recovery point.
    x264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p"]
    ffmpeg("-fflags", "+genpts", "-i", args.source, "-map", "0:v", "-t", "3", "-vf", "scale=640:360", *x264,
           "-movflags", "+faststart", out("good_h264.mp4"))
    ffmpeg("-i", out("good_h264.mp4"), "-c", "copy", out("good_h264.mkv"))
    ffmpeg("-i", out("good_h264.mp4"), "-c", "copy", out("good_h264.ts"))
    ffmpeg("-i", out("good_h264.mp4"), "-c", "copy", out("good_h264.avi"))
    ffmpeg("-i", out("good_h264.mp4"), "-c", "copy", "-bsf:v", "h264_mp4toannexb", "-f", "h264", out("good_h264.264"))
    ffmpeg("-i", out("good_h264.mp4"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=none:keyint=25", "-pix_fmt", "yuv420p", out("good_hevc.mp4"))
    ffmpeg("-i", out("good_h264.mp4"), "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
           "log-level=none:keyint=25", "-pix_fmt", "yuv420p10le", out("good_hevc10.mkv"))
    ffmpeg("-i", out("good_h264.mp4"), "-c", "copy", "-movflags", "0", out("good_moov_at_end.mp4"))
    for name in ["good_h264.mp4", "good_h264.mkv", "good_h264.ts", "good_h264.avi", "good_h264.264",
                 "good_hevc.mp4", "good_hevc10.mkv", "good_moov_at_end.mp4"]:
        add(name, "ok", "clean stream", frame_count(out(name)))

    # Not video at all.
    open(out("bad_empty.mp4"), "wb").close()
    add("bad_empty.mp4", "error", "zero bytes")
    with open(out("bad_text.mp4"), "w") as f:
        f.write("this is a text file with a video extension\n" * 20)
    add("bad_text.mp4", "error", "text, not a media file")
    with open(out("bad_random.mkv"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(100_000)))
    add("bad_random.mkv", "error", "random bytes")
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", out("bad_audio_only.m4a"))
    add("bad_audio_only.m4a", "error", "no video stream")

    # Video in codecs vidscan does not decode.
    ffmpeg("-i", out("good_h264.mp4"), "-t", "1", "-c:v", "mpeg4", out("bad_codec_mpeg4.avi"))
    add("bad_codec_mpeg4.avi", "error", "unsupported codec mpeg4")
    ffmpeg("-i", out("good_h264.mp4"), "-t", "1", "-c:v", "mjpeg", out("bad_codec_mjpeg.mkv"))
    add("bad_codec_mjpeg.mkv", "error", "unsupported codec mjpeg")
    ffmpeg("-i", out("good_h264.mp4"), "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv444p", out("bad_chroma_444.mp4"))
    add("bad_chroma_444.mp4", "error", "4:4:4 chroma (unsupported)")

    # Truncated: cut part way through the media data.
    def truncate(src, name, share):
        data = open(out(src), "rb").read()
        with open(out(name), "wb") as f:
            f.write(data[: int(len(data) * share)])
        add(name, "error", f"truncated to {int(share * 100)} %")

    truncate("good_h264.mp4", "bad_truncated_half.mp4", 0.5)
    truncate("good_h264.mkv", "bad_truncated.mkv", 0.6)
    truncate("good_h264.avi", "bad_truncated.avi", 0.5)
    truncate("good_moov_at_end.mp4", "bad_truncated_no_moov.mp4", 0.8)
    truncate("good_h264.mp4", "bad_truncated_header.mp4", 0.002)

    # Damaged container header.
    data = bytearray(open(out("good_h264.mp4"), "rb").read())
    for i in range(0, 64):
        data[i] = rng.getrandbits(8)
    open(out("bad_header_garbage.mp4"), "wb").write(data)
    add("bad_header_garbage.mp4", "error", "first 64 bytes overwritten")

    # Payload damage: bit flips and overwritten blocks in the middle of the stream, kept only when FFmpeg
    # itself reports decode errors.
    damaged = 0
    attempts = 0
    sources = ["good_h264.mp4", "good_h264.mkv", "good_h264.264", "good_h264.avi", "good_hevc.mp4", "good_h264.ts"]
    while damaged < 8 and attempts < 200:
        src = sources[attempts % len(sources)]
        attempts += 1
        data = bytearray(open(out(src), "rb").read())
        lo, hi = int(len(data) * 0.2), int(len(data) * 0.7)
        kind = "flip" if attempts % 2 else "block"
        if kind == "flip":
            for _ in range(40):
                pos = rng.randrange(lo, hi)
                data[pos] ^= 1 << rng.randrange(8)
        else:
            pos = rng.randrange(lo, hi - 2048)
            data[pos : pos + 2048] = bytes(rng.getrandbits(8) for _ in range(2048))
        base, ext = os.path.splitext(src)
        name = f"bad_{kind}_{damaged}{ext}"
        open(out(name), "wb").write(data)
        if ffmpeg_reports_errors(out(name)):
            add(name, "error", f"payload damage ({kind}) in a copy of {src}")
            damaged += 1
        else:
            os.remove(out(name))

    with open(out("manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    bad = sum(m["expect"] == "error" for m in manifest)
    print(f"make_corrupt_set: {len(manifest)} files in {args.outdir} ({bad} bad, {len(manifest) - bad} good)")


if __name__ == "__main__":
    main()
