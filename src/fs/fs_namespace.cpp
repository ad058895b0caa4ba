// Namespace operations: lookup, creation, links, removal, rename and directory listing.
#include "vramfs/fs/filesystem.hpp"

#include <cerrno>
#include <cstring>
#include <linux/fs.h>
#include <mutex>

namespace vramfs {

int check_name(const char* name) noexcept {
    const std::size_t n = std::strlen(name);
    if (n > kMaxNameLength) return ENAMETOOLONG;
    if (n == 0 || std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) return EINVAL;
    return 0;
}

namespace {

void touch_dir(Inode& dir, std::int64_t now) {
    dir.mtime = now;
    dir.ctime = now;
}

// True when `ancestor` is `ino` or one of its parents. The caller holds the table lock.
bool is_ancestor(const InodeTable& table, InodeNumber ancestor, InodeNumber ino) {
    for (;;) {
        if (ino == ancestor) return true;
        if (ino == kRootInode) return false;
        auto inode = table.find_locked(ino);
        if (!inode || !inode->dir) return false;
        ino = inode->dir->parent;
    }
}

// Resolves a directory inode; the caller holds the table lock.
int find_dir(const InodeTable& table, InodeNumber ino, std::shared_ptr<Inode>& out) {
    out = table.find_locked(ino);
    if (!out) return ENOENT;
    if (!out->dir) return ENOTDIR;
    return 0;
}

} // namespace

int Filesystem::lookup(InodeNumber parent, const char* name, Entry& e) {
    if (std::strlen(name) > kMaxNameLength) return ENAMETOOLONG;
    std::shared_ptr<Inode> child;
    {
        std::shared_lock lock(table_.mutex());
        std::shared_ptr<Inode> dir;
        if (int err = find_dir(table_, parent, dir)) return err;
        auto it = dir->dir->by_name.find(std::string_view(name));
        if (it == dir->dir->by_name.end()) return ENOENT;
        child = table_.find_locked(it->second.ino);
        if (!child) return ENOENT;
        ++child->nlookup;
    }
    fill_entry(*child, e);
    return 0;
}

void Filesystem::forget(InodeNumber ino, std::uint64_t n) { table_.forget(ino, n); }

int Filesystem::make_node(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                          dev_t rdev, const char* target, Entry& e, Opening* open) {
    if (int err = check_name(name)) return err;
    std::shared_ptr<Inode> inode;
    {
        std::unique_lock lock(table_.mutex());
        std::shared_ptr<Inode> dir;
        if (int err = find_dir(table_, parent, dir)) return err;
        if (dir->nlink.load() == 0) return ENOENT; // the directory was removed
        if (dir->dir->by_name.count(std::string_view(name))) return EEXIST;

        gid_t gid = c.gid;
        int device_pref = -1;
        {
            std::shared_lock dlock(dir->mu);
            device_pref = dir->device_pref; // new files and directories inherit the device
            // A set-group-ID directory passes its group on, and its flag to subdirectories.
            if (dir->mode & S_ISGID) {
                gid = dir->gid;
                if (S_ISDIR(mode)) mode |= S_ISGID;
            }
        }
        inode = table_.create_locked(mode, c.uid, gid);
        inode->rdev = rdev;
        // place() honours it when the file first gets storage.
        if (inode->data || inode->dir) inode->device_pref = device_pref;
        if (target) {
            inode->target = target;
            inode->size = inode->target.size();
        }
        if (S_ISDIR(mode)) {
            inode->nlink = 2;
            inode->dir->parent = parent;
            ++dir->dir->subdirs;
            ++dir->nlink;
        } else {
            inode->nlink = 1;
        }
        dir->dir->insert(name, inode->ino);
        inode->name = name;
        ++inode->nlookup;
        if (open) open->reply = take_handle(*inode, open->flags);
        std::unique_lock dlock(dir->mu);
        touch_dir(*dir, inode->ctime.load());
    }
    fill_entry(*inode, e);
    return 0;
}

int Filesystem::mknod(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                      dev_t rdev, Entry& e) {
    switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFIFO:
    case S_IFSOCK:
    case S_IFCHR:
    case S_IFBLK:
        break;
    case 0:
        mode |= S_IFREG;
        break;
    default:
        return EINVAL;
    }
    if (!S_ISCHR(mode) && !S_ISBLK(mode)) rdev = 0;
    return make_node(c, parent, name, mode, rdev, nullptr, e, nullptr);
}

int Filesystem::mkdir(const Caller& c, InodeNumber parent, const char* name, mode_t mode,
                      Entry& e) {
    return make_node(c, parent, name, S_IFDIR | (mode & 07777), 0, nullptr, e, nullptr);
}

int Filesystem::symlink(const Caller& c, const char* target, InodeNumber parent,
                        const char* name, Entry& e) {
    if (std::strlen(target) >= PATH_MAX) return ENAMETOOLONG;
    return make_node(c, parent, name, S_IFLNK | 0777, 0, target, e, nullptr);
}

int Filesystem::link(InodeNumber ino, InodeNumber newparent, const char* newname,
                     Entry& e) {
    if (int err = check_name(newname)) return err;
    std::shared_ptr<Inode> inode;
    {
        std::unique_lock lock(table_.mutex());
        std::shared_ptr<Inode> dir;
        if (int err = find_dir(table_, newparent, dir)) return err;
        inode = table_.find_locked(ino);
        if (!inode) return ENOENT;
        if (inode->dir) return EPERM;
        if (inode->nlink.load() == 0) return ENOENT;
        if (dir->nlink.load() == 0) return ENOENT;
        if (dir->dir->by_name.count(std::string_view(newname))) return EEXIST;
        dir->dir->insert(newname, ino);
        inode->name = newname;
        ++inode->nlink;
        ++inode->nlookup;
        const std::int64_t now = now_ns();
        inode->ctime = now;
        std::unique_lock dlock(dir->mu);
        touch_dir(*dir, now);
    }
    fill_entry(*inode, e);
    return 0;
}

namespace {
// Finds `name` in directory `parent` for removal; the caller holds the table lock exclusively.
int find_child(const InodeTable& table, InodeNumber parent, const char* name,
               std::shared_ptr<Inode>& dir, std::shared_ptr<Inode>& child) {
    if (int err = find_dir(table, parent, dir)) return err;
    auto it = dir->dir->by_name.find(std::string_view(name));
    if (it == dir->dir->by_name.end()) return ENOENT;
    child = table.find_locked(it->second.ino);
    return child ? 0 : ENOENT;
}
} // namespace

// The common end of unlink and rmdir: the entry is gone; stamp the times, free what is unused.
void Filesystem::finish_removal(Inode& dir, const std::shared_ptr<Inode>& child) {
    const std::int64_t now = now_ns();
    child->ctime = now;
    {
        std::unique_lock dlock(dir.mu);
        touch_dir(dir, now);
    }
    table_.reap_locked(child);
}

int Filesystem::unlink(InodeNumber parent, const char* name) {
    std::unique_lock lock(table_.mutex());
    std::shared_ptr<Inode> dir, child;
    if (int err = find_child(table_, parent, name, dir, child)) return err;
    if (child->dir) return EISDIR;
    dir->dir->erase(name);
    --child->nlink;
    finish_removal(*dir, child);
    return 0;
}

int Filesystem::rmdir(InodeNumber parent, const char* name) {
    if (std::strcmp(name, ".") == 0) return EINVAL;
    if (std::strcmp(name, "..") == 0) return ENOTEMPTY;
    std::unique_lock lock(table_.mutex());
    std::shared_ptr<Inode> dir, child;
    if (int err = find_child(table_, parent, name, dir, child)) return err;
    if (!child->dir) return ENOTDIR;
    if (!child->dir->by_name.empty()) return ENOTEMPTY;
    dir->dir->erase(name);
    child->nlink = 0;
    --dir->dir->subdirs;
    --dir->nlink;
    finish_removal(*dir, child);
    return 0;
}

namespace {

// A directory changing parents moves one ".." link from one to the other.
void move_dir_link(Inode& moved, Inode& from, Inode& to) {
    if (!moved.dir) return;
    moved.dir->parent = to.ino;
    --from.dir->subdirs;
    --from.nlink;
    ++to.dir->subdirs;
    ++to.nlink;
}

void touch_dirs(Inode& a, Inode& b, std::int64_t now) {
    {
        std::unique_lock l(a.mu);
        touch_dir(a, now);
    }
    if (&a == &b) return;
    std::unique_lock l(b.mu);
    touch_dir(b, now);
}

} // namespace

int Filesystem::rename(InodeNumber parent, const char* name, InodeNumber newparent,
                       const char* newname, unsigned flags) {
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return EINVAL;
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return EINVAL;
    if (int err = check_name(newname)) return err;

    std::unique_lock lock(table_.mutex());
    std::shared_ptr<Inode> sdir, ddir;
    if (int err = find_dir(table_, parent, sdir)) return err;
    if (int err = find_dir(table_, newparent, ddir)) return err;
    auto sit = sdir->dir->by_name.find(std::string_view(name));
    if (sit == sdir->dir->by_name.end()) return ENOENT;
    auto src = table_.find_locked(sit->second.ino);
    if (!src) return ENOENT;
    auto dit = ddir->dir->by_name.find(std::string_view(newname));
    std::shared_ptr<Inode> dst =
        dit == ddir->dir->by_name.end() ? nullptr : table_.find_locked(dit->second.ino);
    if (ddir->nlink.load() == 0) return ENOENT;

    // A directory may not move below itself.
    if (src->dir && is_ancestor(table_, src->ino, newparent)) return EINVAL;
    const std::int64_t now = now_ns();

    if (flags & RENAME_EXCHANGE) {
        if (!dst) return ENOENT;
        if (dst->dir && is_ancestor(table_, dst->ino, parent)) return EINVAL;
        if (src == dst) return 0;
        sit->second.ino = dst->ino;
        dit->second.ino = src->ino;
        if (parent != newparent) {
            move_dir_link(*src, *sdir, *ddir);
            move_dir_link(*dst, *ddir, *sdir);
        }
        src->ctime = now;
        dst->ctime = now;
        touch_dirs(*sdir, *ddir, now);
        return 0;
    }

    if (dst) {
        if (flags & RENAME_NOREPLACE) return EEXIST;
        if (src == dst) return 0; // two names of one inode: POSIX says do nothing
        if (src->dir) {
            if (!dst->dir) return ENOTDIR;
            if (!dst->dir->by_name.empty()) return ENOTEMPTY;
        } else if (dst->dir) {
            return EISDIR;
        }
    }
    const std::string target(newname);
    // Allocate the new entry first: if that throws, nothing has changed.
    if (dst) {
        dit->second.ino = src->ino;
        if (dst->dir) {
            dst->nlink = 0;
            --ddir->dir->subdirs;
            --ddir->nlink;
        } else {
            --dst->nlink;
        }
        dst->ctime = now;
    } else {
        ddir->dir->insert(target, src->ino);
    }
    sdir->dir->erase(name);
    src->name = target;
    if (parent != newparent) move_dir_link(*src, *sdir, *ddir);
    src->ctime = now;
    touch_dirs(*sdir, *ddir, now);
    if (dst) table_.reap_locked(dst);
    return 0;
}

int Filesystem::readlink(InodeNumber ino, std::string& target) {
    auto inode = table_.find(ino);
    if (!inode) return ENOENT;
    std::shared_lock l(inode->mu);
    if (!S_ISLNK(inode->mode)) return EINVAL;
    target = inode->target;
    return 0;
}

int Filesystem::readdir(InodeNumber ino, std::uint64_t off, bool plus, DirFiller fill) {
    std::shared_lock lock(table_.mutex());
    std::shared_ptr<Inode> dir;
    if (int err = find_dir(table_, ino, dir)) return err;
    if (off == 0) touch_atime(*dir);

    // Adds one entry; false when it does not fit. Entries whose inode is counted by the
    // kernel (readdirplus, not "." or "..") take a lookup reference only once they fit.
    auto add = [&](const char* name, const std::shared_ptr<Inode>& inode, std::uint64_t next,
                   bool counted) {
        Entry e{};
        counted = counted && plus;
        if (counted) {
            fill_entry(*inode, e);
        } else {
            e.ino = inode->ino;
            e.attr.st_ino = inode->ino;
            e.attr.st_mode = inode->type;
        }
        if (!fill(name, e, next)) return false;
        if (counted) ++inode->nlookup;
        return true;
    };

    if (off < 1 && !add(".", dir, 1, false)) return 0;
    if (off < 2) {
        auto parent = table_.find_locked(dir->dir->parent);
        if (!parent || !add("..", parent, 2, false)) return 0;
    }
    for (auto it = dir->dir->by_cookie.upper_bound(std::max<std::uint64_t>(off, 2));
         it != dir->dir->by_cookie.end(); ++it) {
        auto entry = dir->dir->by_name.find(it->second);
        if (entry == dir->dir->by_name.end()) continue;
        auto child = table_.find_locked(entry->second.ino);
        if (!child) continue;
        if (!add(it->second.c_str(), child, it->first, true)) break;
    }
    return 0;
}

} // namespace vramfs
