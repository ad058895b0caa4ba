// FileData: the storage behind one regular file, a table of units (granules while the file is
// small, blocks once it grows); holes read as zeros and cost no storage.
#pragma once

#include "vramfs/data/block_pool.hpp"
#include "vramfs/data/read_cache.hpp"

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <vector>

namespace vramfs {

// A file starts in granules of its pool (GranuleAllocator) where the pool has them, so that a
// small file costs what it holds rounded to 4 KiB, not a whole block. Once it needs storage past
// half a block (or fallocate asks for that much) its data moves into blocks, where it stays until
// it is emptied: large files and swap files work in blocks from their first write or fallocate.
//
// Not thread-safe by itself: the owning inode's lock guards it (shared for read and for
// write_in_place, exclusive for everything that changes the unit table).
class FileData {
public:
    explicit FileData(BlockPool& pool)
        : pool_(&pool), granular_(pool.granules().usable()), id_(next_id_.fetch_add(1) + 1) {}
    ~FileData() { release_all(); }
    FileData(const FileData&) = delete;
    FileData& operator=(const FileData&) = delete;

    // Copies [off, off+len) into dst; holes and the space past the last unit read as zeros.
    // With a cache, a small read close after the previous one is served from (or fills) the
    // cache's host copy of its window (see ReadCache).
    int read(std::uint64_t off, std::size_t len, void* dst, ReadCache* cache = nullptr) const noexcept;
    // True when every unit under [off, off+len) exists, so write_in_place may be used.
    bool covered(std::uint64_t off, std::size_t len) const noexcept;
    // Writes into existing units only (see covered); safe under a shared lock for disjoint
    // ranges, since the unit table does not change.
    int write_in_place(std::uint64_t off, std::size_t len, const void* src) const noexcept;
    // Allocates missing units (all or none: ENOSPC changes nothing) and writes.
    int write(std::uint64_t off, std::size_t len, const void* src) noexcept;
    // Writes as much of [off, off+len) as storage allows, from the start, as tmpfs does: the
    // bytes written in `written`; ENOSPC only when not one byte fits.
    int write_some(std::uint64_t off, std::size_t len, const void* src, std::size_t& written) noexcept;
    // Backs [off, off+len) with storage now (fallocate): all or none.
    int allocate(std::uint64_t off, std::uint64_t len) noexcept;
    // Frees whole units inside [off, off+len) and zeros the partial ends.
    int punch_hole(std::uint64_t off, std::uint64_t len) noexcept;
    // Drops everything at or past new_size; the tail of the last unit is zeroed so that a later
    // extension reads zeros.
    int truncate(std::uint64_t new_size) noexcept;
    void release_all() noexcept;
    // Moves an empty file (no storage) to another pool: where its storage will come from.
    void rebind(BlockPool& pool) noexcept {
        if (allocated_ != 0) return;
        pool_ = &pool;
        granular_ = pool.granules().usable();
    }

    std::uint64_t allocated_units() const noexcept { return allocated_; }
    std::uint64_t allocated_bytes() const noexcept { return allocated_ * unit_bytes(); }
    // Of those, the bytes on the pool's spill now (0 without one); for status.
    std::uint64_t spilled_bytes() const noexcept {
        std::uint64_t n = 0;
        for (UnitId u : units_)
            if (u != kNoBlock && pool_->on_spill(place(u))) n += unit_bytes();
        return n;
    }
    bool granular() const noexcept { return granular_; }
    BlockPool& pool() const noexcept { return *pool_; }
    // Bumped after every change of contents, so that cached copies of older contents are
    // never served.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    using UnitId = std::uint32_t; // a BlockId, or a GranuleId while granular_
    std::uint64_t unit_bytes() const noexcept {
        return granular_ ? GranuleAllocator::kGranuleBytes : pool_->block_size();
    }
    // How far a file may reach in granules before its data moves into blocks.
    std::uint64_t granular_limit() const noexcept { return pool_->block_size() / 2; }
    UnitId unit_at(std::uint64_t index) const noexcept {
        return index < units_.size() ? units_[index] : kNoBlock;
    }
    PoolPlace place(UnitId id) const noexcept {
        return granular_ ? pool_->granules().place(id) : pool_->place(id);
    }
    bool adjacent(UnitId a, UnitId b) const noexcept;
    int take_units(std::size_t n, UnitId* out) noexcept;
    void give_units(const UnitId* ids, std::size_t n) noexcept;
    // Walks [off, off+len) in runs one device call can cover: consecutive present units whose
    // storage lies side by side, or consecutive holes. fn(present, place, n).
    template <class Fn> int for_each_run(std::uint64_t off, std::uint64_t len, Fn&& fn) const noexcept;
    // Before storage reaching `end` is taken: a granular file that would pass granular_limit
    // moves into blocks. 0, or the errno that kept it in granules.
    int reach(std::uint64_t end) noexcept;
    int move_to_blocks() noexcept;
    // Gives storage to the holes among units [first, last], zero-filled; all or none. Units
    // wholly inside [keep_off, keep_off+keep_len) are about to be overwritten: not zeroed.
    int fill_holes(std::uint64_t first, std::uint64_t last, std::uint64_t keep_off,
                   std::uint64_t keep_len) noexcept;
    void free_range(std::uint64_t first, std::uint64_t last) noexcept; // whole units
    int zero_range(std::uint64_t off, std::uint64_t len) noexcept;     // inside existing units
    void shrink_table() noexcept;
    void changed() const noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }
    int read_storage(std::uint64_t off, std::size_t len, void* dst) const noexcept;

    static inline std::atomic<std::uint64_t> next_id_{0};

    BlockPool* pool_;
    bool granular_;             // units are granules of pool_->granules(), else blocks
    std::vector<UnitId> units_; // index -> unit; kNoBlock is a hole
    std::uint64_t allocated_ = 0;
    const std::uint64_t id_; // unique for the daemon's lifetime: names the file in ReadCache
    mutable std::atomic<std::uint64_t> generation_{0};
    mutable std::atomic<std::uint64_t> last_read_end_{~std::uint64_t{0}};
    // write_in_place runs under the inode's shared lock, beside reads; a cache fill reads a
    // whole window, which may hold the range such a write is changing. Writes in place hold
    // this shared, a fill holds it exclusively (and skips the cache rather than wait).
    mutable std::shared_mutex fill_mu_;
};

} // namespace vramfs
