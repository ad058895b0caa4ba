// SpillTier and SpillFile: bytes move to the spill and back when a simulated card's free memory
// falls and rises, nothing is lost meanwhile, and a bad spill place is refused with its reason.
#include "test_backends.hpp"
#include "vramfs/data/block_pool.hpp"
#include "vramfs/storage/spill_file.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <thread>
#include <vector>
#include <sys/statvfs.h>

using namespace vramfs;

namespace {

constexpr std::uint64_t kMiB = 1 << 20;
constexpr std::uint64_t kBlock = 64 * 1024;

// Waits for `done` (the tier's thread works on its own); false after a minute, which no healthy
// run comes near even on a loaded machine.
bool wait_for(const std::function<bool()>& done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

void fill(std::vector<unsigned char>& buf, std::uint32_t seed) {
    std::mt19937 rng(seed);
    for (auto& b : buf) b = static_cast<unsigned char>(rng());
}

// A pool of 8 MiB in 1 MiB slabs of 64 KiB blocks on a 64 MiB card, with a spill in the
// current directory (the build tree), or in /var/tmp where that is tmpfs, and a keep-free mark
// of 2 MiB.
struct SpilledPool {
    test::SimulatedCard card{64 * kMiB};
    BlockPool pool{card, 8 * kMiB, kBlock, kMiB};
    std::unique_ptr<SpillFile> file;
    SpilledPool() {
        std::string why, why_var_tmp;
        file = SpillFile::open(".", "/nonexistent-mount", pool.spill_bytes_needed(), why);
        if (!file) file = SpillFile::open("/var/tmp", "/nonexistent-mount", pool.spill_bytes_needed(), why_var_tmp);
        const std::string both = why + "; " + why_var_tmp;
        REQUIRE_MESSAGE(file, both);
        pool.attach_spill(*file, 0, 2 * kMiB);
    }
    TierStats tier() const { return pool.stats().tier; }
    bool settled() const { return pool.tier()->settled(); }
};

void write_blocks(BlockPool& pool, const std::vector<BlockId>& ids, std::uint32_t seed);

// Takes ids.size() blocks, writes them from `seed`, then yields all the pool's VRAM and waits
// until none is held.
void fill_and_yield_all(SpilledPool& sp, std::vector<BlockId>& ids, std::uint32_t seed) {
    REQUIRE(sp.pool.allocate(ids.size(), ids.data()) == 0);
    write_blocks(sp.pool, ids, seed);
    sp.pool.tier()->set_vram_limit(0);
    REQUIRE(wait_for([&] { return sp.tier().vram_bytes == 0 && sp.settled(); }));
}

void write_blocks(BlockPool& pool, const std::vector<BlockId>& ids, std::uint32_t seed) {
    std::vector<unsigned char> buf(kBlock);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        fill(buf, seed + static_cast<std::uint32_t>(i));
        REQUIRE(pool.write(pool.place(ids[i]), buf.data(), buf.size()) == 0);
    }
}

bool blocks_hold(BlockPool& pool, const std::vector<BlockId>& ids, std::uint32_t seed) {
    std::vector<unsigned char> want(kBlock), got(kBlock);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        fill(want, seed + static_cast<std::uint32_t>(i));
        if (pool.read(pool.place(ids[i]), got.data(), got.size()) != 0 || got != want) return false;
    }
    return true;
}

} // namespace

TEST_CASE("a card that loses free memory gets it back, and the bytes come back when it is free") {
    SpilledPool sp;
    std::vector<BlockId> ids(100); // 6.25 MiB: 7 slabs
    REQUIRE(sp.pool.allocate(ids.size(), ids.data()) == 0);
    write_blocks(sp.pool, ids, 1);
    CHECK(sp.tier().spill_bytes == 0);

    // Another program takes all but 1 MiB: under the 2 MiB mark.
    sp.card.capacity = sp.card.held + kMiB;
    REQUIRE(wait_for([&] { return sp.card.do_query_free() >= 2 * kMiB && sp.settled(); }));
    const TierStats out = sp.tier();
    CHECK(out.spill_bytes >= kMiB);
    CHECK(out.moved_out >= kMiB);
    CHECK(out.vram_bytes + out.spill_bytes == 7 * kMiB);
    CHECK(blocks_hold(sp.pool, ids, 1));

    // Writes while spilled, whole blocks and a few bytes inside a page.
    write_blocks(sp.pool, ids, 1000);
    const char patch[] = "written into the middle of a page on the spill";
    for (BlockId id : ids) REQUIRE(sp.pool.write(sp.pool.place(id) + 1000, patch, sizeof patch) == 0);
    auto holds_patched = [&] {
        std::vector<unsigned char> want(kBlock), got(kBlock);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            fill(want, 1000 + static_cast<std::uint32_t>(i));
            std::memcpy(want.data() + 1000, patch, sizeof patch);
            if (sp.pool.read(sp.pool.place(ids[i]), got.data(), got.size()) != 0 || got != want) return false;
        }
        return true;
    };
    CHECK(holds_patched());

    // The program ends: everything comes back to the card.
    sp.card.capacity = 64 * kMiB;
    REQUIRE(wait_for([&] { return sp.tier().spill_bytes == 0 && sp.settled(); }));
    CHECK(sp.tier().moved_in >= out.spill_bytes);
    CHECK(sp.tier().vram_bytes == 7 * kMiB);
    CHECK(holds_patched());
    sp.pool.release(ids.data(), ids.size());
}

TEST_CASE("yield gives every slab back, new files go to the spill, reclaim brings them in") {
    SpilledPool sp;
    std::vector<BlockId> a(40), b(40);
    fill_and_yield_all(sp, a, 7);
    CHECK(sp.card.held == 0);
    CHECK(blocks_hold(sp.pool, a, 7));

    // While yielded, storage taken for new data opens on the spill, without device memory.
    REQUIRE(sp.pool.allocate(b.size(), b.data()) == 0);
    write_blocks(sp.pool, b, 70);
    CHECK(sp.card.held == 0);
    CHECK(blocks_hold(sp.pool, b, 70));

    sp.pool.tier()->set_vram_limit(UINT64_MAX);
    REQUIRE(wait_for([&] { return sp.tier().spill_bytes == 0 && sp.settled(); }));
    CHECK(sp.card.held == sp.tier().vram_bytes);
    CHECK(blocks_hold(sp.pool, a, 7));
    CHECK(blocks_hold(sp.pool, b, 70));
    sp.pool.release(a.data(), a.size());
    sp.pool.release(b.data(), b.size());
}

TEST_CASE("a card lost after everything was yielded leaves the pool working from the spill") {
    SpilledPool sp;
    std::vector<BlockId> a(30), b(30);
    fill_and_yield_all(sp, a, 3); // as vramfs-swap suspend does before a sleep
    sp.card.lose_device = true; // the GPU did not come back
    sp.pool.tier()->set_vram_limit(UINT64_MAX); // resume's reclaim: nothing can come back
    REQUIRE(wait_for([&] { return sp.settled(); }));
    CHECK(blocks_hold(sp.pool, a, 3));
    write_blocks(sp.pool, a, 30);
    CHECK(blocks_hold(sp.pool, a, 30));
    // New storage opens on the spill, the device being gone.
    REQUIRE(sp.pool.allocate(b.size(), b.data()) == 0);
    write_blocks(sp.pool, b, 300);
    CHECK(blocks_hold(sp.pool, b, 300));
    CHECK(sp.tier().vram_bytes == 0);
    sp.pool.release(a.data(), a.size());
    sp.pool.release(b.data(), b.size());
}

TEST_CASE("writes and reads during moves lose nothing") {
    SpilledPool sp;
    constexpr int kThreads = 4, kPerThread = 24;
    std::vector<BlockId> ids(kThreads * kPerThread);
    REQUIRE(sp.pool.allocate(ids.size(), ids.data()) == 0);
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::atomic<long> writes{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t)
        workers.emplace_back([&, t] {
            // Each thread owns its blocks: what it reads back is what it wrote last.
            std::vector<std::uint32_t> last(kPerThread, 0);
            std::vector<unsigned char> buf(kBlock), got(kBlock);
            std::mt19937 rng(static_cast<unsigned>(t));
            for (std::uint32_t round = 1; !stop; ++round) {
                const int k = static_cast<int>(rng() % kPerThread);
                const BlockId id = ids[static_cast<std::size_t>(t * kPerThread + k)];
                // A whole block, or a piece at an odd offset (a page read, changed, written).
                const std::size_t off = round % 3 == 0 ? 4095 * (rng() % 8) : 0;
                const std::size_t len = off ? 1 + rng() % 9000 : kBlock;
                if (last[static_cast<std::size_t>(k)] == 0) {
                    fill(buf, round);
                    if (sp.pool.write(sp.pool.place(id), buf.data(), kBlock) != 0) ++bad;
                } else {
                    if (sp.pool.read(sp.pool.place(id), buf.data(), kBlock) != 0) ++bad;
                    for (std::size_t i = 0; i < len; ++i) buf[off + i] = static_cast<unsigned char>(round + i);
                    if (sp.pool.write(sp.pool.place(id) + off, buf.data() + off, len) != 0) ++bad;
                }
                last[static_cast<std::size_t>(k)] = round;
                if (sp.pool.read(sp.pool.place(id), got.data(), kBlock) != 0 || got != buf) ++bad;
                ++writes;
            }
        });
    // The card's free memory falls and rises under them, five times.
    for (int i = 0; i < 5; ++i) {
        sp.card.capacity = 2 * kMiB;
        REQUIRE(wait_for([&] { return sp.tier().vram_bytes == 0 && sp.settled(); }));
        sp.card.capacity = 64 * kMiB;
        REQUIRE(wait_for([&] { return sp.tier().spill_bytes == 0 && sp.settled(); }));
    }
    stop = true;
    for (auto& w : workers) w.join();
    CHECK(writes > 0);
    CHECK(bad == 0);
    CHECK(sp.tier().moved_out >= 5 * kMiB);
    sp.pool.release(ids.data(), ids.size());
}

TEST_CASE("a spill place that will not do is refused with the reason") {
    std::string why;
    CHECK_FALSE(SpillFile::open("/dev/shm", "/mnt/x", 1 << 20, why));
    CHECK(why.find("tmpfs") != std::string::npos);
    const std::string here = std::filesystem::current_path();
    CHECK_FALSE(SpillFile::open(here + "/spill", here, 1 << 20, why));
    CHECK(why.find("inside the mount point") != std::string::npos);
    CHECK_FALSE(SpillFile::open("/nonexistent-dir/spill", "/mnt/x", 1 << 20, why));
    CHECK(why.find("No such file") != std::string::npos);
    struct statvfs fs {};
    REQUIRE(::statvfs(".", &fs) == 0);
    const std::uint64_t more = std::uint64_t{fs.f_bavail} * fs.f_frsize + (std::uint64_t{1} << 30);
    CHECK_FALSE(SpillFile::open(".", "/mnt/x", more, why));
    CHECK(why.find("no room") != std::string::npos);
}
