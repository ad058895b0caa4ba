// BlockPool: one device's storage for files, composed the way rmm composes memory resources:
// a Budget (how much the mount may hold), a SlabSource (device memory in slabs) with its
// SlabReaper (slabs opened ahead and given back when idle), a BlockAllocator (fixed-size
// blocks inside the slabs), and a GranuleAllocator (small files' granules, cut from blocks).
#pragma once

#include "vramfs/data/block_allocator.hpp"
#include "vramfs/data/budget.hpp"
#include "vramfs/data/granule_allocator.hpp"
#include "vramfs/data/slab_reaper.hpp"
#include "vramfs/data/slab_source.hpp"
#include "vramfs/data/spill_tier.hpp"
#include "vramfs/storage/backend.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

namespace vramfs {

struct PoolStats {
    std::uint64_t block_size = 0;
    std::uint64_t budget_bytes = 0;   // what the mount may use
    std::uint64_t used_bytes = 0;     // held by files: blocks, less the granules free in carriers
    std::uint64_t reserved_bytes = 0; // slabs held from the device (used + free-in-slab)
    std::uint64_t slabs = 0;       // slabs held from the device
    std::uint64_t empty_slabs = 0; // of those, the ones no file has a block in
    bool spill = false; // a spill tier is attached: the fields below count
    TierStats tier;
};

class BlockPool {
public:
    // release_delay 0: a slab that empties goes back to the device at once (keeping one spare).
    // Otherwise a SlabReaper gives back slabs that stayed empty that long, and keeps half a
    // slab of free blocks open ahead of need; it keeps every slab while `memory_short` says
    // memory is short (the daemon passes memory_is_short).
    using MemoryShort = SlabReaper::MemoryShort;
    BlockPool(StorageBackend& backend, std::uint64_t budget_bytes, std::uint64_t block_size,
              std::uint64_t slab_bytes = kSlabBytes,
              std::chrono::milliseconds release_delay = std::chrono::milliseconds(0),
              MemoryShort memory_short = nullptr);
    ~BlockPool();
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;

    // Takes `n` blocks, all or none: 0, or ENOSPC when the budget or the device is exhausted.
    int allocate(std::size_t n, BlockId* out) noexcept;
    void release(const BlockId* ids, std::size_t n) noexcept;
    void release(BlockId id) noexcept { release(&id, 1); }

    // A block's place (see PoolPlace); its bytes are read and written through the calls below.
    PoolPlace place(BlockId id) const noexcept { return PoolPlace{id} * block_size_; }
    // Copies between host memory and [p, p+n), which lies in one slab: 0 or an errno. Without a
    // spill tier each is one backend call; with one, the tier finds where the bytes are.
    int read(PoolPlace p, void* dst, std::size_t n) const noexcept {
        if (tier_) return tier_->read(p, dst, n);
        return slabs_.backend().read(slabs_.address(p), dst, n);
    }
    int write(PoolPlace p, const void* src, std::size_t n) const noexcept {
        if (tier_) return tier_->write(p, src, n);
        return slabs_.backend().write(slabs_.address(p), src, n);
    }
    int zero(PoolPlace p, std::size_t n) const noexcept {
        if (tier_) return tier_->zero(p, n);
        return slabs_.backend().zero(slabs_.address(p), n);
    }

    // The bytes of spill file this pool needs (SpillTier::region_bytes).
    std::uint64_t spill_bytes_needed() const noexcept { return SpillTier::region_bytes(slabs_); }
    // Puts a spill tier under the pool, its bytes at [offset, offset + spill_bytes_needed()) of
    // `file`; before the first request. Throws where its buffers cannot be made.
    void attach_spill(const SpillFile& file, std::uint64_t offset, std::uint64_t keep_free);
    SpillTier* tier() const noexcept { return tier_.get(); }
    // Whether the bytes at p are on the spill now (false without one).
    bool on_spill(PoolPlace p) const noexcept {
        if (!tier_) return false;
        const std::uint32_t s = slabs_.slab_of(p);
        return (slabs_.spilled(s).load(std::memory_order_relaxed) >> slabs_.chunk_of(p)) & 1;
    }
    // Whether two blocks lie in one slab, so that one copy can span blocks that follow each other.
    bool same_slab(BlockId a, BlockId b) const noexcept {
        return a / slabs_.blocks_per_slab() == b / slabs_.blocks_per_slab();
    }
    std::uint64_t block_size() const noexcept { return block_size_; }
    std::uint64_t budget_blocks() const noexcept { return budget_.limit(); }
    std::uint64_t used_blocks() const noexcept { return budget_.used(); }
    PoolStats stats() const;
    StorageBackend& backend() const noexcept { return slabs_.backend(); }
    // Small files' storage, cut from this pool's blocks (see GranuleAllocator::usable).
    GranuleAllocator& granules() const noexcept { return *granules_; }

private:
    void return_blocks(const BlockId* ids, std::size_t n) noexcept; // caller holds mu_
    void close_slab(std::uint32_t s) noexcept;                       // caller holds mu_

    const std::uint64_t block_size_;
    Budget budget_;
    // A leaf lock: nothing else is taken while it is held. It guards slabs_ and blocks_ (but
    // address(), see SlabSource); budget_ is atomic, taken and given under it.
    mutable std::mutex mu_;
    SlabSource slabs_;
    BlockAllocator blocks_;
    const bool release_at_once_;          // no reaper: emptied slabs go back on release
    const std::uint64_t low_water_;       // free open blocks the reaper keeps while in use
    std::unique_ptr<SlabReaper> reaper_;  // its thread uses everything above
    const MemoryShort memory_short_;
    std::unique_ptr<SpillTier> tier_;     // its thread moves slabs; null without a spill
    std::unique_ptr<GranuleAllocator> granules_; // takes blocks through this pool; goes first
};

} // namespace vramfs
