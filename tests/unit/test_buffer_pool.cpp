// IoBufferPool: a fixed set of buffers, handed out in turn, waited for when all are in use.
#include "vramfs/data/buffer_pool.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

using namespace vramfs;

TEST_CASE("I/O buffers are handed out in turn, the one returned longest ago first") {
    auto be = make_host_backend();
    IoBufferPool pool(*be, 3, 4096);
    std::vector<void*> order;
    for (int i = 0; i < 6; ++i) {
        auto lease = pool.take();
        order.push_back(lease.get());
    } // each is returned before the next take
    CHECK(std::set<void*>(order.begin(), order.end()).size() == 3); // all three used...
    for (int i = 3; i < 6; ++i) CHECK(order[i] == order[i - 3]);    // ...in a fixed turn
}

TEST_CASE("a take waits until a buffer comes back, and gets that one") {
    auto be = make_host_backend();
    IoBufferPool pool(*be, 2, 4096);
    auto a = std::make_unique<IoBufferPool::Lease>(pool.take());
    auto b = pool.take();
    void* returned = a->get();
    std::atomic<bool> got{false};
    void* seen = nullptr;
    std::thread waiter([&] {
        auto c = pool.take();
        seen = c.get();
        got = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK_FALSE(got.load()); // both are in use
    a.reset();
    waiter.join();
    CHECK(got.load());
    CHECK(seen == returned);
    CHECK(b.get() != returned);
}
