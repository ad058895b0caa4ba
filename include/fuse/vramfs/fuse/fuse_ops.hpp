// The FUSE low-level operation table over a Filesystem. Every callback calls one Filesystem
// method and replies exactly once; exceptions stop here and become an errno.
#pragma once

#include "vramfs/fs/filesystem.hpp"
#include "vramfs/fuse/request_stats.hpp"

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstddef>
#include <string>

namespace vramfs {

// The session's userdata: the filesystem and what the FUSE layer counts about its requests.
struct FuseContext {
    FuseContext(Filesystem& f, uid_t owner_uid) : fs(f), owner(owner_uid) {}
    Filesystem& fs;
    fuse_session* session = nullptr; // for notifications to the kernel
    const uid_t owner; // the mount's owner: with root, the only one shown per-file status
    RequestStats stats;
    // The mount's readahead, written to its bdi file (readahead_path, e.g.
    // /sys/class/bdi/0:40/read_ahead_kb) at the first open or create after INIT: the kernel sets the
    // readahead from the INIT reply, and libfuse never offers more than the kernel's 128 KiB.
    // An open takes its file's readahead from the bdi, so the first file read has it already.
    std::string readahead_path, readahead_kib; // empty: leave the kernel's
    std::atomic<bool> readahead_pending{false};
    // Asynchronous requests (readahead, a loop device's direct I/O) the kernel lets wait on the
    // daemon at once, sent in the INIT reply; 0 leaves the kernel's 12.
    unsigned max_background = 0;
};

// Where the transport will send the current request's reply from, when it has such a buffer
// (FUSE over io_uring: the ring entry's page-locked payload). A read that fits goes straight
// into it, so the data moves from the device to the kernel with no copy in between. Set by the
// transport on the thread handling the request, for that request only.
struct ReplyBuffer {
    void* data = nullptr;
    std::size_t size = 0;
};
extern thread_local ReplyBuffer current_reply_buffer;

// With null_io, read, write and fallocate are Filesystem's null-I/O operations (the mode is
// chosen here, once, not tested per request).
const fuse_lowlevel_ops& fuse_operations(bool null_io) noexcept;

} // namespace vramfs
