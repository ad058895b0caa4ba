#!/usr/bin/env bash
# The daemon dies (kill -9): users get ENOTCONN at once, nobody hangs, and unmounting cleans up.
# SIGTERM unmounts first and serves the mount's remaining users until they leave; a second
# SIGTERM exits at once.
# Permissions: without allow_other other users cannot enter the mount; with it the kernel
# enforces modes (default_permissions) for an unprivileged user.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
[[ -w /dev/fuse ]] || skip "no usable /dev/fuse"
[[ $(id -u) -eq 0 ]] || skip "needs root to act as another user"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
require_backend

mnt=$(mktemp -d /tmp/vramfs-robust-XXXXXX)
chmod 755 "$mnt"
holder=
cleanup() {
  [[ -z $holder ]] || kill "$holder" 2>/dev/null || true # else ctest waits for it
  fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
inside_mount() { [[ $(readlink "/proc/$1/cwd") == "$mnt" ]]; }
# The waits below allow 60 s: a sanitized daemon on a busy machine takes seconds to start serving.

step "kill -9 of the daemon"
"$bin" "$mnt" 64M "${vramfs_args[@]}" >/dev/null
echo data >"$mnt/f"
check_transport "$mnt"
pid=$(daemon_pid "$mnt")
[[ -n $pid ]] || fail "no daemon"
kill -9 "$pid"
sleep 0.3
rc=0
out=$(timeout 10 cat "$mnt/f" 2>&1) || rc=$?
((rc != 124)) || fail "reading a dead mount hung"
[[ $out == *"not connected"* ]] || fail "expected ENOTCONN, got: $out"
rc=0
timeout 10 ls "$mnt" >/dev/null 2>&1 || rc=$?
((rc != 124)) || fail "listing a dead mount hung"
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"
grep -q " $mnt " /proc/mounts && fail "the dead mount is still there"

step "SIGTERM unmounts first: nobody sees ENOTCONN; users inside are served until they leave"
"$bin" "$mnt" 64M "${vramfs_args[@]}" >/dev/null
echo data >"$mnt/f"
pid=$(daemon_pid "$mnt")
[[ -n $pid ]] || fail "no daemon"
errs=$(mktemp) stopflag=$(mktemp -u)
# A user whose working directory is inside the mount, until told to stop.
(cd "$mnt" && while [[ ! -e $stopflag ]]; do
  stat -c %s f >/dev/null 2>>"$errs" || echo "stat failed" >>"$errs"
  [[ $(cat f 2>>"$errs") == data ]] || echo "read failed" >>"$errs"
done) &
user=$!
poll_until 60 inside_mount "$user" || fail "the user did not get into the mount"
kill -TERM "$pid"
poll_until 60 not_mounted "$mnt" || fail "SIGTERM did not unmount"
sleep 0.5 # the user goes on through the detached mount meanwhile
kill -0 "$pid" 2>/dev/null || fail "the daemon left while the mount was still in use"
touch "$stopflag"
wait "$user"
rm -f "$stopflag"
if [[ -s $errs ]]; then fail "the user saw errors: $(sort "$errs" | uniq -c)"; fi
rm -f "$errs"
poll_until 60 process_gone "$pid" || fail "the daemon did not exit once its last user left"

step "only the thread that waits for them takes the stop signals"
# The daemon's main thread waits for SIGINT, SIGTERM and SIGHUP (and shows them unblocked
# while it waits); any other thread that let one through would die of it, and the mount with
# it, instead of unmounting first.
"$bin" "$mnt" 64M "${vramfs_args[@]}" >/dev/null
pid=$(daemon_pid "$mnt")
[[ -n $pid ]] || fail "no daemon"
open=()
for task in /proc/"$pid"/task/*; do
  [[ ${task##*/} == "$pid" ]] && continue
  blocked=$(awk '/^SigBlk:/ {print $2}' "$task/status")
  (((16#$blocked & 0x4003) == 0x4003)) || open+=("$(cat "$task/comm")")
done
((${#open[@]} == 0)) || fail "daemon threads that take SIGINT, SIGTERM or SIGHUP: ${open[*]}"
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"

step "a second SIGTERM exits at once"
"$bin" "$mnt" 64M "${vramfs_args[@]}" >/dev/null
pid=$(daemon_pid "$mnt")
# Holds the mount until killed: a daemon that ignored the second signal would outlast the wait.
(cd "$mnt" && exec sleep infinity) &
holder=$!
poll_until 60 inside_mount "$holder" || fail "the holder did not get into the mount"
kill -TERM "$pid"
# Two signals that arrive before the daemon takes the first are one to the kernel (they do not
# queue): the second is sent only once the first has detached the mount.
poll_until 60 not_mounted "$mnt" || fail "SIGTERM did not unmount"
kill -0 "$pid" 2>/dev/null || fail "the daemon left while the mount was in use"
kill -TERM "$pid"
poll_until 60 process_gone "$pid" || fail "a second SIGTERM did not end the daemon"
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
holder=

step "without allow_other, other users cannot enter"
"$bin" "$mnt" 64M "${vramfs_args[@]}" >/dev/null
echo secret >"$mnt/open"
chmod 644 "$mnt/open"
if as_nobody cat "$mnt/open" >/dev/null 2>&1; then fail "another user read through a private mount"; fi
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"

step "with allow_other, modes are enforced"
"$bin" "$mnt" 64M "${vramfs_args[@]}" -o allow_other >/dev/null
echo secret >"$mnt/private" && chmod 600 "$mnt/private"
echo hello >"$mnt/public" && chmod 644 "$mnt/public"
mkdir "$mnt/d" && chmod 755 "$mnt/d"
mkdir "$mnt/sticky" && chmod 1777 "$mnt/sticky" && echo mine >"$mnt/sticky/roots"
[[ $(as_nobody cat "$mnt/public") == hello ]] || fail "nobody cannot read a 0644 file"
if as_nobody cat "$mnt/private" >/dev/null 2>&1; then fail "nobody read root's 0600 file"; fi
if as_nobody touch "$mnt/d/x" 2>/dev/null; then fail "nobody wrote into root's 0755 directory"; fi
as_nobody touch "$mnt/sticky/theirs" || fail "nobody cannot create in a 1777 directory"
if as_nobody rm -f "$mnt/sticky/roots" 2>/dev/null; then fail "nobody removed root's file from a sticky directory"; fi
[[ $(stat -c %u "$mnt/sticky/theirs") -eq 65534 ]] || fail "new files must belong to their creator"
if as_nobody chown 65534 "$mnt/public" 2>/dev/null; then fail "nobody chowned root's file"; fi

step "with allow_other, vramfs status lists files for root only"
mkdir "$mnt/closed" && chmod 700 "$mnt/closed" && echo x >"$mnt/closed/secret-name"
"$bin" status "$mnt" | grep -q "secret-name" || fail "root's status does not list the file"
# A copy of the binary anyone can run (the build tree may sit under a private directory).
ubin=$(mktemp /tmp/vramfs-bin-XXXXXX) && cp "$bin" "$ubin" && chmod 755 "$ubin"
theirs=$(as_nobody "$ubin" status "$mnt") || { rm -f "$ubin"; fail "status as nobody failed"; }
json=$(as_nobody "$ubin" status "$mnt" --json)
rm -f "$ubin"
grep -q "secret-name" <<<"$theirs$json" && fail "another user's status shows a file name"
grep -q "^DEVICE" <<<"$theirs" || fail "another user's status lacks the device totals"
grep -q "listed for root and the mount's owner only" <<<"$theirs" || fail "no word on hidden files"
grep -q '"files":\[\],"files_truncated":false,"files_hidden":true' <<<"$json" || fail "JSON: $json"
fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt"

param=/sys/module/fuse/parameters/enable_uring
if [[ $transport == uring && -w $param ]]; then
  step "with FUSE over io_uring off in the kernel: uring refused in one line, auto on /dev/fuse"
  was=$(cat "$param")
  echo 0 >"$param"
  rc=0
  out=$("$bin" "$mnt" 64M --backend "$backend" --transport uring 2>&1) || rc=$?
  mounted=$(grep -c " $mnt " /proc/mounts || true)
  autoline=$("$bin" "$mnt" 64M --backend "$backend" --transport auto 2>&1) || true
  auto_status=$("$bin" status "$mnt" 2>&1 | grep "^transport:") || true
  fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || true
  echo "$was" >"$param"
  ((rc == 1)) || fail "--transport uring without the kernel's io_uring: exit $rc"
  [[ $(wc -l <<<"$out") -eq 1 && $out == *enable_uring* ]] || fail "not one line naming enable_uring: $out"
  ((mounted == 0)) || fail "--transport uring mounted anyway"
  [[ $autoline == *", /dev/fuse" ]] || fail "auto's mount line: $autoline"
  [[ $auto_status == "transport: /dev/fuse" ]] || fail "auto's status: $auto_status"
fi
echo "robustness on $backend: ok"
