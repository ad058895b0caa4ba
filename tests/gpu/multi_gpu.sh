#!/usr/bin/env bash
# Two GPUs against one, in one run: swap under the pressure tool with vramfs-swap on one device
# and on two (one swap per device, equal priority), then 1 MiB O_DIRECT 4-stream rows on a mount
# of one device and on a mount of two (the four files spread over both devices).
# Usage: tests/gpu/multi_gpu.sh BUILD_DIR [BACKEND]   (root)
set -euo pipefail
build=${1:-build}
export VRAMFS_BIN=$build/vramfs VRAMFS_TEST_BACKEND=${2:-cuda}
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/../integration/lib.sh" # backend, helper, start/stop_swap_watch
pressure=$build/tests/vramfs-pressure
bench=$build/tests/vramfs-iobench
m=$(mktemp -d)
trap '"$helper" off all --mountpoint "$m" >/dev/null 2>&1 || true; fusermount3 -u "$m" 2>/dev/null || true; rmdir "$m"' EXIT

for devices in 0 0,1; do
  echo "== swap on --device $devices (2 GiB each)"
  "$helper" on 2G --device "$devices" --mountpoint "$m" --priority 200 --backend "$backend"
  start_swap_watch
  "$pressure" --working-set 2G --limit 512M --timeout 300 | grep -E "swap-|corrupted"
  stop_swap_watch | awk '{ print "  ", $1, "peak use", $2, "KiB" }'
  "$helper" off all --mountpoint "$m" >/dev/null
done

for devices in 0 0,1; do
  echo "== 1 MiB direct x4 on a mount of --device $devices"
  "$VRAMFS_BIN" "$m" 4G --device "$devices" --backend "$backend" >/dev/null
  for rw in write read; do
    echo "  $rw: $("$bench" --dir "$m" --rw "$rw" --bs 1M --size 1G --direct 1 --jobs 4)"
  done
  "$VRAMFS_BIN" status "$m" | sed -n '1,3p' # RESERVED: slabs still held on each device
  fusermount3 -u "$m"
done
