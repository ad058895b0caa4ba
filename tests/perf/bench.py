#!/usr/bin/env python3
"""vramfs benchmark: one table, every row measured in the same run.

Targets: tmpfs, vramfs --null-io (the FUSE ceiling), vramfs --backend host, vramfs --backend
cuda (or vulkan), each over every transport asked for (/dev/fuse, FUSE over io_uring).
Workloads (vramfs-iobench, pread/pwrite): sequential write and read with 128 KiB and 1 MiB
requests, buffered (as dd, cp and Python do; the file's cached pages dropped before reading)
and O_DIRECT, 1 and 4 streams; random 4 KiB read and write IOPS, 1 and 4 jobs, O_DIRECT, and
random 4 KiB buffered reads with the cache dropped. Also the raw cudaMemcpy ceiling
(vramfs-memcpy-bench) and, with --swap, swap-out/in throughput under memory pressure
(vramfs-pressure, 1 and 8 faulting threads) on vramfs, on a loop device over a tmpfs file and
on zram. Each row shows its ratio to the tmpfs row and to the null-I/O row.

Run as root from the build directory's parent, e.g.:
  python3 tests/perf/bench.py --build build --out bench.json
"""

import argparse
import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

GB = 1e9


def sh(cmd, check=True, capture=False, env=None):
    res = subprocess.run(cmd, check=False, text=True, env=env,
                         stdout=subprocess.PIPE if capture else None,
                         stderr=subprocess.STDOUT if capture else None)
    if check and res.returncode != 0:
        out = res.stdout if capture else ""
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}) {out}")
    return res


def unmount(path):
    if sh(["fusermount3", "-u", path], check=False, capture=True).returncode != 0:
        sh(["umount", path], check=False, capture=True)


class Target:
    """A directory to benchmark: tmpfs or a vramfs mount."""

    def __init__(self, name, args, kind):
        self.name, self.args, self.kind = name, args, kind
        self.dir = tempfile.mkdtemp(prefix=f"vramfs-bench-{name}-")

    def __enter__(self):
        if self.kind == "tmpfs":
            sh(["mount", "-t", "tmpfs", "-o", f"size={self.args['size']}", "tmpfs", self.dir])
        else:
            t0 = time.monotonic()
            sh([self.args["bin"], self.dir, self.args["size"]] + self.args["extra"],
               env=dict(os.environ, **self.args.get("env", {})))
            self.mount_s = time.monotonic() - t0
        return self

    def __exit__(self, *exc):
        if self.kind == "tmpfs":
            sh(["umount", self.dir], check=False)
        else:
            unmount(self.dir)
        os.rmdir(self.dir)


def timing(directory):
    """The mount's per-request timing totals (vramfs status JSON), or None for tmpfs."""
    try:
        return json.loads(os.getxattr(directory, "user.vramfs.status.json"))["timing"]
    except OSError:
        return None


def timing_row(before, after, rw):
    """Mean microseconds per request of one row: storage, the rest of handling and the reply,
    and (with busy-polling) the read of the request from /dev/fuse."""
    op = "read" if "read" in rw else "write"
    b, a = before[op], after[op]
    n = a["requests"] - b["requests"]
    if n <= 0:
        return None
    got = a["received"] - b["received"]
    storage = (a["storage_ns"] - b["storage_ns"]) / n / 1e3
    handle = (a["handle_ns"] - b["handle_ns"]) / n / 1e3
    row = {"requests": n, "storage_us": storage, "other_us": handle - storage}
    if got > 0:
        row["receive_us"] = (a["receive_ns"] - b["receive_ns"]) / got / 1e3
    return row


def iobench(tool, directory, rw, bs, direct, jobs, size, runtime):
    if rw.startswith("rand"):
        size = "256M"  # the file random I/O runs over, per job
    res = sh([tool, "--dir", directory, "--rw", rw, "--bs", bs, "--direct", str(direct),
              "--jobs", str(jobs), "--size", size, "--runtime", runtime], capture=True)
    data = json.loads(res.stdout[res.stdout.index("{"):])
    return data["gb_s"], data["iops"]


def workloads(quick):
    rows = []
    for bs in ("128k", "1m"):
        for direct in (0, 1):
            for jobs in (1, 4):
                for rw in ("write", "read"):
                    rows.append((rw, bs, direct, jobs))
    for jobs in (1, 4):
        rows.append(("randread", "4k", 1, jobs))
        rows.append(("randwrite", "4k", 1, jobs))
    for jobs in (1, 4):
        rows.append(("randread", "4k", 0, jobs))
    if quick:
        rows = [r for r in rows if r[1] != "128k"]
    return rows


def row_name(rw, bs, direct, jobs):
    mode = "direct" if direct else "buffered"
    return f"{rw} {bs} {mode} x{jobs}"


def make_tree(root, seed=7):
    """A source tree's shape, made the same every time: 8,000 files in 800 directories, sizes
    log-normal around 5 KiB (a mean near 16 KiB, as /usr/include has), a dozen of 512 KiB-2 MiB,
    and some symlinks. Returns the apparent bytes of its files."""
    import random
    rng = random.Random(seed)
    dirs = [root]
    for i in range(800):
        d = os.path.join(rng.choice(dirs), f"d{i}")
        os.mkdir(d)
        dirs.append(d)
    total = 0
    for i in range(8000):
        size = min(int(rng.lognormvariate(8.5, 1.3)), 400 << 10)
        if i % 700 == 0:
            size = rng.randint(512 << 10, 2 << 20)
        with open(os.path.join(rng.choice(dirs), f"f{i}.h"), "wb") as f:
            f.write(rng.randbytes(size))
        total += size
    for i in range(40):
        os.symlink(f"f{i}.h", os.path.join(rng.choice(dirs), f"l{i}.h"))
    return total


def tree_archive(source):
    """A tar archive in RAM (/dev/shm) of `source`, or of make_tree's tree where source is
    None: (path, apparent bytes of its files)."""
    work = tempfile.mkdtemp(prefix="vramfs-bench-tree-", dir="/dev/shm")
    if source is None:
        root = os.path.join(work, "tree")
        os.mkdir(root)
        apparent = make_tree(root)
        base, name = work, "tree"
    else:
        base, name = os.path.dirname(os.path.abspath(source)), os.path.basename(os.path.abspath(source))
        apparent = 0
        for d, _, files in os.walk(source):
            for f in files:
                p = os.path.join(d, f)
                if not os.path.islink(p):
                    apparent += os.path.getsize(p)
    archive = os.path.join(work, "tree.tar")
    sh(["tar", "-C", base, "-cf", archive, name])
    if source is None:
        shutil.rmtree(os.path.join(work, "tree"))
    return archive, apparent


def tree_rows(directory, archive, apparent, cpu=None):
    """Seconds for tar x, ls -lR, find and rm -rf of the tree in `directory`, and the space
    the mount says it used for it (df) over the files' apparent bytes; the commands on one CPU
    where `cpu` is given."""
    def timed(cmd):
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        t0 = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, preexec_fn=pin)
        return time.monotonic() - t0

    def used():
        st = os.statvfs(directory)
        return (st.f_blocks - st.f_bfree) * st.f_frsize

    before = used()
    row = {"tar x": timed(["tar", "-C", directory, "-xf", archive])}
    row["space per byte"] = (used() - before) / apparent
    subprocess.run(["sync"], check=False)
    row["ls -lR"] = timed(["ls", "-lR", directory])
    row["find"] = timed(["find", directory])
    entry = [e for e in os.listdir(directory) if e != "lost+found"]
    row["rm -rf"] = timed(["rm", "-rf"] + [os.path.join(directory, e) for e in entry])
    return row


def daemon_threads(directory):
    """Thread ids of the vramfs daemon serving `directory` (the process whose command line
    names it)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"vramfs" and directory.encode() in argv:
            return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    return []


@contextlib.contextmanager
def on_one_cpu(directory, cpu):
    """Every thread of the daemon serving `directory` on `cpu` while the block runs, then each
    back on the CPUs it had (io_uring queue threads keep their own)."""
    had = {}
    for tid in daemon_threads(directory):
        try:
            had[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cpu})
        except OSError:  # a thread that ended meanwhile
            pass
    try:
        yield
    finally:
        for tid, cpus in had.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


def swap_on_zram(size):
    """zram0 as swap (priority 200), or None where the kernel has no zram."""
    if not os.path.exists("/sys/block/zram0") and shutil.which("modprobe"):
        sh(["modprobe", "zram"], check=False, capture=True)
    if not os.path.exists("/sys/block/zram0"):
        return None
    sh(["swapoff", "/dev/zram0"], check=False, capture=True)
    with open("/sys/block/zram0/reset", "w") as f:
        f.write("1")
    with open("/sys/block/zram0/disksize", "w") as f:
        f.write(size)
    sh(["mkswap", "/dev/zram0"], capture=True)
    sh(["swapon", "--priority", "200", "/dev/zram0"])
    return "/dev/zram0"


@contextlib.contextmanager
def locked_in_memory(path):
    """Keeps a file's pages in RAM (mapped and mlock'ed) while the block runs. The tmpfs file under
    the baseline's loop must not be swapped out to the loop over itself: under a tight memory
    limit swapoff and the loop's worker then wait on each other for good."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.mlock.argtypes = libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, 0x1, 0x1, fd, 0)  # PROT_READ, MAP_SHARED
        if addr in (None, ctypes.c_void_p(-1).value):
            err = ctypes.get_errno()
            raise OSError(err, f"mmap {path}: {os.strerror(err)}")
        try:
            if libc.mlock(addr, size) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"mlock {path}: {os.strerror(err)}")
            yield
        finally:
            libc.munmap(addr, size)  # unlocks too
    finally:
        os.close(fd)


def run_swap(args, build, transports):
    """Swap-out/in throughput with 1 and 8 faulting threads: a loop over tmpfs, zram, and vramfs
    on each backend and transport, the same pressure run each."""
    pressure = os.path.join(build, "tests", "vramfs-pressure")
    helper = os.path.join(os.path.dirname(__file__), "..", "..", "mount-helpers", "vramfs-swap")
    results = {}
    ws, limit, swap = args.swap_ws, args.swap_limit, args.swap_size

    def pressure_runs(what):
        for threads in args.swap_threads:
            label = f"swap x{threads}: {what}"
            out = tempfile.mktemp(suffix=".json")
            res = sh([pressure, "--working-set", ws, "--limit", limit, "--timeout", str(args.swap_timeout),
                      "--threads", str(threads), "--json", out], check=False, capture=True)
            print(label, res.stdout.strip(), flush=True)
            data = json.load(open(out)) if os.path.exists(out) else {"verdict": "no result"}
            if os.path.exists(out):
                os.unlink(out)
            results[label] = data

    # Baselines: a loop device over a tmpfs file, and zram.
    tdir = tempfile.mkdtemp(prefix="vramfs-bench-swaptmpfs-")
    sh(["mount", "-t", "tmpfs", "-o", f"size={swap}", "tmpfs", tdir])
    sh(["fallocate", "-l", swap, f"{tdir}/swap"])
    os.chmod(f"{tdir}/swap", 0o600)
    loop = sh(["losetup", "--find", "--show", f"{tdir}/swap"], capture=True).stdout.strip()
    sh(["mkswap", loop], capture=True)
    try:
        with locked_in_memory(f"{tdir}/swap"):
            sh(["swapon", "--priority", "200", loop])
            try:
                pressure_runs("loop over tmpfs")
            finally:
                sh(["swapoff", loop], check=False)
    finally:
        sh(["losetup", "-d", loop], check=False)
        sh(["umount", tdir], check=False)
        os.rmdir(tdir)
    zram = swap_on_zram(swap)
    if zram:
        try:
            pressure_runs("zram")
        finally:
            sh(["swapoff", zram], check=False)
            with open("/sys/block/zram0/reset", "w") as f:
                f.write("1")
    else:
        print("no zram here: its swap rows are left out")

    for backend, transport, label, venv, vopts in vramfs_targets(args, transports):
        if backend == "null":
            continue
        env = dict(os.environ, VRAMFS_BIN=os.path.join(build, "vramfs"), **venv)
        mnt = tempfile.mkdtemp(prefix="vramfs-bench-swap-")
        what = f"vramfs {backend} {transport}" + (f" {label}" if label else "")
        res = subprocess.run([helper, "on", swap, "--mountpoint", mnt, "--name", "bench",
                              "--priority", "200", "--backend", backend,
                              "--transport", transport] + args.extra.split() + vopts,
                             env=env, text=True, capture_output=True)
        if res.returncode != 0:
            results[f"swap: {what}"] = {"verdict": "setup failed: " + res.stderr.strip()[-200:]}
            os.rmdir(mnt)
            continue
        try:
            pressure_runs(what)
        finally:
            subprocess.run([helper, "off", "all", "--mountpoint", mnt], env=env,
                           capture_output=True)
            os.rmdir(mnt)
    return results


def parse_variant(text):
    """[BACKEND[@TRANSPORT]/]LABEL:ITEM[,ITEM...], each ITEM VAR=VALUE (the environment) or
    --option[=value] (a vramfs option) -> (BACKEND or None, TRANSPORT or None, LABEL,
    {VAR: VALUE}, [options])."""
    name, _, items = text.partition(":")
    where, _, label = name.rpartition("/")
    backend, _, transport = where.partition("@")
    items = [i for i in items.split(",") if i]
    opts = [i for i in items if i.startswith("--")]
    env = dict(i.split("=", 1) for i in items if not i.startswith("--") and "=" in i)
    if (not label or len(opts) + len(env) != len(items) or not items or "-" in label
            or transport not in ("", "dev", "uring")):
        sys.exit(f"bench.py: --variant {text!r}: want [BACKEND[@TRANSPORT]/]LABEL:ITEM[,ITEM], "
                 "each ITEM VAR=VALUE or --option[=value] (no '-' in LABEL; TRANSPORT dev or "
                 "uring)")
    return backend or None, transport or None, label, env, opts


def vramfs_targets(args, transports):
    """(backend, transport, variant label or None, environment, more vramfs options) of every
    vramfs target: each backend over each transport, and again with each --variant's environment
    and options (not null-I/O; only its own backend and transport where the variant names them)."""
    out = []
    for b in args.backends:
        for t in transports:
            out.append((b, t, None, {}, []))
            if b != "null":
                out += [(b, t, label, env, opts) for vb, vt, label, env, opts in args.variants
                        if vb in (None, b) and vt in (None, t)]
    return out


@contextlib.contextmanager
def fuse_uring_on(wanted):
    """FUSE over io_uring turned on for the run where `wanted`, and back as it was afterwards,
    however the run ends."""
    param = "/sys/module/fuse/parameters/enable_uring"
    if not wanted:
        yield
        return
    if not os.path.exists(param):
        sys.exit("bench.py: this kernel has no FUSE over io_uring (--transports dev)")
    was = open(param).read().strip()
    with open(param, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(param, "w") as f:
            f.write("1" if was in ("Y", "1") else "0")


def measure(args, build, transports):
    """Every target's rows, the raw copies and the swap rows: (results, targets, transport_of)."""
    vbin = os.path.join(build, "vramfs")
    mount_size = "6G"
    targets = [("tmpfs", {"size": mount_size}, "tmpfs")]
    transport_of = {}  # target name -> its transport, for its null-I/O reference
    for b, t, label, env, opts in vramfs_targets(args, transports):
        extra = ["--threads", args.threads, "--transport", t] + args.extra.split() + opts
        if b == "null":
            extra += ["--backend", "cuda" if "cuda" in args.backends else "host", "--null-io"]
        else:
            extra += ["--backend", b]
        name = f"vramfs-{b}" + (f"-{t}" if len(transports) > 1 else "") + (f"-{label}" if label else "")
        transport_of[name] = t
        targets.append((name, {"bin": vbin, "size": mount_size, "extra": extra, "env": env}, "vramfs"))

    tool = os.path.join(build, "tests", "vramfs-iobench")
    results = {"machine": os.uname().nodename, "rows": {}, "mount_s": {}, "tree": {}}
    rows = [] if args.no_io else workloads(args.quick)
    tree = tree_archive(args.tree_from) if args.tree else None
    if tree:
        results["tree_apparent_bytes"] = tree[1]
    for name, targs, kind in targets:
        with Target(name, targs, kind) as t:
            if kind == "vramfs":
                results["mount_s"][name] = t.mount_s
            for w in rows:
                before = timing(t.dir) if kind == "vramfs" else None
                gbs, iops = iobench(tool, t.dir, *w, args.size, args.runtime)
                results["rows"].setdefault(row_name(*w), {})[name] = {"gb_s": gbs, "iops": iops}
                after = timing(t.dir) if before else None
                if after:
                    tr = timing_row(before, after, w[0])
                    if tr:
                        results["rows"][row_name(*w)][name]["timing"] = tr
                print(f"{name:14} {row_name(*w):28} {gbs:7.2f} GB/s {iops:10.0f} IOPS", flush=True)
            for p in range(args.tree_passes if tree else 0):
                r = tree_rows(t.dir, *tree)
                for k, v in r.items():
                    results["tree"].setdefault(k, {}).setdefault(name, []).append(v)
                print(f"{name:14} tree pass {p + 1}: " +
                      ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)
            for p in range(args.tree_passes if tree and args.tree_one_cpu else 0):
                # The floor the machine's scheduler leaves: each round trip wakes the daemon and
                # then the caller, across CPUs when they are on two; on one CPU, neither crosses.
                cpu = max(os.sched_getaffinity(0))
                with on_one_cpu(t.dir, cpu) if kind == "vramfs" else contextlib.nullcontext():
                    r = tree_rows(t.dir, *tree, cpu=cpu)
                r.pop("space per byte")
                for k, v in r.items():
                    results["tree"].setdefault(f"{k}, one CPU", {}).setdefault(name, []).append(v)
                print(f"{name:14} tree pass {p + 1} on CPU {cpu}: " +
                      ", ".join(f"{k} {v:.3f}" for k, v in r.items()), flush=True)

    memcpy = os.path.join(build, "tests", "vramfs-memcpy-bench")
    results["memcpy"] = {}
    if "cuda" in args.backends and os.path.exists(memcpy):
        out = sh([memcpy], capture=True).stdout
        for line in out.splitlines():
            if line.startswith("{"):
                d = json.loads(line)
                results["memcpy"][d["name"]] = d["gb_s"]
                if "us" in d:
                    results.setdefault("memcpy_us", {})[d["name"]] = d["us"]
    if args.swap:
        sysctl = "/proc/sys/vm/page-cluster"
        was = open(sysctl).read().strip()
        if args.page_cluster is not None:
            with open(sysctl, "w") as f:
                f.write(str(args.page_cluster))
        results["swap_page_cluster"] = int(open(sysctl).read())
        results["swap_size"] = args.swap_size
        try:
            results["swap"] = run_swap(args, build, transports)
        finally:
            with open(sysctl, "w") as f:
                f.write(was)
    return results, targets, transport_of


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the CMake build directory")
    ap.add_argument("--backends", default="null,host,cuda",
                    help="vramfs targets to measure, from null, host, cuda")
    ap.add_argument("--size", default="1G", help="bytes each iobench job writes or reads")
    ap.add_argument("--runtime", default="3", help="seconds for each random-I/O row")
    ap.add_argument("--threads", default="8", help="vramfs --threads")
    ap.add_argument("--extra", default="",
                    help="more vramfs options, space separated; write a single flag as "
                         "--extra=--writeback-cache (argparse takes a lone --flag for an option)")
    ap.add_argument("--quick", action="store_true", help="only the 1 MiB and 4 KiB rows")
    ap.add_argument("--swap", action="store_true", help="also measure swap under pressure")
    ap.add_argument("--swap-ws", default="3G",
                    help="bytes the swap rows' workload writes and verifies")
    ap.add_argument("--swap-limit", default="1G",
                    help="the memory cgroup limit the swap rows' workload runs under")
    ap.add_argument("--swap-size", default="4G",
                    help="size of each swap device (tmpfs loop, zram, vramfs); once swap is over "
                         "half full the kernel frees slots as it reads them back, so swap-in "
                         "also writes pages out again")
    ap.add_argument("--swap-threads", default="1,8",
                    help="faulting threads of the swap rows, comma separated")
    ap.add_argument("--swap-timeout", type=int, default=600,
                    help="seconds without progress after which a swap row counts as hung")
    ap.add_argument("--transports", default="dev,uring",
                    help="vramfs transports to measure each backend over, from dev, uring "
                         "(uring: the fuse module's enable_uring is turned on for the run)")
    ap.add_argument("--no-io", action="store_true",
                    help="leave out the file I/O rows (with --swap: swap rows only)")
    ap.add_argument("--page-cluster", type=int, default=None,
                    help="vm.page-cluster for the swap rows, baseline and vramfs alike "
                         "(restored afterwards; default: leave it)")
    ap.add_argument("--variant", action="append", default=[],
                    metavar="[BACKEND[@TRANSPORT]/]LABEL:ITEM[,ITEM]",
                    help="also measure each backend over each transport (not null; only BACKEND "
                         "and TRANSPORT, if given) with these "
                         "items, each an environment variable for vramfs (VAR=VALUE) or a vramfs "
                         "option (--option or --option=value), named "
                         "vramfs-BACKEND[-TRANSPORT]-LABEL: an A/B in one run (repeatable)")
    ap.add_argument("--tree", action="store_true",
                    help="also a tree of small files on every target: tar x, ls -lR, find, rm -rf "
                         "(seconds, each against tmpfs) and the space used per byte stored")
    ap.add_argument("--tree-from", default=None, metavar="DIR",
                    help="the tree to use (e.g. /usr/include); default: one made the same every "
                         "run with a source tree's sizes")
    ap.add_argument("--tree-passes", type=int, default=2, help="times each target runs the tree rows")
    ap.add_argument("--tree-one-cpu", action="store_true",
                    help="also the tree rows with the commands and the daemon's threads on one CPU "
                         "(rows ', one CPU'): what a round trip costs without waking another CPU "
                         "(give vramfs --poll-us 0 by --extra on 8 or more CPUs, where it spins by "
                         "default: a spinning thread on that CPU takes it from the commands)")
    ap.add_argument("--out", default="bench.json", help="where to write the JSON")
    args = ap.parse_args()
    args.variants = [parse_variant(v) for v in args.variant]
    args.backends = [b for b in args.backends.split(",") if b]
    args.swap_threads = [int(t) for t in args.swap_threads.split(",") if t]
    transports = [t for t in args.transports.split(",") if t]
    build = os.path.abspath(args.build)
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it mounts tmpfs and vramfs)")

    with fuse_uring_on("uring" in transports):
        results, targets, transport_of = measure(args, build, transports)

    # The table.
    names = [t[0] for t in targets]
    # Each vramfs row's null-I/O reference is the null mount over the same transport.
    def null_of(n):
        if "null" not in args.backends or n == "tmpfs":
            return None
        return "vramfs-null" + (f"-{transport_of[n]}" if len(transports) > 1 else "")
    print()
    head = f"{'workload':28}" + "".join(f"{n:>16}" for n in names)
    print(head + "   (GB/s or kIOPS; [x tmpfs | x null])")
    for row, per in results["rows"].items():
        rand = row.startswith("rand")
        cells = []
        for n in names:
            v = per.get(n)
            if not v:
                cells.append(f"{'-':>16}")
                continue
            val = v["iops"] / 1000 if rand else v["gb_s"]
            base = per.get("tmpfs")
            bv = (base["iops"] / 1000 if rand else base["gb_s"]) if base else 0
            ratio = f"{val / bv:.2f}" if bv and n != "tmpfs" else ""
            nn = null_of(n)
            nv = per.get(nn) if nn else None
            nval = (nv["iops"] / 1000 if rand else nv["gb_s"]) if nv else 0
            nratio = f"|{val / nval:.2f}" if nval and n != nn else ""
            cells.append(f"{val:7.2f}{('[' + ratio + nratio + ']') if ratio else '':>9}")
        print(f"{row:28}" + "".join(cells))
        for n in names:
            if per.get(n) and per.get("tmpfs") and n != "tmpfs":
                key = "iops" if rand else "gb_s"
                per[n]["x_tmpfs"] = per[n][key] / per["tmpfs"][key] if per["tmpfs"][key] else None
                nn = null_of(n)
                if nn and per.get(nn) and n != nn:
                    per[n]["x_null"] = per[n][key] / per[nn][key] if per[nn][key] else None
    # Where a request's time goes in the daemon, per row (means in microseconds).
    print(f"\n{'per request, us':28}" + "".join(f"{n:>24}" for n in names if n != "tmpfs")
          + "   (storage / other handling+reply / receive)")
    for row, per in results["rows"].items():
        cells = []
        for n in names:
            if n == "tmpfs":
                continue
            tr = (per.get(n) or {}).get("timing")
            if not tr:
                cells.append(f"{'-':>24}")
                continue
            rec = f"{tr['receive_us']:.1f}" if "receive_us" in tr else "-"
            cells.append(f"{tr['storage_us']:.1f} / {tr['other_us']:.1f} / {rec}".rjust(24))
        print(f"{row:28}" + "".join(cells))
    for name, gbs in results["memcpy"].items():
        us = results.get("memcpy_us", {}).get(name)
        print(f"{name:40} {gbs:7.2f} GB/s" + (f" {us:9.2f} us per copy" if us else ""))
    for name, s in results["mount_s"].items():
        print(f"mount {name:34} {s:7.3f} s")
    if results.get("tree"):
        print(f"\n{'tree (' + str(results['tree_apparent_bytes'] >> 20) + ' MiB), best pass':28}" +
              "".join(f"{n:>16}" for n in names) + "   (seconds or bytes per byte; [x tmpfs])")
        for row, per in results["tree"].items():
            cells = []
            base = min(per["tmpfs"]) if per.get("tmpfs") else None
            for n in names:
                v = min(per[n]) if per.get(n) else None
                if v is None:
                    cells.append(f"{'-':>16}")
                    continue
                ratio = f"[{v / base:.2f}]" if base and n != "tmpfs" and row != "space per byte" else ""
                cells.append(f"{v:7.3f}{ratio:>9}")
            print(f"{row:28}" + "".join(cells))
    if "swap_page_cluster" in results:
        print(f"swap rows with vm.page-cluster={results['swap_page_cluster']}, "
              f"swap devices of {results['swap_size']} each")
    swap = results.get("swap", {})
    for label, d in swap.items():
        if "swap_out_gib_s" not in d:
            print(f"{label:44} {d.get('verdict')}")
            continue
        ratios = ""
        for base in ("loop over tmpfs", "zram"):
            b = swap.get(label.split(":")[0] + ": " + base)
            if b and "swap_out_gib_s" in b and not label.endswith(base) and b["swap_out_gib_s"] and b["swap_in_gib_s"]:
                ratios += (f"  [x {base}: out {d['swap_out_gib_s'] / b['swap_out_gib_s']:.2f},"
                           f" in {d['swap_in_gib_s'] / b['swap_in_gib_s']:.2f}]")
        again = d.get("swap_out_while_in_bytes", 0) / 2**30
        print(f"{label:44} out {d['swap_out_gib_s']:5.2f} GiB/s  in {d['swap_in_gib_s']:5.2f} GiB/s"
              f"  again {again:.2f} GiB  {d['verdict']}, {d['corrupted_bytes']} bad bytes{ratios}")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
