#!/usr/bin/env bash
# Issue 7: realtime factor of `vidscan bench run` in single-process and multi-process modes, without and
# with CUDA MPS, on one workload, in one call. Runs on the GPU machine from the repository root with the
# bundle in .gpu/ (see docs/GPU_MACHINE.md).
#   CONFIGS="single decode=8,infer=1 ..." MPS_CONFIGS="..." REPEAT=88 bash scripts/device/mp_table.sh
# A config may carry run options after colons: "single:--batches-in-flight=3". STAGES=1 adds each run's
# stage table lines to the table.
# MPS_MODE=manual starts a private MPS control daemon here (for binaries without --mps); by default the
# MPS rows pass `--mps on` to vidscan. Prints a table last; logs under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/vidscan-out}; mkdir -p "$OUT"
B=$PWD/.gpu/bin
clip=${CLIP:-$PWD/.gpu/fixtures/bench_1080p30.mp4}; repeat=${REPEAT:-88}
CONFIGS=${CONFIGS-"single decode=8,infer=1 decode=12,infer=2 decode=24,infer=2"}  # set but empty: none
MPS_CONFIGS=${MPS_CONFIGS-"decode=8,infer=1 decode=12,infer=2 decode=24,infer=2"}
EXTRA=${EXTRA:-}
cudnn_dir=$(python3 -c 'import nvidia.cudnn;print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null)/lib
[ -d "$cudnn_dir" ] && export LD_LIBRARY_PATH=$cudnn_dir:${LD_LIBRARY_PATH:-}
table=$OUT/mp_table.txt; : > "$table"
echo "== $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(nproc) cores; $clip x $repeat; $(date -u +%FT%TZ)" | tee -a "$table"
row() {  # label workers[:--option=value...] [args...]
  local label=$1 spec=$2; shift 2
  local workers=${spec%%:*} extra=""
  [ "$spec" != "$workers" ] && extra=${spec#*:} && extra=${extra//:/ }
  local log=$OUT/run_${label}_${spec//[=,:]/_}.log
  local t0=$(date +%s.%N)
  # The GPU runs this workload at its power cap (H200: ~660-690 W of 700, SM clock 1755-1875 MHz), so its
  # clock differs between runs: each row says what it was (SM clock and power, means of 0.5 s samples).
  nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 500 > "$log.smi" 2>/dev/null &
  local smi=$!
  timeout ${RUN_TIMEOUT:-240} $B/vidscan bench run "$clip" --repeat "$repeat" --device gpu --workers "$workers" --progress log --json $EXTRA $extra "$@" > "$log.json" 2> "$log"
  local rc=$? t1=$(date +%s.%N)
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  python3 - "$label" "$spec" "$rc" "$log" "$t0" "$t1" <<'PY' | tee -a "$table"
import json, sys
label, workers, rc, log, t0, t1 = sys.argv[1:]
try:
    j = json.loads(open(log + ".json").read().strip().splitlines()[-1])
    print(f"{label:<8} {workers:<20} rc={rc} realtime {j['realtime_factor']:7.1f}x  {j['video_hours_per_day']:6.0f} h/day  "
          f"SM {j.get('gpu_sm_percent', float('nan')):4.0f}%  NVDEC {j.get('nvdec_percent', float('nan')):4.0f}%  "
          f"frames {j['frames_analysed']}  failed {j['failed']}  wall {j['wall_seconds']:.1f}s + start-up {j.get('startup_seconds', 0):.1f}s "
          f"(process {float(t1)-float(t0):.1f}s: {j['video_seconds']/(float(t1)-float(t0)):.1f}x end to end)")
    # Samples while the GPU worked (power above 300 W): the clock it ran the job at.
    busy = []
    for line in open(log + ".smi"):
        try:
            clock, power = (float(x) for x in line.split(","))
        except ValueError:
            continue
        if power > 300: busy.append((clock, power))
    if busy:
        print(f"{'':9}GPU while busy: SM clock {sum(c for c, _ in busy) / len(busy):.0f} MHz, {sum(p for _, p in busy) / len(busy):.0f} W "
              f"({len(busy)} samples)")
except Exception as e:
    tail = open(log).read()[-600:].replace("\n", " | ")
    print(f"{label:<8} {workers:<20} rc={rc} no result ({e}): {tail}")
PY
  grep -E "^MPS" "$log" | tail -1 | sed 's/^/         /' | tee -a "$table"
  # The stage table (GPU idle: the analysis stream waited between batches) and the padding line.
  [ -n "${STAGES:-}" ] && grep -E "^(infer|GPU idle|detect|slot wait|batch wait|track|padded)" "$log" | sed 's/^/         /' | tee -a "$table"
}
for c in $CONFIGS; do row plain "$c"; done
mps_start() {  # a private MPS control daemon, for binaries without --mps (MPS_MODE=manual)
  export CUDA_MPS_PIPE_DIRECTORY=$(mktemp -d /tmp/mps-pipe.XXXX) CUDA_MPS_LOG_DIRECTORY=$(mktemp -d /tmp/mps-log.XXXX)
  nvidia-cuda-mps-control -d && echo "MPS control daemon started by the script (pipe $CUDA_MPS_PIPE_DIRECTORY)" | tee -a "$table"
}
mps_stop() {
  echo quit | nvidia-cuda-mps-control; sleep 1
  grep -i -E "error|fail" "$CUDA_MPS_LOG_DIRECTORY"/*.log | grep -v "assuming client" | head -5 | tee -a "$table"
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
}
if [ -n "$MPS_CONFIGS" ]; then
  if [ "${MPS_MODE:-flag}" = manual ]; then
    mps_start
    for c in $MPS_CONFIGS; do row mps "$c"; done
    mps_stop
  else
    for c in $MPS_CONFIGS; do row mps "$c" --mps on; done
  fi
fi
# KILL="decode=8,infer=1 [--mps on]": the same workload twice into kept output directories, the second time
# with infer worker 0 SIGKILLed KILL_AFTER seconds in; the per-video outputs must be identical.
if [ -n "${KILL:-}" ]; then
  read -r kill_workers kill_args <<<"$KILL"
  [ "${MPS_MODE:-flag}" = manual ] && [ "${KILL_MPS:-1}" = 1 ] && mps_start
  for which in undisturbed disturbed; do
    rm -rf "/tmp/kill_$which"
    $B/vidscan bench run "$clip" --repeat "$repeat" --device gpu --workers "$kill_workers" $kill_args $EXTRA \
      -o "/tmp/kill_$which" --progress log --json > "$OUT/kill_$which.json" 2> "$OUT/kill_$which.log" &
    pid=$!
    if [ $which = disturbed ]; then
      sleep "${KILL_AFTER:-15}"
      victim=$(grep -l -a "VIDSCAN_IPC_ROLE=infer" /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
        p=${f#/proc/}; p=${p%/environ}; tr '\0' '\n' < "$f" | grep -qx "VIDSCAN_IPC_INDEX=0" && echo "$p"; done | head -1)
      echo "kill: SIGKILL infer worker 0 (pid $victim) after ${KILL_AFTER:-15} s" | tee -a "$table"
      [ -n "$victim" ] && kill -9 "$victim"
    fi
    wait $pid; echo "kill: $which run rc=$? $(grep -E 'realtime,|worker deaths' "$OUT/kill_$which.log" | tr '\n' ' ')" | tee -a "$table"
  done
  if diff -r -q /tmp/kill_undisturbed/videos /tmp/kill_disturbed/videos > "$OUT/kill_diff.txt"; then
    echo "kill: per-video outputs identical ($(ls /tmp/kill_undisturbed/videos | wc -l) videos, $(du -sh /tmp/kill_undisturbed/videos | cut -f1))" | tee -a "$table"
  else
    echo "kill: OUTPUTS DIFFER: $(head -5 "$OUT/kill_diff.txt" | tr '\n' ' ')" | tee -a "$table"
  fi
  rm -rf /tmp/kill_undisturbed /tmp/kill_disturbed
  [ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ] && mps_stop
fi
# TUNE="--try-workers ... [tune options]": `vidscan tune` on TUNE_COPIES copies of the clip (a job takes each
# file once); the table it prints and the config it writes go to $OUT.
if [ -n "${TUNE:-}" ]; then
  mkdir -p /tmp/tune_in
  for i in $(seq "${TUNE_COPIES:-24}"); do cp "$clip" "/tmp/tune_in/clip$i.mp4"; done
  $B/vidscan tune /tmp/tune_in --device gpu $TUNE -o "$OUT/tuned.conf" --force > "$OUT/tune.log" 2>&1
  echo "tune: rc=$?" | tee -a "$table"
  grep -E "^ *\*|realtime|layout|single|decode=" "$OUT/tune.log" | tail -8 | tee -a "$table"
  grep -v "^#" "$OUT/tuned.conf" | tee -a "$table"
  rm -rf /tmp/tune_in
fi
echo; echo "===== TABLE ====="; cat "$table"
