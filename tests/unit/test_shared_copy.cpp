// SharedCopy: a large memcpy shared among helper threads lands whole, alone or with several
// callers at once, and copies too small or made while another is shared are made by the caller.
#include "vramfs/util/shared_copy.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

using vramfs::SharedCopy;

namespace {

// Bytes that differ at every offset and from one fill to the next.
void fill(std::vector<char>& v, std::uint32_t seed) {
    std::uint32_t x = seed * 2654435761u + 1;
    for (char& c : v) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
}

} // namespace

TEST_CASE("a shared copy lands whole at every size and offset, and only large ones are shared") {
    for (unsigned spin_us : {0u, 200u}) {
        SharedCopy copier(4, 16 << 10, 64 << 10, spin_us);
        REQUIRE(copier.threads() == 4);
        std::vector<char> src(1 << 20), dst(1 << 20);
        std::uint64_t expect_shared = 0;
        std::uint32_t seed = 1;
        // Sizes around the least shared copy and the piece, and odd ones that end mid-piece.
        for (std::size_t len : {std::size_t{1}, std::size_t{4096}, std::size_t{(64 << 10) - 1},
                                std::size_t{64 << 10}, std::size_t{(64 << 10) + 1}, std::size_t{100'003},
                                std::size_t{(1 << 20) - 4096 - 7}})
            for (std::size_t off : {std::size_t{0}, std::size_t{7}, std::size_t{4096}}) {
                fill(src, seed++);
                std::memset(dst.data(), 0, dst.size());
                copier.copy(dst.data() + off, src.data() + off, len);
                CHECK(std::memcmp(dst.data() + off, src.data() + off, len) == 0);
                // Nothing outside [off, off + len) written.
                CHECK(std::count(dst.begin(), dst.begin() + static_cast<std::ptrdiff_t>(off), 0) ==
                      static_cast<std::ptrdiff_t>(off));
                CHECK(std::count(dst.begin() + static_cast<std::ptrdiff_t>(off + len), dst.end(), 0) ==
                      static_cast<std::ptrdiff_t>(dst.size() - off - len));
                if (len >= (64 << 10)) ++expect_shared;
            }
        CHECK(copier.shared_copies() == expect_shared);
        CHECK(copier.alone().copies == 0); // one caller: the helpers are always free
    }
}

TEST_CASE("several callers at once: every copy lands whole, shared or not") {
    SharedCopy copier(3, 8 << 10, 16 << 10, 200);
    constexpr int kCallers = 4, kRounds = 200;
    std::vector<std::thread> callers;
    std::vector<int> bad(kCallers, 0);
    for (int c = 0; c < kCallers; ++c)
        callers.emplace_back([&, c] {
            std::vector<char> src(256 << 10), dst(256 << 10);
            for (int r = 0; r < kRounds; ++r) {
                fill(src, static_cast<std::uint32_t>(c * kRounds + r));
                const std::size_t len = (16 << 10) + static_cast<std::size_t>(r) * 1231 % (240 << 10);
                copier.copy(dst.data(), src.data(), len);
                if (std::memcmp(dst.data(), src.data(), len) != 0) ++bad[static_cast<std::size_t>(c)];
            }
        });
    for (auto& t : callers) t.join();
    for (int c = 0; c < kCallers; ++c) CHECK(bad[static_cast<std::size_t>(c)] == 0);
    // The shared path was taken (one shared copy at a time: the others copied alone).
    CHECK(copier.shared_copies() > 0);
}

TEST_CASE("one thread is the caller alone: nothing shared") {
    SharedCopy copier(1, 64 << 10, 128 << 10, 200);
    CHECK(copier.threads() == 1);
    std::vector<char> src(1 << 20), dst(1 << 20);
    fill(src, 9);
    copier.copy(dst.data(), src.data(), src.size());
    CHECK(dst == src);
    CHECK(copier.shared_copies() == 0);
    CHECK(copier.alone().copies == 1); // large enough, but no helper
    copier.copy(dst.data(), src.data(), 4096);
    CHECK(copier.alone().copies == 1); // small copies are not counted
}
