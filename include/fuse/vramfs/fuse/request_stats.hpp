// RequestStats: where the daemon's time goes for read and write requests (taking the request
// from the kernel, the storage call, the rest of handling with the reply), shown by `vramfs
// status` and used by tests/perf/bench.py to explain each row.
#pragma once

#include "vramfs/fs/status.hpp"
#include "vramfs/util/clock.hpp"

#include <atomic>
#include <cstdint>

namespace vramfs {

struct OpTiming {
    std::atomic<std::uint64_t> requests{0};
    // The read(2) of /dev/fuse that returned the request: for a write this is the kernel
    // copying the data into the receive buffer. Counted only with --poll-us, where that read
    // does not block (otherwise it would include the wait for the request).
    std::atomic<std::uint64_t> receive_ns{0}, received{0};
    std::atomic<std::uint64_t> storage_ns{0}; // the Filesystem call (device copy, locks)
    // From the request's arrival in the daemon to the end of its reply: storage plus the rest
    // (libfuse's parsing, buffer leases, and the reply, which for a read is the kernel copying
    // the data out to the reader).
    std::atomic<std::uint64_t> handle_ns{0};
};

struct RequestStats {
    OpTiming read, write;
    // FUSE over io_uring: whether the kernel took the ring, and the requests it carried.
    std::atomic<bool> over_uring{false};
    std::atomic<std::uint64_t> ring_requests{0};
    std::atomic<std::uint64_t> other_requests{0}; // the ones not timed: metadata, INIT, FORGET...

    // Counts a request as it arrives (before it is handled: once its reply is out, a status
    // read must see it). Returns its timing record, or nullptr for the ones not timed.
    OpTiming* arrived(std::uint32_t opcode) noexcept;
    // Adds the totals to a status snapshot.
    void fill(StatusSnapshot& s) const noexcept;
};

} // namespace vramfs
