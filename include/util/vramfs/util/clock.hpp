// Clocks: monotonic nanoseconds for timing requests (vDSO: tens of nanoseconds a read).
#pragma once

#include <cstdint>
#include <ctime>

namespace vramfs {

inline std::uint64_t monotonic_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

} // namespace vramfs
