// Transport: how FUSE requests travel between the kernel and the operations. One serves a
// mounted session: it takes each request, has the operation table handle it, and the reply
// goes back the same way. /dev/fuse, read by our own worker threads, always runs (it carries
// INIT, FORGET and INTERRUPT); FUSE over io_uring (fuse/fuse_ring.hpp) may carry the rest.
#pragma once

#include "vramfs/fuse/request_stats.hpp"
#include "vramfs/util/transport.hpp"
#include "vramfs/storage/backend.hpp"

#include <functional>
#include <memory>
#include <string>

struct fuse_session;

namespace vramfs {

struct ServeOptions {
    std::string mountpoint; // detached on the first stop signal (see detach_mount)
    TransportKind transport = TransportKind::dev; // resolved: uring or dev
    bool uring_asked = false; // --transport uring, not auto: not getting it is an error
    std::size_t max_io = kDefaultMaxIo; // largest read or write: sizes the io_uring buffers
    unsigned threads = 8;
    // After a request a worker busy-polls for the next one this long (microseconds, 0: sleep at
    // once); at most two workers spin at a time.
    unsigned poll_us = 0;
    // Run by every thread that serves requests (the /dev/fuse workers, the io_uring queues)
    // before the transport takes its first request: StorageBackend::prepare_thread.
    std::function<void()> prepare_thread;
    TransportTuning tuning;
};

// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread, and so in every thread it starts
// afterwards: they are for Transport::serve's waiting thread alone. A thread that let one
// through would die of it, and the mount with it (ENOTCONN), instead of unmounting first.
// Called before the drivers, the block pools and make_transport start threads of their own.
void block_stop_signals() noexcept;

class Transport {
public:
    virtual ~Transport() = default;
    // "uring" or "dev": what carries the requests (uring once the kernel took the ring).
    virtual const char* name() const noexcept = 0;
    // Serves until the kernel ends the session; 0 on a clean end. SIGINT, SIGTERM or SIGHUP
    // unmount first (detach_mount) and go on serving whoever still uses the mount (an open
    // file, a working directory) until the kernel ends the session, so that nobody sees
    // ENOTCONN; a second such signal exits at once. Every thread and buffer it uses exists
    // before the first request (util/memory.hpp). Call on the thread that called
    // block_stop_signals() before any other thread started.
    virtual int serve() = 0;
};

// Takes the mount out of the namespace (lazily: users still inside keep it until they leave)
// without closing the session: umount2(MNT_DETACH), or fusermount3 -u -z without the
// privilege. Returns false, with a log line, if neither worked.
bool detach_mount(const std::string& mountpoint) noexcept;

// /dev/fuse read by a fixed set of workers, and with TransportKind::uring the io_uring queues
// too. Receive buffers come from `buffers` (page-locked for CUDA, so a write's data, which
// arrives there, goes to the device by DMA without staging). Read and write requests are
// timed into `stats`. Everything is made here, before the first request; null, with the
// reason in `why`, if the io_uring part cannot be.
std::unique_ptr<Transport> make_transport(fuse_session* se, ServeOptions options,
                                          HostMemory& buffers, RequestStats& stats,
                                          std::string& why);

// Whether this kernel carries FUSE over io_uring for new mounts: the fuse module's enable_uring
// parameter. `why` says what is missing when it does not.
bool kernel_offers_fuse_uring(std::string& why);

// What carries the requests for --transport `asked`: auto is uring where the kernel offers FUSE
// over io_uring, else dev (`why` then says why not). False where uring was asked for and the
// kernel does not offer it.
bool resolve_transport(TransportKind asked, TransportKind& out, std::string& why);

} // namespace vramfs
