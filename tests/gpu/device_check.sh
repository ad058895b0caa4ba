#!/usr/bin/env bash
# On a GPU machine: the CUDA test suites, then the README's chain (6G mount, 4G swap pool, loop,
# mkswap, swapon) with the daemon's memory figures and a first dd. Logs go to ${OUT:-/tmp}.
# Usage: tests/gpu/device_check.sh BUILD_DIR   (CTEST_REGEX=... runs only those tests)
set -uo pipefail
build=${1:-build}
out=${OUT:-/tmp}
bin="$build/vramfs"
mnt=/mnt/vram

nvidia-smi --query-gpu=name,memory.total,memory.free,driver_version --format=csv
"$bin" --list-devices
echo "== vramfs --check"; "$bin" --check; echo "exit $?"
grep -E "^Cap(Eff|Bnd)" /proc/self/status

echo "== ctest (CUDA suites included)"
(cd "$build" && ctest --output-on-failure -R "${CTEST_REGEX:-.}" 2>&1 | tee "$out/ctest.log" | tail -25)

echo "== README chain"
mkdir -p "$mnt"
"$bin" "$mnt" 6G || exit 1
fallocate -l 4G "$mnt/swap" && chmod 600 "$mnt/swap"
loop=$(losetup -f --show "$mnt/swap")
mkswap "$loop" >/dev/null && swapon "$loop" && swapon --show
df -h "$mnt"
pid=$(pgrep -f "^$bin $mnt" | head -1)
grep -E "VmRSS|VmLck|VmPin" "/proc/$pid/status"
nvidia-smi --query-gpu=memory.used --format=csv
echo "== status with a swap pool and a scratch file (device chosen by xattr)"
touch "$mnt/scratch" && setfattr -n user.vramfs.device -v 0 "$mnt/scratch" &&
  fallocate -l 512M "$mnt/scratch" && getfattr -n user.vramfs.device "$mnt/scratch"
"$bin" status "$mnt"
"$bin" status "$mnt" --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("status --json parsed:", len(d["files"]), "files")'
rm -f "$mnt/scratch"
swapoff "$loop"; losetup -d "$loop"; rm "$mnt/swap"
sleep 7 # the release delay (5 s) before emptied slabs go back to the GPU
nvidia-smi --query-gpu=memory.used --format=csv

echo "== dd, 1 MiB requests, 2 GiB"
dd if=/dev/urandom of=/dev/shm/src bs=1M count=2048 status=none
dd if=/dev/shm/src of="$mnt/f" bs=1M 2>&1 | tail -1
dd if="$mnt/f" of=/dev/null bs=1M 2>&1 | tail -1
cmp /dev/shm/src "$mnt/f" && echo "data intact"
dd if=/dev/shm/src of="$mnt/g" bs=1M oflag=direct 2>&1 | tail -1
dd if="$mnt/g" of=/dev/null bs=1M iflag=direct 2>&1 | tail -1
rm -f "$mnt/f" "$mnt/g" /dev/shm/src
umount "$mnt"
