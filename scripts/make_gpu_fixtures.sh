#!/usr/bin/env bash
# Files the GPU machine's tests and benchmarks need but cannot make there (it has no ffmpeg): the HEVC
# variants, the corrupt-input set and the 1080p bench clip.   scripts/make_gpu_fixtures.sh OUTDIR
# Tests read them through VIDSCAN_FIXTURES_DIR=OUTDIR.
set -euo pipefail
out=${1:?usage: make_gpu_fixtures.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
src=${SOURCE:-$here/../../shared/data/videos/people_walking_720p_h264.avi}
mkdir -p "$out"
x265="-c:v libx265 -preset ultrafast -x265-params log-level=none"
[ -f "$out/variant.hevc8.mp4" ] || ffmpeg -nostdin -v error -y -i "$src" -map 0:v -t 3 $x265 -pix_fmt yuv420p "$out/variant.hevc8.mp4"
[ -f "$out/variant.hevc10.mkv" ] || ffmpeg -nostdin -v error -y -i "$src" -map 0:v -t 3 $x265 -pix_fmt yuv420p10le "$out/variant.hevc10.mkv"
if [ ! -f "$out/variant.av1.mp4" ]; then
  ffmpeg -nostdin -v error -y -i "$src" -map 0:v -t 2 -vf scale=640:360 -c:v libsvtav1 -preset 12 -pix_fmt yuv420p "$out/variant.av1.mp4"
fi
# FFmpeg's own per-plane checksums, for the GPU machine's comparison (it has no ffmpeg).
for f in "$out"/variant.*; do
  case "$f" in *.showinfo) continue;; esac
  [ -f "$f.showinfo" ] || ffmpeg -nostdin -hide_banner -i "$f" -map 0:v:0 -fps_mode passthrough -vf showinfo -f null - 2>&1 | grep plane_checksum > "$f.showinfo"
done
[ -f "$out/corrupt/manifest.json" ] || python3 "$here/make_corrupt_set.py" "$out/corrupt" --source "$src"
# The bench clip: the real video three times over (41 s, 1229 frames), so per-file start-up weighs little.
[ -f "$out/bench_1080p30.mp4" ] || REPEAT=3 bash "$here/make_bench_clip.sh" "$out/bench_1080p30.mp4" "$src"
du -sh "$out"
