// BlockPool: a byte budget carved into fixed-size blocks, taken from a backend in slabs.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vramfs {

using BlockId = std::uint32_t;
inline constexpr BlockId kNoBlock = UINT32_MAX;

struct PoolStats {
    std::uint64_t block_size = 0;
    std::uint64_t budget_bytes = 0;   // what the mount may use
    std::uint64_t used_bytes = 0;     // blocks held by files
    std::uint64_t reserved_bytes = 0; // slabs held from the device (used + free-in-slab)
    std::uint64_t slabs = 0;       // slabs held from the device
    std::uint64_t empty_slabs = 0; // of those, the ones no file has a block in
};

// Blocks are allocated from the lowest-numbered slab with room, so that freed space collects in
// the high slabs and whole slabs can go back to the device. Slab k holds blocks
// [k*slab_blocks, k*slab_blocks + capacity(k)); the last slab is short so the device never holds
// more than the budget.
class BlockPool {
public:
    // release_delay 0: a slab that empties goes back to the device at once (keeping one spare).
    // Otherwise a background thread hands back slabs that stayed empty that long, so the I/O
    // path never frees device memory and a file that shrinks and regrows (swap with discard)
    // reuses its slabs instead of asking the driver again. That thread also keeps half a slab
    // of free blocks open ahead of need while anything is in use, so that a write into a hole
    // (swap after discards) rarely waits for the driver: taking device memory may fault in host
    // memory, and under memory pressure that fault can wait on swap I/O that only this
    // daemon can serve. For the same reason that thread hands no slab back while
    // `memory_short` says memory is short (the daemon passes memory_is_short): a driver may fault
    // in host memory while freeing too, and a slab kept is one that need not be taken again.
    using MemoryShort = bool (*)() noexcept;
    BlockPool(StorageBackend& backend, std::uint64_t budget_bytes, std::uint64_t block_size,
              std::uint64_t slab_bytes = 64ull << 20,
              std::chrono::milliseconds release_delay = std::chrono::milliseconds(0),
              MemoryShort memory_short = nullptr);
    ~BlockPool();
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;

    // Takes `n` blocks, all or none: 0, or ENOSPC when the budget or the device is exhausted.
    int allocate(std::size_t n, BlockId* out) noexcept;
    void release(const BlockId* ids, std::size_t n) noexcept;
    void release(BlockId id) noexcept { release(&id, 1); }

    DeviceAddr address(BlockId id) const noexcept {
        return slab_base_[id / slab_blocks_] + (id % slab_blocks_) * block_size_;
    }
    std::uint64_t block_size() const noexcept { return block_size_; }
    std::uint64_t budget_blocks() const noexcept { return budget_blocks_; }
    std::uint64_t used_blocks() const noexcept { return used_.load(std::memory_order_relaxed); }
    PoolStats stats() const;
    StorageBackend& backend() const noexcept { return backend_; }

private:
    struct Slab {
        DeviceBuffer memory;             // empty while the slab is not taken from the device
        std::vector<std::uint32_t> free; // free block indices inside the slab, a stack
        std::uint32_t capacity = 0;
        std::uint32_t used = 0;
        bool allocated = false;
        bool opening = false; // the background thread is taking it from the device
        std::chrono::steady_clock::time_point empty_since{};
    };
    void reaper_main();
    void open_ahead(std::unique_lock<std::mutex>& lock) noexcept;
    void release_idle(std::unique_lock<std::mutex>& lock) noexcept;
    std::uint32_t capacity_of(std::uint32_t slab) const noexcept;
    std::uint64_t slab_bytes(std::uint32_t slab) const noexcept {
        return std::uint64_t{slabs_[slab].capacity} * block_size_;
    }
    std::uint32_t first_unopened() const noexcept; // slabs_.size() when none; caller holds mu_
    int open_slab(std::uint32_t slab) noexcept;  // caller holds mu_
    void install_slab(std::uint32_t slab, DeviceBuffer memory) noexcept; // caller holds mu_
    // Takes an open slab out of service and returns its memory, which goes back to the device
    // when the returned buffer is dropped; close_slab drops it at once. The caller holds mu_.
    DeviceBuffer detach_slab(std::uint32_t slab) noexcept;
    void close_slab(std::uint32_t slab) noexcept; // caller holds mu_
    void return_blocks(const BlockId* ids, std::size_t n) noexcept; // caller holds mu_
    void set_room(std::uint32_t slab, bool room) noexcept;
    std::uint32_t first_with_room() const noexcept; // slabs_.size() when none

    StorageBackend& backend_;
    const std::uint64_t block_size_;
    const std::uint64_t budget_blocks_;
    const std::uint32_t slab_blocks_;
    const std::uint64_t low_water_; // free open blocks the background thread keeps (in use)

    mutable std::mutex mu_; // a leaf lock: nothing else is taken while it is held
    std::vector<Slab> slabs_;
    // Each open slab's address, for address(): written under mu_ when a slab opens; read
    // without it, since a block's slab stays open while any file holds the block. Sized once,
    // never reallocated.
    std::vector<DeviceAddr> slab_base_;
    // Open slabs with free blocks, one bit each; sized once so the I/O path never allocates.
    std::vector<std::uint64_t> room_bits_;
    std::uint32_t empty_open_slabs_ = 0;      // kept at most one, to avoid alloc/free churn
    std::atomic<std::uint64_t> used_{0};
    std::uint64_t reserved_blocks_ = 0;
    std::uint64_t open_slabs_ = 0;

    const std::chrono::milliseconds release_delay_;
    const MemoryShort memory_short_;
    bool holding_ = false; // the last release_idle kept slabs because memory was short
    std::condition_variable reaper_cv_;
    bool stopping_ = false;
    std::thread reaper_;
};

} // namespace vramfs
