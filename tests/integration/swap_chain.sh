#!/usr/bin/env bash
# The chain a user runs: mount, fallocate a pool, loop device, mkswap, swapon, then all the way
# back; checks that VRAM is reserved up front and handed back at the end.
# Environment: VRAMFS_BIN (the binary), VRAMFS_TEST_BACKEND (host or cuda). Exit 77: skipped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment

mnt=$(mktemp -d /tmp/vramfs-swap-XXXXXX)
loop=""
cleanup() {
  if [[ -n $loop ]]; then
    swapoff "$loop" 2>/dev/null || true
    losetup -d "$loop" 2>/dev/null || true
  fi
  fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT


echo "+ vramfs $mnt 256M ${vramfs_args[*]}"
"$bin" "$mnt" 256M "${vramfs_args[@]}"
[[ $(used_mib "$mnt") -eq 0 ]] || fail "a new mount should use nothing, uses $(used_mib "$mnt") MiB"
check_io_flusher "$(daemon_pid "$mnt")"

echo "+ fallocate -l 128M $mnt/swap"
fallocate -l 128M "$mnt/swap"
chmod 600 "$mnt/swap"
[[ $(used_mib "$mnt") -eq 128 ]] || fail "fallocate should reserve 128 MiB at once, df says $(used_mib "$mnt")"
[[ $(du -m "$mnt/swap" | cut -f1) -eq 128 ]] || fail "du should show 128 MiB allocated"

loop=$(losetup --find --show "$mnt/swap")
echo "+ losetup: $loop"
mkswap "$loop" >/dev/null
swapon "$loop"
grep -q "^$loop " /proc/swaps || fail "$loop is not in /proc/swaps"
echo "+ swapon: $(grep "^$loop " /proc/swaps)"
check_transport "$mnt"
# The swap signature is in the file, written through the mount.
dd if="$mnt/swap" bs=4096 count=1 status=none | grep -q SWAPSPACE2 || fail "no swap signature"

swapoff "$loop"
losetup -d "$loop"
loop=""
rm "$mnt/swap"
# The loop device's last close of the file, and so the daemon's release of its blocks, may come
# after losetup -d returns.
poll_until 30 mount_empty "$mnt" || fail "30 s after rm the mount still uses $(used_mib "$mnt") MiB"
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
if mountpoint -q "$mnt"; then fail "still mounted"; fi
echo "swap chain on $backend: ok"
