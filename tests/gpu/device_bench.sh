#!/usr/bin/env bash
# On a GPU machine: the whole ctest (CUDA suites included), the daemon's memory and mount time
# for a 64 GiB mount, and the benchmark table with swap rows. Logs and JSON go to ${OUT:-/tmp}.
# Usage: tests/gpu/device_bench.sh BUILD_DIR [bench.py options...]
set -uo pipefail
build=${1:-build}
shift || true
out=${OUT:-/tmp}
bin="$build/vramfs"

nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv,noheader
echo "== ctest"
(cd "$build" && ctest --output-on-failure >"$out/ctest.log" 2>&1; tail -22 "$out/ctest.log")

echo "== 64 GiB mount: time and daemon memory"
mnt=/mnt/vram64
mkdir -p "$mnt"
start=$(date +%s.%N)
"$bin" "$mnt" 64G
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN { printf "mount took %.3f s\n", b - a }'
pid=$(pgrep -f "^$bin $mnt" | head -n1)
grep -E "VmRSS|VmLck" "/proc/$pid/status"; grep Locked "/proc/$pid/smaps_rollup"
fallocate -l 16G "$mnt/pool" && echo "after fallocate 16G:" && grep -E "VmRSS|VmLck" "/proc/$pid/status"; grep Locked "/proc/$pid/smaps_rollup"
df -h "$mnt" | tail -1
umount "$mnt"

echo "== benchmark"
python3 "$(dirname "$0")/../perf/bench.py" --build "$build" --out "$out/bench.json" "$@" 2>&1 |
  tee "$out/bench.log" | tail -45
