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
    if (!inode.data || inode.data->allocated_blocks() != 0) return;
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

namespace {
OpenReply open_reply(const FsOptions& o) {
    // Every change reaches the file through this kernel, so cached pages stay valid.
    return OpenReply{o.direct_io, !o.direct_io};
}
} // namespace

int Filesystem::create(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                       Entry& e, OpenReply& reply) {
    int err = make_node(c, parent, name, S_IFREG | (mode & 07777), 0, nullptr, e, true);
    if (err == 0) reply = open_reply(opts_);
    return err;
}

int Filesystem::open(InodeNumber ino, int flags, OpenReply& reply, KillSuidgid* kill) {
    std::shared_ptr<Inode> inode;
    {
        std::unique_lock lock(table_.mutex());
        inode = table_.find_locked(ino);
        if (!inode) return ENOENT;
        if (inode->dir) return EISDIR;
        ++inode->open_count;
    }
    // libfuse asks the kernel for atomic O_TRUNC: the truncation is ours to do, here. (Linux
    // truncates even with O_RDONLY, once it has checked write permission.)
    if ((flags & O_TRUNC) && inode->data) {
        std::unique_lock ilock(inode->mu);
        if (kill && kill->asked && drop_suidgid(*inode, now_ns())) kill->cleared = true;
        if (inode->size != 0) {
            if (int err = inode->data->truncate(0)) {
                ilock.unlock();
                release(ino);
                counters_.errors++;
                return err;
            }
            inode->size = 0;
            const std::int64_t now = now_ns();
            inode->mtime = now;
            inode->ctime = now;
        }
    }
    reply = open_reply(opts_);
    return 0;
}

int Filesystem::release(InodeNumber ino) {
    std::unique_lock lock(table_.mutex());
    auto inode = table_.find_locked(ino);
    if (!inode) return ENOENT;
    if (inode->open_count.load() > 0) --inode->open_count;
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
                         KillSuidgid* kill) {
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
            return 0;
        }
    }
    std::unique_lock lock(inode->mu);
    if (killing && drop_suidgid(*inode, now_ns())) kill->cleared = true; // first, as Linux does
    if constexpr (kStore) {
        place(*inode);
        if (int err = inode->data->write(off, size, buf)) {
            counters_.errors++;
            return err;
        }
    }
    inode->size = std::max<std::uint64_t>(inode->size, off + size);
    const std::int64_t now = now_ns();
    inode->mtime = now;
    inode->ctime = now;
    counters_.bytes_written += size;
    return 0;
}

int Filesystem::write(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf,
                      KillSuidgid* kill) {
    return write_as<true>(ino, off, size, buf, kill);
}

int Filesystem::write_null(InodeNumber ino, std::uint64_t off, std::size_t size, KillSuidgid* kill) {
    return write_as<false>(ino, off, size, nullptr, kill);
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
