// FileData: the blocks behind one regular file; holes read as zeros and cost no storage.
#pragma once

#include "vramfs/data/block_pool.hpp"
#include "vramfs/data/read_cache.hpp"

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <vector>

namespace vramfs {

// Not thread-safe by itself: the owning inode's lock guards it (shared for read and for
// write_in_place, exclusive for everything that changes the block table).
class FileData {
public:
    explicit FileData(BlockPool& pool) : pool_(&pool), id_(next_id_.fetch_add(1) + 1) {}
    ~FileData() { release_all(); }
    FileData(const FileData&) = delete;
    FileData& operator=(const FileData&) = delete;

    // Copies [off, off+len) into dst; holes and the space past the last block read as zeros.
    // With a cache, a small read close after the previous one is served from (or fills) the
    // cache's host copy of its window (see ReadCache).
    int read(std::uint64_t off, std::size_t len, void* dst, ReadCache* cache = nullptr) const noexcept;
    // True when every block under [off, off+len) exists, so write_in_place may be used.
    bool covered(std::uint64_t off, std::size_t len) const noexcept;
    // Writes into existing blocks only (see covered); safe under a shared lock for disjoint
    // ranges, since the block table does not change.
    int write_in_place(std::uint64_t off, std::size_t len, const void* src) const noexcept;
    // Allocates missing blocks (all or none: ENOSPC changes nothing) and writes.
    int write(std::uint64_t off, std::size_t len, const void* src) noexcept;
    // Backs [off, off+len) with storage now (fallocate): all or none.
    int allocate(std::uint64_t off, std::uint64_t len) noexcept;
    // Frees whole blocks inside [off, off+len) and zeros the partial ends.
    int punch_hole(std::uint64_t off, std::uint64_t len) noexcept;
    // Drops everything at or past new_size; the tail of the last block is zeroed so that a later
    // extension reads zeros.
    int truncate(std::uint64_t new_size) noexcept;
    void release_all() noexcept;
    // Moves an empty file (no blocks) to another pool: where its storage will come from.
    void rebind(BlockPool& pool) noexcept {
        if (allocated_ == 0) pool_ = &pool;
    }

    std::uint64_t allocated_blocks() const noexcept { return allocated_; }
    std::uint64_t allocated_bytes() const noexcept { return allocated_ * pool_->block_size(); }
    BlockPool& pool() const noexcept { return *pool_; }
    // Bumped after every change of contents, so that cached copies of older contents are
    // never served.
    std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    BlockId block_at(std::uint64_t index) const noexcept {
        return index < blocks_.size() ? blocks_[index] : kNoBlock;
    }
    // Gives storage to the holes among blocks [first, last], zero-filled; all or none.
    // Blocks wholly inside [keep_off, keep_off+keep_len) are about to be overwritten: not zeroed.
    int fill_holes(std::uint64_t first, std::uint64_t last, std::uint64_t keep_off,
                   std::uint64_t keep_len) noexcept;
    void free_range(std::uint64_t first, std::uint64_t last) noexcept; // whole blocks
    int zero_range(std::uint64_t off, std::uint64_t len) noexcept;     // inside existing blocks
    void shrink_table() noexcept;
    void changed() const noexcept { generation_.fetch_add(1, std::memory_order_acq_rel); }
    int read_storage(std::uint64_t off, std::size_t len, void* dst) const noexcept;

    static inline std::atomic<std::uint64_t> next_id_{0};

    BlockPool* pool_;
    std::vector<BlockId> blocks_; // index -> block; kNoBlock is a hole
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
