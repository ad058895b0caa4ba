// BlockAllocator: free blocks of each open slab.
#include "vramfs/data/block_allocator.hpp"

namespace vramfs {

BlockAllocator::BlockAllocator(const SlabSource& slabs)
    : source_(slabs), slabs_(slabs.count()), room_(slabs.count()) {
    // Each slab's free list is sized now: opening a slab later allocates no host memory.
    for (std::uint32_t s = 0; s < slabs.count(); ++s) slabs_[s].free.reserve(slabs.capacity(s));
}

void BlockAllocator::opened(std::uint32_t s) noexcept {
    Slab& slab = slabs_[s];
    const std::uint32_t capacity = source_.capacity(s);
    // Low indices first, so that a partly used slab stays compact.
    slab.free.clear();
    for (std::uint32_t i = 0; i < capacity; ++i) slab.free.push_back(capacity - 1 - i);
    slab.used = 0;
    slab.open = true;
    slab.empty_since = std::chrono::steady_clock::now();
    ++empty_open_;
    room_.set(s, true);
}

void BlockAllocator::closing(std::uint32_t s) noexcept {
    Slab& slab = slabs_[s];
    slab.free.clear(); // keeps its capacity for the next open
    slab.open = false;
    if (slab.used == 0) --empty_open_;
    room_.set(s, false);
}

std::uint32_t BlockAllocator::first_with_room() const noexcept {
    return static_cast<std::uint32_t>(room_.first());
}

std::size_t BlockAllocator::take(std::uint32_t s, std::size_t n, BlockId* out) noexcept {
    Slab& slab = slabs_[s];
    if (slab.used == 0 && !slab.free.empty()) --empty_open_;
    std::size_t got = 0;
    while (got < n && !slab.free.empty()) {
        out[got++] = s * source_.blocks_per_slab() + slab.free.back();
        slab.free.pop_back();
        ++slab.used;
    }
    if (slab.free.empty()) room_.set(s, false);
    return got;
}

bool BlockAllocator::give(BlockId id) noexcept {
    const std::uint32_t s = id / source_.blocks_per_slab();
    if (s >= slabs_.size() || !slabs_[s].open || slabs_[s].used == 0) return false;
    Slab& slab = slabs_[s];
    slab.free.push_back(id % source_.blocks_per_slab());
    room_.set(s, true);
    if (--slab.used == 0) {
        ++empty_open_;
        slab.empty_since = std::chrono::steady_clock::now();
    }
    return true;
}

} // namespace vramfs
