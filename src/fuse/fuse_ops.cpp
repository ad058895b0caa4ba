// FUSE wiring: every callback calls one Filesystem method and replies exactly once. This is the
// boundary where exceptions stop: out of memory becomes ENOMEM, anything else EIO.
#include "vramfs/fuse/fuse_ops.hpp"

#include "raw_request.hpp"

#include "vramfs/status/format.hpp"
#include "vramfs/util/log.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <unistd.h>
#include <vector>

namespace vramfs {

thread_local ReplyBuffer current_reply_buffer;

namespace {

FuseContext& ctx_of(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }
Filesystem& fs_of(fuse_req_t req) { return ctx_of(req).fs; }

fuse_entry_param to_fuse(const Entry& e) {
    fuse_entry_param out{};
    out.ino = e.ino;
    out.generation = 0; // inode numbers are never reused within a mount
    out.attr = e.attr;
    out.attr_timeout = e.timeout;
    out.entry_timeout = e.timeout;
    return out;
}

// A file handle's number says whether it bypasses the page cache: release needs to know.
constexpr std::uint64_t kCachedHandle = 0, kDirectHandle = 1;

void set_open_reply(const OpenReply& r, fuse_file_info& fi) {
    fi.direct_io = r.direct_io;
    fi.keep_cache = r.keep_cache;
    fi.fh = r.direct_io ? kDirectHandle : kCachedHandle;
}

unsigned to_set_attr(int fuse_bits) {
    static constexpr std::pair<int, unsigned> kMap[] = {
        {FUSE_SET_ATTR_MODE, set_attr::mode},           {FUSE_SET_ATTR_UID, set_attr::uid},
        {FUSE_SET_ATTR_GID, set_attr::gid},             {FUSE_SET_ATTR_SIZE, set_attr::size},
        {FUSE_SET_ATTR_ATIME, set_attr::atime},         {FUSE_SET_ATTR_MTIME, set_attr::mtime},
        {FUSE_SET_ATTR_ATIME_NOW, set_attr::atime_now}, {FUSE_SET_ATTR_MTIME_NOW, set_attr::mtime_now},
        {FUSE_SET_ATTR_CTIME, set_attr::ctime},
    };
    unsigned out = 0;
    for (const auto& [fuse_bit, ours] : kMap)
        if (fuse_bits & fuse_bit) out |= ours;
    return out;
}

Caller caller_of(fuse_req_t req) {
    const fuse_ctx* ctx = fuse_req_ctx(req);
    return Caller{ctx->uid, ctx->gid, ctx->umask};
}

// Runs one operation. Failures that are the system's, not the caller's (EIO, ENOMEM) get a log
// line naming the operation and the file; exceptions become errno here.
template <class Fn> int guarded(fuse_req_t req, const char* op, fuse_ino_t ino, Fn&& fn) noexcept {
    int err;
    const char* what = nullptr;
    char detail[256]; // an exception's message, kept past its catch block without allocating
    try {
        err = fn();
    } catch (const std::bad_alloc&) {
        err = ENOMEM;
        what = "out of memory";
    } catch (const std::exception& ex) {
        err = EIO;
        std::snprintf(detail, sizeof detail, "%s", ex.what());
        what = detail;
    } catch (...) {
        err = EIO;
        what = "unknown failure";
    }
    if (err == EIO || err == ENOMEM) {
        if (!what) what = std::strerror(err);
        try {
            const std::string file = fs_of(req).table().describe(ino);
            log_error("%s on %s failed: %s", op, file.c_str(), what);
        } catch (...) {
            log_error("%s on inode %llu failed: %s", op, static_cast<unsigned long long>(ino), what);
        }
    }
    return err;
}

void reply_entry(fuse_req_t req, int err, const Entry& e) {
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    // If the kernel did not take the entry (the request was interrupted), it holds no reference.
    const fuse_entry_param fe = to_fuse(e);
    if (fuse_reply_entry(req, &fe) != 0) fs_of(req).forget(e.ino, 1);
}

// Once, at the first open or create after INIT (see FuseContext::readahead_path).
void apply_readahead(FuseContext& ctx) noexcept {
    if (!ctx.readahead_pending.load(std::memory_order_relaxed) ||
        !ctx.readahead_pending.exchange(false))
        return;
    const int fd = ::open(ctx.readahead_path.c_str(), O_WRONLY | O_CLOEXEC);
    const std::string& kib = ctx.readahead_kib;
    const bool ok = fd >= 0 && ::write(fd, kib.data(), kib.size()) == static_cast<ssize_t>(kib.size());
    const int err = errno;
    if (fd >= 0) ::close(fd);
    // Expected without root; worth a warning only where it should have worked.
    if (!ok && ::geteuid() == 0)
        log_warning("cannot set the readahead (%s): %s", ctx.readahead_path.c_str(), std::strerror(err));
    else if (!ok)
        log_debug("readahead left as it is: %s needs root", ctx.readahead_path.c_str());
}

// After a write or an open cleared set-user-ID or set-group-ID: the kernel keeps the mode it had
// (neither reply carries attributes, and it refreshes a write's size and times only), so it is
// told to drop the inode's cached attributes. Attributes only (offset -1): this takes no inode
// lock, which the writer waiting for this request's reply holds.
void forget_cached_mode(FuseContext& ctx, fuse_ino_t ino) {
    if (!ctx.session) return;
    if (int err = fuse_lowlevel_notify_inval_inode(ctx.session, ino, -1, 0); err != 0 && err != -ENOENT)
        log_debug("cannot tell the kernel that inode %lu lost its set-user-ID bit: %s",
                  static_cast<unsigned long>(ino), std::strerror(-err));
}

void op_init(void* userdata, fuse_conn_info* conn) {
    FuseContext& ctx = *static_cast<FuseContext*>(userdata);
    if (!ctx.readahead_path.empty()) ctx.readahead_pending.store(true);
    Filesystem& fs = ctx.fs;
    const unsigned max_io = static_cast<unsigned>(fs.options().max_io);
    conn->max_write = std::min(conn->max_write, max_io);
    conn->max_read = max_io;
    if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
    if (ctx.max_background > 0) {
        conn->max_background = ctx.max_background;
        conn->congestion_threshold = ctx.max_background * 3 / 4; // the kernel's own ratio (12 and 9)
    }
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    // Off unless asked for: without it every write reaches VRAM (and ENOSPC) before it returns.
    if (fs.options().writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    // Not libfuse's FUSE_HANDLE_KILLPRIV (the first version): the INIT reply asks for the second
    // on its way out (raw_request.hpp), under which the kernel marks the requests that must clear
    // set-user-ID and set-group-ID bits, and the operations here clear them.
    conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
    log_debug("init: protocol %u.%u, max_write %u", conn->proto_major, conn->proto_minor,
              conn->max_write);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Entry e{};
    int err = guarded(req, "lookup", parent, [&] { return fs_of(req).lookup(parent, name, e); });
    if (err == ENOENT) {
        // A name that is not there, as an entry with no inode: the kernel keeps it as a
        // negative dentry for the timeout. Safe because every change of the namespace comes
        // through this mount's kernel, which drops the negative dentry when it creates the name.
        fuse_entry_param none{};
        none.entry_timeout = fs_of(req).options().cache_timeout;
        fuse_reply_entry(req, &none);
        return;
    }
    reply_entry(req, err, e);
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    guarded(req, "forget", ino, [&] {
        fs_of(req).forget(ino, n);
        return 0;
    });
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i)
        guarded(req, "forget", forgets[i].ino, [&] {
            fs_of(req).forget(forgets[i].ino, forgets[i].nlookup);
            return 0;
        });
    fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    struct stat st{};
    int err = guarded(req, "getattr", ino, [&] { return fs_of(req).getattr(ino, st); });
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_attr(req, &st, fs_of(req).options().cache_timeout);
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
    struct stat st{};
    const unsigned bits = to_set_attr(to_set) | (request_kills_suidgid() ? set_attr::kill_suidgid : 0u);
    int err = guarded(req, "setattr", ino, [&] { return fs_of(req).setattr(ino, *attr, bits, st); });
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_attr(req, &st, fs_of(req).options().cache_timeout);
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    std::string target;
    int err = guarded(req, "readlink", ino, [&] { return fs_of(req).readlink(ino, target); });
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_readlink(req, target.c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    Entry e{};
    int err = guarded(req, "mknod", parent, [&] {
        return fs_of(req).mknod(caller_of(req), parent, name, mode, rdev, e);
    });
    reply_entry(req, err, e);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Entry e{};
    int err = guarded(req, "mkdir", parent,
                      [&] { return fs_of(req).mkdir(caller_of(req), parent, name, mode, e); });
    reply_entry(req, err, e);
}

void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
    Entry e{};
    int err = guarded(req, "symlink", parent,
                      [&] { return fs_of(req).symlink(caller_of(req), link, parent, name, e); });
    reply_entry(req, err, e);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
    Entry e{};
    int err = guarded(req, "link", ino, [&] { return fs_of(req).link(ino, newparent, newname, e); });
    reply_entry(req, err, e);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_reply_err(req, guarded(req, "unlink", parent, [&] { return fs_of(req).unlink(parent, name); }));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    fuse_reply_err(req, guarded(req, "rmdir", parent, [&] { return fs_of(req).rmdir(parent, name); }));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    fuse_reply_err(req, guarded(req, "rename", parent, [&] {
                       return fs_of(req).rename(parent, name, newparent, newname, flags);
                   }));
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               fuse_file_info* fi) {
    apply_readahead(ctx_of(req));
    Entry e{};
    OpenReply open{};
    int err = guarded(req, "create", parent, [&] {
        return fs_of(req).create(caller_of(req), parent, name, mode, fi->flags, e, open);
    });
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    set_open_reply(open, *fi);
    const fuse_entry_param fe = to_fuse(e);
    if (fuse_reply_create(req, &fe, fi) != 0) {
        // The kernel never saw the file handle or the entry: undo both.
        fs_of(req).release(e.ino, open.direct_io);
        fs_of(req).forget(e.ino, 1);
    }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    apply_readahead(ctx_of(req));
    OpenReply open{};
    KillSuidgid kill{request_kills_suidgid()};
    int err = guarded(req, "open", ino, [&] { return fs_of(req).open(ino, fi->flags, open, &kill); });
    if (err) {
        fuse_reply_err(req, err);
        return;
    }
    if (kill.cleared) forget_cached_mode(ctx_of(req), ino);
    set_open_reply(open, *fi);
    if (fuse_reply_open(req, fi) != 0) fs_of(req).release(ino, open.direct_io);
}

// Runs a read or write's Filesystem call and adds its time to the request statistics. Not
// noexcept: an exception must reach guarded() around it (time of a throwing call is not added).
template <class Fn> int timed(std::atomic<std::uint64_t>& total, Fn&& fn) {
    const std::uint64_t t0 = monotonic_ns();
    const int err = fn();
    total.fetch_add(monotonic_ns() - t0, std::memory_order_relaxed);
    return err;
}

// The storage step of read, write and fallocate: the real one, or null I/O's.
struct StoredIo {
    static int read(Filesystem& fs, fuse_ino_t ino, std::uint64_t off, std::size_t size, void* buf,
                    std::size_t& got) {
        return fs.read(ino, off, size, buf, got);
    }
    static int write(Filesystem& fs, fuse_ino_t ino, std::uint64_t off, std::size_t size,
                     const void* buf, std::size_t& written, KillSuidgid& kill) {
        return fs.write(ino, off, size, buf, written, &kill);
    }
    static int fallocate(Filesystem& fs, fuse_ino_t ino, int mode, std::uint64_t off,
                         std::uint64_t len) {
        return fs.fallocate(ino, mode, off, len);
    }
};
struct NullIo {
    static int read(Filesystem& fs, fuse_ino_t ino, std::uint64_t off, std::size_t size, void* buf,
                    std::size_t& got) {
        return fs.read_null(ino, off, size, buf, got);
    }
    static int write(Filesystem& fs, fuse_ino_t ino, std::uint64_t off, std::size_t size,
                     const void*, std::size_t& written, KillSuidgid& kill) {
        return fs.write_null(ino, off, size, written, &kill);
    }
    static int fallocate(Filesystem& fs, fuse_ino_t ino, int mode, std::uint64_t off,
                         std::uint64_t len) {
        return fs.fallocate_null(ino, mode, off, len);
    }
};

template <class Io> void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    FuseContext& ctx = ctx_of(req);
    Filesystem& fs = ctx.fs;
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    std::atomic<std::uint64_t>& storage_ns = ctx.stats.read.storage_ns;
    auto read_into = [&](void* buf, std::size_t& got) {
        return guarded(req, "read", ino, [&] {
            return timed(storage_ns, [&] {
                return Io::read(fs, ino, static_cast<std::uint64_t>(off), size, buf, got);
            });
        });
    };
    std::size_t got = 0;
    if (const ReplyBuffer out = current_reply_buffer; out.data && size <= out.size) {
        if (int err = read_into(out.data, got))
            fuse_reply_err(req, err);
        else
            fuse_reply_buf(req, static_cast<const char*>(out.data), got);
        return;
    }
    if (size <= fs.buffers().buffer_size()) {
        auto lease = fs.buffers().take();
        if (int err = read_into(lease.get(), got))
            fuse_reply_err(req, err);
        else
            fuse_reply_buf(req, static_cast<const char*>(lease.get()), got);
        return;
    }
    // Larger than the kernel was told to send: serve it anyway from the heap.
    std::unique_ptr<char[]> buf(new (std::nothrow) char[size]);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (int err = read_into(buf.get(), got))
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf.get(), got);
}

template <class Io>
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
              fuse_file_info*) {
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    FuseContext& ctx = ctx_of(req);
    KillSuidgid kill{request_kills_suidgid()};
    std::size_t written = 0;
    int err = guarded(req, "write", ino, [&] {
        return timed(ctx.stats.write.storage_ns, [&] {
            return Io::write(ctx.fs, ino, static_cast<std::uint64_t>(off), size, buf, written, kill);
        });
    });
    if (kill.cleared) forget_cached_mode(ctx, ino);
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_write(req, written);
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "release", ino, [&] { return fs_of(req).release(ino, fi->fh == kDirectHandle); });
    fuse_reply_err(req, 0);
}

// Data is in device memory as soon as a write returns: there is nothing to flush or make durable
// (and nothing survives an unmount anyway). ENOSYS tells the kernel so once, and it sends no
// more FLUSH (one per close), FSYNC or FSYNCDIR; it still writes back its own dirty pages
// (--writeback-cache) before it would have sent them, and reports their errors.
void op_not_needed(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, ENOSYS); }
void op_sync_not_needed(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, ENOSYS); }

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
    Filesystem& fs = fs_of(req);
    // The listing is built in a buffer that exists already (the ring entry's payload, or one of
    // the I/O buffers), never a fresh one: no allocation and no zeroing per request, which a
    // reader asking for a MiB at a time (glibc sizes its buffer by st_blksize) would pay on
    // every call. A reader that asks for more than the buffer holds gets what fits and asks
    // again from the next offset.
    ReplyBuffer out = current_reply_buffer;
    std::optional<IoBufferPool::Lease> lease;
    if (!out.data) {
        lease.emplace(fs.buffers().take());
        out = ReplyBuffer{lease->get(), fs.buffers().buffer_size()};
    }
    char* const buf = static_cast<char*>(out.data);
    const std::size_t room_total = std::min<std::size_t>(size, out.size);
    std::size_t used = 0;
    int err = guarded(req, plus ? "readdirplus" : "readdir", ino, [&] {
        if (off < 0) return EINVAL;
        auto fill = [&](const char* name, const Entry& e, std::uint64_t next) {
            const std::size_t room = room_total - used;
            const off_t next_off = static_cast<off_t>(next);
            std::size_t len;
            if (plus) {
                const fuse_entry_param fe = to_fuse(e);
                len = fuse_add_direntry_plus(req, buf + used, room, name, &fe, next_off);
            } else {
                len = fuse_add_direntry(req, buf + used, room, name, &e.attr, next_off);
            }
            if (len > room) return false;
            used += len;
            return true;
        };
        return fs.readdir(ino, static_cast<std::uint64_t>(off), plus, fill);
    });
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_buf(req, buf, used);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    do_readdir(req, ino, size, off, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    do_readdir(req, ino, size, off, true);
}



void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    struct statvfs st{};
    int err = guarded(req, "statfs", ino, [&] { return fs_of(req).statfs(st); });
    if (err)
        fuse_reply_err(req, err);
    else
        fuse_reply_statfs(req, &st);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
    fuse_reply_err(req, guarded(req, "setxattr", ino, [&] {
                       return fs_of(req).setxattr(ino, name, value, size, flags);
                   }));
}

// The answer to getxattr or listxattr: with size 0 the length the value needs, else the value.
void reply_xattr(fuse_req_t req, int err, std::size_t size, std::size_t needed,
                 const std::string& value) {
    if (err)
        fuse_reply_err(req, err);
    else if (size == 0)
        fuse_reply_xattr(req, needed);
    else
        fuse_reply_buf(req, value.data(), value.size());
}

// user.vramfs.status[.json] of the root: the snapshot, with this layer's timing, formatted.
int status_xattr(fuse_req_t req, const char* name, std::size_t size, std::string& out,
                 std::size_t& needed) {
    FuseContext& ctx = ctx_of(req);
    StatusSnapshot snap = ctx.fs.snapshot();
    ctx.stats.fill(snap);
    // With allow_other anyone may ask; file names are for root and the owner only.
    const uid_t asker = fuse_req_ctx(req)->uid;
    if (asker != 0 && asker != ctx.owner) {
        snap.files.clear();
        snap.files_truncated = false;
        snap.files_hidden = true;
    }
    return xattr_answer(std::strcmp(name, kStatusJsonXattr) == 0 ? status_json(snap) : status_text(snap),
                        size, out, needed);
}

bool is_status_xattr(fuse_ino_t ino, const char* name) {
    return ino == kRootInode &&
           (std::strcmp(name, kStatusXattr) == 0 || std::strcmp(name, kStatusJsonXattr) == 0);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    std::string value;
    std::size_t needed = 0;
    int err = guarded(req, "getxattr", ino, [&] {
        if (is_status_xattr(ino, name)) return status_xattr(req, name, size, value, needed);
        return fs_of(req).getxattr(ino, name, size, value, needed);
    });
    reply_xattr(req, err, size, needed, value);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    std::string names;
    std::size_t needed = 0;
    int err = guarded(req, "listxattr", ino,
                      [&] { return fs_of(req).listxattr(ino, size, names, needed); });
    reply_xattr(req, err, size, needed, names);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    fuse_reply_err(req, guarded(req, "removexattr", ino,
                                [&] { return fs_of(req).removexattr(ino, name); }));
}

template <class Io>
void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                  fuse_file_info*) {
    if (offset < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    fuse_reply_err(req, guarded(req, "fallocate", ino, [&] {
                       return Io::fallocate(fs_of(req), ino, mode, static_cast<std::uint64_t>(offset),
                                            static_cast<std::uint64_t>(length));
                   }));
}

template <class Io> fuse_lowlevel_ops make_ops() {
    fuse_lowlevel_ops ops{};
    ops.init = op_init;
    ops.lookup = op_lookup;
    ops.forget = op_forget;
    ops.forget_multi = op_forget_multi;
    ops.getattr = op_getattr;
    ops.setattr = op_setattr;
    ops.readlink = op_readlink;
    ops.mknod = op_mknod;
    ops.mkdir = op_mkdir;
    ops.symlink = op_symlink;
    ops.link = op_link;
    ops.unlink = op_unlink;
    ops.rmdir = op_rmdir;
    ops.rename = op_rename;
    ops.create = op_create;
    ops.open = op_open;
    ops.read = op_read<Io>;
    ops.write = op_write<Io>;
    ops.flush = op_not_needed;
    ops.release = op_release;
    ops.fsync = op_sync_not_needed;
    // OPENDIR answered ENOSYS: the kernel then opens directories by itself, sends no OPENDIR or
    // RELEASEDIR, and keeps a directory's listing in its cache (FOPEN_KEEP_CACHE and
    // FOPEN_CACHE_DIR, its defaults without opendir) until this mount changes the directory.
    ops.opendir = op_not_needed;
    ops.readdir = op_readdir;
    ops.readdirplus = op_readdirplus;
    ops.fsyncdir = op_sync_not_needed;
    ops.statfs = op_statfs;
    ops.setxattr = op_setxattr;
    ops.getxattr = op_getxattr;
    ops.listxattr = op_listxattr;
    ops.removexattr = op_removexattr;
    ops.fallocate = op_fallocate<Io>;
    return ops;
}

} // namespace

const fuse_lowlevel_ops& fuse_operations(bool null_io) noexcept {
    static const fuse_lowlevel_ops stored = make_ops<StoredIo>(), null = make_ops<NullIo>();
    return null_io ? null : stored;
}

} // namespace vramfs
