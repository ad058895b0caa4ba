// The memory discipline's helpers: host memory for device copies, locking the daemon's memory
// (mappings made after the lock included), and how much memory the process has left.
#include "vramfs/util/memory.hpp"

#include "../support/memory_cgroup.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace vramfs;

namespace {

// AddressSanitizer and ThreadSanitizer make mlock and mlockall do nothing: there the locking
// test is reported as skipped (it runs in the plain build).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kLockingIsIntercepted = true;
#else
constexpr bool kLockingIsIntercepted = false;
#endif

// The VmFlags of the mapping of this process that holds `p`, or "" if none does.
std::string vm_flags(const void* p) {
    std::FILE* f = std::fopen("/proc/self/smaps", "r");
    if (!f) return "";
    const auto at = reinterpret_cast<std::uintptr_t>(p);
    char line[512];
    bool inside = false;
    std::string flags;
    while (std::fgets(line, sizeof line, f)) {
        unsigned long start = 0, end = 0;
        if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2 && std::strchr(line, '-') < std::strchr(line, ' '))
            inside = at >= start && at < end;
        else if (inside && std::strncmp(line, "VmFlags:", 8) == 0) {
            flags = line + 8;
            break;
        }
    }
    std::fclose(f);
    return flags;
}

} // namespace

TEST_CASE("host memory for device copies is aligned, zeroed and of the size asked for") {
    for (const std::size_t align : {std::size_t{0}, std::size_t{4096}, std::size_t{1} << 16}) {
        const std::size_t bytes = (1 << 20) + 100;
        auto* p = static_cast<unsigned char*>(map_host_memory(bytes, align));
        REQUIRE(p != nullptr);
        CHECK(reinterpret_cast<std::uintptr_t>(p) % (align ? align : 4096) == 0);
        bool zero = true;
        for (std::size_t i = 0; i < bytes; ++i) zero = zero && p[i] == 0;
        CHECK(zero);
        p[bytes - 1] = 1; // the whole of it is writable
        CHECK(vm_flags(p).find(" dc") != std::string::npos); // kept out of fork children
        unmap_host_memory(p, bytes, align);
        CHECK(vm_flags(p).empty()); // and all of it is gone
    }
}

TEST_CASE("once the daemon locks its memory, mappings made later are locked too" *
          doctest::skip(kLockingIsIntercepted)) {
    // In a child, so that this test process keeps its own memory as it was.
    const bool expect_locked = may_lock_without_limit();
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        lock_own_memory();
        void* later = mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (later == MAP_FAILED) _exit(3);
        const std::string flags = vm_flags(later);
        const bool locked = flags.find(" lo") != std::string::npos;
        _exit(flags.empty() ? 4 : locked == expect_locked ? 0 : 1);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    const std::string expected = expect_locked ? "locked" : "not locked";
    INFO("expected the later mapping " << expected);
    CHECK(WEXITSTATUS(status) == 0);
}

namespace {

// A fake /proc and /sys/fs/cgroup under a temporary directory, for memory_headroom.
struct FakeRoots {
    std::filesystem::path root;
    FakeRoots() {
        char tmpl[] = "/tmp/vramfs-headroom-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        root = tmpl;
        std::filesystem::create_directories(root / "proc/self");
        std::filesystem::create_directories(root / "cg");
    }
    ~FakeRoots() { std::filesystem::remove_all(root); }
    void put(const std::string& rel, const std::string& text) {
        const auto path = root / rel;
        std::filesystem::create_directories(path.parent_path());
        REQUIRE(test_support::write_file(path.string(), text));
    }
    std::uint64_t headroom() const {
        return memory_headroom((root / "proc").c_str(), (root / "cg").c_str());
    }
};

constexpr std::uint64_t kMiB = 1ull << 20;

} // namespace

TEST_CASE("memory headroom is the least room under any cgroup level and the machine") {
    FakeRoots f;
    f.put("proc/meminfo", "MemTotal:       1000000 kB\nMemFree:         500000 kB\n"
                          "MemAvailable:    900000 kB\nBuffers: 1 kB\n");
    SUBCASE("nothing but meminfo: MemAvailable") {
        CHECK(f.headroom() == 900000ull * 1024);
    }
    SUBCASE("meminfo's values by key, first line to last; a key not there is not found") {
        const std::string proc = (f.root / "proc").string();
        std::uint64_t v = 0;
        CHECK((meminfo_bytes("MemTotal", v, proc.c_str()) && v == 1000000ull * 1024));
        CHECK((meminfo_bytes("Buffers", v, proc.c_str()) && v == 1024));
        CHECK_FALSE(meminfo_bytes("Mem", v, proc.c_str())); // a prefix is no key
        CHECK_FALSE(meminfo_bytes("SwapTotal", v, proc.c_str()));
    }
    SUBCASE("cgroup v2: each level's max and high, the tightest wins") {
        f.put("proc/self/cgroup", "0::/outer/inner\n");
        f.put("cg/outer/inner/memory.current", std::to_string(100 * kMiB) + "\n");
        f.put("cg/outer/inner/memory.max", std::to_string(300 * kMiB) + "\n");
        f.put("cg/outer/inner/memory.high", "max\n");
        f.put("cg/outer/memory.current", std::to_string(500 * kMiB) + "\n");
        f.put("cg/outer/memory.max", std::to_string(650 * kMiB) + "\n");
        CHECK(f.headroom() == 150 * kMiB); // the outer level: 650 - 500
        f.put("cg/outer/inner/memory.high", std::to_string(120 * kMiB) + "\n");
        CHECK(f.headroom() == 20 * kMiB); // the inner level's high: 120 - 100
        f.put("cg/outer/inner/memory.current", std::to_string(130 * kMiB) + "\n");
        CHECK(f.headroom() == 0); // past high
    }
    SUBCASE("cgroup v2 without limits: MemAvailable") {
        f.put("proc/self/cgroup", "0::/a\n");
        f.put("cg/a/memory.current", std::to_string(100 * kMiB) + "\n");
        f.put("cg/a/memory.max", "max\n");
        CHECK(f.headroom() == 900000ull * 1024);
    }
    SUBCASE("cgroup v1 beside a v2 hierarchy without the memory controller") {
        f.put("proc/self/cgroup", "12:cpu,cpuacct:/x\n4:memory:/job\n0::/y\n");
        f.put("cg/memory/job/memory.usage_in_bytes", std::to_string(10 * kMiB) + "\n");
        f.put("cg/memory/job/memory.limit_in_bytes", std::to_string(42 * kMiB) + "\n");
        f.put("cg/y/memory.current", "0\n"); // not the memory hierarchy: ignored
        f.put("cg/y/memory.max", "0\n");
        CHECK(f.headroom() == 32 * kMiB);
    }
    SUBCASE("a root cgroup has no limit") {
        f.put("proc/self/cgroup", "0::/\n");
        CHECK(f.headroom() == 900000ull * 1024);
    }
}

TEST_CASE("memory headroom reads nothing it cannot: no files, no limit") {
    CHECK(memory_headroom("/nonexistent-proc", "/nonexistent-cgroup") == UINT64_MAX);
}

TEST_CASE("in a real memory cgroup, memory is short once the process nears its limit" *
          doctest::skip(geteuid() != 0)) {
    constexpr std::uint64_t limit = 256 * kMiB, step = 8 * kMiB;
    test_support::MemoryCgroup cg;
    std::string error;
    REQUIRE_MESSAGE(cg.create(limit, error, "vramfs-unit"), error);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (!cg.add(getpid())) _exit(4);
        const std::uint64_t before = memory_headroom();
        if (before > limit) _exit(1);
        if (memory_is_short()) _exit(5); // this child has not touched its 256 MiB yet
        // Filled a step at a time (each charged to the cgroup) until memory is short; never
        // past the limit, where the child would be killed (a sanitizer's shadow memory is
        // charged too, so that can come early).
        auto* p = static_cast<char*>(
            mmap(nullptr, limit, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        if (p == MAP_FAILED) _exit(3);
        for (std::uint64_t filled = 0; filled + step < limit; filled += step) {
            std::memset(p + filled, 1, step);
            if (memory_is_short())
                _exit(memory_headroom() <= limit - (filled + step) ? 0 : 6);
        }
        _exit(2);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    INFO("child exit 1: headroom above the limit, 2: never short, 4: cannot join, "
         "5: short before filling, 6: more headroom than the memory filled leaves");
    CHECK(WEXITSTATUS(status) == 0);
}
