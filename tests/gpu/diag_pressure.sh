#!/usr/bin/env bash
# Diagnoses a hang of swap under pressure with the daemon in the limited cgroup: runs it with
# and without discards, and on a hang prints the kernel stacks of the daemon's threads (and a
# user-space backtrace when cuda-gdb is there) before aborting the FUSE connection.
# Usage: tests/gpu/diag_pressure.sh BUILD_DIR [BACKEND]
set -uo pipefail
build=${1:-build}
backend=${2:-cuda}
here=$(cd "$(dirname "$0")" && pwd)
export VRAMFS_BIN=$build/vramfs VRAMFS_TEST_BACKEND=$backend
# shellcheck source=tests/integration/lib.sh
source "$here/../integration/lib.sh"
pressure=$build/tests/vramfs-pressure

try() {
  local discard=$1 prerun=$2 mnt
  mnt=$(mktemp -d /tmp/vramfs-diag-XXXXXX)
  "$helper" on 1024M --mountpoint "$mnt" --name d --discard "$discard" --backend "$backend" \
    --release-delay 1 >/dev/null
  local pid
  pid=$(daemon_pid "$mnt")
  if [[ $prerun == daemon ]]; then
    "$pressure" --working-set 768M --limit 192M --timeout 60 --also-pid "$pid"
  fi
  if [[ $prerun != no ]]; then
    "$pressure" --working-set 768M --limit 192M --timeout 60
    sleep 3 # discarded slabs go back to the device (release delay 1 s)
    echo "device memory held: $(reserved_mib "$mnt") MiB, used $(used_mib "$mnt") MiB"
  fi
  echo "== discard=$discard prerun=$prerun: daemon in the cgroup"
  "$pressure" --working-set 768M --limit 192M --timeout 60 --also-pid "$pid" &
  local ppid=$!
  for _ in $(seq 55); do kill -0 "$ppid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$ppid" 2>/dev/null; then
    echo "HANG"
    dump_threads "$pid"
    abort_fuse "$mnt"
  fi
  wait "$ppid"
  echo "pressure exit $?"
  "$helper" off all --mountpoint "$mnt" >/dev/null 2>&1 || abort_fuse "$mnt"
  rmdir "$mnt" 2>/dev/null
}

# prerun: no; yes (the workload alone first, so discards hand slabs back); daemon (first with
# the daemon in the cgroup, then alone: the sequence of the swap_pressure test).
for case in ${DIAG_CASES:-none:no pages:yes pages:daemon}; do
  try "${case%%:*}" "${case##*:}"
done
