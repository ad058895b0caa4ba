// The FUSE request loop: a fixed set of worker threads prepared before the first request.
#pragma once

#include <fuse_lowlevel.h>

namespace vramfs {

// Serves `se` with `threads` workers until it is unmounted or SIGINT/SIGTERM/SIGHUP arrives.
// Every worker exists, with its receive buffer allocated and its stack touched, before the
// first request: serving swap I/O under memory pressure must not wait for memory.
// Call with the signals unblocked in no other thread; returns 0 on a clean exit.
int serve_session(fuse_session* se, unsigned threads);

} // namespace vramfs
