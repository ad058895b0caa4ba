// What the FileData tests share: data that is never zero, and a whole-range read.
#pragma once

#include "vramfs/data/file_data.hpp"

#include <doctest/doctest.h>

#include <random>
#include <vector>

namespace vramfs::test {

inline std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
    std::vector<unsigned char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<unsigned char>(rng() | 1); // never zero
    return v;
}

inline std::vector<unsigned char> read_all(const FileData& f, std::uint64_t off, std::size_t n) {
    std::vector<unsigned char> v(n, 0xAA);
    REQUIRE(f.read(off, n, v.data()) == 0);
    return v;
}

} // namespace vramfs::test
