// GranuleAllocator: small files' storage, in granules carved out of whole blocks (rmm's binning
// resource: small sizes from fixed-size bins, the rest from the pool).
#pragma once

#include "vramfs/data/room_bits.hpp"
#include "vramfs/data/slab_source.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vramfs {

class BlockPool;

using GranuleId = std::uint32_t; // carrier * granules_per_block + index in it

// A carrier is a block taken from the pool and cut into granules; a carrier whose granules are
// all free goes back to the pool at once (a large file may need the block). Granules come from
// the lowest carrier with room, lowest first, so that a file's granules tend to lie side by
// side and small files pack densely. Every table is sized at construction (for the most
// carriers the budget allows); nothing allocates later.
// Lock order: a GranuleAllocator's lock is taken before its pool's, never after.
class GranuleAllocator {
public:
    static constexpr std::uint64_t kGranuleBytes = 4096;

    // Granules of `pool`'s blocks; false from usable() where blocks are too small to be worth
    // cutting (below four granules).
    explicit GranuleAllocator(BlockPool& pool);
    ~GranuleAllocator();
    GranuleAllocator(const GranuleAllocator&) = delete;
    GranuleAllocator& operator=(const GranuleAllocator&) = delete;

    bool usable() const noexcept { return per_block_ >= 4; }
    std::uint32_t per_block() const noexcept { return per_block_; }

    // Takes `n` granules, all or none: 0, or ENOSPC when no carrier has room and the pool gives
    // no block.
    int allocate(std::size_t n, GranuleId* out) noexcept;
    void release(const GranuleId* ids, std::size_t n) noexcept;

    // Read without the lock: a granule's carrier stays while the granule is in use.
    PoolPlace place(GranuleId id) const noexcept {
        return carrier_base_[id / per_block_] + (id % per_block_) * kGranuleBytes;
    }
    // Whether b follows a in one carrier, so that one copy can span both.
    bool adjacent(GranuleId a, GranuleId b) const noexcept {
        return b == a + 1 && a / per_block_ == b / per_block_;
    }
    // Granule bytes free inside carriers (held from the pool as used blocks, not used by files).
    std::uint64_t free_bytes() const noexcept { return free_granules_.load(std::memory_order_relaxed) * kGranuleBytes; }

private:
    struct Carrier {
        BlockId block = kNoBlock; // kNoBlock: not in use
        std::uint32_t used = 0;
    };
    // mu_ held for each.
    bool open_carrier(std::uint32_t& c) noexcept;
    void close_carrier(std::uint32_t c) noexcept;
    std::size_t take(std::uint32_t c, std::size_t n, GranuleId* out) noexcept; // from carrier c
    void give_back(const GranuleId* ids, std::size_t n) noexcept;
    bool is_free(std::uint32_t c, std::uint32_t g) const noexcept {
        return (free_bits_[c * words_ + g / 64] >> (g % 64)) & 1;
    }

    BlockPool& pool_;
    const std::uint32_t per_block_;
    const std::uint32_t words_; // bitmap words per carrier
    std::mutex mu_;
    std::vector<Carrier> carriers_;
    std::vector<PoolPlace> carrier_base_; // each carrier block's place
    std::vector<std::uint64_t> free_bits_;  // per carrier, one bit per free granule
    RoomBits room_;                         // carriers with a free granule
    std::vector<std::uint32_t> unused_;     // carrier slots not in use, a stack
    std::atomic<std::uint64_t> free_granules_{0};
};

} // namespace vramfs
