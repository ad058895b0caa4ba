// Attributes: stat, setattr (including truncate), statfs and user.* extended attributes.
#include "vramfs/fs/filesystem.hpp"
#include "vramfs/util/size.hpp"

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <sys/xattr.h>

namespace vramfs {
namespace {

timespec to_timespec(std::int64_t ns) {
    timespec ts{};
    ts.tv_sec = ns / 1'000'000'000;
    ts.tv_nsec = ns % 1'000'000'000;
    if (ts.tv_nsec < 0) {
        ts.tv_nsec += 1'000'000'000;
        --ts.tv_sec;
    }
    return ts;
}

std::int64_t from_timespec(const timespec& ts) {
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Directory sizes as tmpfs reports them: 20 bytes per entry, "." and ".." included.
constexpr off_t kDirentSize = 20;
constexpr std::size_t kMaxXattrValue = 64 * 1024;
constexpr std::size_t kMaxXattrTotal = 256 * 1024; // per inode

bool is_user_xattr(const char* name) { return std::strncmp(name, "user.", 5) == 0; }

} // namespace

void Filesystem::fill_stat(const Inode& inode, struct stat& st) const {
    st = {};
    st.st_ino = inode.ino;
    st.st_mode = inode.mode;
    st.st_nlink = inode.nlink.load();
    st.st_uid = inode.uid;
    st.st_gid = inode.gid;
    st.st_rdev = inode.rdev;
    st.st_size = static_cast<off_t>(inode.size);
    if (inode.dir) st.st_size = kDirentSize * static_cast<off_t>(2 + inode.dir->entries.load());
    st.st_blksize = static_cast<blksize_t>(std::min<std::uint64_t>(pools_.front()->block_size(), 1 << 20));
    st.st_blocks = inode.data ? static_cast<blkcnt_t>(inode.data->allocated_bytes() / 512) : 0;
    st.st_atim = to_timespec(inode.atime.load());
    st.st_mtim = to_timespec(inode.mtime.load());
    st.st_ctim = to_timespec(inode.ctime.load());
}

void Filesystem::fill_entry(const Inode& inode, Entry& e) const {
    e = {};
    e.ino = inode.ino;
    e.timeout = opts_.cache_timeout;
    std::shared_lock lock(inode.mu);
    fill_stat(inode, e.attr);
}

int Filesystem::getattr(InodeNumber ino, struct stat& st) {
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::shared_lock lock(inode->mu);
    fill_stat(*inode, st);
    return 0;
}

mode_t kill_suidgid(mode_t mode) noexcept {
    mode &= ~mode_t{S_ISUID};
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) mode &= ~mode_t{S_ISGID};
    return mode;
}

bool drop_suidgid(Inode& inode, std::int64_t now) noexcept {
    const mode_t kept = kill_suidgid(inode.mode);
    if (kept == inode.mode) return false;
    inode.mode = kept;
    inode.ctime = now;
    return true;
}

int Filesystem::setattr(InodeNumber ino, const struct stat& in, unsigned to_set,
                        struct stat& out) {
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::unique_lock lock(inode->mu);
    const std::int64_t now = now_ns();
    bool changed = false;
    // Before an explicit mode in the same request, which then stands. (With nothing else to set
    // this is the kernel clearing the bits before a fallocate: fuse/raw_request.cpp.)
    if ((to_set & set_attr::kill_suidgid) && !inode->dir && drop_suidgid(*inode, now)) changed = true;
    if (to_set & set_attr::size) {
        if (inode->dir) return EISDIR;
        if (!inode->data) return EINVAL;
        if (in.st_size < 0) return EINVAL;
        const auto new_size = static_cast<std::uint64_t>(in.st_size);
        if (new_size > kMaxFileSize) return EFBIG;
        if (new_size < inode->size) {
            if (int err = inode->data->truncate(new_size)) {
                counters_.errors++;
                return err;
            }
        }
        // Growing needs no work: bytes past the old size are already zero or holes.
        inode->size = new_size;
        inode->mtime = now;
        changed = true;
    }
    if (to_set & set_attr::mode) {
        inode->mode = (inode->mode & S_IFMT) | (in.st_mode & 07777);
        changed = true;
    }
    if (to_set & set_attr::uid) {
        inode->uid = in.st_uid;
        changed = true;
    }
    if (to_set & set_attr::gid) {
        inode->gid = in.st_gid;
        changed = true;
    }
    if (to_set & set_attr::atime_now) {
        inode->atime = now;
        changed = true;
    } else if (to_set & set_attr::atime) {
        inode->atime = from_timespec(in.st_atim);
        changed = true;
    }
    if (to_set & set_attr::mtime_now) {
        inode->mtime = now;
        changed = true;
    } else if (to_set & set_attr::mtime) {
        inode->mtime = from_timespec(in.st_mtim);
        changed = true;
    }
    if (to_set & set_attr::ctime)
        inode->ctime = from_timespec(in.st_ctim);
    else if (changed)
        inode->ctime = now;
    fill_stat(*inode, out);
    return 0;
}

int Filesystem::statfs(struct statvfs& st) {
    constexpr std::uint64_t unit = 4096; // fine-grained, so df shows exact usage
    std::uint64_t budget = 0, used = 0;
    for (BlockPool* p : pools_) { // the whole mount, all devices
        const PoolStats ps = p->stats();
        budget += ps.budget_bytes;
        used += ps.used_bytes;
    }
    st = {};
    st.f_bsize = static_cast<unsigned long>(std::min<std::uint64_t>(pool().block_size(), 1 << 20));
    st.f_frsize = unit;
    st.f_blocks = budget / unit;
    st.f_bfree = (budget - used) / unit;
    st.f_bavail = st.f_bfree;
    st.f_files = 1ull << 31;
    st.f_ffree = st.f_files - std::min<std::uint64_t>(table_.count(), st.f_files);
    st.f_favail = st.f_ffree;
    st.f_namemax = kMaxNameLength;
    return 0;
}

namespace {
constexpr const char* kDeviceXattr = "user.vramfs.device";
bool is_virtual(const char* name) {
    return std::strcmp(name, kDeviceXattr) == 0 || std::strcmp(name, kStatusXattr) == 0 ||
           std::strcmp(name, kStatusJsonXattr) == 0 || std::strcmp(name, kSpillXattr) == 0;
}
} // namespace

// user.vramfs.device: where a file lives (or a directory's default for new files).
// user.vramfs.status[.json]: the mount's state, answered on the root by the FUSE layer (which
// formats it); here it reads as absent and cannot be set. None of them is stored or listed.
int Filesystem::get_virtual_xattr(const Inode& inode, const char* name, std::string& value) const {
    if (std::strcmp(name, kDeviceXattr) == 0) {
        int device = inode.device_pref;
        if (inode.data && inode.data->allocated_units() > 0)
            device = inode.data->pool().backend().device().index;
        if (device < 0) return ENODATA;
        value = std::to_string(device);
        return 0;
    }
    return ENODATA;
}

int Filesystem::set_virtual_xattr(Inode& inode, const char* name, const std::string& value) {
    if (std::strcmp(name, kSpillXattr) == 0) return inode.ino == kRootInode ? spill_command(value) : EPERM;
    if (std::strcmp(name, kDeviceXattr) != 0) return EPERM; // the status is read-only
    const auto device = parse_device_index(value);
    BlockPool* pool = device ? pool_of_device(*device) : nullptr;
    if (!pool) return EINVAL;
    if (inode.data) {
        // Data does not move between devices: choose before the first write (place() then
        // takes this device).
        if (inode.data->allocated_units() > 0 && &inode.data->pool() != pool) return EBUSY;
    } else if (!inode.dir) {
        return EPERM;
    }
    inode.device_pref = *device;
    inode.ctime = now_ns();
    return 0;
}

// user.vramfs.spill on the root: "yield all" leaves each pool no device memory, "yield BYTES"
// takes BYTES from the pools' device memory in order, "reclaim" lifts the limits. Each pool's
// tier then moves data on its own thread; `vramfs yield` watches the status until it settles.
int Filesystem::spill_command(const std::string& value) {
    std::vector<SpillTier*> tiers;
    for (BlockPool* p : pools_)
        if (p->tier()) tiers.push_back(p->tier());
    if (tiers.empty()) return EOPNOTSUPP; // mounted without --spill
    if (value == "reclaim") {
        for (SpillTier* t : tiers) t->set_vram_limit(UINT64_MAX);
        return 0;
    }
    if (value == "yield all") {
        for (SpillTier* t : tiers) t->set_vram_limit(0);
        return 0;
    }
    if (value.rfind("yield ", 0) != 0) return EINVAL;
    const auto bytes = parse_size(value.substr(6));
    if (!bytes) return EINVAL;
    std::uint64_t left = *bytes;
    for (SpillTier* t : tiers) {
        const std::uint64_t held = t->stats().vram_bytes, take = std::min(held, left);
        t->set_vram_limit(held - take);
        left -= take;
    }
    return 0;
}

int Filesystem::setxattr(InodeNumber ino, const char* name, const char* value, std::size_t size,
                         int flags) {
    if (is_virtual(name)) {
        auto inode = table_.find(ino);
        if (!inode) return ENOENT;
        std::unique_lock lock(inode->mu);
        return set_virtual_xattr(*inode, name, std::string(value, size));
    }
    if (!is_user_xattr(name)) return EOPNOTSUPP;
    if (std::strlen(name) > XATTR_NAME_MAX) return ERANGE;
    if (size > kMaxXattrValue) return E2BIG;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    // Like other Linux filesystems: user.* only on regular files and directories.
    if (!S_ISREG(inode->type) && !S_ISDIR(inode->type)) return EPERM;
    std::unique_lock lock(inode->mu);
    auto it = inode->xattrs.find(std::string_view(name));
    if ((flags & XATTR_CREATE) && it != inode->xattrs.end()) return EEXIST;
    if ((flags & XATTR_REPLACE) && it == inode->xattrs.end()) return ENODATA;
    std::size_t total = std::strlen(name) + size;
    for (const auto& [k, v] : inode->xattrs)
        if (k != name) total += k.size() + v.size();
    if (total > kMaxXattrTotal) return ENOSPC;
    inode->xattrs[name] = std::string(value, size);
    inode->ctime = now_ns();
    return 0;
}

int xattr_answer(std::string value, std::size_t size, std::string& out, std::size_t& needed) {
    needed = value.size();
    if (size == 0) return 0;
    if (size < needed) return ERANGE;
    out = std::move(value);
    return 0;
}

int Filesystem::getxattr(InodeNumber ino, const char* name, std::size_t size, std::string& out,
                         std::size_t& needed) {
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    // Only user.* is stored (setxattr refuses the rest), so other namespaces are unsupported,
    // not merely empty. EOPNOTSUPP also tells ls (coreutils) that the mount has no SELinux
    // labels or ACLs, and it stops asking for every entry: two round trips per entry of ls -l.
    if (!is_user_xattr(name)) return EOPNOTSUPP;
    std::string value;
    if (is_virtual(name)) {
        std::shared_lock lock(inode->mu);
        if (int err = get_virtual_xattr(*inode, name, value)) return err;
    } else {
        std::shared_lock lock(inode->mu);
        auto it = inode->xattrs.find(std::string_view(name));
        if (it == inode->xattrs.end()) return ENODATA;
        value = it->second;
    }
    return xattr_answer(std::move(value), size, out, needed);
}

int Filesystem::listxattr(InodeNumber ino, std::size_t size, std::string& out,
                          std::size_t& needed) {
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::shared_lock lock(inode->mu);
    std::string names;
    for (const auto& kv : inode->xattrs) {
        names += kv.first;
        names.push_back('\0');
    }
    return xattr_answer(std::move(names), size, out, needed);
}

int Filesystem::removexattr(InodeNumber ino, const char* name) {
    if (!is_user_xattr(name)) return EOPNOTSUPP;
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::unique_lock lock(inode->mu);
    if (std::strcmp(name, kDeviceXattr) == 0) {
        if (inode->device_pref < 0) return ENODATA;
        inode->device_pref = -1;
        return 0;
    }
    auto it = inode->xattrs.find(std::string_view(name));
    if (it == inode->xattrs.end()) return ENODATA;
    inode->xattrs.erase(it);
    inode->ctime = now_ns();
    return 0;
}

} // namespace vramfs
