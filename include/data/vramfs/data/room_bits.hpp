// RoomBits: which of a fixed number of places (slabs, carriers) have room, lowest first.
#pragma once

#include <cstdint>
#include <vector>

namespace vramfs {

// One bit per place, sized once: set, clear and find the lowest never allocate.
class RoomBits {
public:
    explicit RoomBits(std::size_t places = 0) : words_((places + 63) / 64, 0), places_(places) {}

    void set(std::size_t i, bool room) noexcept {
        const std::uint64_t bit = std::uint64_t{1} << (i % 64);
        if (room)
            words_[i / 64] |= bit;
        else
            words_[i / 64] &= ~bit;
    }
    // The lowest place with room; size() when none has.
    std::size_t first() const noexcept {
        for (std::size_t w = 0; w < words_.size(); ++w)
            if (words_[w]) return w * 64 + static_cast<std::size_t>(__builtin_ctzll(words_[w]));
        return places_;
    }
    std::size_t size() const noexcept { return places_; }

private:
    std::vector<std::uint64_t> words_;
    std::size_t places_;
};

} // namespace vramfs
