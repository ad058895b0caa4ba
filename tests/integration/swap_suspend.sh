#!/usr/bin/env bash
# vramfs-swap suspend and resume, as the sleep units run them: a workload's pages in VRAM swap
# under memory pressure; suspend refused while its cgroup's limit leaves them no room, and when
# they cannot fit in RAM (available RAM stood in for by the test hook); then done: no VRAM swap on, and every byte of the workload intact; the card
# "loses" the swap's contents; resume makes it afresh and it is on again. Then resume after the
# daemon died during the sleep, and the systemd units checked by systemd-analyze.
# Environment: VRAMFS_BIN, VRAMFS_TEST_BACKEND, VRAMFS_PRESSURE. Exit 77: skipped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment
pressure=${VRAMFS_PRESSURE:?set VRAMFS_PRESSURE to the vramfs-pressure binary}

mnt=$(mktemp -d /tmp/vramfs-suspend-XXXXXX)
state=$(mktemp -d /tmp/vramfs-suspend-state-XXXXXX)
export VRAMFS_SWAP_STATE_DIR=$state
hold=$mnt.hold
workload=""
cleanup() {
  rm -f "$hold"
  [[ -z $workload ]] || { kill "$workload" 2>/dev/null; wait "$workload" 2>/dev/null; } || true
  "$helper" off all --mountpoint "$mnt" >/dev/null 2>&1 || true
  umount -l "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup EXIT

swap_kib() { awk -v d="$1" '$1 == d { print $4 }' /proc/swaps; }
loop_is_on() { swapon --show=NAME --noheadings | grep -qx "$1"; }

step "usage"
rc=0; "$helper" suspend --bogus 2>/dev/null || rc=$?; ((rc == 2)) || fail "suspend --bogus: exit $rc"
rc=0; "$helper" suspend --margin 1X 2>/dev/null || rc=$?; ((rc == 2)) || fail "suspend --margin 1X: exit $rc"
rc=0; "$helper" resume extra 2>/dev/null || rc=$?; ((rc == 2)) || fail "resume extra: exit $rc"
"$helper" suspend --mountpoint "$mnt" 2>&1 | grep -q "nothing to turn off" || fail "suspend with no swap"
"$helper" resume --mountpoint "$mnt" 2>&1 | grep -q "nothing was suspended" || fail "resume with nothing"

step "a workload's pages in VRAM swap ($backend)"
loop=$("$helper" on 768M --mountpoint "$mnt" --name gpu0 "${vramfs_args[@]}")
check_transport "$mnt"
"$pressure" --working-set 512M --limit 128M --timeout 240 --hold-file "$hold" &
workload=$!
for _ in $(seq 1200); do
  [[ -f $hold ]] && break
  kill -0 "$workload" 2>/dev/null || fail "the workload ended before it filled its memory"
  sleep 0.2
done
[[ -f $hold ]] || fail "the workload did not fill its memory within 240 s"
child=$(cat "$hold")
held=$(swap_kib "$loop")
echo "VRAM swap $loop holds $((held / 1024)) MiB of the workload (pid $child)"
((held > 100 * 1024)) || fail "too little in VRAM swap: $held KiB"

step "suspend refused while the workload's cgroup limit leaves no room for its pages"
rc=0; out=$("$helper" suspend --mountpoint "$mnt" 2>&1) || rc=$?
echo "$out"
((rc == 1)) || fail "suspend with the pages over their cgroup's limit: exit $rc"
[[ $(wc -l <<<"$out") -eq 1 && $out == *"memory cgroup"*"MiB missing"* ]] || fail "not one line naming the cgroup"
loop_is_on "$loop" || fail "a refused suspend turned the swap off"
# Raised, as that line asks (the workload's own cgroup, v2 or v1).
if cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$child/cgroup") && [[ -f /sys/fs/cgroup$cg/memory.max ]]; then
  echo max >"/sys/fs/cgroup$cg/memory.max"
else
  cg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' "/proc/$child/cgroup")
  echo -1 >"/sys/fs/cgroup/memory$cg/memory.limit_in_bytes"
fi

step "suspend refused when the pages cannot fit in RAM and other swap"
# Available RAM stood in for as 0; the margin covers whatever other swap this machine has.
other=$(awk -v d="$loop" 'NR > 1 && $1 != d { free += $3 - $4 } END { print free + 0 }' /proc/swaps)
rc=0
out=$(VRAMFS_SWAP_TEST_MEM_AVAILABLE=0 "$helper" suspend --mountpoint "$mnt" \
  --margin "$((other / 1024 + 64))M" 2>&1) || rc=$?
echo "$out"
((rc == 1)) || fail "suspend that cannot fit: exit $rc"
[[ $(wc -l <<<"$out") -eq 1 && $out == *"MiB missing"* ]] || fail "not one line saying what is missing"
loop_is_on "$loop" || fail "a refused suspend turned the swap off"
[[ ! -s $state/suspended ]] || fail "a refused suspend recorded a swap as suspended"

step "suspend: the pages come back, the swap goes off"
"$helper" suspend --mountpoint "$mnt"
loop_is_on "$loop" && fail "VRAM swap still on after suspend"
vram=$(awk 'NR > 1 && $1 ~ /loop/' /proc/swaps | while read -r d _; do
  back=$(losetup --list --noheadings --output BACK-FILE "$d"); [[ $back == "$mnt"/* ]] && echo "$d"; done)
[[ -z $vram ]] || fail "VRAM swap on after suspend: $vram"
"$helper" status --mountpoint "$mnt" | tee /dev/stderr | grep -q "gpu0 .*SUSPENDED" ||
  fail "status does not show gpu0 as suspended"
if [[ $(wc -l </proc/swaps) -eq 1 ]]; then
  grep -q "^VmSwap:[[:space:]]*0 kB" "/proc/$child/status" || fail "the workload still has pages in swap"
fi

step "the card loses what the swap held (its header too)"
dd if=/dev/urandom of="$mnt/gpu0" bs=1M count=4 conv=notrunc,fsync status=none
rc=0; swapon "$loop" 2>/dev/null || rc=$?
((rc != 0)) || fail "swapon took a swap whose header was overwritten"

step "every byte of the workload intact"
rm -f "$hold"
rc=0; wait "$workload" || rc=$?
workload=""
((rc == 0)) || fail "the workload found its memory changed or died (exit $rc)"

step "resume: on again, with a fresh header, on the same mount"
daemon=$(daemon_pid "$mnt")
out=$("$helper" resume)
[[ $out == "$loop" ]] || fail "resume printed '$out', not $loop"
[[ $(daemon_pid "$mnt") == "$daemon" ]] || fail "resume remade the mount where a fresh mkswap would do"
swapon --show=NAME,PRIO --noheadings | grep -q "^$loop *100$" || fail "$loop is not back on at priority 100"
"$helper" status --mountpoint "$mnt" | grep -q SUSPENDED && fail "still shown as suspended"
"$helper" resume 2>&1 | grep -q "nothing was suspended" || fail "a second resume did something"

step "resume after the daemon did not survive the sleep"
"$helper" suspend --mountpoint "$mnt"
kill -9 "$daemon"
poll_until 5 process_gone "$daemon" || true
new=$("$helper" resume --mountpoint "$mnt")
loop_is_on "$new" || fail "no swap on after resume ($new)"
[[ $(losetup --list --noheadings --output BACK-FILE "$new") == "$mnt/gpu0" ]] || fail "$new is not over $mnt/gpu0"
now=$(daemon_pid "$mnt")
[[ -n $now && $now != "$daemon" ]] || fail "no new daemon"
"$bin" status "$mnt" >/dev/null || fail "the new mount does not answer"

step "off while suspended: resume does not bring it back"
"$helper" suspend --mountpoint "$mnt"
"$helper" off all --mountpoint "$mnt" >/dev/null
"$helper" resume 2>&1 | grep -q "nothing was suspended" || fail "resume after off did something"
mountpoint -q "$mnt" && fail "still mounted after off"

step "the sleep units"
if command -v systemd-analyze >/dev/null; then
  units=$(mktemp -d)
  for u in vramfs-swap vramfs-swap-suspend vramfs-swap-resume; do
    sed "s|/usr/sbin/vramfs-swap|$helper|" "$here/../../mount-helpers/systemd/$u.service" >"$units/$u.service"
  done
  systemd-analyze verify --man=no "$units"/*.service || fail "systemd-analyze verify"
  rm -rf "$units"
else
  echo "not run: systemd-analyze is not installed"
fi
echo "suspend and resume on $backend: ok"
