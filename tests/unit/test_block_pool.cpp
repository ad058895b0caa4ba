// BlockPool: budget enforcement, all-or-nothing allocation, slabs handed back to the device.
#include "test_backends.hpp"
#include "vramfs/data/block_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

using namespace vramfs;

TEST_CASE("the budget is enforced and a failed allocation takes nothing") {
    test::FlakyBackend be;
    BlockPool pool(be, 10 * 4096, 4096, 4 * 4096); // 10 blocks in slabs of 4, 4, 2
    CHECK(pool.budget_blocks() == 10);
    std::vector<BlockId> a(7), b(4);
    REQUIRE(pool.allocate(7, a.data()) == 0);
    CHECK(pool.used_blocks() == 7);
    CHECK(pool.allocate(4, b.data()) == ENOSPC);
    CHECK(pool.used_blocks() == 7);
    REQUIRE(pool.allocate(3, b.data()) == 0);
    CHECK(pool.used_blocks() == 10);
    // Every block has a place of its own.
    std::set<PoolPlace> addrs;
    for (BlockId id : a) addrs.insert(pool.place(id));
    for (int i = 0; i < 3; ++i) addrs.insert(pool.place(b[i]));
    CHECK(addrs.size() == 10);
    CHECK(pool.stats().reserved_bytes == 10 * 4096); // the last slab is short: no excess
}

TEST_CASE("slabs go back to the device when their blocks are freed") {
    test::FlakyBackend be;
    BlockPool pool(be, 64 * 4096, 4096, 8 * 4096);
    std::vector<BlockId> ids(64);
    REQUIRE(pool.allocate(64, ids.data()) == 0);
    CHECK(be.live_slabs == 8);
    CHECK(pool.stats().reserved_bytes == 64 * 4096);
    pool.release(ids.data() + 8, 56); // frees slabs 1..7 entirely
    CHECK(pool.used_blocks() == 8);
    CHECK(be.live_slabs <= 2); // one empty slab may be kept against churn
    pool.release(ids.data(), 8);
    CHECK(pool.used_blocks() == 0);
    CHECK(be.live_slabs == 0); // nothing in use: everything handed back
    CHECK(pool.stats().reserved_bytes == 0);
}

TEST_CASE("a device out of memory is ENOSPC and rolls back the partial allocation") {
    test::FlakyBackend be;
    BlockPool pool(be, 32 * 4096, 4096, 4 * 4096);
    be.fail_allocations_after = 2; // the device has room for two slabs only
    std::vector<BlockId> ids(12);
    CHECK(pool.allocate(12, ids.data()) == ENOSPC);
    CHECK(pool.used_blocks() == 0);
    CHECK(be.live_slabs == 0);
    REQUIRE(pool.allocate(8, ids.data()) == 0);
    CHECK(be.live_slabs == 2);
    CHECK(pool.allocate(1, ids.data() + 8) == ENOSPC);
}

TEST_CASE("allocation prefers low slabs so freed space gathers in high ones") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * 4096, 4096, 4 * 4096);
    std::vector<BlockId> ids(16);
    REQUIRE(pool.allocate(16, ids.data()) == 0);
    pool.release(ids[1]);  // a hole in slab 0
    pool.release(ids[13]); // a hole in slab 3
    BlockId again = kNoBlock;
    REQUIRE(pool.allocate(1, &again) == 0);
    CHECK(again / 4 == 0);
}

TEST_CASE("the block size must be a power of two") {
    test::FlakyBackend be;
    CHECK_THROWS(BlockPool(be, 1 << 20, 3000));
}

TEST_CASE("with a release delay, empty slabs go back to the device later, not on the I/O path") {
    test::FlakyBackend be;
    {
        BlockPool pool(be, 16 * 4096, 4096, 4 * 4096, std::chrono::milliseconds(100));
        std::vector<BlockId> ids(16);
        REQUIRE(pool.allocate(16, ids.data()) == 0);
        pool.release(ids.data(), 16);
        CHECK(pool.used_blocks() == 0);
        CHECK(be.live_slabs == 4); // still open: regrowing now needs no device allocation
        REQUIRE(pool.allocate(16, ids.data()) == 0);
        CHECK(be.allocations == 4);
        pool.release(ids.data(), 16);
        for (int i = 0; i < 500 && be.live_slabs > 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        CHECK(be.live_slabs == 0);
        CHECK(pool.stats().reserved_bytes == 0);
    }
}

TEST_CASE("with a release delay, free blocks are opened ahead of need while files hold blocks") {
    test::FlakyBackend be;
    BlockPool pool(be, 16 * 4096, 4096, 4 * 4096, std::chrono::milliseconds(100));
    auto wait_for_slabs = [&](int n) {
        for (int i = 0; i < 500 && be.live_slabs != n; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return be.live_slabs.load();
    };
    std::vector<BlockId> ids(16);
    // One free block left in the only open slab: below the low-water mark of half a slab, so
    // the background thread opens the next slab without a request asking for it.
    REQUIRE(pool.allocate(3, ids.data()) == 0);
    CHECK(wait_for_slabs(2) == 2);
    const int before = be.allocations;
    REQUIRE(pool.allocate(3, ids.data() + 3) == 0);
    CHECK(be.allocations == before); // served from the slab opened ahead
    CHECK(pool.stats().reserved_bytes == 8 * 4096);
    // Slab 1 empties, but handing it back would leave one free block: it stays.
    pool.release(ids.data() + 3, 3);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    CHECK(be.live_slabs == 2);
    CHECK(pool.stats().slabs == 2);
    CHECK(pool.stats().empty_slabs == 1); // what vramfs status shows as empty_slabs
    // Nothing in use: everything goes back.
    pool.release(ids.data(), 3);
    CHECK(wait_for_slabs(0) == 0);
    CHECK(pool.stats().reserved_bytes == 0);
}

namespace {
std::atomic<bool> g_memory_short{true};
std::atomic<int> g_memory_asked{0};
bool fake_memory_short() noexcept {
    g_memory_asked.fetch_add(1);
    return g_memory_short.load();
}
} // namespace

TEST_CASE("while memory is short, empty slabs stay open; once it is not, they go back") {
    test::FlakyBackend be;
    g_memory_short = true;
    g_memory_asked = 0;
    BlockPool pool(be, 16 * 4096, 4096, 4 * 4096, std::chrono::milliseconds(20), &fake_memory_short);
    std::vector<BlockId> ids(16);
    REQUIRE(pool.allocate(16, ids.data()) == 0);
    pool.release(ids.data(), 16);
    // Asked (only once slabs were due to go back) and told memory is short, twice over: by then
    // a pool that did not hold would have handed every slab back.
    for (int i = 0; i < 1000 && g_memory_asked < 2; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(g_memory_asked >= 2);
    CHECK(be.live_slabs == 4);
    CHECK(pool.stats().empty_slabs == 4);
    g_memory_short = false;
    for (int i = 0; i < 1000 && be.live_slabs > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(be.live_slabs == 0);
}
