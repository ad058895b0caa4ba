#!/usr/bin/env bash
# Swap across two devices: vramfs-swap on --device 0,1 makes one swap per device at equal
# priority; under memory pressure both take pages and every byte comes back; the status view
# (JSON, parsed back) shows one swap file on each device. Exit 77: skipped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment
command -v setfattr >/dev/null || skip "setfattr (package attr) is not installed"
command -v python3 >/dev/null || skip "python3 is needed to parse the JSON"
pressure=${VRAMFS_PRESSURE:?set VRAMFS_PRESSURE to the vramfs-pressure binary}
if [[ $backend != host ]] && (($("$bin" --list-devices "${vramfs_args[@]}" | wc -l) < 3)); then
  skip "fewer than two GPUs"
fi

helper_mountpoint pools

step "vramfs-swap on 512M --device 0,1"
mapfile -t loops < <("$helper" on 512M --device 0,1 --mountpoint "$mnt" --priority 50 "${vramfs_args[@]}")
check_transport "$mnt"
((${#loops[@]} == 2)) || fail "expected two swap devices, got: ${loops[*]}"
for l in "${loops[@]}"; do
  awk -v d="$l" '$1 == d && $5 == 50 { f = 1 } END { exit !f }' /proc/swaps || fail "$l is not on at priority 50"
done
again=$("$helper" on 512M --device 0,1 --mountpoint "$mnt" --priority 50 "${vramfs_args[@]}" | wc -l)
((again == 2)) || fail "on twice changed something"
[[ $(grep -c "^/dev/loop" /proc/swaps) -ge 2 ]]

step "status: one swap file on each device"
"$bin" status "$mnt"
"$bin" status "$mnt" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
devs = {x["index"]: x for x in d["devices"]}
assert set(devs) == {0, 1}, devs
files = {f["name"]: f for f in d["files"]}
assert files["gpu0"]["device"] == 0 and files["gpu1"]["device"] == 1, files
for i in (0, 1):
    assert devs[i]["files"] == 1 and devs[i]["used"] == 512 << 20, devs[i]
print("status JSON parsed: ok")
'

table=$("$helper" status --mountpoint "$mnt")
echo "$table"
grep -Eq "^gpu0 .* (host|cuda)0$" <<<"$table" || fail "vramfs-swap status does not show gpu0 on device 0"
grep -Eq "^gpu1 .* (host|cuda)1$" <<<"$table" || fail "vramfs-swap status does not show gpu1 on device 1"

step "pressure: pages go to both devices and all come back"
start_swap_watch
rc=0
"$pressure" --working-set 448M --limit 112M --timeout 240 || rc=$?
peaks=$(stop_swap_watch)
((rc == 0)) || fail "pressure run failed (exit $rc)"
for l in "${loops[@]}"; do
  max=$(awk -v d="$l" '$1 == d { m = $2 } END { print m + 0 }' <<<"$peaks")
  echo "$l peak swap use: ${max} KiB"
  ((max > 0)) || fail "$l took no pages: no striping"
done
"$helper" off all --mountpoint "$mnt" >/dev/null
mountpoint -q "$mnt" && fail "still mounted"
echo "swap across two devices on $backend: ok"
