// FUSE protocol that libfuse 3.14 does not handle, done beside it: every transport shows each
// request here before libfuse processes it, and passes each reply through here before writing.
//
// FUSE_HANDLE_KILLPRIV_V2 (Linux 5.11): the filesystem, not the kernel, clears set-user-ID and
// set-group-ID bits on write, truncate and chown. Without it the kernel asks the filesystem for
// the file's security.capability (a GETXATTR round trip) before every write(2), O_DIRECT and
// a loop device's writes included, to learn whether there is a capability to remove. With it
// the superblock is SB_NOSEC: a file found clean once skips that question until its attributes
// are next refreshed. The kernel then marks the requests whose caller may not keep the bits
// (no CAP_FSETID, or any chown) with FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID or
// FUSE_OPEN_KILL_SUIDGID, which libfuse 3.14 drops; request_kills_suidgid() has them. (For a
// fallocate it sends a SETATTR that sets nothing: see saw_request.)
// (vramfs keeps only user.* xattrs, so there is never a capability to remove.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <sys/types.h>
#include <sys/uio.h>

struct fuse_session;

namespace vramfs {

// Called with each request, laid out as /dev/fuse delivers it, on the thread that then has
// libfuse process it, just before it does.
void saw_request(const void* request, std::size_t size) noexcept;

// Whether the request this thread is processing asks the filesystem to clear set-user-ID, and
// set-group-ID where the group may execute: a write or truncation by a caller without
// CAP_FSETID, a chown, an open with O_TRUNC by such a caller.
bool request_kills_suidgid() noexcept;

// For a reply about to be written: whether it answers INIT, with the flags the kernel offered
// in `offered`. INIT's reply gets FUSE_HANDLE_KILLPRIV_V2 and FUSE_DIRECT_IO_ALLOW_MMAP where
// the kernel offered them.
bool amend_init_reply(iovec* iov, int count, std::uint64_t& offered) noexcept;
// Whether INIT's reply takes FUSE_HANDLE_KILLPRIV_V2 (TransportTuning::killpriv_v2); set before
// the session starts.
void handle_killpriv_v2(bool on) noexcept;

// Installs the session's writev for /dev/fuse (amend_init_reply, then writev(2)). FUSE over
// io_uring installs its own, which calls amend_init_reply too. False if libfuse refused it.
bool install_dev_writev(fuse_session* se) noexcept;

} // namespace vramfs
