#!/usr/bin/env bash
# On a GPU machine: VRAM that yields. A workload's pages in a vramfs-swap with --spill, then a
# program that claims the card the way a game loads (vramfs-vram-claim: STEP every 100 ms up to
# all but LEAVE): it must get all of it while the mount moves pages to the spill, and the
# workload must check every byte. Reports how fast VRAM came back beside the disk's own write
# speed (measured here, O_DIRECT), then the swap rows again after the claim ends (reclaim).
# Usage: tests/gpu/spill_yield.sh BUILD_DIR [cuda|vulkan]   Logs and JSON go to ${OUT:-/tmp}.
# Environment: SWAP (default 16G), WS (workload, default 12G), LIMIT (its cgroup, default 2G),
# SPILL_DIR (a directory on a local disk, default /var/tmp).
set -euo pipefail
build=${1:-build}
backend=${2:-cuda}
out=${OUT:-/tmp}
bin=$(realpath "$build/vramfs")
export VRAMFS_BIN=$bin
here=$(cd "$(dirname "$0")" && pwd)
helper=$here/../../mount-helpers/vramfs-swap
claim=$build/tests/vramfs-vram-claim
pressure=$build/tests/vramfs-pressure
swap=${SWAP:-16G} ws=${WS:-12G} limit=${LIMIT:-2G}
spill=$(mktemp -d "${SPILL_DIR:-/var/tmp}/vramfs-spill-XXXXXX")
mnt=$(mktemp -d /tmp/vramfs-yield-XXXXXX)
hold=$mnt.hold claim_hold=$mnt.claim
cleanup() {
  rm -f "$hold" "$claim_hold"
  wait 2>/dev/null || true
  "$helper" off all --mountpoint "$mnt" >/dev/null 2>&1 || true
  rm -rf "$spill" "$mnt"
}
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
status() { "$bin" status "$mnt" --json; }
field() { status | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }

echo "== $backend: the disk under the spill ($(df -h --output=source,size,avail "$spill" | tail -1))"
dd if=/dev/zero of="$spill/dd" bs=16M count=256 oflag=direct 2>&1 | tail -1 | tee "$out/disk-$backend.txt"
rm -f "$spill/dd"

echo "== $backend: vramfs-swap on $swap --spill (written once at mount)"
start=$(date +%s.%N)
loop=$("$helper" on "$swap" --mountpoint "$mnt" --name gpu0 --spill "$spill" --keep-free 2G --backend "$backend")
echo "on: $loop in $(since "$start") s"
nvidia-smi --query-gpu=memory.used,memory.free --format=csv,noheader

echo "== workload: $ws under a $limit cgroup, its pages into VRAM swap"
"$pressure" --working-set "$ws" --limit "$limit" --timeout 600 --hold-file "$hold" \
  --json "$out/workload-$backend.json" >"$out/workload-$backend.log" 2>&1 &
workload=$!
for _ in $(seq 3000); do [[ -f $hold ]] && break; kill -0 $workload 2>/dev/null || fail "workload died"; sleep 0.2; done
[[ -f $hold ]] || fail "the workload did not fill its memory"
echo "swap holds $(awk -v d="$loop" '$1 == d { print int($4 / 1024) }' /proc/swaps) MiB; vramfs in VRAM $(($(field in_vram) >> 20)) MiB"

echo "== a program claims the card: 1 GiB every 100 ms up to all but 4 GiB"
touch "$claim_hold"
"$claim" --step 1G --every-ms 100 --leave 4G --timeout 120 --hold-file "$claim_hold" >"$out/claim-$backend.json" &
claimer=$!
for _ in $(seq 1500); do grep -q '"ok"' "$out/claim-$backend.json" 2>/dev/null && break; sleep 0.2; done
cat "$out/claim-$backend.json"
grep -q '"ok":true' "$out/claim-$backend.json" || fail "the claim did not get what it asked for"
status | tee "$out/status-yielded-$backend.json" | grep -o '"spill":{[^}]*}'
nvidia-smi --query-gpu=memory.used,memory.free --format=csv,noheader

echo "== the workload checks every byte"
rm -f "$hold"
rc=0; wait $workload || rc=$?
cat "$out/workload-$backend.log"
((rc == 0)) || fail "the workload's bytes did not check out (exit $rc)"

echo "== the claim ends: data comes back to VRAM"
start=$(date +%s.%N)
rm -f "$claim_hold"; wait $claimer || true
for _ in $(seq 600); do
  status | grep -q '"on_spill":0,' && status | grep -q '"settled":true' && break
  sleep 0.1
done
echo "back in $(since "$start") s: $(status | grep -o '"spill":{[^}]*}')"

echo "== the swap rows again (the same workload, nothing claimed)"
"$pressure" --working-set "$ws" --limit "$limit" --timeout 600 --threads 8 --json "$out/workload2-$backend.json" 2>&1 | tail -5
echo "== $backend: ok"
