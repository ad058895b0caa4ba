// Budget: how many blocks a pool may hold on its device (rmm's limiting adaptor, in blocks).
#pragma once

#include <atomic>
#include <cstdint>

namespace vramfs {

// Thread-safe on its own; take() is all or nothing.
class Budget {
public:
    explicit Budget(std::uint64_t limit_blocks) noexcept : limit_(limit_blocks) {}

    // Takes `n` blocks of the budget: false, taking nothing, where that would pass the limit.
    bool take(std::uint64_t n) noexcept {
        std::uint64_t used = used_.load(std::memory_order_relaxed);
        do {
            if (used + n > limit_) return false;
        } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
        return true;
    }
    void give(std::uint64_t n) noexcept { used_.fetch_sub(n, std::memory_order_relaxed); }

    std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    std::uint64_t limit() const noexcept { return limit_; }

private:
    const std::uint64_t limit_;
    std::atomic<std::uint64_t> used_{0};
};

} // namespace vramfs
