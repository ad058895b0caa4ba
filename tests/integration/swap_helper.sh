#!/usr/bin/env bash
# vramfs-swap end to end: on, on again (idempotent), status, off, off on nothing, bad usage,
# and off after the daemon was killed while the swap held no pages.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment

mnt=$(mktemp -d /tmp/vramfs-helper-XXXXXX)
loops_of_test() { losetup --list --noheadings --output NAME,BACK-FILE | awk -v f="$1" '$2 == f { print $1 }'; }
mnt2=$(mktemp -d /tmp/vramfs-helper-XXXXXX) # a second mount, for the lost device
cluster_was=$(cat /proc/sys/vm/page-cluster)
cleanup() {
  echo "$cluster_was" >/proc/sys/vm/page-cluster
  local m
  for m in "$mnt" "$mnt2"; do
    "$helper" off all --mountpoint "$m" >/dev/null 2>&1 || true
    umount -l "$m" 2>/dev/null || true
    rmdir "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT

step "usage errors exit 2"
rc=0; "$helper" on 2>/dev/null || rc=$?; ((rc == 2)) || fail "on without SIZE: exit $rc"
rc=0; "$helper" on 12X 2>/dev/null || rc=$?; ((rc == 2)) || fail "bad SIZE: exit $rc"
rc=0; "$helper" frobnicate 2>/dev/null || rc=$?; ((rc == 2)) || fail "bad command: exit $rc"
rc=0; "$helper" on 64M --page-cluster 32 2>/dev/null || rc=$?; ((rc == 2)) || fail "bad --page-cluster: exit $rc"
rc=0; "$helper" on 64M --no-such-option 2>/dev/null || rc=$?; ((rc == 2)) || fail "unknown option: exit $rc"
rc=0; "$helper" on 64M --threads 2>/dev/null || rc=$?; ((rc == 2)) || fail "--threads without a value: exit $rc"
# More than the backend has is bad input too (vramfs's own verdict, passed on), and no mount stays.
rc=0; out=$("$helper" on 100T --mountpoint "$mnt" "${vramfs_args[@]}" 2>&1) || rc=$?
((rc == 2)) || fail "on 100T: exit $rc: $out"
mountpoint -q "$mnt" && fail "on 100T left a mount"
rc=0; out=$("$helper" off nosuchname --mountpoint "$mnt" 2>&1) || rc=$?
((rc == 1)) || fail "off nosuchname: exit $rc: $out"
[[ $out == *"no VRAM swap named nosuchname"* ]] || fail "off nosuchname says: $out"
"$helper" --help | grep -q "Exit codes" || fail "--help does not document exit codes"

step "SIZE means to the helper what it means to vramfs"
# SIZE, and the bytes both must make of it (the swap file's size).
while read -r text want; do
  [[ $("$bin" size "$text") == "$want" ]] || fail "vramfs size $text: not $want"
  loop=$("$helper" on "$text" --mountpoint "$mnt" --name sz "${vramfs_args[@]}")
  [[ $(stat -c %s "$mnt/sz") == "$want" ]] || fail "on $text made a file of $(stat -c %s "$mnt/sz") bytes, not $want"
  # mkswap uses whole pages, less one for its header.
  kib=$(awk -v d="$loop" '$1 == d { print $3 }' /proc/swaps)
  [[ $kib == $(((want / 4096 - 1) * 4)) ]] || fail "on $text: swap of $kib KiB"
  "$helper" off all --mountpoint "$mnt" >/dev/null
done <<'SIZES'
100000K 102400000
200MB 200000000
1.5G 1610612736
1GiB 1073741824
SIZES
for text in 0 -1 1X "" 39M 1.5; do
  rc=0; out=$("$helper" on "$text" --mountpoint "$mnt" 2>&1) || rc=$?
  ((rc == 2)) || fail "on '$text': exit $rc"
  [[ $(wc -l <<<"$out") -eq 1 ]] || fail "on '$text': more than one line: $out"
done
mountpoint -q "$mnt" && fail "a refused size left a mount"

step "a vramfs flag before SIZE is a flag (vramfs says which options take a value)"
out=$("$helper" on --writeback-cache 64M --mountpoint "$mnt" --name wb "${vramfs_args[@]}" 2>&1) ||
  fail "on --writeback-cache 64M: $out"
[[ $(stat -c %s "$mnt/wb") == 67108864 ]] || fail "on --writeback-cache 64M: no 64M swap file"
[[ $out != *"+ "* ]] || fail "command trace without --verbose: $out"
"$helper" off wb --mountpoint "$mnt" >/dev/null
step "--verbose traces the commands; --direct-io on|off is the loop's old name, with a warning"
out=$("$helper" --verbose on 64M --direct-io off --mountpoint "$mnt" --name v "${vramfs_args[@]}" 2>&1) ||
  fail "on --verbose: $out"
grep -q "^+ mkswap" <<<"$out" || fail "--verbose does not trace: $out"
grep -q "now --loop-direct-io" <<<"$out" || fail "no warning for --direct-io off: $out"
[[ $(losetup --list --noheadings --output DIO "$(loops_of_test "$mnt/v")" | tr -d ' ') == 0 ]] ||
  fail "--direct-io off left the loop's direct I/O on"
"$helper" off v --mountpoint "$mnt" >/dev/null

step "on"
loop=$("$helper" on 128M --mountpoint "$mnt" --name s1 --priority 7 "${vramfs_args[@]}")
check_transport "$mnt"
swapon --show=NAME,PRIO --noheadings | grep -q "^$loop *7$" || fail "$loop not on with priority 7"
[[ $(used_mib "$mnt") -eq 128 ]] || fail "128 MiB should be reserved"
# The daemon runs in a cgroup of its own, not the caller's (memory controller: v1 or v2).
cgroup_of() { grep -E '^0::|:memory:' "/proc/$1/cgroup" | sort | tail -n1; }
daemon=$(daemon_pid "$mnt")
[[ -n $daemon ]] || fail "no daemon"
[[ $(cgroup_of "$daemon") != "$(cgroup_of $$)" ]] ||
  fail "the daemon shares the caller's cgroup: $(cgroup_of $$)"
[[ $(cgroup_of "$daemon") == *vramfs-swap* ]] || fail "daemon cgroup: $(cgroup_of "$daemon")"
again=$("$helper" on 128M --mountpoint "$mnt" --name s1 --priority 7 "${vramfs_args[@]}" \
  --page-cluster 4)
[[ $again == "$loop" ]] || fail "on twice made a second swap ($again)"
[[ $(cat /proc/sys/vm/page-cluster) -eq 4 ]] || fail "--page-cluster 4 did not set vm.page-cluster"
[[ $(grep -c "^/dev/loop" /proc/swaps) -ge 1 ]]

step "status"
table=$("$helper" status --mountpoint "$mnt")
echo "$table"
grep -q "^s1 *$loop *128M *128M" <<<"$table" || fail "status does not show s1"

step "status says LOST when the device is gone"
lost_loop=$("$helper" on 64M --mountpoint "$mnt2" --name s3 "${vramfs_args[@]}" \
  --inject-faults lost-after=300)
# Reads of the swap device (1 MiB each, past the read cache) reach the daemon until its 300th
# copy loses the device.
for _ in 1 2 3 4 5 6; do
  dd if="$lost_loop" of=/dev/null bs=1M iflag=direct status=none 2>/dev/null || break
done
table=$("$helper" status)
grep -q "^s3 .* LOST$" <<<"$table" || fail "status does not say LOST: $table"
grep -q "^s1 .* LOST$" <<<"$table" && fail "s1 is on a device that is not lost: $table"
"$helper" off s3 --mountpoint "$mnt2" || fail "off of a swap on a lost device failed"
mountpoint -q "$mnt2" && fail "the mount of the lost device was left behind"

step "off, then off on nothing"
"$helper" off s1 --mountpoint "$mnt"
swap_active() { awk -v d="$1" 'NR > 1 && $1 == d { f = 1 } END { exit !f }' /proc/swaps; }
swap_active "$loop" && fail "$loop still swapping"
mountpoint -q "$mnt" && fail "mount left behind"
"$helper" off all --mountpoint "$mnt" || fail "off on nothing failed"

step "off after the daemon was killed"
loop=$("$helper" on 64M --mountpoint "$mnt" --name s2 "${vramfs_args[@]}")
pid=$(daemon_pid "$mnt")
[[ -n $pid ]] || fail "no daemon"
kill -9 "$pid"
poll_until 10 process_gone "$pid" || fail "the daemon did not die"
rc=0; out=$("$helper" status --mountpoint "$mnt" 2>&1) || rc=$?
((rc == 1)) || fail "status with a dead daemon: exit $rc: $out"
grep -q "^s2 .* DAEMON-GONE$" <<<"$out" || fail "status does not show the dead daemon: $out"
grep -q "daemon of $mnt is gone" <<<"$out" || fail "status does not say the daemon is gone: $out"
"$helper" off all --mountpoint "$mnt" || fail "off after daemon death failed"
swap_active "$loop" && fail "swap still active"
losetup --list --noheadings --output BACK-FILE | grep -qF "$mnt/" && fail "loop device left attached"
grep -q " $mnt " /proc/mounts && fail "dead mount left behind"
echo "vramfs-swap on $backend: ok"
