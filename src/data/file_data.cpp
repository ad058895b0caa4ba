// FileData: unit-table operations for one file's contents.
#include "vramfs/data/file_data.hpp"

#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

namespace vramfs {

bool FileData::adjacent(UnitId a, UnitId b) const noexcept {
    if (granular_) return pool_->granules().adjacent(a, b);
    return b == a + 1 && pool_->same_slab(a, b);
}

int FileData::take_units(std::size_t n, UnitId* out) noexcept {
    return granular_ ? pool_->granules().allocate(n, out) : pool_->allocate(n, out);
}

void FileData::give_units(const UnitId* ids, std::size_t n) noexcept {
    if (granular_)
        pool_->granules().release(ids, n);
    else
        pool_->release(ids, n);
}

template <class Fn>
int FileData::for_each_run(std::uint64_t off, std::uint64_t len, Fn&& fn) const noexcept {
    const std::uint64_t us = unit_bytes();
    while (len > 0) {
        std::uint64_t index = off / us;
        const UnitId first = unit_at(index);
        std::uint64_t n = std::min(us - off % us, len);
        // Grow the run while the next unit continues it.
        for (UnitId prev = first; n < len; ++index) {
            const UnitId next = unit_at(index + 1);
            const bool continues = first == kNoBlock ? next == kNoBlock : next != kNoBlock && adjacent(prev, next);
            if (!continues) break;
            n += std::min(us, len - n);
            prev = next;
        }
        const std::uint64_t in_unit = off % us;
        if (int err = fn(first != kNoBlock, first != kNoBlock ? place(first) + in_unit : 0, n)) return err;
        off += n;
        len -= n;
    }
    return 0;
}

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
    return for_each_run(off, len, [&](bool present, PoolPlace at, std::uint64_t n) {
        int err = 0;
        if (!present)
            std::memset(out, 0, n);
        else
            err = pool_->read(at, out, n);
        out += n;
        return err;
    });
}

bool FileData::covered(std::uint64_t off, std::size_t len) const noexcept {
    if (len == 0) return true;
    const std::uint64_t us = unit_bytes();
    for (std::uint64_t i = off / us, last = (off + len - 1) / us; i <= last; ++i)
        if (unit_at(i) == kNoBlock) return false;
    return true;
}

int FileData::write_in_place(std::uint64_t off, std::size_t len, const void* src) const noexcept {
    std::shared_lock fills_wait(fill_mu_);
    auto* in = static_cast<const unsigned char*>(src);
    return for_each_run(off, len, [&](bool present, PoolPlace at, std::uint64_t n) {
        if (!present) return EIO; // caller broke the contract
        const int err = pool_->write(at, in, n);
        in += n;
        changed();
        return err;
    });
}

int FileData::reach(std::uint64_t end) noexcept {
    if (!granular_ || end <= granular_limit()) return 0;
    return move_to_blocks();
}

// The granules (all inside the first block's range, below granular_limit) copied into a block
// of their own, through a page on the stack: no allocation, and a file takes this step once.
int FileData::move_to_blocks() noexcept {
    if (allocated_ == 0) {
        units_.clear();
        granular_ = false;
        return 0;
    }
    BlockId block;
    if (int err = pool_->allocate(1, &block)) return err;
    const PoolPlace base = pool_->place(block);
    int err = pool_->zero(base, pool_->block_size());
    alignas(64) unsigned char page[GranuleAllocator::kGranuleBytes];
    for (std::uint64_t i = 0; i < units_.size() && !err; ++i) {
        if (units_[i] == kNoBlock) continue;
        err = pool_->read(place(units_[i]), page, sizeof page);
        if (!err) err = pool_->write(base + i * sizeof page, page, sizeof page);
    }
    if (err) {
        pool_->release(block);
        return err;
    }
    for (UnitId& u : units_)
        if (u != kNoBlock) pool_->granules().release(&u, 1);
    units_.clear(); // keeps its capacity: no allocation below
    units_.push_back(block);
    granular_ = false;
    allocated_ = 1;
    changed();
    return 0;
}

int FileData::fill_holes(std::uint64_t first, std::uint64_t last, std::uint64_t keep_off,
                         std::uint64_t keep_len) noexcept {
    std::uint64_t holes = 0;
    for (std::uint64_t i = first; i <= last; ++i)
        if (unit_at(i) == kNoBlock) ++holes;
    if (holes == 0) return 0;
    if (holes >= kNoBlock) return ENOSPC;

    // Small writes (the hot path) need no heap; fallocate of many units may use it.
    UnitId local[64];
    std::unique_ptr<UnitId[]> heap;
    UnitId* fresh = local;
    if (holes > 64) {
        heap.reset(new (std::nothrow) UnitId[holes]);
        if (!heap) return ENOMEM;
        fresh = heap.get();
    }
    if (int err = take_units(holes, fresh)) return err;
    if (last >= units_.size()) {
        try {
            units_.resize(last + 1, kNoBlock);
        } catch (...) {
            give_units(fresh, holes);
            return ENOMEM;
        }
    }
    const std::uint64_t us = unit_bytes();
    std::uint64_t k = 0;
    int err = 0;
    for (std::uint64_t i = first; i <= last && !err; ++i) {
        if (units_[i] != kNoBlock) continue;
        // A unit the caller overwrites completely need not be zeroed first.
        const bool overwritten = keep_len > 0 && i * us >= keep_off && (i + 1) * us <= keep_off + keep_len;
        if (!overwritten) err = pool_->zero(place(fresh[k]), us);
        units_[i] = fresh[k++];
    }
    if (err) {
        // Put the holes back: a failed request leaves the file as it was.
        k = 0;
        for (std::uint64_t i = first; i <= last && k < holes; ++i)
            if (units_[i] == fresh[k]) {
                units_[i] = kNoBlock;
                ++k;
            }
        give_units(fresh, holes);
        shrink_table();
        return err;
    }
    allocated_ += holes;
    changed();
    return 0;
}

int FileData::write(std::uint64_t off, std::size_t len, const void* src) noexcept {
    if (len == 0) return 0;
    if (int err = reach(off + len)) return err;
    const std::uint64_t us = unit_bytes();
    if (int err = fill_holes(off / us, (off + len - 1) / us, off, len)) return err;
    int err = write_in_place(off, len, src);
    // Units taken for this write were not zeroed; never let a failed copy expose old VRAM.
    if (err) (void)zero_range(off, len);
    return err;
}

int FileData::write_some(std::uint64_t off, std::size_t len, const void* src, std::size_t& written) noexcept {
    written = 0;
    if (len == 0) return 0;
    int err = write(off, len, src);
    if (err != ENOSPC) {
        if (!err) written = len;
        return err;
    }
    // Not all of it fits. A file that cannot move into blocks writes what fits in granules.
    if (reach(off + len) == ENOSPC) {
        if (off >= granular_limit()) return ENOSPC;
        len = static_cast<std::size_t>(granular_limit() - off);
    }
    // The most leading units that storage can still back, found by halving; each success keeps
    // what it took, so later tries only add to it.
    const std::uint64_t us = unit_bytes();
    const std::uint64_t first = off / us, count = (off + len - 1) / us - first + 1;
    std::uint64_t lo = 0, hi = count;
    while (lo < hi) {
        const std::uint64_t mid = (lo + hi + 1) / 2;
        if (fill_holes(first, first + mid - 1, off, len) == 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo == 0) return ENOSPC;
    const std::size_t fits = static_cast<std::size_t>(std::min<std::uint64_t>(len, (first + lo) * us - off));
    if ((err = write_in_place(off, fits, src))) {
        (void)zero_range(off, fits);
        return err;
    }
    written = fits;
    return 0;
}

int FileData::allocate(std::uint64_t off, std::uint64_t len) noexcept {
    if (len == 0) return 0;
    if (int err = reach(off + len)) return err;
    const std::uint64_t us = unit_bytes();
    return fill_holes(off / us, (off + len - 1) / us, 0, 0);
}

void FileData::free_range(std::uint64_t first, std::uint64_t last) noexcept {
    last = std::min<std::uint64_t>(last, units_.empty() ? 0 : units_.size() - 1);
    if (units_.empty() || first > last) return;
    // Return units in batches so the pool lock is taken a few times, not once per unit.
    UnitId batch[256];
    std::size_t n = 0;
    for (std::uint64_t i = first; i <= last; ++i) {
        if (units_[i] == kNoBlock) continue;
        batch[n++] = units_[i];
        units_[i] = kNoBlock;
        --allocated_;
        if (n == 256) {
            give_units(batch, n);
            n = 0;
        }
    }
    give_units(batch, n);
    shrink_table();
    changed();
}

void FileData::shrink_table() noexcept {
    while (!units_.empty() && units_.back() == kNoBlock) units_.pop_back();
    if (units_.empty()) {
        std::vector<UnitId>().swap(units_);
        // Emptied: it starts again in granules, as a new file does.
        granular_ = pool_->granules().usable();
    } else if (units_.capacity() > 2 * units_.size() + 64) {
        try {
            units_.shrink_to_fit();
        } catch (...) {
        }
    }
}

int FileData::zero_range(std::uint64_t off, std::uint64_t len) noexcept {
    return for_each_run(off, len, [&](bool present, PoolPlace at, std::uint64_t n) {
        if (!present) return 0;
        const int err = pool_->zero(at, n);
        changed();
        return err;
    });
}

int FileData::punch_hole(std::uint64_t off, std::uint64_t len) noexcept {
    if (len == 0) return 0;
    const std::uint64_t us = unit_bytes();
    const std::uint64_t end = off + len;
    const std::uint64_t first_whole = (off + us - 1) / us; // first unit wholly inside
    const std::uint64_t end_whole = end / us;              // one past the last wholly inside
    if (first_whole >= end_whole) return zero_range(off, len); // inside one unit
    if (int err = zero_range(off, first_whole * us - off)) return err;
    if (int err = zero_range(end_whole * us, end - end_whole * us)) return err;
    free_range(first_whole, end_whole - 1);
    return 0;
}

int FileData::truncate(std::uint64_t new_size) noexcept {
    const std::uint64_t us = unit_bytes();
    const std::uint64_t keep = (new_size + us - 1) / us; // units that keep some data
    if (keep < units_.size()) free_range(keep, units_.size() - 1);
    if (new_size % us != 0) return zero_range(new_size, us - new_size % us);
    return 0;
}

void FileData::release_all() noexcept {
    if (!units_.empty()) free_range(0, units_.size() - 1);
}

} // namespace vramfs
