// File I/O: create, open, read, write, release and fallocate.
#include "vramfs/fs/filesystem.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <mutex>

namespace vramfs {

Filesystem::Filesystem(std::vector<BlockPool*> pools, FsOptions options, Caller owner)
    : pools_(std::move(pools)), opts_(options), table_(*pools_.front(), 0755, owner.uid, owner.gid),
      buffers_(pools_.front()->backend(), options.io_buffers, options.max_io),
      read_cache_(pools_.front()->backend(), options.read_cache_slots, options.read_cache_window) {}

BlockPool* Filesystem::pool_of_device(int index) const {
    for (BlockPool* p : pools_)
        if (p->backend().device().index == index) return p;
    return nullptr;
}

void Filesystem::place(Inode& inode) {
    if (!inode.data || inode.data->allocated_units() != 0) return;
    BlockPool* chosen = inode.device_pref >= 0 ? pool_of_device(inode.device_pref) : nullptr;
    if (!chosen) {
        std::uint64_t best = 0;
        for (BlockPool* p : pools_) {
            const std::uint64_t free = p->budget_blocks() - std::min(p->budget_blocks(), p->used_blocks());
            if (!chosen || free > best) {
                chosen = p;
                best = free;
            }
        }
    }
    inode.data->rebind(*chosen);
}

OpenReply Filesystem::take_handle(Inode& inode, int flags) {
    const std::uint32_t others = inode.open_count.load();
    const std::uint32_t direct_others = inode.direct_opens.load();
    // A handle that bypasses the page cache and one that fills it must not be open together:
    // Linux drops the cached pages a direct write covers before it sends the write, not after,
    // so a read through the cache racing the write could keep the old data there for good (a
    // reader tailing a file a logger appends to). So while any handle of the file is cached,
    // new ones are too; while any is direct, new ones are direct; with none open, a write-only
    // open is direct.
    bool direct = opts_.direct_io;
    if (!direct && opts_.direct_write_only && direct_others == others)
        direct = direct_others > 0 || (flags & O_ACCMODE) == O_WRONLY;
    ++inode.open_count;
    if (direct) ++inode.direct_opens;
    // Every change reaches the file through this kernel, so cached pages stay valid (a direct
    // write has Linux drop those it covers, Linux 6.6+).
    return OpenReply{direct, !opts_.direct_io};
}

int Filesystem::create(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                       int flags, Entry& e, OpenReply& reply) {
    Opening open{flags, {}};
    int err = make_node(c, parent, name, S_IFREG | (mode & 07777), 0, nullptr, e, &open);
    if (err == 0) reply = open.reply;
    return err;
}

int Filesystem::open(InodeNumber ino, int flags, OpenReply& reply, KillSuidgid* kill) {
    std::shared_ptr<Inode> inode;
    {
        std::unique_lock lock(table_.mutex());
        inode = table_.find_locked(ino);
        if (!inode) return ENOENT;
        if (inode->dir) return EISDIR;
        reply = take_handle(*inode, flags);
    }
    // libfuse asks the kernel for atomic O_TRUNC: the truncation is ours to do, here. (Linux
    // truncates even with O_RDONLY, once it has checked write permission.)
    if ((flags & O_TRUNC) && inode->data) {
        std::unique_lock ilock(inode->mu);
        if (kill && kill->asked && drop_suidgid(*inode, now_ns())) kill->cleared = true;
        if (inode->size != 0) {
            if (int err = inode->data->truncate(0)) {
                ilock.unlock();
                release(ino, reply.direct_io);
                counters_.errors++;
                return err;
            }
            inode->size = 0;
            const std::int64_t now = now_ns();
            inode->mtime = now;
            inode->ctime = now;
        }
    }
    return 0;
}

int Filesystem::release(InodeNumber ino, bool direct) {
    std::unique_lock lock(table_.mutex());
    auto inode = table_.find_locked(ino);
    if (!inode) return ENOENT;
    if (inode->open_count.load() > 0) --inode->open_count;
    if (direct && inode->direct_opens.load() > 0) --inode->direct_opens;
    table_.reap_locked(inode);
    return 0;
}

template <bool kStore>
int Filesystem::read_as(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf,
                        std::size_t& got) {
    got = 0;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::shared_lock lock(inode->mu);
    if (inode->dir) return EISDIR;
    if (!inode->data) return EINVAL;
    if (off >= inode->size) return 0;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, inode->size - off));
    if constexpr (kStore) {
        if (int err = inode->data->read(off, n, buf, &read_cache_)) {
            counters_.errors++;
            return err;
        }
    } else {
        std::memset(buf, 0, n);
    }
    got = n;
    counters_.bytes_read += n;
    touch_atime(*inode);
    return 0;
}

int Filesystem::read(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf,
                     std::size_t& got) {
    return read_as<true>(ino, off, size, buf, got);
}

int Filesystem::read_null(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf,
                          std::size_t& got) {
    return read_as<false>(ino, off, size, buf, got);
}

// relatime, as tmpfs and most Linux filesystems: a read updates atime when it is not newer than
// mtime or ctime, or a day old. FUSE leaves access times to the filesystem.
void touch_atime(Inode& inode) noexcept {
    const std::int64_t now = now_ns(), atime = inode.atime.load();
    if (atime <= inode.mtime.load() || atime <= inode.ctime.load() ||
        now - atime >= 24ll * 3600 * 1'000'000'000)
        inode.atime.store(now);
}

template <bool kStore>
int Filesystem::write_as(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf,
                         std::size_t& written, KillSuidgid* kill) {
    written = 0;
    const bool killing = kill && kill->asked;
    if (off > kMaxFileSize || size > kMaxFileSize - off) return EFBIG;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    if (!inode->data) return inode->dir ? EISDIR : EINVAL;
    if (size == 0) return 0;
    {
        // Fast path: the blocks exist and the size does not change, so the block table stays as
        // it is and writers to different ranges of one file (a swap device) run in parallel.
        std::shared_lock lock(inode->mu);
        if (off + size <= inode->size && (!kStore || inode->data->covered(off, size)) &&
            (!killing || kill_suidgid(inode->mode) == inode->mode)) {
            if constexpr (kStore) {
                if (int err = inode->data->write_in_place(off, size, buf)) {
                    counters_.errors++;
                    return err;
                }
            }
            const std::int64_t now = now_ns();
            inode->mtime = now;
            inode->ctime = now;
            counters_.bytes_written += size;
            written = size;
            return 0;
        }
    }
    std::unique_lock lock(inode->mu);
    if (killing && drop_suidgid(*inode, now_ns())) kill->cleared = true; // first, as Linux does
    std::size_t done = size;
    if constexpr (kStore) {
        place(*inode);
        if (int err = inode->data->write_some(off, size, buf, done)) {
            counters_.errors++;
            return err;
        }
    }
    inode->size = std::max<std::uint64_t>(inode->size, off + done);
    const std::int64_t now = now_ns();
    inode->mtime = now;
    inode->ctime = now;
    counters_.bytes_written += done;
    written = done;
    return 0;
}

int Filesystem::write(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf,
                      std::size_t& written, KillSuidgid* kill) {
    return write_as<true>(ino, off, size, buf, written, kill);
}

int Filesystem::write_null(InodeNumber ino, std::uint64_t off, std::size_t size, std::size_t& written,
                           KillSuidgid* kill) {
    return write_as<false>(ino, off, size, nullptr, written, kill);
}

template <bool kStore>
int Filesystem::fallocate_as(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len) {
    const bool punch = mode & FALLOC_FL_PUNCH_HOLE;
    if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) return EOPNOTSUPP;
    if (punch && !(mode & FALLOC_FL_KEEP_SIZE)) return EOPNOTSUPP; // as the kernel requires
    if (len == 0) return EINVAL;
    if (off > kMaxFileSize || len > kMaxFileSize - off) return EFBIG;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    if (inode->dir) return EISDIR;
    if (!inode->data) return ENODEV;
    std::unique_lock lock(inode->mu);
    const std::int64_t now = now_ns();
    if (punch) {
        if constexpr (kStore) {
            if (int err = inode->data->punch_hole(off, len)) {
                counters_.errors++;
                return err;
            }
        }
        inode->mtime = now;
        inode->ctime = now;
        return 0;
    }
    // No overcommit: the range is backed by real storage now, or the call fails with nothing
    // changed.
    if constexpr (kStore) {
        place(*inode);
        if (int err = inode->data->allocate(off, len)) {
            if (err != ENOSPC) counters_.errors++;
            return err;
        }
    }
    if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > inode->size) {
        inode->size = off + len;
        inode->mtime = now;
    }
    inode->ctime = now;
    return 0;
}

int Filesystem::fallocate(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len) {
    return fallocate_as<true>(ino, mode, off, len);
}

int Filesystem::fallocate_null(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len) {
    return fallocate_as<false>(ino, mode, off, len);
}

} // namespace vramfs
