// Transport: how FUSE requests travel between the kernel and the operations. One serves a
// mounted session: it takes each request, has the operation table handle it, and the reply
// goes back the same way. /dev/fuse with our own worker threads is one implementation; another
// (FUSE over io_uring) stands beside it behind the same interface.
#pragma once

#include "vramfs/fuse/request_stats.hpp"
#include "vramfs/storage/backend.hpp"

#include <memory>

struct fuse_session;

namespace vramfs {

struct ServeOptions {
    unsigned threads = 8;
    // After a request a worker busy-polls for the next one this long (microseconds, 0: sleep at
    // once); at most two workers spin at a time.
    unsigned poll_us = 0;
};

class Transport {
public:
    virtual ~Transport() = default;
    virtual const char* name() const noexcept = 0;
    // Serves until the filesystem is unmounted or SIGINT/SIGTERM/SIGHUP arrives; 0 on a clean
    // end. Every thread and buffer it uses exists before the first request (util/memory.hpp).
    // Call with the stop signals unblocked in no other thread.
    virtual int serve() = 0;
};

// /dev/fuse read by a fixed set of workers. Receive buffers come from `buffers` (page-locked
// for CUDA, so a write's data, which arrives there, goes to the device by DMA without staging).
// Read and write requests are timed into `stats`.
std::unique_ptr<Transport> make_dev_fuse_transport(fuse_session* se, ServeOptions options,
                                                   StorageBackend& buffers, RequestStats& stats);

} // namespace vramfs
