#!/usr/bin/env bash
# One command from a fresh Debian/Ubuntu machine to a working vidscan: installs the packages, builds, and
# runs a demo on a real sample (../shared/data's video when present, else a clip generated with ffmpeg):
# probe, the decode benchmark, and `vidscan run` (detections and tracks, results printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
sample=../shared/data/videos/people_walking_720p_h264.avi
if [ ! -f "$sample" ]; then
  mkdir -p build/demo
  sample=build/demo/sample_720p.mp4
  [ -f "$sample" ] || ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=25 -t 10 \
      -c:v libx264 -pix_fmt yuv420p "$sample"
fi
echo
echo "== vidscan probe $sample"
build/src/vidscan probe "$sample"
echo
echo "== vidscan bench decode $sample --loops 3   (GPU when present, else CPU)"
build/src/vidscan bench decode "$sample" --loops 3
echo
# The product: detections and tracks for the sample (GPU when present, else CPU). YOLOX-Nano from the
# shared data when present; otherwise the built-in PeopleNet-architecture model (random weights: it shows
# the pipeline, not real detections), on fewer frames since it is slow on a CPU.
model=../shared/data/models/yolox_nano_coco_416.onnx
if [ -f "$model" ]; then
  model_args=(--model "$model" --family yolox --sample every:5)
else
  model_args=(--model builtin:detectnet_v2_resnet34_960x544 --sample every:50)
fi
echo "== vidscan run $sample -o build/demo-run ${model_args[*]} --force"
build/src/vidscan run "$sample" -o build/demo-run "${model_args[@]}" --force
echo
echo "Built: build/src/vidscan (run 'build/src/vidscan --help'). Results of the demo: build/demo-run/. Tests: bash scripts/test.sh"
