// The memory discipline that lets vramfs back a swap device, in one place.
//
// The invariant: serving a request never waits for memory. When the machine runs out of
// memory, reclaim waits on swap writes that only this daemon can complete; if the daemon
// itself then needed a fresh page (a heap chunk, a stack page, a buffer touched for the first
// time) it could wait on that same reclaim, and swap would deadlock. So everything a request
// uses exists, faulted in and locked, before the first request:
//   - the heap: one malloc arena, grown at start and given free room again just before it is
//     locked, faulted in and never trimmed (prepare_heap, lock_own_memory);
//   - every worker's stack and the slab pool thread's, touched to a working depth (touch_stack);
//   - every serving thread's per-thread state in the GPU API (CUDA's current device and
//     per-thread stream; a first Vulkan copy), made before its first request
//     (StorageBackend::prepare_thread), and each Vulkan copy context used once at open;
//   - every I/O buffer (receive buffers, read buffers, read cache windows), written once when
//     it is allocated (fault_in), from the backend (page-locked for CUDA);
//   - the daemon's own mappings, locked on fault, but not the GPU driver's device mappings
//     and address reservations, which are not host RAM; and every mapping made later (the
//     heap regrown after a library trimmed it, a driver's own), locked on fault too where
//     locking has no limit (lock_own_memory);
//   - the kernel told the daemon is an I/O flusher, and the OOM killer told to spare it
//     (harden_for_swap, before any thread starts; both need privileges, so they are best effort
//     with a warning);
//   - no GPU driver call to give slabs back while memory is short (memory_is_short).
// Storage never allocates on the I/O path either: slabs come from the device ahead of need
// (BlockPool's background thread), and the host backend carves them from one locked arena.
// With a spill (SpillTier), a request's disk I/O is O_DIRECT between the tier's own locked
// buffers and a file written in full at mount (no page cache, no extent to convert, no block to
// allocate), and no request waits on the tier's moves, which take no device memory and make no
// copy while memory is short.
// Code on the request path keeps to this: no new threads, no growth of containers, no
// allocation larger than the heap prepared.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vramfs {

// Call first, before any other thread exists (before CUDA starts).
void prepare_heap() noexcept;
// Faults in [p, p+bytes) by writing zeros, so that its first use needs no new page.
void fault_in(void* p, std::size_t bytes) noexcept;
// Touches the calling thread's stack down to the depth a request may use.
void touch_stack() noexcept;
// Host memory of the daemon's own for a device to copy from and to: `bytes` rounded up to
// `align` (a power of two, at least a page), at an address aligned to it, written once (faulted
// in) and left out of fork() children, whose copy-on-write would move pages under the device.
// nullptr if the kernel refuses. Give it back with unmap_host_memory(p, bytes, align).
void* map_host_memory(std::size_t bytes, std::size_t align) noexcept;
void unmap_host_memory(void* p, std::size_t bytes, std::size_t align) noexcept;
// How many bytes map_host_memory(bytes, align) maps.
std::size_t host_memory_bytes(std::size_t bytes, std::size_t align) noexcept;
// Whether this process may lock memory without limit (CAP_IPC_LOCK, or an unlimited
// RLIMIT_MEMLOCK): only then does lock_own_memory lock mappings made after it as well.
bool may_lock_without_limit() noexcept;
// Locks (on fault) every mapping of the daemon's own; call once all threads and buffers exist.
void lock_own_memory() noexcept;
// PR_SET_IO_FLUSHER and oom_score_adj -1000; both need privileges, so either may be refused.
// The flag is per thread and only threads started later inherit it: call before any other
// thread exists. What was refused is returned, for report_hardening to log once the daemon logs
// where it should (syslog, once detached), so a user's mount does not print it.
struct SwapHardening {
    int io_flusher_errno = 0;
    int oom_errno = 0;
};
SwapHardening harden_for_swap() noexcept;
void report_hardening(const SwapHardening& h) noexcept; // a warning for each refusal

// A /proc/meminfo value ("MemAvailable", "MemTotal") in bytes; false if it cannot be read.
// Allocates nothing (a fixed buffer, plain open and read). `proc_root` is for tests.
bool meminfo_bytes(const char* key, std::uint64_t& out, const char* proc_root = "/proc") noexcept;

// Bytes this process can still take before it reaches a limit: the least room left under any
// memory cgroup it is in (each level's v2 memory.max and memory.high, or v1
// memory.limit_in_bytes, less its usage) and the machine's MemAvailable. UINT64_MAX when none
// can be read. Allocates nothing (fixed buffers, plain open and read), so a thread may ask while
// memory is short. `proc_root` and `cgroup_root` are for tests.
std::uint64_t memory_headroom(const char* proc_root = "/proc",
                              const char* cgroup_root = "/sys/fs/cgroup") noexcept;
// Whether memory is short enough that the daemon should not ask a GPU driver for anything
// (slabs back to the device, or new ones): a driver may fault in host memory inside such a
// call, and under a cgroup's limit that fault reclaims by writing swap, which this daemon
// serves. The margin is what such a call may take with room to spare.
inline constexpr std::uint64_t kMemoryShortMargin = 64ull << 20;
bool memory_is_short() noexcept;

} // namespace vramfs
