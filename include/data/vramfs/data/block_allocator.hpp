// BlockAllocator: fixed-size blocks inside a SlabSource's open slabs.
#pragma once

#include "vramfs/data/room_bits.hpp"
#include "vramfs/data/slab_source.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace vramfs {

// Blocks come from the lowest-numbered slab with room, low indices first, so that freed space
// collects in the high slabs and whole slabs can go back to the device. Not locked itself: its
// owner's lock guards every call. Its tables are sized at construction; nothing allocates later.
class BlockAllocator {
public:
    explicit BlockAllocator(const SlabSource& slabs);

    // Slab s was opened (every block free) or is about to be closed (none in use).
    void opened(std::uint32_t s) noexcept;
    void closing(std::uint32_t s) noexcept;

    // The lowest open slab with a free block; slabs.count() when none.
    std::uint32_t first_with_room() const noexcept;
    // Takes up to `n` blocks from open slab s into `out`; how many it took.
    std::size_t take(std::uint32_t s, std::size_t n, BlockId* out) noexcept;
    // Gives a block back: false (and nothing done) for a block that is not in use.
    bool give(BlockId id) noexcept;

    std::uint32_t used_in(std::uint32_t s) const noexcept { return slabs_[s].used; }
    std::chrono::steady_clock::time_point empty_since(std::uint32_t s) const noexcept {
        return slabs_[s].empty_since;
    }
    std::uint32_t empty_open_slabs() const noexcept { return empty_open_; }

private:
    struct Slab {
        std::vector<std::uint32_t> free; // free block indices inside the slab, a stack
        std::uint32_t used = 0;
        bool open = false;
        std::chrono::steady_clock::time_point empty_since{};
    };
    const SlabSource& source_;
    std::vector<Slab> slabs_;
    RoomBits room_; // open slabs with free blocks
    std::uint32_t empty_open_ = 0;
};

} // namespace vramfs
