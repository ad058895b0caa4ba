// The FUSE low-level operation table over a Filesystem. Every callback calls one Filesystem
// method and replies exactly once; exceptions stop here and become an errno.
#pragma once

#include "vramfs/fs/filesystem.hpp"
#include "vramfs/fuse/request_stats.hpp"

#include <fuse_lowlevel.h>

namespace vramfs {

// The session's userdata: the filesystem and what the FUSE layer counts about its requests.
struct FuseContext {
    FuseContext(Filesystem& f, uid_t owner_uid) : fs(f), owner(owner_uid) {}
    Filesystem& fs;
    const uid_t owner; // the mount's owner: with root, the only one shown per-file status
    RequestStats stats;
};

// With null_io, read, write and fallocate are Filesystem's null-I/O operations (the mode is
// chosen here, once, not tested per request).
const fuse_lowlevel_ops& fuse_operations(bool null_io) noexcept;

} // namespace vramfs
