#!/usr/bin/env bash
# The decode benchmark's clip: the real test video scaled to 1080p at 30 fps, H.264 at about 6 Mbit/s with
# x264's defaults (preset medium, High profile, B-frames).   [REPEAT=N] scripts/make_bench_clip.sh OUT.mp4 [SOURCE]
# REPEAT plays the source N times in a row (one longer clip: per-file start-up then weighs less).
set -euo pipefail
out=${1:?usage: make_bench_clip.sh OUT.mp4 [SOURCE]}
src=${2:-$(dirname "$0")/../../shared/data/videos/people_walking_720p_h264.avi}
[ -f "$src" ] || { echo "make_bench_clip: source $src is absent" >&2; exit 1; }
repeat=${REPEAT:-1}
inputs=() pads=""
for ((i = 0; i < repeat; i++)); do inputs+=(-i "$src"); pads+="[$i:v]"; done
ffmpeg -nostdin -v error -y "${inputs[@]}" \
  -filter_complex "${pads}concat=n=$repeat:v=1:a=0,scale=1920:1080:flags=bicubic,fps=30[v]" -map "[v]" \
  -c:v libx264 -b:v 6M -maxrate 6M -bufsize 12M -pix_fmt yuv420p -movflags +faststart "$out"
ffprobe -v error -select_streams v -show_entries stream=width,height,r_frame_rate,bit_rate,nb_frames -of csv=p=0 "$out"
