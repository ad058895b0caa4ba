// vramfs-pressure: pushes a workload into swap and proves every byte comes back.
//
// It runs a child in a memory cgroup (v2 memory.max or v1 memory.limit_in_bytes) limited well
// below the child's working set, so the kernel must swap. The child fills its working set with
// incompressible data derived from a seed (the swap-out phase), then reads all of it back and
// checks every byte (the swap-in phase). Swap traffic is read from /proc/vmstat at the edges of
// each phase, so each rate counts only its own phase's pages: when swap is over half full the
// kernel frees each slot it reads back, and the swap-in phase writes pages out again to make
// room (reported apart, as swapped out again while swapping in).
// With --hold-file the workload pauses between the two phases, its pages in swap, so that a
// test can act on the swap (turn it off, say) and then see every byte come back.
//
// Exit codes: 0 all bytes intact, 1 corruption or the workload died, 2 bad usage,
// 3 timed out (a hang), 4 could not set up the cgroup.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <poll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "vramfs/util/size.hpp"
#include "../support/memory_cgroup.hpp"

namespace {

using vramfs::test_support::MemoryCgroup;
using vramfs::test_support::read_file;
using vramfs::test_support::write_file;
using Clock = std::chrono::steady_clock;

std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

// Pages swapped in and out since boot, both from one read (one instant) of /proc/vmstat.
struct SwapCounts {
    std::uint64_t in = 0, out = 0;
};
SwapCounts swap_counts() {
    std::ifstream f("/proc/vmstat");
    SwapCounts c;
    std::string k;
    std::uint64_t v;
    while (f >> k >> v) {
        if (k == "pswpin") c.in = v;
        else if (k == "pswpout") c.out = v;
    }
    return c;
}

struct ChildReport {
    double fill_s = 0, verify_s = 0;
    std::uint64_t bad_bytes = 0;
    // Pages (machine-wide) swapped out during the fill, and in and out during the verify.
    std::uint64_t fill_out = 0, verify_in = 0, verify_out = 0;
};

// Runs fn(first_word, end_word, thread) over [0, words) split among `threads` threads (as many
// processes fault pages at once as on a busy machine).
template <class Fn> void split(unsigned threads, std::uint64_t words, Fn fn) {
    std::vector<std::thread> pool;
    const std::uint64_t per = (words + threads - 1) / threads;
    for (unsigned t = 0; t < threads; ++t) {
        const std::uint64_t b = std::min<std::uint64_t>(words, t * per), e = std::min(words, b + per);
        pool.emplace_back([=] { fn(b, e, t); });
    }
    for (auto& th : pool) th.join();
}

// The workload: fill, then (after `between` returns) verify, each by `threads` threads. Runs in
// the child; reports through a pipe.
template <class Between>
ChildReport workload(std::uint64_t bytes, std::uint64_t seed, unsigned threads, Between between) {
    ChildReport r;
    auto* mem = static_cast<std::uint64_t*>(
        ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (mem == MAP_FAILED) {
        r.bad_bytes = bytes;
        return r;
    }
    ::madvise(mem, bytes, MADV_NOHUGEPAGE); // 4 KiB pages swap one by one, as usual
    const std::uint64_t words = bytes / 8;
    // The counters are read outside the timed spans.
    const SwapCounts c0 = swap_counts();
    auto t0 = Clock::now();
    split(threads, words, [&](std::uint64_t b, std::uint64_t e, unsigned) {
        for (std::uint64_t i = b; i < e; ++i) mem[i] = splitmix64(seed ^ i);
    });
    auto t1 = Clock::now();
    const SwapCounts c1 = swap_counts();
    if (!between()) {
        r.bad_bytes = bytes;
        return r;
    }
    // After a hold, what the test did to the swap meanwhile (swapoff, say) is not the verify's.
    const SwapCounts c2 = swap_counts();
    const auto t1b = Clock::now();
    std::vector<std::uint64_t> bad(threads, 0);
    split(threads, words, [&](std::uint64_t b, std::uint64_t e, unsigned t) {
        std::uint64_t n = 0;
        for (std::uint64_t i = b; i < e; ++i) {
            const std::uint64_t want = splitmix64(seed ^ i);
            if (mem[i] != want) {
                const std::uint64_t diff = mem[i] ^ want;
                for (int k = 0; k < 8; ++k)
                    if ((diff >> (8 * k)) & 0xff) ++n;
            }
        }
        bad[t] = n;
    });
    for (std::uint64_t n : bad) r.bad_bytes += n;
    auto t2 = Clock::now();
    const SwapCounts c3 = swap_counts();
    r.fill_out = c1.out - c0.out;
    r.verify_in = c3.in - c2.in;
    r.verify_out = c3.out - c2.out;
    r.fill_s = std::chrono::duration<double>(t1 - t0).count();
    r.verify_s = std::chrono::duration<double>(t2 - t1b).count();
    ::munmap(mem, bytes);
    return r;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"vramfs-pressure: push a workload into swap under a memory cgroup limit and "
                 "verify every byte"};
    std::string ws_text = "1G", limit_text, json_path, hold_path;
    std::uint64_t seed = 1;
    double timeout = 600;
    unsigned threads = 1;
    std::vector<pid_t> also;
    app.add_option("--working-set", ws_text, "bytes the workload writes and verifies")
        ->default_val("1G");
    app.add_option("--limit", limit_text,
                   "the cgroup's memory limit (default: a quarter of the working set)");
    app.add_option("--seed", seed, "seed of the data")->default_val(1);
    app.add_option("--timeout", timeout, "seconds before the run counts as hung")
        ->default_val(600);
    app.add_option("--threads", threads, "threads that fill and verify the working set, each a slice")
        ->default_val(1)
        ->check(CLI::Range(1, 256));
    app.add_option("--also-pid", also,
                   "move these processes (e.g. the vramfs daemon) into the same cgroup for the run");
    app.add_option("--json", json_path, "also write the result as JSON to this file");
    app.add_option("--hold-file", hold_path,
                   "after the fill, write the workload's pid to this file, and verify only "
                   "once the file has been removed");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    std::string why;
    auto ws = vramfs::parse_size(ws_text, &why);
    if (!ws || *ws < (1u << 20)) {
        std::fprintf(stderr, "vramfs-pressure: bad --working-set '%s' %s\n", ws_text.c_str(), why.c_str());
        return 2;
    }
    std::uint64_t limit = *ws / 4;
    if (!limit_text.empty()) {
        auto l = vramfs::parse_size(limit_text, &why);
        if (!l || *l == 0) {
            std::fprintf(stderr, "vramfs-pressure: bad --limit '%s' %s\n", limit_text.c_str(), why.c_str());
            return 2;
        }
        limit = *l;
    }
    const std::uint64_t bytes = *ws / 4096 * 4096;

    MemoryCgroup cg;
    if (!cg.create(limit, why)) {
        std::fprintf(stderr, "vramfs-pressure: %s\n", why.c_str());
        return 4;
    }
    std::vector<std::pair<pid_t, std::string>> moved;
    for (pid_t pid : also) {
        moved.emplace_back(pid, MemoryCgroup::dir_of(pid, cg.v2()));
        if (!cg.add(pid)) {
            std::fprintf(stderr, "vramfs-pressure: cannot move pid %d into %s\n", pid, cg.path().c_str());
            return 4;
        }
    }
    auto restore = [&] {
        for (auto& [pid, dir] : moved) write_file(dir + "/cgroup.procs", std::to_string(pid));
    };

    // go: parent -> child, "start" and, with a hold, "verify now"; filled: child -> parent.
    int go[2], result[2], filled[2];
    if (::pipe(go) != 0 || ::pipe(result) != 0 || ::pipe(filled) != 0) return 4;
    const bool hold = !hold_path.empty();
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(go[1]);
        ::close(result[0]);
        ::close(filled[0]);
        char c;
        if (::read(go[0], &c, 1) != 1) std::_Exit(4);
        ChildReport r = workload(bytes, seed, threads, [&] {
            if (!hold) return true;
            return ::write(filled[1], "f", 1) == 1 && ::read(go[0], &c, 1) == 1;
        });
        if (::write(result[1], &r, sizeof r) != sizeof r) std::_Exit(4);
        std::_Exit(0);
    }
    ::close(go[0]);
    ::close(result[1]);
    ::close(filled[1]);
    if (!cg.add(child)) {
        ::kill(child, SIGKILL);
        restore();
        std::fprintf(stderr, "vramfs-pressure: cannot move the workload into %s\n", cg.path().c_str());
        return 4;
    }
    auto start = Clock::now();
    if (::write(go[1], "g", 1) != 1) return 4;
    if (!hold) ::close(go[1]);

    // The hold: the workload has filled its memory, the file tells the test so (and the pid, for
    // its cgroup), and the workload verifies once the test removes the file. (Not counted as a
    // hang: the test decides how long it holds, within the same timeout.)
    auto hold_here = [&]() -> bool {
        char c;
        if (::read(filled[0], &c, 1) != 1) return false; // the workload died while filling
        const std::string tmp = hold_path + ".tmp";
        if (!write_file(tmp, std::to_string(child) + "\n") || ::rename(tmp.c_str(), hold_path.c_str()) != 0) {
            std::fprintf(stderr, "vramfs-pressure: cannot write %s\n", hold_path.c_str());
            return false;
        }
        const auto held = Clock::now();
        struct stat st{};
        while (::stat(hold_path.c_str(), &st) == 0) {
            if (std::chrono::duration<double>(Clock::now() - held).count() > timeout) {
                std::fprintf(stderr, "vramfs-pressure: %s was not removed within %.0f s\n",
                             hold_path.c_str(), timeout);
                return false;
            }
            ::usleep(20000);
        }
        return ::write(go[1], "v", 1) == 1;
    };
    bool held_ok = true;

    int status = 0;
    bool hung = false;
    bool waiting_fill = hold;
    for (;;) {
        pid_t w = ::waitpid(child, &status, WNOHANG);
        if (w == child) break;
        if (waiting_fill) {
            struct pollfd p{filled[0], POLLIN, 0};
            if (::poll(&p, 1, 0) == 1) {
                waiting_fill = false;
                const auto fill_end = Clock::now();
                held_ok = hold_here();
                ::close(go[1]);
                if (!held_ok) {
                    ::kill(child, SIGKILL);
                    ::waitpid(child, &status, 0);
                    break;
                }
                start += Clock::now() - fill_end; // the hold is not part of the run
            }
        }
        if (std::chrono::duration<double>(Clock::now() - start).count() > timeout) {
            hung = true;
            ::kill(child, SIGKILL);
            // A workload stuck in the kernel (D state) may never die: do not wait for it long.
            for (int i = 0; i < 100 && ::waitpid(child, &status, WNOHANG) != child; ++i)
                ::usleep(50000);
            break;
        }
        ::usleep(20000);
    }
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    restore();
    ChildReport r;
    const bool got = !hung && held_ok && ::read(result[0], &r, sizeof r) == sizeof r;
    const std::uint64_t out_bytes = r.fill_out * 4096, in_bytes = r.verify_in * 4096;
    const std::uint64_t again_bytes = r.verify_out * 4096;
    const double gib = 1024.0 * 1024 * 1024;
    const double out_rate = got && r.fill_s > 0 ? out_bytes / gib / r.fill_s : 0;
    const double in_rate = got && r.verify_s > 0 ? in_bytes / gib / r.verify_s : 0;

    int rc = 0;
    std::string verdict = "ok";
    if (hung) {
        verdict = "timeout";
        rc = 3;
    } else if (!held_ok) {
        verdict = "hold failed";
        rc = 1;
    } else if (!got) {
        verdict = WIFSIGNALED(status) ? "workload killed by signal " + std::to_string(WTERMSIG(status))
                                      : "workload failed";
        rc = 1;
    } else if (r.bad_bytes) {
        verdict = "corrupted";
        rc = 1;
    }
    std::printf("working set %s, limit %s (cgroup %s): %s\n", vramfs::format_size(bytes).c_str(),
                vramfs::format_size(limit).c_str(), cg.v2() ? "v2" : "v1", verdict.c_str());
    std::printf("  corrupted bytes %llu, wall %.2f s\n", static_cast<unsigned long long>(r.bad_bytes), wall);
    std::printf("  swap-out %s in %.2f s: %.2f GiB/s\n", vramfs::format_size(out_bytes).c_str(), r.fill_s, out_rate);
    std::printf("  swap-in  %s in %.2f s: %.2f GiB/s\n", vramfs::format_size(in_bytes).c_str(), r.verify_s, in_rate);
    std::printf("  swapped out again while swapping in: %s\n", vramfs::format_size(again_bytes).c_str());
    if (!json_path.empty()) {
        std::ofstream j(json_path);
        j << "{\"verdict\":\"" << verdict << "\",\"working_set\":" << bytes << ",\"limit\":" << limit
          << ",\"corrupted_bytes\":" << r.bad_bytes << ",\"wall_s\":" << wall
          << ",\"swap_out_bytes\":" << out_bytes << ",\"swap_in_bytes\":" << in_bytes
          << ",\"swap_out_while_in_bytes\":" << again_bytes
          << ",\"fill_s\":" << r.fill_s << ",\"verify_s\":" << r.verify_s
          << ",\"swap_out_gib_s\":" << out_rate << ",\"swap_in_gib_s\":" << in_rate << "}\n";
    }
    return rc;
}
