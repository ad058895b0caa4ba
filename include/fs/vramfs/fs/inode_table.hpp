// InodeTable: every inode of a mount, with the kernel's lookup counts and the directory tree.
#pragma once

#include "vramfs/data/file_data.hpp"
#include "vramfs/fs/types.hpp"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <sys/stat.h>
#include <sys/types.h>
#include <unordered_map>

namespace vramfs {

// Nanoseconds since the epoch; atomics so that the write fast path can stamp mtime under a
// shared inode lock.
std::int64_t now_ns() noexcept;

struct DirEntry {
    InodeNumber ino = 0;
    std::uint64_t cookie = 0; // readdir offset; stable while the entry exists
};

struct Directory {
    std::map<std::string, DirEntry, std::less<>> by_name;
    std::map<std::uint64_t, std::string> by_cookie; // readdir order
    std::uint64_t next_cookie = 3;                  // 1 and 2 are "." and ".."
    InodeNumber parent = kRootInode;
    std::uint32_t subdirs = 0; // for nlink = 2 + subdirs
    // by_name.size(), readable without the table lock (for stat).
    std::atomic<std::uint32_t> entries{0};

    void insert(const std::string& name, InodeNumber ino);
    void erase(std::string_view name);
};

struct Inode {
    Inode(InodeNumber n, mode_t m) : ino(n), type(m & S_IFMT), mode(m) {}
    const InodeNumber ino;
    const mode_t type; // S_IFMT bits: fixed for life, readable without a lock

    // Guarded by InodeTable's lock (exclusive to change; atomics may be bumped under shared).
    std::atomic<std::uint64_t> nlookup{0};
    std::atomic<std::uint32_t> nlink{0};
    std::atomic<std::uint32_t> open_count{0};
    // Of open_count, the handles that bypass the page cache. Never both kinds at once under
    // FsOptions::direct_write_only (Filesystem::take_handle says why).
    std::atomic<std::uint32_t> direct_opens{0};
    std::unique_ptr<Directory> dir; // directories only
    std::string name;               // the name it was last given, for log lines

    // Guarded by mu (the lock order is in fs/filesystem.hpp).
    mutable std::shared_mutex mu;
    mode_t mode;
    uid_t uid = 0;
    gid_t gid = 0;
    dev_t rdev = 0;
    std::uint64_t size = 0;
    std::atomic<std::int64_t> atime{0}, mtime{0}, ctime{0};
    std::optional<FileData> data; // regular files
    std::string target;           // symlinks
    std::map<std::string, std::string, std::less<>> xattrs;
    // user.vramfs.device: a file's chosen device, or a directory's default for new files
    // (-1: none, the device with the most free budget is taken).
    int device_pref = -1;
};

class InodeTable {
public:
    InodeTable(BlockPool& pool, mode_t root_mode, uid_t root_uid, gid_t root_gid);

    std::shared_mutex& mutex() const noexcept { return mu_; }
    // Takes the table lock (shared) itself.
    std::shared_ptr<Inode> find(InodeNumber ino) const;
    // The caller holds the table lock.
    std::shared_ptr<Inode> find_locked(InodeNumber ino) const;
    // A new inode with nlink 0; the caller holds the table lock exclusively and links it.
    std::shared_ptr<Inode> create_locked(mode_t mode, uid_t uid, gid_t gid);
    // Drops the file's storage once it has no name and no open handle, and the inode itself once
    // the kernel has forgotten it too. The caller holds the table lock exclusively.
    void reap_locked(const std::shared_ptr<Inode>& inode);
    // FUSE forget: the kernel drops `n` references. Returns false if that would go below zero.
    bool forget(InodeNumber ino, std::uint64_t n);

    std::size_t count() const;
    // Calls fn(const Inode&) for every inode, under the table lock (shared).
    template <class Fn> void for_each(Fn&& fn) const {
        std::shared_lock lock(mu_);
        for (const auto& kv : inodes_) fn(*kv.second);
    }
    // "'name' (inode N)" for log lines; takes the table lock (shared).
    std::string describe(InodeNumber ino) const;

private:
    BlockPool& pool_; // where a new regular file's data starts (it may move to another device)
    mutable std::shared_mutex mu_;
    std::unordered_map<InodeNumber, std::shared_ptr<Inode>> inodes_;
    InodeNumber next_ino_ = kRootInode + 1;
};

} // namespace vramfs
