#!/usr/bin/env bash
# VRAM that yields: a swap mounted with --spill under a workload's pages in VRAM swap. The card
# loses free memory (host: a simulated card whose size the test sets; vulkan and cuda: vramfs
# yield) and the mount moves pages to the spill until the keep-free mark holds, with the daemon
# outside the workload's cgroup and inside it; every byte checks out; reclaim brings them back.
# Then suspend with too little RAM for swapoff goes ahead through the spill, and resume brings
# the pages back intact; and the bad spill places. (fsx while blocks move: fsx.sh.)
# Environment: VRAMFS_BIN, VRAMFS_TEST_BACKEND, VRAMFS_PRESSURE. Exit 77: skipped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment
pressure=${VRAMFS_PRESSURE:?set VRAMFS_PRESSURE to the vramfs-pressure binary}

helper_mountpoint spill
# The spill goes on the disk the tests run from (/var/tmp: tmpfs is refused, rightly).
spill=$(mktemp -d /var/tmp/vramfs-spill-XXXXXX)
card=$spill.card
state=$(mktemp -d /tmp/vramfs-spill-state-XXXXXX)
export VRAMFS_SWAP_STATE_DIR=$state
hold=$mnt.hold
workload=""
cleanup() {
  rm -f "$hold"
  [[ -z $workload ]] || { kill "$workload" 2>/dev/null; wait "$workload" 2>/dev/null; } || true
  helper_cleanup
  rm -rf "$spill" "$card" "$state"
}
trap cleanup EXIT

json() { "$bin" status "$mnt" --json; }
# One number of the first device's spill status.
spill_field() { json | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }
settled() { json | grep -q '"settled":true'; }
mib() { echo $(($1 / 1048576)); }

# Starts the pressure workload (more args: --also-pid PID) and waits until its pages are in swap.
start_workload() {
  "$pressure" --working-set 320M --limit 96M --timeout 300 --hold-file "$hold" "$@" &
  workload=$!
  for _ in $(seq 1500); do
    [[ -f $hold ]] && return 0
    kill -0 "$workload" 2>/dev/null || fail "the workload ended before it filled its memory"
    sleep 0.2
  done
  fail "the workload did not fill its memory within 300 s"
}
# Lets the workload read every page back and check it.
finish_workload() {
  rm -f "$hold"
  local rc=0
  wait "$workload" || rc=$?
  workload=""
  ((rc == 0)) || fail "the workload's bytes did not check out after $1 (exit $rc)"
  echo "every byte of the workload checks out after $1"
}

# The card loses free memory: host plays a card 16 MiB larger than what the files hold, so that
# even with every empty slab given back it has less free than the 64M mark; other backends are
# told to give 128 MiB back. Either way pages must move to the spill.
take_card() {
  if [[ $backend == host ]]; then
    echo $(($(status_total "$mnt" used) + (16 << 20))) >"$card"
    poll_until 60 mark_holds || fail "the keep-free mark was not restored: $(json)"
  else
    "$helper" yield 128M --mountpoint "$mnt" || fail "vramfs-swap yield 128M failed"
  fi
  local out
  out=$(spill_field on_spill)
  ((out > 0)) || fail "nothing moved to the spill: $(json)"
  echo "on the spill: $(mib "$out") MiB, in VRAM: $(mib "$(spill_field in_vram)") MiB"
}
mark_holds() { settled && (($(status_total "$mnt" free_on_card) >= 64 << 20)); }
give_card() {
  [[ $backend != host ]] || echo $((4 << 30)) >"$card"
  "$helper" reclaim --mountpoint "$mnt" >/dev/null || fail "vramfs-swap reclaim failed"
  poll_until 60 all_back || fail "the pages did not come back to VRAM: $(json)"
  echo "back in VRAM: moved in $(mib "$(spill_field moved_in)") MiB so far"
}
all_back() { settled && (($(spill_field on_spill) == 0)); }

step "bad spill places are refused with one line and exit 2"
bad() {
  local rc=0 out
  out=$("$bin" "$mnt" 64M "${vramfs_args[@]}" --spill "$1" 2>&1) || rc=$?
  ((rc == 2)) || fail "--spill $1: exit $rc ($out)"
  [[ $(wc -l <<<"$out") -eq 1 && $out == *"$2"* ]] || fail "--spill $1: not one line saying '$2': $out"
  echo "--spill $1: $out"
}
bad /dev/shm "tmpfs"
bad "$mnt/spill" "inside the mount point"
bad /nonexistent-dir/spill "No such file"
rc=0; "$helper" yield 1X --mountpoint "$mnt" 2>/dev/null || rc=$?; ((rc == 2)) || fail "yield 1X: exit $rc"

step "a swap with a spill ($backend)"
echo $((4 << 30)) >"$card"
card_args=()
[[ $backend != host ]] || card_args=(--host-card-file "$card")
loop=$("$helper" on 512M --mountpoint "$mnt" --name gpu0 --spill "$spill" --keep-free 64M \
  "${card_args[@]}" "${vramfs_args[@]}")
check_transport "$mnt"
"$bin" status "$mnt" --devices | grep -q " spill$" || fail "status --devices does not say spill"

step "the card wants its memory back while the workload's pages are in swap"
start_workload
take_card
finish_workload "moving to the spill"
give_card

step "the same with the daemon inside the workload's cgroup"
daemon=$(daemon_pid "$mnt")
[[ -n $daemon ]] || fail "no daemon for $mnt"
start_workload --also-pid "$daemon"
if [[ $backend == host ]]; then
  take_card
  finish_workload "moving to the spill from inside the cgroup"
else
  # A GPU driver's calls may fault in host memory, so with the daemon's memory short nothing
  # moves: the yield waits, unsettled, until the workload's pressure is over; nothing hangs.
  "$bin" yield "$mnt" 128M --no-wait >/dev/null || fail "vramfs yield --no-wait failed"
  finish_workload "a yield asked for from inside the cgroup"
  poll_until 60 settled || fail "the yield did not finish once memory was no longer short: $(json)"
  (($(spill_field in_vram) <= $(spill_field vram_limit))) || fail "the yield did not hold: $(json)"
fi
give_card

step "suspend with too little RAM for swapoff goes ahead through the spill"
start_workload
rc=0
VRAMFS_SWAP_TEST_MEM_AVAILABLE=0 "$helper" suspend --mountpoint "$mnt" || rc=$?
((rc == 0)) || fail "suspend with a spill: exit $rc"
swapon --show=NAME --noheadings | grep -qx "$loop" || fail "suspend turned the spilled swap off"
(($(spill_field in_vram) == 0)) || fail "VRAM still held after suspend: $(json)"
grep -q "$mnt" "$state/yielded" || fail "suspend did not record the yield"
"$helper" resume --mountpoint "$mnt" || fail "resume failed"
poll_until 60 all_back || fail "the pages did not come back after resume: $(json)"
finish_workload "suspend and resume through the spill"
"$helper" off all --mountpoint "$mnt" >/dev/null

echo "spill on $backend: ok"
