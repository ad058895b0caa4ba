#!/usr/bin/env bash
# What busy-polling costs and buys: for each --poll-us value, one mount runs a few vramfs-iobench
# workloads; each line gives the workload's result and the CPU time the daemon used meanwhile
# (user+system from /proc/PID/stat), then the same for two idle seconds.
# Usage: tests/gpu/poll_cost.sh BUILD_DIR [BACKEND] [POLL_US...]   (root or a FUSE user)
set -euo pipefail
build=${1:-build}
backend=${2:-cuda}
shift 2 2>/dev/null || shift $#
polls=("${@:-0 200}")
read -r -a polls <<<"${polls[*]}"
bench=$build/tests/vramfs-iobench
mnt=$(mktemp -d)
trap 'fusermount3 -u "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

phase() { # PID LABEL COMMAND...
  local pid=$1 label=$2 before after out
  shift 2
  before=$(cpu "$pid")
  out=$("$@")
  after=$(cpu "$pid")
  awk -v l="$label" -v b="$before" -v a="$after" -v o="$out" \
    'BEGIN { printf "%-34s daemon CPU %5.2f s   %s\n", l, a - b, o }'
}

for p in "${polls[@]}"; do
  "$build/vramfs" "$mnt" 2G --backend "$backend" --poll-us "$p" >/dev/null
  pid=$(pgrep -n -f "vramfs $mnt")
  "$bench" --dir "$mnt" --rw write --bs 1M --size 512M --direct 1 --jobs 1 >/dev/null
  echo "== --poll-us $p ($backend)"
  phase "$pid" "randread 4K direct x1, 3 s" "$bench" --dir "$mnt" --rw randread --bs 4K \
    --size 512M --direct 1 --jobs 1 --runtime 3
  phase "$pid" "read 1M direct x1, 512 MiB" "$bench" --dir "$mnt" --rw read --bs 1M \
    --size 512M --direct 1 --jobs 1
  phase "$pid" "read 1M direct x4, 4 x 512 MiB" "$bench" --dir "$mnt" --rw read --bs 1M \
    --size 512M --direct 1 --jobs 4
  phase "$pid" "idle, 2 s" sleep 2
  fusermount3 -u "$mnt"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
done
