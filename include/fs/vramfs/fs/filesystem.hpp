// Filesystem: the vramfs operations, each returning 0 or a positive errno. This layer knows
// nothing of FUSE (src/fuse wires it to the kernel) nor of any GPU API (src/storage).
//
// The lock order, for this layer and the data layer under it. A thread may take a lock only
// if it holds none of the ones below it in this list:
//   1. the InodeTable lock (shared to look up, exclusive to change names, links or counts)
//   2. one Inode::mu (two inode locks are never held together)
//   3. FileData's fill lock (writes in place shared; a read-cache fill only try-locks it and
//      skips the cache rather than wait)
//   4. BlockPool's lock (the device call that gives a slab back runs without it)
//   5. the host backend's arena lock
// ReadCache's lock and IoBufferPool's lock are taken alone, for a few instructions, with
// nothing taken under them. No lock is held while a reply goes to the kernel, and no code
// under any of them waits for memory (util/memory.hpp).
#pragma once

#include "vramfs/data/block_pool.hpp"
#include "vramfs/data/buffer_pool.hpp"
#include "vramfs/data/read_cache.hpp"
#include "vramfs/fs/inode_table.hpp"
#include "vramfs/fs/status.hpp"
#include "vramfs/fs/types.hpp"
#include "vramfs/util/transport.hpp"

#include <atomic>
#include <vector>
#include <string>
#include <sys/stat.h>
#include <sys/statvfs.h>

namespace vramfs {

// The largest file size accepted (EFBIG past it): it bounds the block table of a sparse file.
inline constexpr std::uint64_t kMaxFileSize = 4ull << 40;
inline constexpr std::size_t kMaxNameLength = 255;

struct FsOptions {
    bool direct_io = false; // bypass the kernel page cache for regular files
    // Opens for writing only bypass the page cache: such a file descriptor can neither read
    // nor be mapped, so the cache would only cost a copy and page allocation per write.
    bool direct_write_only = false;
    bool writeback_cache = false; // the kernel gathers buffered writes (errors show at fsync/close)
    // How long the kernel may keep attributes and names (positive and negative) without asking:
    // every change comes through this mount's kernel, which updates or drops what it keeps, so
    // only what the daemon changes on its own (atime, st_blocks between a write's invalidation
    // and the next stat) can be that old.
    double cache_timeout = 60.0;
    std::size_t max_io = kDefaultMaxIo; // largest read or write request
    std::size_t io_buffers = 16;  // preallocated read buffers (one per worker thread)
    std::size_t read_cache_slots = 0; // host windows for small reads that walk a file (ReadCache)
    std::size_t read_cache_window = 1 << 20;
};

struct Counters {
    std::atomic<std::uint64_t> bytes_read{0}, bytes_written{0}, errors{0};
};

class Filesystem {
public:
    // One pool per device; a file lives on one of them.
    Filesystem(std::vector<BlockPool*> pools, FsOptions options, Caller owner);
    Filesystem(BlockPool& pool, FsOptions options, Caller owner)
        : Filesystem(std::vector<BlockPool*>{&pool}, options, owner) {}
    Filesystem(const Filesystem&) = delete;
    Filesystem& operator=(const Filesystem&) = delete;

    // Namespace (fs_namespace.cpp).
    int lookup(InodeNumber parent, const char* name, Entry& e);
    void forget(InodeNumber ino, std::uint64_t n);
    int mknod(const Caller& c, InodeNumber parent, const char* name, mode_t mode, dev_t rdev,
              Entry& e);
    int mkdir(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
              Entry& e);
    int symlink(const Caller& c, const char* target, InodeNumber parent, const char* name,
                Entry& e);
    int link(InodeNumber ino, InodeNumber newparent, const char* newname, Entry& e);
    int unlink(InodeNumber parent, const char* name);
    int rmdir(InodeNumber parent, const char* name);
    int rename(InodeNumber parent, const char* name, InodeNumber newparent, const char* newname,
               unsigned flags);
    int readlink(InodeNumber ino, std::string& target);
    // Fills `buf` with entries after offset `off`; `used` is the bytes written.
    // Plain readdir or readdirplus (`plus`: full attributes, and each entry that fits takes
    // a lookup reference, as the kernel then holds one).
    int readdir(InodeNumber ino, std::uint64_t off, bool plus, DirFiller fill);

    // Files (fs_file.cpp).
    // `flags` are open(2)'s (only the access mode counts here).
    int create(const Caller& c, InodeNumber parent, const char* name, mode_t mode, int flags,
               Entry& e, OpenReply& reply);
    // `flags` are open(2)'s; O_TRUNC truncates here (the kernel asks the server to).
    // `kill` (null: nothing asked): whether the caller may not keep set-user-ID and set-group-ID
    // bits through a write or a truncation (the kernel says so with each request); if so they go
    // as in Linux (kill_suidgid below), and `kill->cleared` says whether any did.
    int open(InodeNumber ino, int flags, OpenReply& reply, KillSuidgid* kill = nullptr);
    // `direct`: the handle was opened with OpenReply::direct_io.
    int release(InodeNumber ino, bool direct);
    int read(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf, std::size_t& got);
    // Writes what fits, as tmpfs does: `written` is less than `size` when storage ran out part
    // way, and ENOSPC comes only when not one byte fit.
    int write(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf, std::size_t& written,
              KillSuidgid* kill = nullptr);
    int fallocate(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len);

    // Null I/O (--null-io, the FUSE ceiling): the same requests with storage left out. Sizes
    // and times change as for real I/O; reads return zeros; nothing is allocated. The FUSE
    // layer picks these instead of read/write/fallocate once, when it wires the operations.
    int read_null(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf,
                  std::size_t& got);
    int write_null(InodeNumber ino, std::uint64_t off, std::size_t size, std::size_t& written,
                   KillSuidgid* kill = nullptr);
    int fallocate_null(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len);

    // Attributes (fs_attr.cpp).
    int getattr(InodeNumber ino, struct stat& st);
    // `to_set` is a mask of set_attr bits.
    int setattr(InodeNumber ino, const struct stat& in, unsigned to_set, struct stat& out);
    int statfs(struct statvfs& st);
    int setxattr(InodeNumber ino, const char* name, const char* value, std::size_t size,
                 int flags);
    // With size 0, `out` gets only the needed length (value left empty).
    int getxattr(InodeNumber ino, const char* name, std::size_t size, std::string& out,
                 std::size_t& needed);
    int listxattr(InodeNumber ino, std::size_t size, std::string& out, std::size_t& needed);
    int removexattr(InodeNumber ino, const char* name);

    BlockPool& pool() noexcept { return *pools_.front(); }
    const std::vector<BlockPool*>& pools() const noexcept { return pools_; }
    // The mount's state: devices, files, counters (fs_status.cpp). Formatting is not ours:
    // see src/status. The caller fills in what other layers count (request timing).
    StatusSnapshot snapshot();
    InodeTable& table() noexcept { return table_; }
    IoBufferPool& buffers() noexcept { return buffers_; }
    const FsOptions& options() const noexcept { return opts_; }
    Counters& counters() noexcept { return counters_; }

private:
    void fill_stat(const Inode& inode, struct stat& st) const; // caller holds inode.mu
    void fill_entry(const Inode& inode, Entry& e) const; // takes inode.mu shared
    // Creates and links a new inode under `parent`; the shared part of mknod/mkdir/symlink/create.
    // With `open` the new inode also counts one open handle (create): open(2)'s flags in,
    // the reply out.
    struct Opening {
        int flags = 0;
        OpenReply reply;
    };
    int make_node(const Caller& c, InodeNumber parent, const char* name, mode_t mode, dev_t rdev,
                  const char* target, Entry& e, Opening* open);
    // Counts a new handle of `inode` and says how the kernel is to treat it. Table lock held
    // exclusively.
    OpenReply take_handle(Inode& inode, int flags);

    // After unlink/rmdir took the entry out; the caller holds the table lock exclusively.
    void finish_removal(Inode& dir, const std::shared_ptr<Inode>& child);

    // Where an empty file's first storage comes from: its chosen device, else the device with
    // the most free budget. The caller holds the inode lock exclusively.
    void place(Inode& inode);
    BlockPool* pool_of_device(int index) const;
    int get_virtual_xattr(const Inode& inode, const char* name, std::string& value) const;
    // read, write and fallocate with (kStore) or without storage (null I/O).
    template <bool kStore>
    int read_as(InodeNumber ino, std::uint64_t off, std::size_t size, void* buf, std::size_t& got);
    template <bool kStore>
    int write_as(InodeNumber ino, std::uint64_t off, std::size_t size, const void* buf, std::size_t& written,
                 KillSuidgid* kill);
    template <bool kStore>
    int fallocate_as(InodeNumber ino, int mode, std::uint64_t off, std::uint64_t len);
    int set_virtual_xattr(Inode& inode, const char* name, const std::string& value);
    int spill_command(const std::string& value);

    std::vector<BlockPool*> pools_;
    FsOptions opts_;
    InodeTable table_;
    IoBufferPool buffers_;
    ReadCache read_cache_;
    Counters counters_;
};

// Updates an inode's atime after a read, relatime style (atime is atomic: no lock needed).
void touch_atime(Inode& inode) noexcept;

// The mode a write, truncation or chown leaves where the caller may not keep the privilege
// bits: without set-user-ID, and without set-group-ID where the group may execute (without
// group execute it marks mandatory locking, which stays), as Linux does.
mode_t kill_suidgid(mode_t mode) noexcept;
// Takes those bits off `inode` (the caller holds inode.mu exclusively); returns whether any
// went, ctime then being `now`.
bool drop_suidgid(Inode& inode, std::int64_t now) noexcept;

// Checks a name for a new directory entry: ENAMETOOLONG past 255 bytes, EINVAL for "", ".", "..".
int check_name(const char* name) noexcept;

// How getxattr and listxattr answer: `needed` is the value's length; with size 0 that is all,
// else `out` gets the value, or ERANGE when it is longer than `size`.
int xattr_answer(std::string value, std::size_t size, std::string& out, std::size_t& needed);

} // namespace vramfs
