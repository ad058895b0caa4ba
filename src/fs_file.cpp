// File I/O: create, open, read, write, release and fallocate.
#include "vramfs/filesystem.hpp"

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
void set_open_flags(const FsOptions& o, fuse_file_info& fi) {
    fi.direct_io = o.direct_io;
    // Every change reaches the file through this kernel, so cached pages stay valid.
    fi.keep_cache = !o.direct_io;
}
} // namespace

int Filesystem::create(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                       int, fuse_entry_param& e, fuse_file_info& fi) {
    int err = make_node(c, parent, name, S_IFREG | (mode & 07777), 0, nullptr, e, true);
    if (err == 0) set_open_flags(opts_, fi);
    return err;
}

int Filesystem::open(InodeNumber ino, fuse_file_info& fi) {
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
    if ((fi.flags & O_TRUNC) && inode->data) {
        std::unique_lock ilock(inode->mu);
        if (inode->size != 0) {
            if (!opts_.null_io) {
                if (int err = inode->data->truncate(0)) {
                    ilock.unlock();
                    release(ino);
                    counters_.errors++;
                    return err;
                }
            }
            inode->size = 0;
            const std::int64_t now = now_ns();
            inode->mtime = now;
            inode->ctime = now;
        }
    }
    set_open_flags(opts_, fi);
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

int Filesystem::read(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf,
                     std::size_t& got) {
    got = 0;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::shared_lock lock(inode->mu);
    if (inode->dir) return EISDIR;
    if (!inode->data) return EINVAL;
    if (off >= inode->size) return 0;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(size, inode->size - off));
    if (opts_.null_io) {
        std::memset(buf, 0, n);
    } else if (int err = inode->data->read(off, n, buf, &read_cache_)) {
        counters_.errors++;
        return err;
    }
    got = n;
    counters_.bytes_read += n;
    touch_atime(*inode);
    return 0;
}

// relatime, as tmpfs and most Linux filesystems: a read updates atime when it is not newer than
// mtime or ctime, or a day old. FUSE leaves access times to the filesystem.
void touch_atime(Inode& inode) noexcept {
    const std::int64_t now = now_ns(), atime = inode.atime.load();
    if (atime <= inode.mtime.load() || atime <= inode.ctime.load() ||
        now - atime >= 24ll * 3600 * 1'000'000'000)
        inode.atime.store(now);
}

int Filesystem::write(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf) {
    if (off > kMaxFileSize || size > kMaxFileSize - off) return EFBIG;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    if (!inode->data) return inode->dir ? EISDIR : EINVAL;
    if (size == 0) return 0;
    {
        // Fast path: the blocks exist and the size does not change, so the block table stays as
        // it is and writers to different ranges of one file (a swap device) run in parallel.
        std::shared_lock lock(inode->mu);
        if (off + size <= inode->size && (opts_.null_io || inode->data->covered(off, size))) {
            int err = opts_.null_io ? 0 : inode->data->write_in_place(off, size, buf);
            if (err) {
                counters_.errors++;
                return err;
            }
            const std::int64_t now = now_ns();
            inode->mtime = now;
            inode->ctime = now;
            counters_.bytes_written += size;
            return 0;
        }
    }
    std::unique_lock lock(inode->mu);
    if (!opts_.null_io) {
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

int Filesystem::fallocate(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len) {
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
        if (!opts_.null_io) {
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
    if (!opts_.null_io) {
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

} // namespace vramfs
