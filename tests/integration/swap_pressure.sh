#!/usr/bin/env bash
# Swap on vramfs under real memory pressure: a workload 4x its cgroup's memory limit is pushed
# into a vramfs swap and must come back intact, in bounded time; then again with the vramfs
# daemon inside the same memory-limited cgroup, so reclaim hits the daemon itself; then the
# swap's freed clusters must come back to the mount as discards.
# Environment: VRAMFS_BIN, VRAMFS_TEST_BACKEND, VRAMFS_PRESSURE (the pressure tool),
# optional PRESSURE_WS_MIB (working set, default 768) and VRAMFS_MOUNT_OPTS (more vramfs
# options for the swap's mount, e.g. "--poll-us 200") and PRESSURE_TIMEOUT_S (seconds without
# progress that count as a hang, default 240). Exit 77: skipped.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
require_swap_environment
pressure=${VRAMFS_PRESSURE:?set VRAMFS_PRESSURE to the vramfs-pressure binary}
ws_mib=${PRESSURE_WS_MIB:-768}
limit_mib=$((ws_mib / 4))
swap_mib=$((ws_mib + 256))
read -r -a mount_opts <<<"${VRAMFS_MOUNT_OPTS:-}"
hang_s=${PRESSURE_TIMEOUT_S:-240}

helper_mountpoint pressure

step "vramfs-swap on ${swap_mib}M ($backend)"
loop=$("$helper" on "${swap_mib}M" --mountpoint "$mnt" --name pressure "${vramfs_args[@]}" \
  --release-delay 1 "${mount_opts[@]}")
echo "swap device: $loop"
check_transport "$mnt"
awk -v d="$loop" 'NR > 1 && $1 != d && $5 >= 100 { bad = 1; print "other swap with priority >= 100: " $0 }
                  END { exit bad }' /proc/swaps || fail "another swap would take the pages"

run_pressure() {
  local label=$1
  shift
  step "$label: working set ${ws_mib}M under a ${limit_mib}M cgroup limit"
  local rc=0
  "$pressure" --working-set "${ws_mib}M" --limit "${limit_mib}M" --timeout "$hang_s" "$@" || rc=$?
  case $rc in
    0) ;;
    3)
      dump_threads "$(daemon_pid "$mnt")"
      abort_fuse "$mnt"
      fail "$label: the workload hung (no progress within $hang_s s)" ;;
    *) fail "$label: exit $rc (corruption or the workload died)" ;;
  esac
}

# The daemon in the workload's cgroup first, while the swap file is fully backed by fallocate:
# serving swap then needs no new device memory. Again at the end, after discards have handed
# slabs back to the device, so that serving swap means taking device memory again while the
# daemon's own cgroup is out of memory.
pid=$(daemon_pid "$mnt")
[[ -n $pid ]] || fail "cannot find the vramfs daemon"
run_pressure "daemon in the same cgroup" --also-pid "$pid" --json "$mnt.daemon.json"

run_pressure "workload alone" --json "$mnt.alone.json"
# Each phase's own pages: the fill pushes out about ws - limit, and the check reads it back.
half=$(((ws_mib - limit_mib) * 1048576 / 2))
out=$(grep -o '"swap_out_bytes":[0-9]*' "$mnt.alone.json" | cut -d: -f2)
back=$(grep -o '"swap_in_bytes":[0-9]*' "$mnt.alone.json" | cut -d: -f2)
((out >= half)) || fail "too little went to swap: $out bytes"
((back >= half)) || fail "too little came back from swap: $back bytes"
rm -f "$mnt.alone.json" "$mnt.daemon.json"

step "discard: freed swap clusters go back to the mount"
reserved=$swap_mib
for _ in $(seq 50); do
  now=$(used_mib "$mnt")
  ((now < reserved - 64)) && break
  sleep 0.2
done
echo "mount uses ${now} MiB of the ${reserved} MiB reserved by fallocate"
((now < reserved - 64)) || fail "discards did not free VRAM (still ${now} MiB used)"
"$helper" status --mountpoint "$mnt"

step "the emptied slabs go back to the device (release delay 1 s)"
# All but the slabs that still hold a used block and at most one empty slab kept open ahead of
# need. (Which slabs the last used blocks are in is the kernel's choice of swap slots: a few
# MiB still in use can keep several slabs, so the count of empty slabs is what is checked.)
for _ in $(seq 100); do
  empty=$(empty_slabs "$mnt")
  ((empty <= 1)) && break
  sleep 0.2
done
held=$(reserved_mib "$mnt")
echo "the mount holds ${held} MiB of device memory for ${now} MiB used, ${empty} slab(s) empty"
((empty <= 1)) || fail "the emptied slabs did not go back to the device (${empty} empty slabs held)"
((held < reserved)) || fail "no slab went back to the device (${held} MiB held)"
# The host backend takes its slabs from an arena locked at mount, so this needs no new memory.
# The CUDA driver may fault in host memory inside cudaMalloc while holding a lock the other
# workers' copies need; in a cgroup that is out of memory that fault waits on swap I/O, which
# is a deadlock unless the daemon is an I/O flusher (PR_SET_IO_FLUSHER, CAP_SYS_RESOURCE):
# docs/troubleshooting.md ("Known hazard"). So on cuda this step needs the daemon to be one.
flags=$(stat_field "/proc/$pid" 7)
if [[ $backend == host ]] || ((flags & 0x80000)); then
  run_pressure "daemon in the same cgroup, re-taking device memory" --also-pid "$pid"
  echo "after it the mount holds $(reserved_mib "$mnt") MiB of device memory"
else
  echo "not run: daemon in the same cgroup re-taking device memory ($backend, the daemon is" \
    "not an I/O flusher: CAP_SYS_RESOURCE is missing)"
fi

"$helper" off all --mountpoint "$mnt" >/dev/null
mountpoint -q "$mnt" && fail "still mounted after off"
echo "swap under pressure on $backend: ok"
