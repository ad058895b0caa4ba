// The FUSE request loop: a fixed set of worker threads prepared before the first request.
#pragma once

#include "vramfs/request_stats.hpp"
#include "vramfs/storage.hpp"

#include <fuse_lowlevel.h>

namespace vramfs {

// Sets up malloc for serving under memory pressure: one arena for all threads, grown and
// faulted now, never trimmed. Call before any other thread exists (before CUDA starts).
void prepare_heap();

// Serves `se` with `threads` workers until it is unmounted or SIGINT/SIGTERM/SIGHUP arrives.
// Every worker exists, with its receive buffer allocated and its stack touched, before the
// first request: serving swap I/O under memory pressure must not wait for memory.
// Receive buffers come from `buffers` (page-locked memory for the CUDA backend, so that the data
// of a write, which arrives in that buffer, is copied to the device by DMA without staging).
// poll_us > 0: after serving a request a worker busy-polls /dev/fuse for up to that many
// microseconds (at most two workers at once) before it sleeps, so that a request arriving
// soon after needs no wakeup; a sleeping worker still answers at once.
// Read and write requests are timed into `stats`.
// Call with the signals unblocked in no other thread; returns 0 on a clean exit.
int serve_session(fuse_session* se, unsigned threads, StorageBackend& buffers,
                  RequestStats& stats, unsigned poll_us = 0);

} // namespace vramfs
