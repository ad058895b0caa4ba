// FileData: block-table operations for one file's contents.
#include "vramfs/data/file_data.hpp"

#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

namespace vramfs {
namespace {

// Walks [off, off+len) in pieces that stay inside one block.
template <class Fn>
int for_each_piece(std::uint64_t bs, std::uint64_t off, std::uint64_t len, Fn&& fn) noexcept {
    while (len > 0) {
        const std::uint64_t index = off / bs;
        const std::uint64_t in_block = off % bs;
        const std::uint64_t n = std::min(bs - in_block, len);
        if (int err = fn(index, in_block, n)) return err;
        off += n;
        len -= n;
    }
    return 0;
}

} // namespace

int FileData::read(std::uint64_t off, std::size_t len, void* dst, ReadCache* cache) const noexcept {
    const std::uint64_t previous_end = last_read_end_.exchange(off + len, std::memory_order_relaxed);
    if (!cache || !cache->enabled() || len == 0) return read_storage(off, len, dst);
    const std::uint64_t window = std::min<std::uint64_t>(cache->window(), pool_->block_size());
    const std::uint64_t start = off - off % window;
    // Only small reads inside one window; a window is filled only when the previous read of
    // this file ended in it or in the one before (a walk through the file, not random reads).
    // Small means at most a quarter of the window and at most 64 KiB: a small swap-in read pays
    // mostly the fixed cost of a device copy, but a 128 KiB readahead read copies almost as
    // fast directly, and through the cache it would cost one more host copy
    // (docs/performance.md, "read cache limit").
    constexpr std::uint64_t kLargestCachedRead = 64 * 1024;
    if (len > std::min(window / 4, kLargestCachedRead) || off + len > start + window)
        return read_storage(off, len, dst);
    const bool near = previous_end != ~std::uint64_t{0} && previous_end + window > start &&
                      previous_end <= start + window;
    int err = 0;
    // The generation is read before the window is: a change during the fill makes it stale.
    const std::uint64_t gen = generation();
    if (cache->read({id_, start}, gen, off, len, dst, near,
                    [&](void* buffer) {
                        std::unique_lock fill(fill_mu_, std::try_to_lock);
                        if (!fill.owns_lock()) return ReadCache::kSkipFill;
                        return read_storage(start, window, buffer);
                    },
                    err))
        return 0;
    return err ? err : read_storage(off, len, dst);
}

int FileData::read_storage(std::uint64_t off, std::size_t len, void* dst) const noexcept {
    auto* out = static_cast<unsigned char*>(dst);
    StorageBackend& be = pool_->backend();
    return for_each_piece(pool_->block_size(), off, len,
                          [&](std::uint64_t index, std::uint64_t in_block, std::uint64_t n) {
                              const BlockId b = block_at(index);
                              int err = 0;
                              if (b == kNoBlock)
                                  std::memset(out, 0, n);
                              else
                                  err = be.read(pool_->address(b) + in_block, out, n);
                              out += n;
                              return err;
                          });
}

bool FileData::covered(std::uint64_t off, std::size_t len) const noexcept {
    if (len == 0) return true;
    const std::uint64_t bs = pool_->block_size();
    for (std::uint64_t i = off / bs, last = (off + len - 1) / bs; i <= last; ++i)
        if (block_at(i) == kNoBlock) return false;
    return true;
}

int FileData::write_in_place(std::uint64_t off, std::size_t len, const void* src) const noexcept {
    std::shared_lock fills_wait(fill_mu_);
    auto* in = static_cast<const unsigned char*>(src);
    StorageBackend& be = pool_->backend();
    return for_each_piece(pool_->block_size(), off, len,
                          [&](std::uint64_t index, std::uint64_t in_block, std::uint64_t n) {
                              const BlockId b = block_at(index);
                              if (b == kNoBlock) return EIO; // caller broke the contract
                              int err = be.write(pool_->address(b) + in_block, in, n);
                              in += n;
                              changed();
                              return err;
                          });
}

int FileData::fill_holes(std::uint64_t first, std::uint64_t last, std::uint64_t keep_off,
                         std::uint64_t keep_len) noexcept {
    std::uint64_t holes = 0;
    for (std::uint64_t i = first; i <= last; ++i)
        if (block_at(i) == kNoBlock) ++holes;
    if (holes == 0) return 0;
    if (holes >= kNoBlock) return ENOSPC;

    // Small writes (the hot path) need no heap; fallocate of many blocks may use it.
    BlockId local[64];
    std::unique_ptr<BlockId[]> heap;
    BlockId* fresh = local;
    if (holes > 64) {
        heap.reset(new (std::nothrow) BlockId[holes]);
        if (!heap) return ENOMEM;
        fresh = heap.get();
    }
    if (int err = pool_->allocate(holes, fresh)) return err;
    if (last >= blocks_.size()) {
        try {
            blocks_.resize(last + 1, kNoBlock);
        } catch (...) {
            pool_->release(fresh, holes);
            return ENOMEM;
        }
    }
    const std::uint64_t bs = pool_->block_size();
    std::uint64_t k = 0;
    int err = 0;
    for (std::uint64_t i = first; i <= last && !err; ++i) {
        if (blocks_[i] != kNoBlock) continue;
        // A block the caller overwrites completely need not be zeroed first.
        const bool overwritten = keep_len > 0 && i * bs >= keep_off && (i + 1) * bs <= keep_off + keep_len;
        if (!overwritten) err = pool_->backend().zero(pool_->address(fresh[k]), bs);
        blocks_[i] = fresh[k++];
    }
    if (err) {
        // Put the holes back: a failed request leaves the file as it was.
        k = 0;
        for (std::uint64_t i = first; i <= last && k < holes; ++i)
            if (blocks_[i] == fresh[k]) {
                blocks_[i] = kNoBlock;
                ++k;
            }
        pool_->release(fresh, holes);
        shrink_table();
        return err;
    }
    allocated_ += holes;
    changed();
    return 0;
}

int FileData::write(std::uint64_t off, std::size_t len, const void* src) noexcept {
    if (len == 0) return 0;
    const std::uint64_t bs = pool_->block_size();
    if (int err = fill_holes(off / bs, (off + len - 1) / bs, off, len)) return err;
    int err = write_in_place(off, len, src);
    // Blocks taken for this write were not zeroed; never let a failed copy expose old VRAM.
    if (err) (void)zero_range(off, len);
    return err;
}

int FileData::allocate(std::uint64_t off, std::uint64_t len) noexcept {
    if (len == 0) return 0;
    const std::uint64_t bs = pool_->block_size();
    return fill_holes(off / bs, (off + len - 1) / bs, 0, 0);
}

void FileData::free_range(std::uint64_t first, std::uint64_t last) noexcept {
    last = std::min<std::uint64_t>(last, blocks_.empty() ? 0 : blocks_.size() - 1);
    if (blocks_.empty() || first > last) return;
    // Return blocks in batches so the pool lock is taken a few times, not once per block.
    BlockId batch[256];
    std::size_t n = 0;
    for (std::uint64_t i = first; i <= last; ++i) {
        if (blocks_[i] == kNoBlock) continue;
        batch[n++] = blocks_[i];
        blocks_[i] = kNoBlock;
        --allocated_;
        if (n == 256) {
            pool_->release(batch, n);
            n = 0;
        }
    }
    pool_->release(batch, n);
    shrink_table();
    changed();
}

void FileData::shrink_table() noexcept {
    while (!blocks_.empty() && blocks_.back() == kNoBlock) blocks_.pop_back();
    if (blocks_.empty()) {
        std::vector<BlockId>().swap(blocks_);
    } else if (blocks_.capacity() > 2 * blocks_.size() + 64) {
        try {
            blocks_.shrink_to_fit();
        } catch (...) {
        }
    }
}

int FileData::zero_range(std::uint64_t off, std::uint64_t len) noexcept {
    StorageBackend& be = pool_->backend();
    return for_each_piece(pool_->block_size(), off, len,
                          [&](std::uint64_t index, std::uint64_t in_block, std::uint64_t n) {
                              const BlockId b = block_at(index);
                              if (b == kNoBlock) return 0;
                              const int err = be.zero(pool_->address(b) + in_block, n);
                              changed();
                              return err;
                          });
}

int FileData::punch_hole(std::uint64_t off, std::uint64_t len) noexcept {
    if (len == 0) return 0;
    const std::uint64_t bs = pool_->block_size();
    const std::uint64_t end = off + len;
    const std::uint64_t first_whole = (off + bs - 1) / bs; // first block wholly inside
    const std::uint64_t end_whole = end / bs;              // one past the last wholly inside
    if (first_whole >= end_whole) return zero_range(off, len); // inside one block
    if (int err = zero_range(off, first_whole * bs - off)) return err;
    if (int err = zero_range(end_whole * bs, end - end_whole * bs)) return err;
    free_range(first_whole, end_whole - 1);
    return 0;
}

int FileData::truncate(std::uint64_t new_size) noexcept {
    const std::uint64_t bs = pool_->block_size();
    const std::uint64_t keep = (new_size + bs - 1) / bs; // blocks that keep some data
    if (keep < blocks_.size()) free_range(keep, blocks_.size() - 1);
    if (new_size % bs != 0) return zero_range(new_size, bs - new_size % bs);
    return 0;
}

void FileData::release_all() noexcept {
    if (!blocks_.empty()) free_range(0, blocks_.size() - 1);
}

} // namespace vramfs
