#!/usr/bin/env bash
# Runs on the GPU machine (the `device` tool), from the repository root, with the bundle made by
# scripts/build-gpu-bundle.sh and scripts/make_gpu_fixtures.sh in .gpu/ (bin/, data/, fixtures/, pynvc/).
#   bash scripts/device/gpu_check.sh [tests] [sanitize] [decode] [preprocess] [detect] [infer] [run]
#   (default: all). run: REPEAT (copies of the 41 s bench clip, default 88 = 1.0 video-hour), OPEN (24).
# Writes logs and JSON under $OUT (or /tmp/vidscan-out) and prints a summary table last.
set -uo pipefail
OUT=${OUT:-/tmp/vidscan-out}; mkdir -p "$OUT"
B=.gpu/bin
export VIDSCAN_DATA_DIR=.gpu/data VIDSCAN_FIXTURES_DIR=.gpu/fixtures VIDSCAN_BIN=$B/vidscan
export VIDSCAN_MODELS_DIR=$PWD/.gpu/models   # single-op ONNX models the CPU build generated (ops/)
what=${*:-tests sanitize decode preprocess detect infer run}
summary=$OUT/summary.txt; : > "$summary"
say() { echo "$*" | tee -a "$summary"; }

say "== $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader) | $(date -u +%FT%TZ)"
cudnn_dir=$(python3 -c 'import nvidia.cudnn;print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null)/lib
if [ -d "$cudnn_dir" ]; then export LD_LIBRARY_PATH=$cudnn_dir:${LD_LIBRARY_PATH:-}; say "cuDNN from $cudnn_dir (PyTorch's, newer than the system one)"; else say "cuDNN: the system one (no PyTorch cuDNN found)"; fi

if [[ " $what " == *" tests "* ]]; then
  $B/vidscan_gpu_tests --gtest_color=no 2>&1 | tee "$OUT/gpu_tests.log" | grep -E "^\[  (PASSED|FAILED|SKIPPED) |bit-identical|bad files reported|^GPU 0|Failure|error" | head -60
  say "gpu tests: $(grep -E '^\[  PASSED  \]|^\[  FAILED  \]|^\[  SKIPPED \]' "$OUT/gpu_tests.log" | tr '\n' ' ')"
fi

if [[ " $what " == *" decode "* ]]; then
  clip=${CLIP:-.gpu/fixtures/bench_1080p30.mp4}
  export PYTHONPATH=$PWD/.gpu/pynvc:${PYTHONPATH:-}
  say "decode bench: $clip (1080p30 H.264 ~6 Mbit/s), each session decodes it ${LOOPS:-3} times"
  say "$(printf '%-9s %12s %12s %10s %10s %12s %8s' sessions vidscan_fps pynvc_fps ratio rt_factor hours/day nvdec%)"
  for s in ${SESSIONS:-1 2 4 8 12 16}; do
    loops=$(( s * ${LOOPS:-3} ))
    $B/vidscan bench decode "$clip" --device gpu --sessions "$s" --loops "$loops" --json > /tmp/v.json 2> /tmp/v.err
    python3 tools/pynvc_decode_bench.py "$clip" --sessions "$s" --loops "${LOOPS:-3}" --json > /tmp/p.json 2> /tmp/p.err
    python3 - "$OUT" "$s" <<'PY' | tee -a "$summary"
import json, sys
out, s = sys.argv[1], sys.argv[2]
log = open(f"{out}/decode_bench.jsonl", "a")
try:
    v = json.load(open("/tmp/v.json")); log.write(json.dumps({"sessions": int(s), "vidscan": v}) + "\n")
except Exception as e:
    print(f"{s:<9} vidscan failed: {e}: {open('/tmp/v.err').read()[-300:]}"); sys.exit()
try:
    p = json.load(open("/tmp/p.json")); pf = p["frames_per_second"]; log.write(json.dumps({"sessions": int(s), "pynvc": p}) + "\n")
except Exception as e:
    p, pf = None, float("nan"); log.write(json.dumps({"sessions": int(s), "pynvc_error": open("/tmp/p.err").read()[-2000:]}) + "\n")
print(f"{s:<9} {v['frames_per_second']:12.1f} {pf:12.1f} {v['frames_per_second']/pf:10.2f} "
      f"{v['realtime_factor']:10.1f} {v['video_hours_per_day']:12.0f} {v.get('nvdec_utilisation_mean', float('nan')):8.1f}"
      f" (steady {v.get('nvdec_utilisation_steady_mean', float('nan')):.1f} over {v.get('steady_seconds', 0):.1f} s;"
      f" max {v.get('nvdec_utilisation_max', float('nan')):.0f}; {v['wall_seconds']:.1f} s)"
      + ("" if not p or not p["errors"] else f"  pynvc errors: {p['errors'][:1]}")
      + ("" if v["failed"] == 0 else f"  vidscan errors: {v['errors'][:1]}"))
PY
  done
fi

if [[ " $what " == *" sanitize "* ]]; then
  # Fresh random inputs on every run: repeat the preprocess GPU tests, then once under compute-sanitizer.
  kernels='PreprocessCuda*:CudaBatchNms*:CudaDetector*'
  $B/vidscan_gpu_tests --gtest_filter="$kernels" --gtest_repeat=3 --gtest_brief=1 2>&1 | tail -4 | tee -a "$summary"
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 $B/vidscan_gpu_tests --gtest_filter="$kernels" --gtest_brief=1 >> "$OUT/sanitizer.log" 2>&1
    say "compute-sanitizer $tool on $kernels: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitizer.log" | tail -1)"
  done
fi

if [[ " $what " == *" preprocess "* ]] && [[ "$($B/vidscan bench --help 2>&1)" == *preprocess* ]]; then
  $B/vidscan bench preprocess --variant all 2>&1 | tee "$OUT/bench_preprocess.log" | tail -20
  say "preprocess: $(tail -16 "$OUT/bench_preprocess.log" | tr '\n' '|')"
fi

if [[ " $what " == *" detect "* ]] && [ -x $B/bench_detect ]; then
  $B/bench_detect --benchmark_min_time=0.2 2>&1 | tee "$OUT/bench_detect.log" | tail -12
  say "detect: $(grep -E 'Cuda|Cpu' "$OUT/bench_detect.log" | tr -s ' ' | tr '\n' '|')"
fi
if [[ " $what " == *" infer "* ]]; then
  say "infer bench (CUDA executor, graph replay, CUDA events) vs PyTorch (same DetectNet_v2/ResNet-34, FP16, channels_last, CUDA graphs)"
  $B/vidscan bench infer builtin:detectnet_v2_resnet34_960x544 --device gpu --precision fp16 --batch 1,8,32 2>&1 | tee "$OUT/bench_infer.log" | tail -12
  $B/vidscan bench infer .gpu/data/models/yolox_nano_coco_416.onnx --device gpu --precision fp16 --batch 1,8,32 2>&1 | tee -a "$OUT/bench_infer.log" | tail -12
  python3 tools/torch_detectnet_bench.py --batches 1,8,32 --precision fp16 2>&1 | tee -a "$OUT/bench_infer.log" | tail -8
  say "$(grep -E 'batch|frames/s|TFLOP|torch|PyTorch' "$OUT/bench_infer.log" | head -30)"
fi

if [[ " $what " == *" run "* ]]; then
  # Issue 6: the whole pipeline on at least one video-hour of 1080p30 H.264, 16 videos at once.
  clip=${CLIP:-.gpu/fixtures/bench_1080p30.mp4}; repeat=${REPEAT:-88}; open=${OPEN:-24}
  say "bench run: $clip x $repeat (41 s each), $open videos at once"
  run_bench() {  # label, then vidscan bench run arguments
    local label=$1; shift
    $B/vidscan bench run "$@" --open-videos "$open" --progress log --json > /tmp/r.json 2> "$OUT/run_$label.log"
    say "$label: $(tail -n 12 "$OUT/run_$label.log" | grep -E 'realtime|GPU:|FAILED' | tr '\n' ' ')"
    tail -n 1 /tmp/r.json >> "$OUT/bench_run.jsonl"
  }
  run_bench detectnet_fp16_all "$clip" --repeat "$repeat" --device gpu
  grep -A9 '^stage' "$OUT/run_detectnet_fp16_all.log" | tee -a "$summary"
  run_bench detectnet_fp16_all_b64 "$clip" --repeat "$repeat" --device gpu --batch 64
  run_bench detectnet_fp16_every3 "$clip" --repeat "$repeat" --device gpu --sample every:3
  # The real model (YOLOX-Nano 416) on the real video (720p25, 13.6 s) repeated to one video-hour.
  run_bench yolox_real_all .gpu/data/videos/people_walking_720p_h264.avi --repeat $(( repeat * 3 )) --device gpu \
    --model .gpu/data/models/yolox_nano_coco_416.onnx --family yolox
  grep -A9 '^stage' "$OUT/run_yolox_real_all.log" | tee -a "$summary"
fi

echo; echo "===== SUMMARY ====="; cat "$summary"
