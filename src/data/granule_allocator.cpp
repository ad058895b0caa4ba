// GranuleAllocator: carriers (whole blocks) cut into granules.
#include "vramfs/data/granule_allocator.hpp"

#include "vramfs/data/block_pool.hpp"
#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cerrno>

namespace vramfs {

GranuleAllocator::GranuleAllocator(BlockPool& pool)
    : pool_(pool), per_block_(static_cast<std::uint32_t>(pool.block_size() / kGranuleBytes)),
      words_((per_block_ + 63) / 64) {
    if (!usable()) return;
    const std::size_t n = pool.budget_blocks();
    carriers_.resize(n);
    carrier_base_.assign(n, 0);
    free_bits_.assign(n * words_, 0);
    room_ = RoomBits(n);
    unused_.reserve(n);
    for (std::size_t c = n; c > 0; --c) unused_.push_back(static_cast<std::uint32_t>(c - 1));
}

GranuleAllocator::~GranuleAllocator() {
    std::lock_guard lock(mu_);
    for (std::uint32_t c = 0; c < carriers_.size(); ++c)
        if (carriers_[c].block != kNoBlock) {
            if (carriers_[c].used != 0)
                log_error("granules: carrier %u still holds %u granules at the end (a bug)", c, carriers_[c].used);
            close_carrier(c);
        }
}

bool GranuleAllocator::open_carrier(std::uint32_t& c) noexcept {
    if (unused_.empty()) return false;
    BlockId block;
    if (pool_.allocate(1, &block) != 0) return false;
    c = unused_.back();
    unused_.pop_back();
    carriers_[c] = Carrier{block, 0};
    carrier_base_[c] = pool_.place(block);
    std::uint64_t* bits = &free_bits_[std::size_t{c} * words_];
    for (std::uint32_t w = 0; w < words_; ++w) {
        const std::uint32_t in_word = std::min<std::uint32_t>(64, per_block_ - w * 64);
        bits[w] = in_word == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << in_word) - 1;
    }
    room_.set(c, true);
    free_granules_.fetch_add(per_block_, std::memory_order_relaxed);
    return true;
}

void GranuleAllocator::close_carrier(std::uint32_t c) noexcept {
    const BlockId block = carriers_[c].block;
    free_granules_.fetch_sub(per_block_ - carriers_[c].used, std::memory_order_relaxed);
    carriers_[c] = Carrier{};
    carrier_base_[c] = 0;
    room_.set(c, false);
    unused_.push_back(c);
    pool_.release(block);
}

std::size_t GranuleAllocator::take(std::uint32_t c, std::size_t n, GranuleId* out) noexcept {
    Carrier& carrier = carriers_[c];
    std::uint64_t* bits = &free_bits_[std::size_t{c} * words_];
    std::size_t got = 0;
    for (std::uint32_t w = 0; w < words_ && got < n; ++w) {
        while (bits[w] && got < n) {
            const std::uint32_t g = w * 64 + static_cast<std::uint32_t>(__builtin_ctzll(bits[w]));
            bits[w] &= bits[w] - 1;
            out[got++] = c * per_block_ + g;
        }
    }
    carrier.used += static_cast<std::uint32_t>(got);
    free_granules_.fetch_sub(got, std::memory_order_relaxed);
    if (carrier.used == per_block_) room_.set(c, false);
    return got;
}

void GranuleAllocator::give_back(const GranuleId* ids, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t c = ids[i] / per_block_, g = ids[i] % per_block_;
        if (c >= carriers_.size() || carriers_[c].block == kNoBlock || is_free(c, g)) {
            log_error("granules: release of granule %u that is not in use (a bug)", ids[i]);
            continue;
        }
        free_bits_[std::size_t{c} * words_ + g / 64] |= std::uint64_t{1} << (g % 64);
        room_.set(c, true);
        free_granules_.fetch_add(1, std::memory_order_relaxed);
        // An empty carrier's block goes back to the pool at once, where a large file may need it.
        if (--carriers_[c].used == 0) close_carrier(c);
    }
}

int GranuleAllocator::allocate(std::size_t n, GranuleId* out) noexcept {
    if (n == 0) return 0;
    if (!usable()) return ENOSPC;
    std::lock_guard lock(mu_);
    std::size_t got = 0;
    while (got < n) {
        std::uint32_t c = static_cast<std::uint32_t>(room_.first());
        if (c == carriers_.size() && !open_carrier(c)) {
            give_back(out, got); // a failure changes nothing
            return ENOSPC;
        }
        got += take(c, n - got, out + got);
    }
    return 0;
}

void GranuleAllocator::release(const GranuleId* ids, std::size_t n) noexcept {
    if (n == 0) return;
    std::lock_guard lock(mu_);
    give_back(ids, n);
}

} // namespace vramfs
