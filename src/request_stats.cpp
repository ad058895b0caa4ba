// RequestStats: the clock and the opcode lookup behind the per-request timing counters.
#include "vramfs/request_stats.hpp"

#include <ctime>
#include <linux/fuse.h>

namespace vramfs {

std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

OpTiming* RequestStats::of(std::uint32_t opcode) noexcept {
    switch (opcode) {
    case FUSE_READ: return &read;
    case FUSE_WRITE: return &write;
    default: return nullptr;
    }
}

} // namespace vramfs
