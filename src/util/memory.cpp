// The memory discipline (see memory.hpp for the invariant it keeps).
#include "vramfs/util/memory.hpp"

#include "vramfs/util/log.hpp"

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

} // namespace

// libfuse allocates a small request record per request, and so may we (a readdir buffer).
// Such allocations must be served from pages the process already has: one malloc arena for
// all threads, grown and faulted now and never trimmed back to the kernel.
void prepare_heap() noexcept {
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);   // small and medium blocks come from the heap...
    mallopt(M_TRIM_THRESHOLD, 256 << 20); // ...which is not handed back when they are freed
    constexpr int kChunks = 32;
    void* chunks[kChunks];
    for (auto& c : chunks) {
        c = std::malloc(512 * 1024);
        if (c) std::memset(c, 0, 512 * 1024);
    }
    for (auto* c : chunks) std::free(c);
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

void harden_for_swap() noexcept {
    if (::prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) != 0)
        log_warning("PR_SET_IO_FLUSHER failed (%s)", std::strerror(errno));
    if (int fd = ::open("/proc/self/oom_score_adj", O_WRONLY); fd >= 0) {
        if (::write(fd, "-1000", 5) != 5)
            log_warning("cannot exempt the daemon from the OOM killer (%s)", std::strerror(errno));
        ::close(fd);
    }
}

} // namespace vramfs
