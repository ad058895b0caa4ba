// SlabReaper: opening ahead and giving back idle slabs, on a thread of its own.
#include "vramfs/data/slab_reaper.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <algorithm>
#include <pthread.h>

namespace vramfs {

SlabReaper::SlabReaper(std::mutex& mu, SlabSource& slabs, BlockAllocator& blocks, const Budget& budget,
                       std::chrono::milliseconds delay, MemoryShort memory_short, std::uint64_t low_water)
    : mu_(mu), slabs_(slabs), blocks_(blocks), budget_(budget), delay_(delay),
      memory_short_(memory_short), low_water_(low_water), thread_([this] { main(); }) {}

SlabReaper::~SlabReaper() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void SlabReaper::main() {
    // This thread calls the driver under memory pressure too: its stack is faulted in (and so
    // locked) now, as a worker's is, and a deeper first call later does not need a new page.
    ::pthread_setname_np(::pthread_self(), "vramfs-pool");
    touch_stack();
    std::unique_lock lock(mu_);
    while (!stopping_) {
        cv_.wait_for(lock, std::min<std::chrono::milliseconds>(delay_, std::chrono::milliseconds(250)));
        if (stopping_) break;
        open_ahead(lock);
        release_idle(lock);
    }
}

// Opens the next slab when the free blocks of the open ones run below the low-water mark while
// files hold blocks. The device call runs without the lock, so requests keep being served from
// the blocks that are left while it runs (or waits for memory).
void SlabReaper::open_ahead(std::unique_lock<std::mutex>& lock) noexcept {
    const std::uint64_t used = budget_.used();
    if (used == 0 || slabs_.reserved_blocks() - used >= low_water_) return;
    // While a spill tier says the card's memory is wanted, a slab opens without it, at once,
    // when a request needs one: nothing to open ahead.
    if (slabs_.memory_wanted()) return;
    const std::uint32_t s = slabs_.first_unopened();
    if (s == slabs_.count()) return;
    slabs_.begin_open(s);
    lock.unlock();
    DeviceBuffer memory;
    const int err = slabs_.fetch(s, memory);
    lock.lock();
    slabs_.end_open(s, err, std::move(memory));
    if (err) {
        // Not an error yet: a request that needs the blocks tries again and reports failure.
        log_debug("block pool: taking a slab ahead of need failed: errno %d", err);
        return;
    }
    blocks_.opened(s);
}

// Hands back slabs that stayed empty for the delay, except the free blocks the low-water mark
// keeps while files hold blocks, and none while memory is short.
void SlabReaper::release_idle(std::unique_lock<std::mutex>& lock) noexcept {
    const auto now = std::chrono::steady_clock::now();
    auto releasable = [&](std::uint32_t s) {
        if (!slabs_.is_open(s) || slabs_.moving(s) || blocks_.used_in(s) != 0 ||
            now - blocks_.empty_since(s) < delay_)
            return false;
        const std::uint64_t used = budget_.used();
        return used == 0 || slabs_.reserved_blocks() - used - slabs_.capacity(s) >= low_water_;
    };
    bool any = false;
    for (std::uint32_t s = 0; s < slabs_.count() && !any; ++s) any = releasable(s);
    if (!any) return;
    if (memory_short_) {
        lock.unlock(); // it reads files
        const bool short_now = memory_short_();
        lock.lock();
        if (short_now != holding_)
            log_debug(short_now ? "block pool: memory is short: empty slabs stay open"
                                : "block pool: memory is no longer short: empty slabs go back");
        holding_ = short_now;
        if (short_now) return;
    }
    for (std::uint32_t s = 0; s < slabs_.count(); ++s) {
        if (!releasable(s)) continue;
        // Take the slab out of service under the lock, free it on the device without it, so
        // requests are not held up by a synchronising free.
        blocks_.closing(s);
        DeviceBuffer memory = slabs_.detach(s);
        lock.unlock();
        memory.reset();
        lock.lock();
    }
}

} // namespace vramfs
