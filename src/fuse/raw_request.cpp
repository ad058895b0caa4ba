#include "raw_request.hpp"

#include "vramfs/util/log.hpp"

#include <fuse_lowlevel.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <linux/fuse.h>
#include <unistd.h>

namespace vramfs {
namespace {

thread_local bool tls_kill_suidgid = false;

// FUSE_DIRECT_IO_ALLOW_MMAP, which Debian 12's <linux/fuse.h> (Linux 6.1) lacks.
constexpr std::uint64_t kDirectIoAllowMmap = 1ull << 36;

// INIT comes once per session, before any other request; its reply is recognised by its id.
std::atomic<std::uint64_t> g_init_unique{0};
std::atomic<std::uint64_t> g_init_flags{0};
std::atomic<bool> g_killpriv_v2{true}; // TransportTuning::killpriv_v2

// The fixed part of a request after its header, if the request is long enough to hold it.
template <class T> const T* body(const void* request, std::size_t size) noexcept {
    if (size < sizeof(fuse_in_header) + sizeof(T)) return nullptr;
    return reinterpret_cast<const T*>(static_cast<const fuse_in_header*>(request) + 1);
}

ssize_t dev_writev(int fd, iovec* iov, int count, void*) {
    std::uint64_t offered = 0;
    (void)amend_init_reply(iov, count, offered);
    return ::writev(fd, iov, count);
}

ssize_t dev_read(int fd, void* buf, size_t len, void*) { return ::read(fd, buf, len); }

} // namespace

void saw_request(const void* request, std::size_t size) noexcept {
    tls_kill_suidgid = false;
    if (size < sizeof(fuse_in_header)) return;
    const auto* in = static_cast<const fuse_in_header*>(request);
    switch (in->opcode) {
    case FUSE_WRITE:
        if (const auto* w = body<fuse_write_in>(request, size))
            tls_kill_suidgid = (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
        break;
    case FUSE_SETATTR:
        // A SETATTR that sets nothing is what is left of the kernel's own clearing
        // (file_remove_privs) once FUSE takes the kill bits out: it comes only for a caller that
        // may not keep them, before a fallocate, a copy_file_range or a write into such a file,
        // and only fallocate's request carries no flag of its own.
        if (const auto* a = body<fuse_setattr_in>(request, size))
            tls_kill_suidgid = (a->valid & FATTR_KILL_SUIDGID) != 0 ||
                               (a->valid & ~std::uint32_t{FATTR_FH | FATTR_LOCKOWNER}) == 0;
        break;
    case FUSE_OPEN:
        if (const auto* o = body<fuse_open_in>(request, size))
            tls_kill_suidgid = (o->open_flags & FUSE_OPEN_KILL_SUIDGID) != 0;
        break;
    case FUSE_INIT: {
        // Older kernels send only the first four fields.
        const std::size_t have = size - sizeof(fuse_in_header);
        const auto* init = reinterpret_cast<const fuse_init_in*>(in + 1);
        std::uint64_t flags = have >= offsetof(fuse_init_in, flags) + 4 ? init->flags : 0;
        if ((flags & FUSE_INIT_EXT) && have >= offsetof(fuse_init_in, flags2) + 4)
            flags |= std::uint64_t{init->flags2} << 32;
        g_init_flags.store(flags);
        g_init_unique.store(in->unique);
        break;
    }
    default:
        break;
    }
}

bool request_kills_suidgid() noexcept { return tls_kill_suidgid; }

bool amend_init_reply(iovec* iov, int count, std::uint64_t& offered) noexcept {
    const std::uint64_t unique = g_init_unique.load();
    if (unique == 0 || count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) return false;
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    if (out->unique != unique) return false;
    g_init_unique.store(0);
    offered = g_init_flags.load();
    if (out->error != 0 || count < 2 || iov[1].iov_len < offsetof(fuse_init_out, flags) + 4)
        return true;
    auto* reply = static_cast<fuse_init_out*>(iov[1].iov_base);
    if (g_killpriv_v2.load() && (offered & FUSE_HANDLE_KILLPRIV_V2)) {
        reply->flags |= FUSE_HANDLE_KILLPRIV_V2;
        log_debug("init: the filesystem clears set-user-ID and set-group-ID bits (FUSE_HANDLE_KILLPRIV_V2)");
    }
    // Shared mappings of handles that bypass the page cache (Linux 6.6): write-only opens do,
    // and so do the handles opened beside one (Filesystem::take_handle). Without it mmap(2)
    // with MAP_SHARED fails there with ENODEV.
    if ((offered & kDirectIoAllowMmap) && (reply->flags & FUSE_INIT_EXT) &&
        iov[1].iov_len >= offsetof(fuse_init_out, flags2) + 4)
        reply->flags2 |= static_cast<std::uint32_t>(kDirectIoAllowMmap >> 32);
    return true;
}

void handle_killpriv_v2(bool on) noexcept { g_killpriv_v2.store(on); }

bool install_dev_writev(fuse_session* se) noexcept {
    fuse_custom_io io{};
    io.writev = dev_writev;
    io.read = dev_read;
    return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

} // namespace vramfs
