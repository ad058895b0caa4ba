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

dump() {
  local pid=$1 t
  echo "---- daemon $pid threads"
  for t in /proc/"$pid"/task/*; do
    echo "thread ${t##*/} $(cat "$t/wchan" 2>/dev/null) $(awk '{print $3}' "$t/stat")"
    grep -q "^\[<0>\] [a-z]" "$t/stack" 2>/dev/null && [[ $(awk '{print $3}' "$t/stat") == D ]] && head -25 "$t/stack"
  done
}

try() {
  local discard=$1 prerun=$2 mnt
  mnt=$(mktemp -d /tmp/vramfs-diag-XXXXXX)
  "$helper" on 1024M --mountpoint "$mnt" --name d --discard "$discard" --backend "$backend" >/dev/null
  local pid
  pid=$(daemon_pid "$mnt")
  if [[ $prerun == yes ]]; then "$pressure" --working-set 768M --limit 192M --timeout 60; fi
  echo "== discard=$discard prerun=$prerun: daemon in the cgroup"
  "$pressure" --working-set 768M --limit 192M --timeout 60 --also-pid "$pid" &
  local ppid=$!
  for _ in $(seq 55); do kill -0 "$ppid" 2>/dev/null || break; sleep 1; done
  if kill -0 "$ppid" 2>/dev/null; then
    echo "HANG"
    dump "$pid"
    abort_fuse "$mnt"
  fi
  wait "$ppid"
  echo "pressure exit $?"
  "$helper" off all --mountpoint "$mnt" >/dev/null 2>&1 || abort_fuse "$mnt"
  rmdir "$mnt" 2>/dev/null
}

try none no
try pages yes
