# shellcheck shell=bash
# Shared by the shell integration tests: skipping, failing, and the environment they need.
# Expects VRAMFS_BIN and VRAMFS_TEST_BACKEND (host, cuda or vulkan), and VRAMFS_TEST_TRANSPORT
# (dev or uring; unset: vramfs's default). Exit 77 means skipped.

skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }
step() { echo "== $*"; }

bin=${VRAMFS_BIN:?set VRAMFS_BIN to the vramfs binary}
export VRAMFS_BIN=$bin
backend=${VRAMFS_TEST_BACKEND:-host}
transport=${VRAMFS_TEST_TRANSPORT:-}
# What every mount of a test is given (vramfs-swap passes them on to vramfs).
vramfs_args=(--backend "$backend")
[[ -z $transport ]] || vramfs_args+=(--transport "$transport")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034 # used by the scripts that source this file
helper=$here/../../mount-helpers/vramfs-swap

# Skips a _uring suite where the kernel does not carry FUSE over io_uring (enable_uring is N
# by default). CI turns it on and sets VRAMFS_REQUIRE_URING, which makes its absence a failure.
require_transport() {
  [[ $transport == uring ]] || return 0
  local param=/sys/module/fuse/parameters/enable_uring why
  if [[ ! -r $param ]]; then
    why="this kernel has no FUSE over io_uring (Linux 6.14+ with CONFIG_FUSE_IO_URING)"
  elif [[ $(cat "$param") != [Y1] ]]; then
    why="FUSE over io_uring is off in this kernel (as root: echo 1 > $param)"
  else
    return 0
  fi
  [[ -z ${VRAMFS_REQUIRE_URING:-} ]] || fail "$why (VRAMFS_REQUIRE_URING is set)"
  skip "$why"
}

# Skips unless the backend and the transport under test can run here (cuda: a usable GPU;
# vulkan: a Vulkan device, which CI has in lavapipe: there VRAMFS_REQUIRE_VULKAN makes its
# absence a failure; uring: see require_transport).
require_backend() {
  require_transport
  case $backend in
    cuda) "$bin" --list-devices --backend cuda >/dev/null 2>&1 || skip "no CUDA device" ;;
    vulkan)
      if ! "$bin" --list-devices --backend vulkan >/dev/null 2>&1; then
        [[ -z ${VRAMFS_REQUIRE_VULKAN:-} ]] || fail "no Vulkan device (VRAMFS_REQUIRE_VULKAN is set)"
        skip "no Vulkan device"
      fi ;;
  esac
}

require_swap_environment() {
  [[ -w /dev/fuse ]] || skip "no usable /dev/fuse"
  [[ $(id -u) -eq 0 ]] || skip "losetup and swapon need root"
  local tool
  for tool in losetup mkswap swapon swapoff fallocate; do
    command -v "$tool" >/dev/null || skip "$tool is not installed"
  done
  require_backend
}

# MiB used on a mount, from statfs.
used_mib() { df --block-size=1M --output=used "$1" | tail -1 | tr -d ' '; }
# Runs a command every 0.1 s until it succeeds (0) or SECONDS pass (1): for what the daemon or
# the kernel does after the call that asked for it has returned.
poll_until() {
  local seconds=$1
  shift
  for _ in $(seq $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
# Predicates for poll_until.
not_mounted() { ! grep -q " $1 " /proc/mounts; }
process_gone() { ! kill -0 "$1" 2>/dev/null; }
mount_empty() { (($(used_mib "$1") == 0)); }
# Field N of a process's or thread's /proc stat, counted after "(comm) " (which may hold
# spaces): 1 is the state, 7 the flags. $1 is the /proc/PID or /proc/PID/task/TID directory.
stat_field() { sed 's/.*) //' "$1/stat" 2>/dev/null | cut -d' ' -f"$2"; }
# The kernel state of each of a process's threads, and the kernel stack of those blocked (D):
# what a hang report needs.
dump_threads() {
  local pid=$1 t state
  echo "---- threads of $pid"
  for t in /proc/"$pid"/task/*; do
    state=$(stat_field "$t" 1)
    echo "thread ${t##*/} $(cat "$t/comm" 2>/dev/null) $state $(cat "$t/wchan" 2>/dev/null)"
    if [[ $state == D ]]; then
      head -25 "$t/stack" 2>/dev/null
      python3 "$(dirname "${BASH_SOURCE[0]}")/user_frames.py" "$pid" "${t##*/}" 2>&1
    fi
  done
}
# Fails unless every thread of the daemon is an I/O flusher (PR_SET_IO_FLUSHER: the kernel's
# PF_MEMALLOC_NOIO, 0x80000 in /proc/PID/task/TID/stat's flags). The flag is per thread and is
# inherited only by threads started after it is set; a thread without it that faults in memory
# under the swapping cgroup's limit reclaims by writing swap, which only this daemon can serve.
# Only where the daemon can set it (CAP_SYS_RESOURCE, which some containers' root lacks).
check_io_flusher() {
  local pid=$1 t flags bad=0 caps
  caps=$(awk '/^CapEff:/ { print $2 }' "/proc/$pid/status")
  if ! (((0x$caps >> 24) & 1)); then
    echo "not checked: every thread an I/O flusher (the daemon lacks CAP_SYS_RESOURCE)"
    return 0
  fi
  for t in /proc/"$pid"/task/*; do
    flags=$(stat_field "$t" 7)
    [[ -n $flags ]] || continue
    if ! ((flags & 0x80000)); then
      echo "thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)) is not an I/O flusher"
      bad=1
    fi
  done
  ((bad == 0)) || fail "the daemon's threads must all be I/O flushers"
}
# The sum over the devices of one number of the mount's status JSON ("reserved", "empty_slabs").
status_total() {
  "$bin" status "$1" --json | grep -o "\"$2\":[0-9]*" | awk -F: '{ sum += $2 } END { printf "%.0f\n", sum }'
}
# VRAM the mount holds from its devices (slabs), in MiB.
reserved_mib() { echo $(($(status_total "$1" reserved) / 1048576)); }
# Slabs held from the device with no block of a file in them.
empty_slabs() { status_total "$1" empty_slabs; }

# Samples each loop swap's use (KiB, /proc/swaps) every 50 ms in the background until
# stop_swap_watch, which prints "DEVICE PEAK_KIB" for each loop swap seen.
start_swap_watch() {
  swap_watch_file=$(mktemp)
  (while sleep 0.05; do awk 'NR > 1 && $1 ~ /loop/ { print $1, $4 }' /proc/swaps; done >"$swap_watch_file") &
  swap_watcher=$!
}
stop_swap_watch() {
  kill "$swap_watcher" 2>/dev/null || true
  wait "$swap_watcher" 2>/dev/null || true
  awk '$2 > m[$1] { m[$1] = $2 } END { for (d in m) print d, m[d] }' "$swap_watch_file"
  rm -f "$swap_watch_file"
}

# The newest: an earlier daemon of the same mount point may still be exiting after its unmount
# (it takes about a second and a half), and its /proc/PID/cgroup then reads as the root.
daemon_pid() { pgrep -n -f "^$bin $1 "; }

# Aborts the FUSE connection of a mount (through fusectl): the way out of a hung daemon, so a
# failed test does not leave the machine stuck.
abort_fuse() {
  local mnt=$1 dev
  dev=$(awk -v m="$mnt" '$5 == m { print $3 }' /proc/self/mountinfo | head -n1)
  [[ -n $dev ]] || return 0
  mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections || return 0
  echo "aborting the FUSE connection ${dev#*:} of $mnt" >&2
  echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" || true
}

# Sets mnt to a new temporary mount point for vramfs-swap; on exit, every swap on it is turned
# off and it is unmounted and removed.
helper_mountpoint() {
  mnt=$(mktemp -d "/tmp/vramfs-$1-XXXXXX")
  trap helper_cleanup EXIT
}
helper_cleanup() {
  "$helper" off all --mountpoint "$mnt" >/dev/null 2>&1 || true
  rmdir "$mnt" 2>/dev/null || true
}
# Fails unless the mount's requests travel over the transport under test (with uring: that some
# did; `vramfs status` is itself one).
check_transport() {
  [[ -n $transport ]] || return 0
  local json
  json=$("$bin" status "$1" --json) || fail "vramfs status $1 failed"
  grep -q "\"transport\":{\"name\":\"$transport\"" <<<"$json" ||
    fail "$1 is not served over $transport: $(grep -o '"transport":{[^}]*}' <<<"$json")"
  if [[ $transport == uring ]]; then
    (($(status_total "$1" ring_requests) > 0)) || fail "no request came over io_uring on $1"
  fi
  echo "transport of $1: $transport"
}
