// FileData: data across block boundaries, sparse holes, truncate and punch-hole freeing, ENOSPC.
#include "test_backends.hpp"
#include "file_data_helpers.hpp"
#include "vramfs/data/file_data.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

using namespace vramfs;
using test::pattern;
using test::read_all;

namespace {
constexpr std::uint64_t kBs = 4096;

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
    CHECK(f.allocated_units() == 5); // blocks 0..4 are touched
    // Bytes before the write in its first block read as zeros.
    CHECK(all_zero(read_all(f, 0, kBs - 100)));
}

TEST_CASE("holes read as zeros and cost nothing") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * kBs, kBs, 16 * kBs);
    FileData f(pool);
    auto data = pattern(100, 2);
    REQUIRE(f.write(40 * kBs, 100, data.data()) == 0);
    CHECK(f.allocated_units() == 1);
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
    CHECK(f.allocated_units() == 3);
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
    CHECK(f.allocated_units() == 1);
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

namespace {
// Reads [off, off+n) through the cache.
std::vector<unsigned char> read_cached(const FileData& f, ReadCache& c, std::uint64_t off,
                                       std::size_t n) {
    std::vector<unsigned char> v(n, 0xAA);
    REQUIRE(f.read(off, n, v.data(), &c) == 0);
    return v;
}
} // namespace

TEST_CASE("read cache: a walk through a file is served from host windows, never stale") {
    test::FlakyBackend be;
    constexpr std::uint64_t kBlock = 64 * 1024; // windows are one block here
    BlockPool pool(be, 64 * kBlock, kBlock, 16 * kBlock);
    ReadCache cache(be, 2, 1 << 20);
    FileData f(pool), g(pool);
    auto data = pattern(4 * kBlock, 7);
    REQUIRE(f.write(0, data.size(), data.data()) == 0);
    REQUIRE(g.write(0, data.size(), data.data()) == 0);

    // The first read of a file fills nothing (no walk yet); the next one close to it fills its
    // window; the rest of that window are hits.
    std::vector<unsigned char> got;
    for (std::uint64_t off = 0; off < 2 * kBlock; off += 8192) {
        auto piece = read_cached(f, cache, off, 8192);
        got.insert(got.end(), piece.begin(), piece.end());
    }
    CHECK(got == std::vector<unsigned char>(data.begin(), data.begin() + 2 * kBlock));
    CHECK(cache.fills() == 2);
    CHECK(cache.hits() == 13);

    SUBCASE("a write into a held window is seen by the next read") {
        auto fresh = pattern(100, 8);
        REQUIRE(f.write_in_place(kBlock + 500, fresh.size(), fresh.data()) == 0);
        CHECK(read_cached(f, cache, kBlock + 500, 100) == fresh);
        auto after = read_cached(f, cache, kBlock + 4096, 4096);
        CHECK(std::memcmp(after.data(), data.data() + kBlock + 4096, 4096) == 0);
    }
    SUBCASE("punch-hole and truncate are seen too") {
        REQUIRE(f.punch_hole(kBlock, kBlock) == 0);
        CHECK(all_zero(read_cached(f, cache, kBlock + 8192, 8192)));
        REQUIRE(f.write(kBlock, data.size() - kBlock, data.data() + kBlock) == 0);
        CHECK(read_cached(f, cache, kBlock + 8192, 8192) ==
              std::vector<unsigned char>(data.begin() + kBlock + 8192, data.begin() + kBlock + 16384));
        REQUIRE(f.truncate(kBlock + 100) == 0);
        auto tail = read_cached(f, cache, kBlock + 100, 200);
        CHECK(all_zero(tail));
    }
    SUBCASE("another file's window at the same offset is its own") {
        auto other = pattern(kBlock, 9);
        REQUIRE(g.write(kBlock, other.size(), other.data()) == 0);
        read_cached(g, cache, kBlock, 4096);
        CHECK(read_cached(g, cache, kBlock + 8192, 4096) ==
              std::vector<unsigned char>(other.begin() + 8192, other.begin() + 12288));
        CHECK(read_cached(f, cache, kBlock + 8192, 4096) ==
              std::vector<unsigned char>(data.begin() + kBlock + 8192, data.begin() + kBlock + 12288));
    }
    SUBCASE("reads far apart fill nothing; large reads go straight to storage") {
        const auto fills = cache.fills();
        read_cached(f, cache, 3 * kBlock + 4096, 4096);
        read_cached(f, cache, 0 * kBlock + 4096, 4096);
        read_cached(f, cache, 3 * kBlock + 8192, 4096);
        CHECK(read_cached(f, cache, 2 * kBlock, kBlock) ==
              std::vector<unsigned char>(data.begin() + 2 * kBlock, data.begin() + 3 * kBlock));
        CHECK(cache.fills() == fills);
    }
    SUBCASE("a read larger than 64 KiB goes to storage, even while walking") {
        ReadCache big(be, 2, 1 << 20);
        BlockPool wide(be, 16ull << 20, 1 << 20, 4ull << 20);
        FileData w(wide);
        auto bytes = pattern(4ull << 20, 9);
        REQUIRE(w.write(0, bytes.size(), bytes.data()) == 0);
        for (std::uint64_t off = 0; off < (2ull << 20); off += 128 * 1024)
            CHECK(read_cached(w, big, off, 128 * 1024) ==
                  std::vector<unsigned char>(bytes.begin() + static_cast<long>(off),
                                             bytes.begin() + static_cast<long>(off + 128 * 1024)));
        CHECK(big.fills() == 0);
        for (std::uint64_t off = 0; off < (1ull << 20); off += 64 * 1024)
            read_cached(w, big, off, 64 * 1024);
        CHECK(big.fills() == 1); // 64 KiB reads of a 1 MiB window still use it
    }
    SUBCASE("a failing device read is an error, not cached data") {
        be.fail_copies = true;
        std::vector<unsigned char> v(4096);
        CHECK(f.read(2 * kBlock + 4096, 4096, v.data(), &cache) == EIO); // previous end is near
        be.fail_copies = false;
        CHECK(read_cached(f, cache, 2 * kBlock + 8192, 4096) ==
              std::vector<unsigned char>(data.begin() + 2 * kBlock + 8192, data.begin() + 2 * kBlock + 12288));
    }
}

TEST_CASE("read cache: concurrent walks and writes never return stale bytes") {
    test::FlakyBackend be;
    constexpr std::uint64_t kBlock = 256 * 1024;
    BlockPool pool(be, 64 * kBlock, kBlock, 16 * kBlock);
    ReadCache cache(be, 3, 1 << 20);
    FileData f(pool);
    // Each 4 KiB page holds one repeated byte: its version, raised by each write. A read that
    // starts after a write returned must see that version or a newer one.
    constexpr std::size_t kPages = 2 * kBlock / 4096;
    std::vector<unsigned char> init(2 * kBlock, 1);
    REQUIRE(f.write(0, init.size(), init.data()) == 0);
    std::atomic<bool> stop{false};
    std::atomic<int> problems{0};
    std::vector<std::atomic<unsigned char>> version(kPages);
    for (auto& v : version) v = 1;
    // The test's reads and writes of one page do not overlap (a read racing a write of the
    // same bytes is the caller's race, not the cache's); window fills still run beside writes
    // of other pages of the window, which is the case the cache must get right.
    std::vector<std::mutex> page_mu(kPages);
    std::thread writer([&] {
        std::mt19937 rng(3);
        std::vector<unsigned char> page(4096);
        for (int i = 0; i < 2000; ++i) {
            // Let the reader get a few hits between writes (each write makes the file's
            // windows stale), however slow it runs (under TSan, say); at most 20 ms each.
            const std::uint64_t seen = cache.hits();
            for (int w = 0; w < 2000 && cache.hits() < seen + 4; ++w)
                std::this_thread::sleep_for(std::chrono::microseconds(10));
            const std::size_t p = rng() % kPages;
            if (version[p].load() >= 250) continue;
            const auto next = static_cast<unsigned char>(version[p].load() + 1);
            std::memset(page.data(), next, page.size());
            {
                std::lock_guard lock(page_mu[p]);
                if (f.write_in_place(p * 4096, 4096, page.data()) != 0) ++problems;
            }
            version[p] = next; // stored after the write returned
        }
        stop = true;
    });
    std::thread reader([&] {
        std::vector<unsigned char> buf(4096);
        while (!stop) {
            for (std::size_t p = 0; p < kPages && !stop; ++p) {
                const unsigned char before = version[p].load(); // completed writes so far
                {
                    std::lock_guard lock(page_mu[p]);
                    if (f.read(p * 4096, 4096, buf.data(), &cache) != 0) ++problems;
                }
                // The bytes must be from a write no older than the one completed before.
                bool uniform = true;
                for (auto c : buf) uniform &= c == buf[0];
                if (!uniform || buf[0] < before) ++problems;
            }
        }
    });
    writer.join();
    reader.join();
    CHECK(problems == 0);
    CHECK(cache.hits() > 0);
    CHECK(cache.fills() > 1); // windows were filled again after writes made them stale
    // Quiet now: one more walk sees exactly the last version of every page.
    std::vector<unsigned char> buf(4096);
    int wrong = 0;
    for (std::size_t p = 0; p < kPages; ++p) {
        REQUIRE(f.read(p * 4096, 4096, buf.data(), &cache) == 0);
        wrong += buf[0] != version[p].load() || buf[4095] != version[p].load();
    }
    CHECK(wrong == 0);
}

TEST_CASE("a lost device: one report, then EIO at once without reaching the device") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * kBs, kBs, 4 * kBs);
    FileData f(pool);
    std::vector<char> data(2 * kBs, 'x'), out(2 * kBs);
    REQUIRE(f.write(0, data.size(), data.data()) == 0);
    CHECK_FALSE(be.lost());
    be.lose_device = true;
    CHECK(f.write_in_place(0, kBs, data.data()) == EIO); // the report: mapped to EIO
    CHECK(be.lost());
    const int reached = be.copies.load();
    CHECK(f.read(0, out.size(), out.data()) == EIO);
    CHECK(f.write(kBs, kBs, data.data()) == EIO);
    CHECK(f.allocate(4 * kBs, kBs) == EIO); // a new block on a lost device: EIO, not ENOSPC
    CHECK(be.copies.load() == reached);     // none of those reached the device
    CHECK(be.query_free() == 0);
    be.lose_device = false; // even if the device answered again, the backend stays lost
    CHECK(f.read(0, out.size(), out.data()) == EIO);
}
