#!/usr/bin/env bash
# mount(8) and /etc/fstab: `mount -t fuse.vramfs -o size=...,backend=... vramfs DIR` goes through
# mount.fuse3 to the vramfs binary, and an fstab line (given with mount --fstab) mounts too.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
[[ -w /dev/fuse ]] || skip "no usable /dev/fuse"
[[ $(id -u) -eq 0 ]] || skip "mount(8) of a FUSE type needs root here"
# mount(8) looks for the helper of type fuse.vramfs in /sbin only, not in PATH.
[[ -x /sbin/mount.fuse || -x /sbin/mount.fuse.vramfs ]] || skip "/sbin/mount.fuse (fuse3) is not installed"
require_backend

# mount.fuse3 runs the program named by the type ("vramfs") from mount's own PATH
# (/usr/sbin:/usr/bin:/sbin:/bin for root). Unless vramfs is installed, link the one under test
# into /usr/sbin for the length of the test.
link=""
if [[ ! -e /usr/sbin/vramfs && ! -e /usr/bin/vramfs ]]; then
  ln -s "$(readlink -f "$bin")" /usr/sbin/vramfs
  link=/usr/sbin/vramfs
fi
mnt=$(mktemp -d /tmp/vramfs-fstab-XXXXXX)
tab=$(mktemp /tmp/vramfs-fstab-XXXXXX.tab)
cleanup() {
  umount "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
  rm -f "$tab"
  if [[ -n $link ]]; then rm -f "$link"; fi
}
trap cleanup EXIT

step "mount -t fuse.vramfs"
mount -t fuse.vramfs -o "size=96M,backend=$backend${transport:+,transport=$transport},threads=2" vramfs "$mnt"
grep -q " $mnt fuse.vramfs " /proc/mounts || fail "not mounted"
[[ $(df --block-size=1M --output=size "$mnt" | tail -1 | tr -d ' ') -eq 96 ]] || fail "size is not 96M"
echo hello >"$mnt/f"
[[ $(cat "$mnt/f") == hello ]] || fail "cannot use the mount"

step "vramfs status, as a table, JSON and Prometheus text"
"$bin" status "$mnt" | grep -q "since mount" || fail "status table"
"$bin" status "$mnt" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["devices"][0]["budget"] == 96 << 20, d["devices"]
assert d["counters"]["bytes_written"] == 6, d["counters"]'
prom=$("$bin" status "$mnt" --prometheus)
grep -q "^# TYPE vramfs_device_budget_bytes gauge$" <<<"$prom" || fail "no TYPE line"
grep -Eq "^vramfs_device_budget_bytes\{mountpoint=\"$mnt\",device=\"0\",kind=\"$backend\",.*\} 100663296$" <<<"$prom" ||
  fail "no budget sample: $prom"
grep -Eq "^vramfs_written_bytes_total\{mountpoint=\"$mnt\"\} 6$" <<<"$prom" || fail "no written bytes"
check_transport "$mnt"
rc=0; "$bin" status "$mnt" --bogus 2>/dev/null || rc=$?; ((rc == 2)) || fail "status --bogus: exit $rc"
rc=0; "$bin" status /proc 2>/dev/null || rc=$?; ((rc == 1)) || fail "status of a non-vramfs: exit $rc"
umount "$mnt"
grep -q " $mnt " /proc/mounts && fail "umount left it mounted"

step "an fstab line"
echo "vramfs $mnt fuse.vramfs size=64M,backend=$backend${transport:+,transport=$transport},nofail 0 0" >"$tab"
mount --fstab "$tab" "$mnt"
[[ $(df --block-size=1M --output=size "$mnt" | tail -1 | tr -d ' ') -eq 64 ]] || fail "size is not 64M"
umount "$mnt"

step "a bad size through mount fails cleanly"
if mount -t fuse.vramfs -o "size=lots,backend=$backend${transport:+,transport=$transport}" vramfs "$mnt" 2>/dev/null; then
  fail "mount with size=lots succeeded"
fi
grep -q " $mnt " /proc/mounts && fail "a failed mount left something mounted"
echo "mount(8) and fstab on $backend: ok"
