#!/usr/bin/env bash
# Over FUSE over io_uring, one CPU's requests are served by several threads side by side: the
# kernel sends a request to the queue of the CPU it was made on, and a loop device's reads, made
# by its one worker, all land on one queue. Four readers pinned to CPU 0 keep several requests
# on queue 0 at once; more than one of that queue's threads must then have served some (the
# daemon's per-thread counts, a debug line at unmount). With one thread per queue
# (--ring-queue-threads 1) it fails.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
[[ -w /dev/fuse ]] || skip "no usable /dev/fuse"
[[ $transport == uring ]] || fail "this test is for --transport uring"
command -v taskset >/dev/null || skip "taskset (util-linux) is not installed"
require_backend

mnt=$(mktemp -d /tmp/vramfs-ring-XXXXXX)
log=$(mktemp /tmp/vramfs-ring-log-XXXXXX)
pid=
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  [[ -z $pid ]] || wait "$pid" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

step "mount over io_uring, debug log"
"$bin" -f --log-level debug "$mnt" 64M "${vramfs_args[@]}" 2>"$log" &
pid=$!
for _ in $(seq 100); do
  grep -q " $mnt " /proc/mounts && break
  kill -0 "$pid" 2>/dev/null || fail "vramfs exited: $(cat "$log")"
  sleep 0.1
done
grep -q " $mnt " /proc/mounts || fail "not mounted after 10 s"
check_transport "$mnt"
grep "FUSE over io_uring:" "$log" || fail "no io_uring layout line in the log"

step "four readers on CPU 0, 4 KiB O_DIRECT reads"
dd if=/dev/urandom of="$mnt/f" bs=1M count=8 status=none
readers=()
for _ in 1 2 3 4; do
  taskset -c 0 dd if="$mnt/f" of=/dev/null bs=4k iflag=direct status=none &
  readers+=($!)
done
for r in "${readers[@]}"; do wait "$r" || fail "a reader failed"; done

step "unmount; queue 0's threads"
fusermount3 -u "$mnt"
wait "$pid" || fail "vramfs exited with an error: $(tail -5 "$log")"
pid=
split=$(grep "requests by queue" "$log") || fail "no per-thread counts in the log: $(tail -5 "$log")"
echo "$split"
queue0=$(grep -o ' 0:[0-9+]*' <<<"$split" | tr -d ' ') || fail "queue 0 served nothing"
busy=0
IFS=+ read -r -a counts <<<"${queue0#0:}"
for c in "${counts[@]}"; do ((c == 0)) || busy=$((busy + 1)); done
echo "queue 0: ${#counts[@]} threads, $busy served requests"
((busy >= 2)) || fail "one thread served all of queue 0's requests ($queue0)"
echo "PASSED"
