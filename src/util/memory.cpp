// The memory discipline (see memory.hpp for the invariant it keeps).
#include "vramfs/util/memory.hpp"

#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <malloc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace vramfs {
namespace {

constexpr std::size_t kStackTouch = 256 * 1024; // stack pages faulted (and so locked) up front
#ifdef MADV_POPULATE_WRITE
constexpr int kPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kPopulateWrite = 23; // Linux 5.14; older kernels answer EINVAL
#endif

std::size_t round_up(std::size_t n, std::size_t align) noexcept { return (n + align - 1) & ~(align - 1); }

// Reads up to cap-1 bytes of a small file into buf, NUL-terminated; the length, or -1. No
// allocation (stdio would allocate a buffer).
long read_small(const char* path, char* buf, std::size_t cap) noexcept {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    std::size_t got = 0;
    while (got + 1 < cap) {
        const ssize_t n = ::read(fd, buf + got, cap - 1 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    buf[got] = 0;
    return static_cast<long>(got);
}

} // namespace

bool meminfo_bytes(const char* key, std::uint64_t& out, const char* proc_root) noexcept {
    char path[512], buf[4096]; // /proc/meminfo is under 2 KiB
    std::snprintf(path, sizeof path, "%s/meminfo", proc_root);
    if (read_small(path, buf, sizeof buf) <= 0) return false;
    const std::size_t klen = std::strlen(key);
    for (const char* line = buf; *line;) {
        if (std::strncmp(line, key, klen) == 0 && line[klen] == ':') {
            out = std::strtoull(line + klen + 1, nullptr, 10) * 1024;
            return true;
        }
        const char* end = std::strchr(line, '\n');
        if (!end) break;
        line = end + 1;
    }
    return false;
}

namespace {

// A file holding one number of bytes, or "max" (no limit: UINT64_MAX); false if unreadable.
bool read_bytes(const char* dir, const char* name, std::uint64_t& out) noexcept {
    char path[512], buf[64];
    if (std::snprintf(path, sizeof path, "%s/%s", dir, name) >= static_cast<int>(sizeof path)) return false;
    if (read_small(path, buf, sizeof buf) <= 0) return false;
    if (std::strncmp(buf, "max", 3) == 0) {
        out = UINT64_MAX;
        return true;
    }
    char* end = nullptr;
    out = std::strtoull(buf, &end, 10);
    return end != buf;
}

// Room under one cgroup directory's limits, UINT64_MAX where it has none (or none readable).
std::uint64_t cgroup_room(const char* dir, bool v2) noexcept {
    std::uint64_t usage = 0;
    if (!read_bytes(dir, v2 ? "memory.current" : "memory.usage_in_bytes", usage)) return UINT64_MAX;
    std::uint64_t room = UINT64_MAX;
    for (const char* name : {v2 ? "memory.max" : "memory.limit_in_bytes", v2 ? "memory.high" : nullptr}) {
        std::uint64_t limit = UINT64_MAX;
        if (name && read_bytes(dir, name, limit) && limit != UINT64_MAX)
            room = std::min(room, limit > usage ? limit - usage : 0);
    }
    return room;
}

// 16 MiB of free heap, written once: taken and given back, it stays with the process (nothing is
// trimmed) as free space at the top of the heap.
void grow_heap_slack() noexcept {
    constexpr int kChunks = 32;
    void* chunks[kChunks];
    for (auto& c : chunks) {
        c = std::malloc(512 * 1024);
        if (c) std::memset(c, 0, 512 * 1024);
    }
    for (auto* c : chunks) std::free(c);
}
} // namespace

// libfuse allocates a small request record per request, and so may we (a readdir buffer).
// Such allocations must be served from pages the process already has: one malloc arena for
// all threads, grown and faulted now and never trimmed back to the kernel.
void prepare_heap() noexcept {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);   // small and medium blocks come from the heap...
    mallopt(M_TRIM_THRESHOLD, 256 << 20); // ...which is not handed back when they are freed
    grow_heap_slack();
}

void fault_in(void* p, std::size_t bytes) noexcept {
    if (p) std::memset(p, 0, bytes);
}

bool may_lock_without_limit() noexcept {
    rlimit lim{};
    if (::getrlimit(RLIMIT_MEMLOCK, &lim) == 0 && lim.rlim_cur == RLIM_INFINITY) return true;
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return false;
    char line[256];
    unsigned long long caps = 0;
    while (std::fgets(line, sizeof line, f))
        if (std::sscanf(line, "CapEff: %llx", &caps) == 1) break;
    std::fclose(f);
    constexpr int kCapIpcLock = 14;
    return (caps >> kCapIpcLock) & 1;
}

std::size_t host_memory_bytes(std::size_t bytes, std::size_t align) noexcept {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return round_up(bytes, align < page ? page : align);
}

void* map_host_memory(std::size_t bytes, std::size_t align) noexcept {
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    if (align < page) align = page;
    const std::size_t len = host_memory_bytes(bytes, align);
    void* raw = ::mmap(nullptr, len + align - page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    // Trimmed to `len` bytes at an aligned address.
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = round_up(start, align);
    if (aligned > start) ::munmap(raw, aligned - start);
    if (const std::size_t tail = start + len + align - page - (aligned + len))
        ::munmap(reinterpret_cast<void*>(aligned + len), tail);
    void* p = reinterpret_cast<void*>(aligned);
    ::madvise(p, len, MADV_DONTFORK);
    fault_in(p, len);
    return p;
}

void unmap_host_memory(void* p, std::size_t bytes, std::size_t align) noexcept {
    if (p) ::munmap(p, host_memory_bytes(bytes, align));
}

__attribute__((noinline)) void touch_stack() noexcept {
    volatile char pad[kStackTouch];
    for (std::size_t i = 0; i < kStackTouch; i += 4096) pad[i] = 0;
    asm volatile("" : : "r"(pad) : "memory");
}

void lock_own_memory() noexcept {
    // What prepare_heap left free at the top of the heap may be gone by now (the GPU runtime and
    // driver allocate as backends open and threads start; past it the heap grew by no more
    // than each allocation needed): room again, so that what requests allocate later (a first
    // request record on each of dozens of threads) comes from pages faulted and locked below.
    // A serving thread that wrote a chunk header into a new page under memory pressure waited
    // on swap this daemon serves (seen over FUSE over io_uring with 64 threads).
    grow_heap_slack();
    std::FILE* maps = std::fopen("/proc/self/maps", "r");
    if (!maps) return;
    char line[512];
    std::uint64_t locked = 0;
    int failures = 0;
    while (std::fgets(line, sizeof line, maps)) {
        unsigned long start = 0, end = 0;
        char perms[8] = {};
        int path_at = 0;
        if (std::sscanf(line, "%lx-%lx %7s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3)
            continue;
        const char* path = line + path_at;
        const std::uint64_t len = end - start;
        if (std::strncmp(path, "/dev/", 5) == 0) continue;          // device memory, registers
        if (std::strncmp(path, "[v", 2) == 0) continue;             // vdso, vvar, vsyscall
        if (len > (1ull << 30)) continue;                             // address reservations
        if (perms[0] != 'r' && perms[1] != 'w' && perms[2] != 'x') continue; // guard pages
        // The heap may hold pages never touched (between early allocations, or never written
        // free chunks). Locking on fault does not fault them in; malloc writing a chunk header
        // there later would need a new page while holding the arena lock, and under memory
        // pressure in the daemon's own cgroup that page can wait on swap I/O which other
        // workers cannot serve without that lock. Fault them all in now, contents unchanged.
        if (std::strncmp(path, "[heap]", 6) == 0 &&
            ::madvise(reinterpret_cast<void*>(start), len, kPopulateWrite) != 0)
            log_debug("could not populate the heap: %s", std::strerror(errno));
        if (mlock2(reinterpret_cast<void*>(start), len, MLOCK_ONFAULT) == 0)
            locked += len;
        else
            ++failures;
    }
    std::fclose(maps);
    if (failures) log_warning("could not lock %d of the daemon's mappings", failures);
    // What is mapped from now on is locked as it is faulted too. A library may trim the heap
    // (malloc_trim ignores M_TRIM_THRESHOLD), and brk then grows it again as a new, unlocked
    // mapping; a page of it swapped out under pressure and touched by a serving thread waits
    // for swap-in that only this daemon serves (seen with NVIDIA's Vulkan driver). Only where
    // locking has no limit: past RLIMIT_MEMLOCK every later mapping, a driver's too, would fail.
    if (may_lock_without_limit() && ::mlockall(MCL_FUTURE | MCL_ONFAULT) != 0)
        log_warning("could not lock the daemon's future mappings: %s", std::strerror(errno));
    log_debug("locked %llu MiB of address space (on fault)",
              static_cast<unsigned long long>(locked >> 20));
}

std::uint64_t memory_headroom(const char* proc_root, const char* cgroup_root) noexcept {
    std::uint64_t room = UINT64_MAX;
    char path[512], buf[2048];
    if (std::uint64_t available = 0; meminfo_bytes("MemAvailable", available, proc_root)) room = available;

    // The memory cgroup: v1's "N:...memory...:/path" line where the memory controller is v1,
    // else v2's "0::/path". Each level up to the root may have a limit of its own.
    std::snprintf(path, sizeof path, "%s/self/cgroup", proc_root);
    if (read_small(path, buf, sizeof buf) <= 0) return room;
    const char* rel = nullptr;
    bool v2 = false;
    for (char* line = buf; line && *line;) {
        char* next = std::strchr(line, '\n');
        if (next) *next++ = 0;
        char* c1 = std::strchr(line, ':');
        char* c2 = c1 ? std::strchr(c1 + 1, ':') : nullptr;
        if (c2) {
            *c2 = 0;
            const char* controllers = c1 + 1;
            if (std::strcmp(controllers, "memory") == 0 || std::strstr(controllers, "memory,") ||
                std::strstr(controllers, ",memory")) {
                rel = c2 + 1;
                v2 = false;
                break;
            }
            if (*controllers == 0 && c1 == line + 1 && line[0] == '0') {
                rel = c2 + 1;
                v2 = true;
            }
        }
        line = next;
    }
    if (!rel) return room;
    char dir[512];
    if (std::snprintf(dir, sizeof dir, "%s%s%s", cgroup_root, v2 ? "" : "/memory", rel) >=
        static_cast<int>(sizeof dir))
        return room;
    // From the process's own cgroup up to (not including) the hierarchy's root.
    const std::size_t top = std::strlen(cgroup_root) + (v2 ? 0 : 7);
    for (std::size_t len = std::strlen(dir);;) {
        while (len > top && dir[len - 1] == '/') --len;
        if (len <= top) break;
        dir[len] = 0;
        room = std::min(room, cgroup_room(dir, v2));
        char* slash = std::strrchr(dir, '/');
        if (!slash) break;
        len = static_cast<std::size_t>(slash - dir);
    }
    return room;
}

bool memory_is_short() noexcept { return memory_headroom() < kMemoryShortMargin; }

SwapHardening harden_for_swap() noexcept {
    SwapHardening h;
    if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0) h.io_flusher_errno = errno;
    if (int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC); fd >= 0) {
        if (::write(fd, "-1000", 5) != 5) h.oom_errno = errno;
        ::close(fd);
    } else {
        h.oom_errno = errno;
    }
    return h;
}

void report_hardening(const SwapHardening& h) noexcept {
    if (h.io_flusher_errno)
        log_warning("PR_SET_IO_FLUSHER failed (%s)", std::strerror(h.io_flusher_errno));
    if (h.oom_errno)
        log_warning("cannot exempt the daemon from the OOM killer (%s)", std::strerror(h.oom_errno));
}

} // namespace vramfs
