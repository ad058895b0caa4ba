// BlockPool: the composition, and all-or-nothing allocation across slabs.
#include "vramfs/data/block_pool.hpp"

#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace vramfs {
namespace {

std::uint64_t budget_in_blocks(std::uint64_t budget_bytes, std::uint64_t block_size) {
    if (block_size == 0 || (block_size & (block_size - 1)) != 0)
        throw std::invalid_argument("block size must be a power of two");
    if (budget_bytes / block_size >= kNoBlock) throw std::invalid_argument("budget has too many blocks");
    return budget_bytes / block_size;
}

} // namespace

BlockPool::BlockPool(StorageBackend& backend, std::uint64_t budget_bytes, std::uint64_t block_size,
                     std::uint64_t slab_bytes, std::chrono::milliseconds release_delay,
                     MemoryShort memory_short)
    : block_size_(block_size), budget_(budget_in_blocks(budget_bytes, block_size)),
      slabs_(backend, budget_.limit(), block_size, slab_bytes), blocks_(slabs_),
      release_at_once_(release_delay.count() == 0),
      low_water_(std::max<std::uint64_t>(1, slabs_.blocks_per_slab() / 2)), memory_short_(memory_short) {
    if (!release_at_once_)
        reaper_ = std::make_unique<SlabReaper>(mu_, slabs_, blocks_, budget_, release_delay, memory_short,
                                               low_water_);
    granules_ = std::make_unique<GranuleAllocator>(*this);
}

BlockPool::~BlockPool() {
    granules_.reset(); // gives its carriers back through this pool
    tier_.reset();
    reaper_.reset();
    std::lock_guard lock(mu_);
    for (std::uint32_t s = 0; s < slabs_.count(); ++s)
        if (slabs_.is_open(s)) close_slab(s);
}

void BlockPool::attach_spill(const SpillFile& file, std::uint64_t offset, std::uint64_t keep_free) {
    tier_ = std::make_unique<SpillTier>(mu_, slabs_, blocks_, file, offset, keep_free, memory_short_);
}

void BlockPool::close_slab(std::uint32_t s) noexcept {
    blocks_.closing(s);
    slabs_.close(s);
}

int BlockPool::allocate(std::size_t n, BlockId* out) noexcept {
    if (n == 0) return 0;
    std::lock_guard lock(mu_);
    if (!budget_.take(n)) return ENOSPC;
    std::size_t got = 0;
    while (got < n) {
        std::uint32_t s = blocks_.first_with_room();
        if (s == slabs_.count()) {
            // Open the lowest slab not yet taken from the device (nor being taken).
            s = slabs_.first_unopened();
            const int err = s < slabs_.count() ? slabs_.open(s) : ENOSPC;
            if (err) {
                if (err != ENOSPC)
                    log_error("block pool: taking a %llu-byte slab from %s failed: errno %d",
                              static_cast<unsigned long long>(slabs_.bytes(s)), backend().kind(), err);
                // Undo this call's blocks so a failure changes nothing.
                budget_.give(n);
                return_blocks(out, got);
                return err == ENOMEM ? ENOMEM : ENOSPC;
            }
            blocks_.opened(s);
        }
        got += blocks_.take(s, n - got, out + got);
    }
    if (reaper_ && slabs_.reserved_blocks() - budget_.used() < low_water_) reaper_->wake();
    return 0;
}

void BlockPool::release(const BlockId* ids, std::size_t n) noexcept {
    if (n == 0) return;
    std::lock_guard lock(mu_);
    budget_.give(n);
    return_blocks(ids, n);
}

// Returns blocks to their slabs; the caller holds mu_ and has already given them back to the
// budget.
void BlockPool::return_blocks(const BlockId* ids, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        if (!blocks_.give(ids[i])) {
            log_error("block pool: release of block %u that is not in use (a bug)", ids[i]);
            continue;
        }
        const std::uint32_t s = ids[i] / slabs_.blocks_per_slab();
        // Without a reaper, an emptied slab goes back to the device at once, but for one kept
        // against churn.
        if (release_at_once_ && blocks_.used_in(s) == 0 && blocks_.empty_open_slabs() > 1 && !slabs_.moving(s))
            close_slab(s);
    }
    // Nothing in use at all: the kept slab goes back too.
    if (release_at_once_ && budget_.used() == 0 && blocks_.empty_open_slabs() > 0)
        for (std::uint32_t s = 0; s < slabs_.count(); ++s)
            if (slabs_.is_open(s) && blocks_.used_in(s) == 0 && !slabs_.moving(s)) close_slab(s);
}

PoolStats BlockPool::stats() const {
    std::unique_lock lock(mu_);
    PoolStats st;
    st.block_size = block_size_;
    st.budget_bytes = budget_.limit() * block_size_;
    // Granules free inside carriers are room for small files, not used space.
    st.used_bytes = budget_.used() * block_size_ - std::min(budget_.used() * block_size_, granules_->free_bytes());
    st.reserved_bytes = slabs_.memory_bytes();
    st.slabs = slabs_.open_slabs();
    st.empty_slabs = blocks_.empty_open_slabs();
    if (tier_) {
        st.spill = true;
        lock.unlock(); // the tier takes it itself
        st.tier = tier_->stats();
    }
    return st;
}

} // namespace vramfs
