#!/usr/bin/env bash
# The decode benchmark's clip: the real test video scaled to 1080p at 30 fps, H.264 at about 6 Mbit/s with
# x264's defaults (preset medium, High profile, B-frames).   scripts/make_bench_clip.sh OUT.mp4 [SOURCE]
set -euo pipefail
out=${1:?usage: make_bench_clip.sh OUT.mp4 [SOURCE]}
src=${2:-$(dirname "$0")/../../shared/data/videos/people_walking_720p_h264.avi}
[ -f "$src" ] || { echo "make_bench_clip: source $src is absent" >&2; exit 1; }
ffmpeg -nostdin -v error -y -i "$src" -map 0:v -vf "scale=1920:1080:flags=bicubic,fps=30" \
  -c:v libx264 -b:v 6M -maxrate 6M -bufsize 12M -pix_fmt yuv420p -movflags +faststart "$out"
ffprobe -v error -select_streams v -show_entries stream=width,height,r_frame_rate,bit_rate,nb_frames -of csv=p=0 "$out"
