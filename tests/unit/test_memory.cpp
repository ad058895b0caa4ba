// The memory discipline's helpers: host memory for device copies, and locking the daemon's
// memory, mappings made after the lock included.
#include "vramfs/util/memory.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
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
