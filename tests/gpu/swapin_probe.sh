#!/usr/bin/env bash
# Where swap-in time goes: for each vm.page-cluster value, a swap on a loop over tmpfs and one
# on vramfs run the same pressure workload; the loop device's /sys/block stat gives the number
# and the mean size of the reads that served swap-in. Restores vm.page-cluster at the end.
# Usage: tests/gpu/swapin_probe.sh BUILD_DIR [BACKEND] [PAGE_CLUSTER...]   (root)
# PROBE_OPTS: more vramfs options for the vramfs swap (e.g. "--threads 2"); PROBE_THREADS: the
# workload's faulting threads (default 1).
set -uo pipefail
build=${1:-build}
backend=${2:-cuda}
shift 2 2>/dev/null || shift $#
clusters=("${@:-3}")
here=$(cd "$(dirname "$0")" && pwd)
helper=$here/../../mount-helpers/vramfs-swap
pressure=$build/tests/vramfs-pressure
export VRAMFS_BIN=$build/vramfs
ws=${PROBE_WS:-3G} limit=${PROBE_LIMIT:-1G} size=${PROBE_SWAP:-4G}
old_cluster=$(cat /proc/sys/vm/page-cluster)
trap 'echo "$old_cluster" >/proc/sys/vm/page-cluster' EXIT

reads() { awk '{ print $1, $3 }' "/sys/block/${1#/dev/}/stat"; } # reads completed, sectors read

measure() { # LABEL LOOPDEV
  local before after
  before=$(reads "$2")
  "$pressure" --working-set "$ws" --limit "$limit" --threads "${PROBE_THREADS:-1}" --timeout 300 |
    grep -E "swap-|corrupted|:"
  after=$(reads "$2")
  awk -v l="$1" -v b="$before" -v a="$after" 'BEGIN {
    split(b, x, " "); split(a, y, " "); n = y[1] - x[1]; s = (y[2] - x[2]) * 512
    printf "%s: %d loop reads, mean %.1f KiB\n", l, n, n ? s / n / 1024 : 0 }'
}

for pc in "${clusters[@]}"; do
  echo "$pc" >/proc/sys/vm/page-cluster
  echo "== vm.page-cluster=$pc"
  t=$(mktemp -d) && mount -t tmpfs -o "size=$size" tmpfs "$t" && fallocate -l "$size" "$t/swap"
  chmod 600 "$t/swap"
  loop=$(losetup --find --show "$t/swap") && mkswap "$loop" >/dev/null && swapon -p 200 "$loop"
  measure "tmpfs loop (page-cluster $pc)" "$loop"
  swapoff "$loop"; losetup -d "$loop"; umount "$t"; rmdir "$t"

  m=$(mktemp -d)
  # shellcheck disable=SC2086 # PROBE_OPTS is a list of options
  loop=$("$helper" on "$size" --mountpoint "$m" --name probe --priority 200 --backend "$backend" \
    ${PROBE_OPTS:-})
  measure "vramfs $backend ${PROBE_OPTS:-} (page-cluster $pc)" "$loop"
  # counters (with the read cache's hits and fills) and the per-request timing of reads and writes
  "$VRAMFS_BIN" status "$m" | sed -n '/since mount/,$p'
  "$helper" off all --mountpoint "$m" >/dev/null; rmdir "$m"
done
