// A large memcpy shared among a few threads started up front.
//
// Why: one thread's stores into write-combined memory behind PCIe (a GPU's BAR, which the
// Vulkan backend writes slabs through) are bounded by that core's write-combining buffers,
// not by the bus, so several cores together move one large write faster than one alone.
//
// What must stay true:
//   - nothing is allocated and no thread is started on the copy path (the daemon may serve
//     swap; see memory.hpp): the helpers exist, their stacks touched, before the first copy;
//   - copy() returns only once every byte has landed: each thread fences its stores before it
//     counts its piece done, so write-combined stores are drained too;
//   - one copy at a time is shared; a copy that finds the helpers busy with another is made
//     by its caller alone (several streams are already several threads);
//   - a helper reads a copy's parameters only after it has claimed a piece of it, and a copy
//     does not end before its claimed pieces are done, so parameters are never read stale.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <pthread.h>
#include <vector>

namespace vramfs {

class SharedCopy {
public:
    // `threads` share each copy of `min_bytes` or more, the caller included (1: the caller
    // alone, no helper thread); each takes pieces of `piece` bytes in turn. A helper polls
    // for the next copy for `spin_us` before it sleeps. Helpers that cannot be started are
    // logged and done without.
    SharedCopy(unsigned threads, std::size_t piece, std::size_t min_bytes, unsigned spin_us);
    ~SharedCopy();
    SharedCopy(const SharedCopy&) = delete;
    SharedCopy& operator=(const SharedCopy&) = delete;

    // memcpy(dst, src, len), with the helpers where len is large enough and they are free.
    void copy(void* dst, const void* src, std::size_t len) noexcept;
    // Threads that share a copy, the caller included.
    unsigned threads() const noexcept { return static_cast<unsigned>(helpers_.size()) + 1; }
    // Copies of min_bytes or more so far, shared or made alone (helpers busy, or none), and
    // the nanoseconds they took: for tests and a debug line.
    struct Tally {
        std::uint64_t copies = 0;
        std::uint64_t ns = 0;
    };
    Tally shared() const noexcept { return {shared_.load(std::memory_order_relaxed), shared_ns_.load(std::memory_order_relaxed)}; }
    Tally alone() const noexcept { return {alone_.load(std::memory_order_relaxed), alone_ns_.load(std::memory_order_relaxed)}; }
    std::uint64_t shared_copies() const noexcept { return shared().copies; }

private:
    static void* helper_main(void* self) noexcept;
    void serve() noexcept;
    // Claims and copies pieces of the current copy until none is left unclaimed.
    void take_pieces() noexcept;

    const std::size_t piece_;
    const std::size_t min_bytes_;
    const unsigned spin_us_;
    std::vector<pthread_t> helpers_;
    std::mutex busy_; // held by the caller whose copy is shared
    // The shared copy's parameters: written while no piece is unclaimed, read after a claim.
    char* dst_ = nullptr;
    const char* src_ = nullptr;
    std::size_t len_ = 0;
    std::atomic<std::uint32_t> unclaimed_{0}; // pieces not yet taken by a thread
    std::atomic<std::uint32_t> undone_{0};    // pieces not yet copied
    std::atomic<std::uint32_t> wake_{0};      // moves on each shared copy; helpers wait on it
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> shared_{0}, shared_ns_{0}, alone_{0}, alone_ns_{0};
};

} // namespace vramfs
