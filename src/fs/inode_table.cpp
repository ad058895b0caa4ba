// InodeTable: inode lifetime (link counts, lookup counts, open handles) and directory entries.
#include "vramfs/fs/inode_table.hpp"

#include "vramfs/util/log.hpp"

#include <ctime>
#include <mutex>
#include <sys/stat.h>

namespace vramfs {

std::int64_t now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void Directory::insert(const std::string& name, InodeNumber ino) {
    const std::uint64_t cookie = next_cookie++;
    by_cookie.emplace(cookie, name); // first, so a throw leaves by_name untouched
    by_name[name] = DirEntry{ino, cookie};
    entries = static_cast<std::uint32_t>(by_name.size());
}

void Directory::erase(std::string_view name) {
    auto it = by_name.find(name);
    if (it == by_name.end()) return;
    by_cookie.erase(it->second.cookie);
    by_name.erase(it);
    entries = static_cast<std::uint32_t>(by_name.size());
}

InodeTable::InodeTable(BlockPool& pool, mode_t root_mode, uid_t root_uid, gid_t root_gid)
    : pool_(pool) {
    auto root = std::make_shared<Inode>(kRootInode, S_IFDIR | (root_mode & 07777));
    root->uid = root_uid;
    root->gid = root_gid;
    root->nlink = 2;
    root->nlookup = 1; // the kernel holds the root from mount to unmount
    root->dir = std::make_unique<Directory>();
    root->dir->parent = kRootInode;
    root->atime = root->mtime = root->ctime = now_ns();
    inodes_.emplace(kRootInode, std::move(root));
}

std::shared_ptr<Inode> InodeTable::find(InodeNumber ino) const {
    std::shared_lock lock(mu_);
    return find_locked(ino);
}

std::shared_ptr<Inode> InodeTable::find_locked(InodeNumber ino) const {
    auto it = inodes_.find(ino);
    return it == inodes_.end() ? nullptr : it->second;
}

std::shared_ptr<Inode> InodeTable::create_locked(mode_t mode, uid_t uid, gid_t gid) {
    auto inode = std::make_shared<Inode>(next_ino_, mode);
    inode->uid = uid;
    inode->gid = gid;
    inode->atime = inode->mtime = inode->ctime = now_ns();
    if (S_ISDIR(mode)) inode->dir = std::make_unique<Directory>();
    if (S_ISREG(mode)) inode->data.emplace(pool_);
    inodes_.emplace(next_ino_, inode);
    ++next_ino_;
    return inode;
}

void InodeTable::reap_locked(const std::shared_ptr<Inode>& inode) {
    if (inode->ino == kRootInode || inode->nlink.load() != 0) return;
    if (inode->open_count.load() == 0) {
        std::unique_lock ilock(inode->mu);
        if (inode->data) inode->data->release_all(); // VRAM back to the pool now
    }
    if (inode->nlookup.load() == 0 && inode->open_count.load() == 0) inodes_.erase(inode->ino);
}

bool InodeTable::forget(InodeNumber ino, std::uint64_t n) {
    std::unique_lock lock(mu_);
    auto inode = find_locked(ino);
    if (!inode) {
        log_error("forget of unknown inode %llu (a bug)", static_cast<unsigned long long>(ino));
        return false;
    }
    const std::uint64_t have = inode->nlookup.load();
    const bool ok = n <= have;
    if (!ok) {
        // Going below zero means the lookup accounting is broken; clamp rather than crash the
        // daemon that may be serving swap.
        log_error("forget of %llu references to inode %llu, which has %llu (a bug)",
                  static_cast<unsigned long long>(n), static_cast<unsigned long long>(ino),
                  static_cast<unsigned long long>(have));
        n = have;
    }
    inode->nlookup -= n;
    reap_locked(inode);
    return ok;
}

std::string InodeTable::describe(InodeNumber ino) const {
    std::shared_lock lock(mu_);
    auto inode = find_locked(ino);
    std::string name = ino == kRootInode ? "/" : inode ? inode->name : "";
    return (name.empty() ? std::string("?") : "'" + name + "'") + " (inode " +
           std::to_string(ino) + ")";
}

std::size_t InodeTable::count() const {
    std::shared_lock lock(mu_);
    return inodes_.size();
}

} // namespace vramfs
