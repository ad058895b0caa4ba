// The memory discipline that lets vramfs back a swap device, in one place.
//
// The invariant: serving a request never waits for memory. When the machine runs out of
// memory, reclaim waits on swap writes that only this daemon can complete; if the daemon
// itself then needed a fresh page (a heap chunk, a stack page, a buffer touched for the first
// time) it could wait on that same reclaim, and swap would deadlock. So everything a request
// uses exists, faulted in and locked, before the first request:
//   - the heap: one malloc arena, grown and faulted at start, never trimmed (prepare_heap);
//   - every worker's stack, touched to its working depth (touch_stack);
//   - every serving thread's per-thread state in the GPU API (CUDA's current device and
//     per-thread stream), made before its first request (StorageBackend::prepare_thread);
//   - every I/O buffer (receive buffers, read buffers, read cache windows), written once when
//     it is allocated (fault_in), from the backend (page-locked for CUDA);
//   - the daemon's own mappings, locked on fault, but not the GPU driver's device mappings
//     and address reservations, which are not host RAM; and every mapping made later (the
//     heap regrown after a library trimmed it, a driver's own), locked on fault too where
//     locking has no limit (lock_own_memory);
//   - the kernel told the daemon is an I/O flusher, and the OOM killer told to spare it
//     (harden_for_swap; both need privileges, so they are best effort with a warning).
// Storage never allocates on the I/O path either: slabs come from the device ahead of need
// (BlockPool's background thread), and the host backend carves them from one locked arena.
// Code on the request path keeps to this: no new threads, no growth of containers, no
// allocation larger than the heap prepared.
#pragma once

#include <cstddef>

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
// PR_SET_IO_FLUSHER and oom_score_adj -1000, each with a warning if refused.
void harden_for_swap() noexcept;

} // namespace vramfs
