// BlockPool: budget accounting and slab management over a StorageBackend.
#include "vramfs/data/block_pool.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <algorithm>
#include <cerrno>
#include <pthread.h>
#include <stdexcept>

namespace vramfs {

BlockPool::BlockPool(StorageBackend& backend, std::uint64_t budget_bytes, std::uint64_t block_size,
                     std::uint64_t slab_bytes, std::chrono::milliseconds release_delay,
                     MemoryShort memory_short)
    : backend_(backend), block_size_(block_size), budget_blocks_(budget_bytes / block_size),
      slab_blocks_(static_cast<std::uint32_t>(std::max<std::uint64_t>(1, slab_bytes / block_size))),
      low_water_(std::max<std::uint64_t>(1, slab_blocks_ / 2)), release_delay_(release_delay),
      memory_short_(memory_short) {
    if (block_size == 0 || (block_size & (block_size - 1)) != 0)
        throw std::invalid_argument("block size must be a power of two");
    if (budget_blocks_ >= kNoBlock)
        throw std::invalid_argument("budget has too many blocks");
    const std::size_t nslabs = (budget_blocks_ + slab_blocks_ - 1) / slab_blocks_;
    slabs_.resize(nslabs);
    slab_base_.assign(nslabs, 0);
    room_bits_.assign((nslabs + 63) / 64, 0);
    // Each slab's free list is sized now: opening a slab later allocates no host memory.
    for (std::uint32_t s = 0; s < nslabs; ++s) {
        slabs_[s].capacity = capacity_of(s);
        slabs_[s].free.reserve(slabs_[s].capacity);
    }
    if (release_delay_.count() > 0) reaper_ = std::thread([this] { reaper_main(); });
}

void BlockPool::reaper_main() {
    // This thread calls the driver under memory pressure too: its stack is faulted in (and so
    // locked) now, as a worker's is, and a deeper first call later does not need a new page.
    ::pthread_setname_np(::pthread_self(), "vramfs-pool");
    touch_stack();
    std::unique_lock lock(mu_);
    while (!stopping_) {
        reaper_cv_.wait_for(lock, std::min<std::chrono::milliseconds>(release_delay_, std::chrono::milliseconds(250)));
        if (stopping_) break;
        open_ahead(lock);
        release_idle(lock);
    }
}

// Opens the next slab when the free blocks of the open ones run below the low-water mark while
// files hold blocks. The device call runs without the lock, so requests keep being served from
// the blocks that are left while it runs (or waits for memory).
void BlockPool::open_ahead(std::unique_lock<std::mutex>& lock) noexcept {
    const std::uint64_t used = used_.load(std::memory_order_relaxed);
    if (used == 0 || reserved_blocks_ - used >= low_water_) return;
    const std::uint32_t s = first_unopened();
    if (s == slabs_.size()) return;
    slabs_[s].opening = true;
    lock.unlock();
    DeviceBuffer memory;
    const int err = backend_.allocate(slab_bytes(s), memory);
    lock.lock();
    slabs_[s].opening = false;
    if (err) {
        // Not an error yet: a request that needs the blocks tries again and reports failure.
        log_debug("block pool: taking a slab ahead of need failed: errno %d", err);
        return;
    }
    install_slab(s, std::move(memory));
}

// Hands back slabs that stayed empty for the release delay, except the free blocks the
// low-water mark keeps while files hold blocks, and none while memory is short.
void BlockPool::release_idle(std::unique_lock<std::mutex>& lock) noexcept {
    const auto now = std::chrono::steady_clock::now();
    auto releasable = [&](const Slab& slab) {
        if (!slab.allocated || slab.used != 0 || now - slab.empty_since < release_delay_) return false;
        const std::uint64_t used = used_.load(std::memory_order_relaxed);
        return used == 0 || reserved_blocks_ - used - slab.capacity >= low_water_;
    };
    if (std::none_of(slabs_.begin(), slabs_.end(), releasable)) return;
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
    for (std::uint32_t s = 0; s < slabs_.size(); ++s) {
        if (!releasable(slabs_[s])) continue;
        // Take the slab out of service under the lock, free it on the device without it, so
        // requests are not held up by a synchronising cudaFree.
        DeviceBuffer memory = detach_slab(s);
        lock.unlock();
        memory.reset();
        lock.lock();
    }
}

void BlockPool::set_room(std::uint32_t slab, bool room) noexcept {
    const std::uint64_t bit = std::uint64_t{1} << (slab % 64);
    if (room)
        room_bits_[slab / 64] |= bit;
    else
        room_bits_[slab / 64] &= ~bit;
}

std::uint32_t BlockPool::first_with_room() const noexcept {
    for (std::size_t w = 0; w < room_bits_.size(); ++w)
        if (room_bits_[w]) return static_cast<std::uint32_t>(w * 64 + __builtin_ctzll(room_bits_[w]));
    return static_cast<std::uint32_t>(slabs_.size());
}

BlockPool::~BlockPool() {
    if (reaper_.joinable()) {
        {
            std::lock_guard lock(mu_);
            stopping_ = true;
        }
        reaper_cv_.notify_all();
        reaper_.join();
    }
    std::lock_guard lock(mu_);
    for (std::uint32_t s = 0; s < slabs_.size(); ++s)
        if (slabs_[s].allocated) close_slab(s);
}

std::uint32_t BlockPool::capacity_of(std::uint32_t slab) const noexcept {
    const std::uint64_t first = std::uint64_t{slab} * slab_blocks_;
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(slab_blocks_, budget_blocks_ - first));
}

std::uint32_t BlockPool::first_unopened() const noexcept {
    std::uint32_t s = 0;
    while (s < slabs_.size() && (slabs_[s].allocated || slabs_[s].opening)) ++s;
    return s;
}

int BlockPool::open_slab(std::uint32_t s) noexcept {
    DeviceBuffer memory;
    if (int err = backend_.allocate(slab_bytes(s), memory)) return err;
    install_slab(s, std::move(memory));
    return 0;
}

void BlockPool::install_slab(std::uint32_t s, DeviceBuffer memory) noexcept {
    Slab& slab = slabs_[s];
    // Hand out low indices first, so that a partly used slab stays compact. No allocation:
    // the capacity was reserved at construction.
    slab.free.clear();
    for (std::uint32_t i = 0; i < slab.capacity; ++i) slab.free.push_back(slab.capacity - 1 - i);
    slab.allocated = true;
    slab.used = 0;
    slab_base_[s] = memory.address();
    slab.memory = std::move(memory);
    reserved_blocks_ += slab.capacity;
    ++open_slabs_;
    ++empty_open_slabs_;
    slab.empty_since = std::chrono::steady_clock::now();
    set_room(s, true);
}

DeviceBuffer BlockPool::detach_slab(std::uint32_t s) noexcept {
    Slab& slab = slabs_[s];
    slab_base_[s] = 0;
    slab.allocated = false;
    slab.free.clear(); // keeps its capacity for the next open
    reserved_blocks_ -= slab.capacity;
    --open_slabs_;
    if (slab.used == 0) --empty_open_slabs_;
    set_room(s, false);
    return std::move(slab.memory);
}

void BlockPool::close_slab(std::uint32_t s) noexcept { detach_slab(s).reset(); }

int BlockPool::allocate(std::size_t n, BlockId* out) noexcept {
    if (n == 0) return 0;
    std::lock_guard lock(mu_);
    if (used_.load(std::memory_order_relaxed) + n > budget_blocks_) return ENOSPC;
    std::size_t got = 0;
    while (got < n) {
        std::uint32_t s = first_with_room();
        if (s == slabs_.size()) {
            // Open the lowest slab not yet taken from the device (nor being taken).
            s = first_unopened();
            int err = s < slabs_.size() ? open_slab(s) : ENOSPC;
            if (err) {
                if (err != ENOSPC)
                    log_error("block pool: taking a %llu-byte slab from %s failed: errno %d",
                              static_cast<unsigned long long>(slab_bytes(s)),
                              backend_.kind(), err);
                // Undo this call's blocks so a failure changes nothing.
                return_blocks(out, got);
                return err == ENOMEM ? ENOMEM : ENOSPC;
            }
        }
        Slab& slab = slabs_[s];
        if (slab.used == 0) --empty_open_slabs_;
        while (got < n && !slab.free.empty()) {
            out[got++] = s * slab_blocks_ + slab.free.back();
            slab.free.pop_back();
            ++slab.used;
        }
        if (slab.free.empty()) set_room(s, false);
    }
    const std::uint64_t used = used_.fetch_add(n, std::memory_order_relaxed) + n;
    if (reaper_.joinable() && reserved_blocks_ - used < low_water_) reaper_cv_.notify_one();
    return 0;
}

void BlockPool::release(const BlockId* ids, std::size_t n) noexcept {
    if (n == 0) return;
    std::lock_guard lock(mu_);
    used_.fetch_sub(n, std::memory_order_relaxed);
    return_blocks(ids, n);
}

// Returns blocks to their slabs; the caller holds mu_ and has already taken them off used_.
void BlockPool::return_blocks(const BlockId* ids, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t s = ids[i] / slab_blocks_;
        if (s >= slabs_.size() || !slabs_[s].allocated || slabs_[s].used == 0) {
            log_error("block pool: release of block %u that is not in use (a bug)", ids[i]);
            continue;
        }
        Slab& slab = slabs_[s];
        slab.free.push_back(ids[i] % slab_blocks_);
        set_room(s, true);
        if (--slab.used == 0) {
            ++empty_open_slabs_;
            slab.empty_since = std::chrono::steady_clock::now();
            // Hand the VRAM back to the device, keeping one empty slab against churn (or leave
            // it all to the reaper).
            if (release_delay_.count() == 0 && empty_open_slabs_ > 1) close_slab(s);
        }
    }
    // Nothing in use at all: the kept slab goes back too.
    if (release_delay_.count() == 0 && used_.load(std::memory_order_relaxed) == 0 &&
        empty_open_slabs_ > 0)
        for (std::uint32_t s = 0; s < slabs_.size(); ++s)
            if (slabs_[s].allocated && slabs_[s].used == 0) close_slab(s);
}

PoolStats BlockPool::stats() const {
    std::lock_guard lock(mu_);
    PoolStats st;
    st.block_size = block_size_;
    st.budget_bytes = budget_blocks_ * block_size_;
    st.used_bytes = used_.load(std::memory_order_relaxed) * block_size_;
    st.reserved_bytes = reserved_blocks_ * block_size_;
    st.slabs = open_slabs_;
    st.empty_slabs = empty_open_slabs_;
    return st;
}

} // namespace vramfs
