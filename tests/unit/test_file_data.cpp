// FileData: data across block boundaries, sparse holes, truncate and punch-hole freeing, ENOSPC.
#include "test_backends.hpp"
#include "vramfs/file_data.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

using namespace vramfs;

namespace {
constexpr std::uint64_t kBs = 4096;

std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
    std::vector<unsigned char> v(n);
    std::mt19937 rng(seed);
    for (auto& c : v) c = static_cast<unsigned char>(rng() | 1); // never zero
    return v;
}

std::vector<unsigned char> read_all(const FileData& f, std::uint64_t off, std::size_t n) {
    std::vector<unsigned char> v(n, 0xAA);
    REQUIRE(f.read(off, n, v.data()) == 0);
    return v;
}

bool all_zero(const std::vector<unsigned char>& v) {
    for (auto c : v)
        if (c) return false;
    return true;
}
} // namespace

TEST_CASE("writes across block boundaries read back exactly") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 16 * kBs);
    FileData f(pool);
    auto data = pattern(3 * kBs + 123, 1);
    REQUIRE(f.write(kBs - 100, data.size(), data.data()) == 0);
    CHECK(read_all(f, kBs - 100, data.size()) == data);
    CHECK(f.allocated_blocks() == 5); // blocks 0..4 are touched
    // Bytes before the write in its first block read as zeros.
    CHECK(all_zero(read_all(f, 0, kBs - 100)));
}

TEST_CASE("holes read as zeros and cost nothing") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 16 * kBs);
    FileData f(pool);
    auto data = pattern(100, 2);
    REQUIRE(f.write(40 * kBs, 100, data.data()) == 0);
    CHECK(f.allocated_blocks() == 1);
    CHECK(pool.used_blocks() == 1);
    CHECK(all_zero(read_all(f, 0, 40 * kBs)));
    CHECK(read_all(f, 40 * kBs, 100) == data);
    CHECK(f.covered(40 * kBs, 100));
    CHECK_FALSE(f.covered(39 * kBs, 100));
}

TEST_CASE("truncate frees blocks and zeros the tail") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 16 * kBs);
    FileData f(pool);
    auto data = pattern(10 * kBs, 3);
    REQUIRE(f.write(0, data.size(), data.data()) == 0);
    CHECK(pool.used_blocks() == 10);
    REQUIRE(f.truncate(2 * kBs + 10) == 0);
    CHECK(pool.used_blocks() == 3);
    auto kept = read_all(f, 0, 2 * kBs + 10);
    CHECK(std::memcmp(kept.data(), data.data(), kept.size()) == 0);
    // What was past the new size reads as zeros after growing again.
    CHECK(all_zero(read_all(f, 2 * kBs + 10, kBs)));
    REQUIRE(f.truncate(0) == 0);
    CHECK(pool.used_blocks() == 0);
}

TEST_CASE("punch hole frees whole blocks and zeros partial ones") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 16 * kBs);
    FileData f(pool);
    auto data = pattern(8 * kBs, 4);
    REQUIRE(f.write(0, data.size(), data.data()) == 0);
    REQUIRE(f.punch_hole(kBs + 10, 3 * kBs) == 0); // frees blocks 2 and 3, zeros parts of 1 and 4
    CHECK(pool.used_blocks() == 6);
    auto after = read_all(f, 0, 8 * kBs);
    for (std::size_t i = 0; i < after.size(); ++i) {
        const bool punched = i >= kBs + 10 && i < 4 * kBs + 10;
        if (punched != (after[i] == 0) || (!punched && after[i] != data[i])) {
            FAIL("byte " << i << " is wrong");
        }
    }
}

TEST_CASE("ENOSPC changes nothing") {
    test::FlakyBackend be;
    BlockPool pool(be, 4 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    auto data = pattern(3 * kBs, 5);
    REQUIRE(f.write(0, data.size(), data.data()) == 0);
    auto more = pattern(2 * kBs, 6);
    CHECK(f.write(2 * kBs + 1, more.size(), more.data()) == ENOSPC); // needs blocks 3 and 4
    CHECK(f.allocate(0, 8 * kBs) == ENOSPC);
    CHECK(pool.used_blocks() == 3);
    CHECK(f.allocated_blocks() == 3);
    CHECK(read_all(f, 0, data.size()) == data);
    CHECK(f.allocate(0, 4 * kBs) == 0);
    CHECK(pool.used_blocks() == 4);
    CHECK(read_all(f, 0, data.size()) == data);
    CHECK(all_zero(read_all(f, 3 * kBs, kBs)));
}

TEST_CASE("a failing device is EIO and the file keeps its old state") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    auto data = pattern(kBs, 7);
    REQUIRE(f.write(0, kBs, data.data()) == 0);
    be.fail_copies = true;
    CHECK(f.write(5 * kBs, 10, data.data()) == EIO); // zeroing the new block fails
    std::vector<unsigned char> out(kBs);
    CHECK(f.read(0, kBs, out.data()) == EIO);
    be.fail_copies = false;
    CHECK(f.allocated_blocks() == 1);
    CHECK(pool.used_blocks() == 1);
    CHECK(read_all(f, 0, kBs) == data);
}

TEST_CASE("destroying a file returns its blocks") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * kBs, kBs, 4 * kBs);
    {
        FileData f(pool);
        REQUIRE(f.allocate(0, 10 * kBs) == 0);
        CHECK(pool.used_blocks() == 10);
        CHECK(all_zero(read_all(f, 0, 10 * kBs))); // fallocated space reads as zeros
    }
    CHECK(pool.used_blocks() == 0);
    CHECK(be.live_slabs == 0);
}
