// FUSE over io_uring (Linux 6.14+, kernel Documentation/filesystems/fuse-io-uring.rst), beside
// /dev/fuse. The kernel keeps one queue per possible CPU and sends a request to the queue of
// the CPU it was made on; each queue here is served by a few threads side by side (not pinned:
// see TransportTuning::ring_pin_cpu), each with its own io_uring holding ring entries of that queue (a header
// buffer and a page-locked payload buffer each). A reply commits the entry and fetches the next
// request in one submission.
//
// libfuse 3.14 knows nothing of this, so the ring plugs in at its two seams: the custom I/O
// writev (which routes a reply made on a ring thread into that thread's entry, and adds the
// io_uring flag to the INIT reply), and fuse_session_process_buf (each ring request is laid out
// as /dev/fuse would have delivered it, its header copied just before the payload, so that a
// write's data is used where the kernel put it). Reads go straight into the payload
// (current_reply_buffer). /dev/fuse still carries INIT, FORGET, INTERRUPT, and everything until
// every queue has registered.
//
// Beside libfuse 3.18's own (lib/fuse_uring.c), which came after Debian 12's libfuse: the same
// kernel protocol (FUSE_IO_URING_CMD_REGISTER, then COMMIT_AND_FETCH per reply; a header and a
// payload buffer per entry), but libfuse runs one thread per queue, bound to its CPU, over
// payload buffers it allocates itself. Here several threads serve one queue, unbound (see
// TransportTuning::ring_pin_cpu), and the payloads are the backend's host memory (page-locked
// for CUDA, imported for Vulkan), so a copy to or from the device needs no staging. Retiring
// this file for libfuse's ring takes: libfuse >= 3.18 in the distributions we ship for; its
// session's io_uring option in place of make_transport's ring; a way to give it the backend's
// buffers (or a measured cost of staging without it, docs/performance.md#transports); and the
// ring_threads test's case of one busy queue served by more than one thread, which libfuse's one
// thread per queue would fail.
#pragma once

#include "vramfs/fuse/request_stats.hpp"
#include "vramfs/storage/backend.hpp"

#include "vramfs/fuse/transport.hpp"

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

struct fuse_session;

namespace vramfs {

class FuseRing {
public:
    // Everything it will use, made now (util/memory.hpp): its threads (stop signals blocked,
    // as the caller's mask is inherited: block_stop_signals), io_urings and buffers of
    // `payload` bytes each (page-locked by `buffers`), and the session's custom I/O installed.
    // Null, with the reason in `why`, if any of it fails; the session is then untouched and
    // /dev/fuse serves alone. Each queue's thread runs options.prepare_thread (if set) before
    // it registers its entries; options.uring_asked makes the ring required, and its tuning
    // shapes it.
    static std::unique_ptr<FuseRing> create(fuse_session* se, std::size_t payload,
                                            HostMemory& buffers, RequestStats& stats,
                                            const ServeOptions& options, std::string& why);
    ~FuseRing(); // stops the threads and frees what it made

    // Ends the threads (after the session ended; the kernel has released the entries).
    void stop() noexcept;

    struct Impl;

private:
    explicit FuseRing(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace vramfs
