// SlabReaper: the background thread that opens slabs ahead of need and gives idle ones back.
#pragma once

#include "vramfs/data/block_allocator.hpp"
#include "vramfs/data/budget.hpp"
#include "vramfs/data/slab_source.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace vramfs {

// While anything is in use it keeps `low_water` free blocks open ahead of need, so that a write
// into a hole (swap after discards) rarely waits for the driver: taking device memory may
// fault in host memory, and under memory pressure that fault can wait on swap I/O that only
// this daemon can serve. It hands back slabs that stayed empty for `delay` (keeping the low
// water), so the I/O path never frees device memory and a file that shrinks and regrows reuses
// its slabs; but none while `memory_short` says memory is short, since a driver may fault in
// host memory while freeing too. Every device call runs without `mu`, the lock that guards
// the parts it works on, so requests go on being served meanwhile.
class SlabReaper {
public:
    using MemoryShort = bool (*)() noexcept;
    SlabReaper(std::mutex& mu, SlabSource& slabs, BlockAllocator& blocks, const Budget& budget,
               std::chrono::milliseconds delay, MemoryShort memory_short, std::uint64_t low_water);
    ~SlabReaper(); // stops and joins the thread
    SlabReaper(const SlabReaper&) = delete;
    SlabReaper& operator=(const SlabReaper&) = delete;

    // Free open blocks ran below the low water: look now rather than at the next tick.
    void wake() noexcept { cv_.notify_one(); }

private:
    void main();
    void open_ahead(std::unique_lock<std::mutex>& lock) noexcept;
    void release_idle(std::unique_lock<std::mutex>& lock) noexcept;

    std::mutex& mu_;
    SlabSource& slabs_;
    BlockAllocator& blocks_;
    const Budget& budget_;
    const std::chrono::milliseconds delay_;
    const MemoryShort memory_short_;
    const std::uint64_t low_water_;
    bool holding_ = false; // the last release_idle kept slabs because memory was short
    bool stopping_ = false;
    std::condition_variable cv_;
    std::thread thread_; // last: started once everything above is
};

} // namespace vramfs
