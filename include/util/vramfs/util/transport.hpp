// How FUSE requests travel (--transport) and the transports' tuning knobs. In util, below both
// of their users: the command line (app/config.hpp, the options layer) names them without
// linking the FUSE layer, and the FUSE layer acts on them.
#pragma once

namespace vramfs {

// The largest read or write request the kernel sends (--max-io) unless told otherwise: the
// kernel's default of 256 pages per request.
inline constexpr unsigned kDefaultMaxIo = 1 << 20;

// automatic: FUSE over io_uring where the kernel offers it, else /dev/fuse alone.
enum class TransportKind { automatic, uring, dev };

// Knobs to compare with (hidden options, docs/options.md); the defaults are what runs.
struct TransportTuning {
    // The daemon clears set-user-ID and set-group-ID bits itself (FUSE_HANDLE_KILLPRIV_V2):
    // off leaves the clearing to the kernel, a request more per write into such a file.
    bool killpriv_v2 = true;
    // io_uring queue threads pinned to the CPU whose requests they serve. Off by default: the
    // kernel copies a reply into the caller's pages on the committing thread, and the caller
    // of an asynchronous request (readahead, a loop device's reads) goes on running, so on its
    // CPU that copy would wait for the caller it feeds; only small synchronous reads gain.
    bool ring_pin_cpu = false;
    unsigned ring_poll_us = 0;       // io_uring threads spin this long for a completion first
    unsigned ring_queue_threads = 0; // threads per online CPU's queue (0: as ring memory allows)
};

} // namespace vramfs
