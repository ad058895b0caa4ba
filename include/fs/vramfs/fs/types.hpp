// The fs layer's own small types for what FUSE passes in and out (an entry, open flags,
// attribute masks), so that the operations are written and tested without libfuse.
#pragma once

#include "vramfs/util/function_ref.hpp"

#include <cstdint>
#include <sys/stat.h>
#include <sys/types.h>

namespace vramfs {

using InodeNumber = std::uint64_t;
inline constexpr InodeNumber kRootInode = 1; // FUSE_ROOT_ID

// What lookup and the creating operations answer: the inode, its attributes, and how long the
// kernel may cache both. The kernel then holds one lookup reference until it forgets it.
struct Entry {
    InodeNumber ino = 0;
    struct stat attr{};
    double timeout = 0; // seconds, for the attributes and the name alike
};

// How the kernel should treat an opened file's data.
struct OpenReply {
    bool direct_io = false;  // bypass the page cache
    bool keep_cache = false; // cached pages stay valid across opens
};

// Who asks: taken from the request.
struct Caller {
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t umask = 0;
};

// Clearing set-user-ID and set-group-ID on a write or an open with O_TRUNC: `asked` for this
// request by the kernel (the caller lacks CAP_FSETID), `cleared` set where a bit went, so that the
// caller can have the kernel drop its cached mode.
struct KillSuidgid {
    bool asked = false;
    bool cleared = false;
};

// Which attributes setattr changes (the FUSE layer maps its FUSE_SET_ATTR_* bits to these).
namespace set_attr {
inline constexpr unsigned mode = 1u << 0, uid = 1u << 1, gid = 1u << 2, size = 1u << 3,
                          atime = 1u << 4, mtime = 1u << 5, atime_now = 1u << 6,
                          mtime_now = 1u << 7, ctime = 1u << 8,
                          // clear set-user-ID and set-group-ID (kill_suidgid), alone or with
                          // size, uid or gid
                          kill_suidgid = 1u << 9;
}

// readdir hands each entry to this, in order: its name, the entry (for plain readdir only
// attr.st_ino and the type bits of attr.st_mode are set) and the offset of the entry after it.
// It returns false when the entry did not fit, which ends the listing.
using DirFiller = FunctionRef<bool(const char* name, const Entry& entry, std::uint64_t next)>;

} // namespace vramfs
