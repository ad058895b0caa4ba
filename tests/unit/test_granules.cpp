// Small files in granules: GranuleAllocator (carriers cut from blocks, all-or-none, accounting)
// and FileData's granular files (growth into blocks, holes, truncate, punch, ENOSPC, short writes),
// the latter against a plain byte model.
#include "test_backends.hpp"
#include "file_data_helpers.hpp"
#include "vramfs/data/file_data.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

using namespace vramfs;
using test::pattern;
using test::read_all;

namespace {
constexpr std::uint64_t kGs = GranuleAllocator::kGranuleBytes;
constexpr std::uint64_t kBs = 16 * kGs; // 64 KiB blocks: 16 granules each, granular limit 32 KiB
} // namespace

TEST_CASE("granules come from carrier blocks, all or none, and carriers go back empty") {
    test::FlakyBackend be;
    BlockPool pool(be, 8 * kBs, kBs, 4 * kBs);
    GranuleAllocator& g = pool.granules();
    REQUIRE(g.usable());
    CHECK(g.per_block() == 16);
    std::vector<GranuleId> ids(20);
    REQUIRE(g.allocate(20, ids.data()) == 0);
    CHECK(pool.used_blocks() == 2); // two carriers
    std::set<DeviceAddr> addrs;
    for (GranuleId id : ids) addrs.insert(g.place(id));
    CHECK(addrs.size() == 20);
    for (std::size_t i = 1; i < 16; ++i) CHECK(g.adjacent(ids[i - 1], ids[i])); // one carrier, in order
    CHECK(g.place(ids[1]) == g.place(ids[0]) + kGs);
    CHECK(g.free_bytes() == 12 * kGs);
    // The pool counts what files hold: 20 granules, not two blocks.
    CHECK(pool.stats().used_bytes == 20 * kGs);
    g.release(ids.data(), 20);
    CHECK(pool.used_blocks() == 0);
    CHECK(g.free_bytes() == 0);
    CHECK(pool.stats().used_bytes == 0);
}

TEST_CASE("ENOSPC at the granule level takes nothing") {
    test::FlakyBackend be;
    BlockPool pool(be, 2 * kBs, kBs, 2 * kBs); // room for 32 granules
    GranuleAllocator& g = pool.granules();
    std::vector<GranuleId> a(30), b(5);
    REQUIRE(g.allocate(30, a.data()) == 0);
    CHECK(g.allocate(5, b.data()) == ENOSPC);
    CHECK(pool.used_blocks() == 2);
    CHECK(g.free_bytes() == 2 * kGs);
    REQUIRE(g.allocate(2, b.data()) == 0);
    g.release(a.data(), 30);
    g.release(b.data(), 2);
    CHECK(pool.used_blocks() == 0);
}

TEST_CASE("blocks of fewer than four granules are not cut") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * 8192, 8192, 4 * 8192);
    CHECK_FALSE(pool.granules().usable());
    FileData f(pool);
    CHECK_FALSE(f.granular());
    GranuleId id;
    CHECK(pool.granules().allocate(1, &id) == ENOSPC);
}

TEST_CASE("a small file costs its granules; growing past half a block moves it into blocks") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    REQUIRE(f.granular());
    auto a = pattern(100, 1);
    REQUIRE(f.write(5000, a.size(), a.data()) == 0);
    CHECK(f.granular());
    CHECK(f.allocated_bytes() == kGs); // one granule, not a block
    CHECK(read_all(f, 5000, 100) == a);
    CHECK(read_all(f, 0, 5000) == std::vector<unsigned char>(5000, 0));
    auto b = pattern(20000, 2);
    REQUIRE(f.write(10000, b.size(), b.data()) == 0); // ends at 30000: still granules
    CHECK(f.granular());
    CHECK(f.allocated_bytes() == 7 * kGs); // granules 1 and 2..7
    auto c = pattern(9000, 3);
    REQUIRE(f.write(40000, c.size(), c.data()) == 0); // past 32 KiB: into blocks
    CHECK_FALSE(f.granular());
    CHECK(f.allocated_units() == 1);
    CHECK(f.allocated_bytes() == kBs);
    CHECK(pool.granules().free_bytes() == 0); // the carriers went back
    CHECK(read_all(f, 5000, 100) == a);
    CHECK(read_all(f, 10000, b.size()) == b);
    CHECK(read_all(f, 40000, c.size()) == c);
    CHECK(read_all(f, 30000, 10000) == std::vector<unsigned char>(10000, 0));
    // Emptied, it starts again in granules.
    REQUIRE(f.truncate(0) == 0);
    CHECK(f.granular());
    CHECK(pool.used_blocks() == 0);
}

TEST_CASE("fallocate of a large range starts in blocks") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    REQUIRE(f.allocate(0, 3 * kBs) == 0);
    CHECK_FALSE(f.granular());
    CHECK(f.allocated_units() == 3);
    FileData small(pool);
    REQUIRE(small.allocate(0, 3 * kGs) == 0);
    CHECK(small.granular());
    CHECK(small.allocated_bytes() == 3 * kGs);
}

TEST_CASE("granular and block files match a byte model through writes, truncates and punches") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 8 * kBs);
    std::mt19937 rng(42);
    for (int file = 0; file < 40; ++file) {
        FileData f(pool);
        std::vector<unsigned char> model;
        for (int step = 0; step < 60; ++step) {
            const std::uint64_t limit = rng() % 4 == 0 ? 3 * kBs : kBs / 2; // mostly small files
            const std::uint64_t off = rng() % limit;
            const std::uint64_t len = 1 + rng() % std::min<std::uint64_t>(limit, 3 * kGs + 77);
            switch (rng() % 5) {
            case 0:
            case 1: {
                auto data = pattern(len, static_cast<unsigned>(rng()));
                REQUIRE(f.write(off, len, data.data()) == 0);
                if (model.size() < off + len) model.resize(off + len, 0);
                std::copy(data.begin(), data.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
                break;
            }
            case 2:
                REQUIRE(f.truncate(off) == 0);
                model.resize(off, 0);
                break;
            case 3:
                REQUIRE(f.punch_hole(off, len) == 0);
                for (std::uint64_t i = off; i < std::min<std::uint64_t>(off + len, model.size()); ++i) model[i] = 0;
                break;
            case 4:
                REQUIRE(f.allocate(off, len) == 0);
                break;
            }
            // Storage never holds less than the data, nor granules for a block file.
            if (!model.empty()) CHECK(read_all(f, 0, model.size()) == model);
        }
        if (f.granular()) CHECK(f.allocated_bytes() <= kBs / 2);
    }
    CHECK(pool.used_blocks() == 0); // every file gone, every granule and block back
}

TEST_CASE("ENOSPC for a small file leaves other files intact") {
    test::FlakyBackend be;
    BlockPool pool(be, 2 * kBs, kBs, 2 * kBs);
    FileData big(pool);
    auto data = pattern(2 * kBs, 5);
    REQUIRE(big.write(0, data.size(), data.data()) == 0); // every block
    FileData small(pool);
    auto one = pattern(10, 6);
    CHECK(small.write(0, 10, one.data()) == ENOSPC);
    CHECK(small.allocated_units() == 0);
    CHECK(read_all(big, 0, data.size()) == data);
}

TEST_CASE("a write that does not fit writes what fits, as tmpfs does") {
    test::FlakyBackend be;
    BlockPool pool(be, 4 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    auto data = pattern(5 * kBs, 7);
    std::size_t written = 0;
    REQUIRE(f.write_some(0, data.size(), data.data(), written) == 0);
    CHECK(written == 4 * kBs);
    CHECK(read_all(f, 0, 4 * kBs) == std::vector<unsigned char>(data.begin(), data.begin() + 4 * kBs));
    CHECK(f.write_some(4 * kBs, 10, data.data(), written) == ENOSPC);
    CHECK(written == 0);
    // A small file that cannot move into blocks writes up to its granular limit.
    REQUIRE(f.truncate(3 * kBs) == 0); // one block free
    FileData g(pool);
    auto head = pattern(kGs, 8);
    REQUIRE(g.write(0, kGs, head.data()) == 0); // its carrier is the free block
    REQUIRE(g.granular());
    auto tail = pattern(10000, 9);
    REQUIRE(g.write_some(30000, tail.size(), tail.data(), written) == 0);
    CHECK(written == kBs / 2 - 30000); // to the granular limit, in the carrier's granules
    CHECK(g.granular());
    CHECK(read_all(g, 30000, written) == std::vector<unsigned char>(tail.begin(), tail.begin() + static_cast<std::ptrdiff_t>(written)));
}
