// Filesystem and InodeTable without FUSE: lookup counts, link counts, unlink while open, rename.
#include "test_backends.hpp"
#include "vramfs/fs/filesystem.hpp"

#include <doctest/doctest.h>

#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <set>
#include <utility>
#include <vector>
#include <string>
#include <sys/xattr.h>

using namespace vramfs;

namespace {
std::size_t written = 0; // what the last write said it wrote

struct Fixture {
    explicit Fixture(FsOptions options = {.max_io = 1 << 16, .io_buffers = 2})
        : fs(pool, options, Caller{}) {}
    test::FlakyBackend be;
    BlockPool pool{be, 64 * 4096, 4096, 16 * 4096};
    Filesystem fs;
    Caller me{1000, 1000, 022};

    InodeNumber create(InodeNumber parent, const char* name) {
        Entry e{};
        OpenReply open{};
        REQUIRE(fs.create(me, parent, name, 0644, O_RDWR, e, open) == 0);
        return e.ino;
    }
    InodeNumber mkdir(InodeNumber parent, const char* name) {
        Entry e{};
        REQUIRE(fs.mkdir(me, parent, name, 0755, e) == 0);
        return e.ino;
    }
    // One readdir call from `off` into a reply of `room` bytes, each entry taking what a FUSE
    // dirent takes (24 bytes and the name, 8-aligned): the names and each entry's next offset.
    std::vector<std::pair<std::string, std::uint64_t>> page(InodeNumber dir, std::uint64_t off,
                                                            std::size_t room) {
        std::vector<std::pair<std::string, std::uint64_t>> out;
        std::size_t used = 0;
        auto fill = [&](const char* name, const Entry&, std::uint64_t next) {
            const std::size_t len = (24 + std::strlen(name) + 7) & ~std::size_t{7};
            if (used + len > room) return false;
            used += len;
            out.emplace_back(name, next);
            return true;
        };
        REQUIRE(fs.readdir(dir, off, false, fill) == 0);
        return out;
    }
    std::set<std::string> list(InodeNumber dir) {
        std::set<std::string> names;
        for (const auto& [name, next] : page(dir, 0, 4096)) names.insert(name);
        return names;
    }
};
} // namespace

TEST_CASE("create, write, read and stat") {
    Fixture f;
    InodeNumber ino = f.create(kRootInode, "a");
    const char msg[] = "hello vram";
    REQUIRE(f.fs.write(ino, 5000, sizeof msg, msg, written) == 0);
    struct stat st{};
    REQUIRE(f.fs.getattr(ino, st) == 0);
    CHECK(st.st_size == 5000 + sizeof msg);
    CHECK(st.st_uid == 1000);
    CHECK(st.st_blocks == 4096 / 512); // only the written block is allocated
    char out[64] = {};
    std::size_t got = 0;
    REQUIRE(f.fs.read(ino, 5000, 64, out, got) == 0);
    CHECK(got == sizeof msg);
    CHECK(std::strcmp(out, msg) == 0);
    REQUIRE(f.fs.read(ino, 100, 10, out, got) == 0);
    CHECK(got == 10);
    CHECK(out[0] == 0);
}

TEST_CASE("an unlinked file keeps its data until the last handle is released") {
    Fixture f;
    InodeNumber ino = f.create(kRootInode, "swap");
    REQUIRE(f.fs.fallocate(ino, 0, 0, 8 * 4096) == 0);
    CHECK(f.pool.used_blocks() == 8);
    REQUIRE(f.fs.unlink(kRootInode, "swap") == 0);
    CHECK(f.pool.used_blocks() == 8); // still open
    char buf[16];
    std::size_t got = 0;
    CHECK(f.fs.read(ino, 0, 16, buf, got) == 0);
    REQUIRE(f.fs.release(ino, false) == 0);
    CHECK(f.pool.used_blocks() == 0); // VRAM back at once, before the kernel forgets
    CHECK(f.fs.table().count() == 2); // still known to the kernel
    f.fs.forget(ino, 1);
    CHECK(f.fs.table().count() == 1);
}

TEST_CASE("lookup counts: the inode lives until forgotten") {
    Fixture f;
    InodeNumber ino = f.create(kRootInode, "x");
    REQUIRE(f.fs.release(ino, false) == 0);
    Entry e{};
    REQUIRE(f.fs.lookup(kRootInode, "x", e) == 0);
    CHECK(e.ino == ino);
    REQUIRE(f.fs.unlink(kRootInode, "x") == 0);
    f.fs.forget(ino, 1);
    CHECK(f.fs.table().count() == 2);
    f.fs.forget(ino, 1);
    CHECK(f.fs.table().count() == 1);
    CHECK(f.fs.lookup(kRootInode, "x", e) == ENOENT);
}

TEST_CASE("hard links share data and count links") {
    Fixture f;
    InodeNumber ino = f.create(kRootInode, "a");
    Entry e{};
    REQUIRE(f.fs.link(ino, kRootInode, "b", e) == 0);
    CHECK(e.attr.st_nlink == 2);
    CHECK(f.fs.link(ino, kRootInode, "b", e) == EEXIST);
    InodeNumber d = f.mkdir(kRootInode, "d");
    CHECK(f.fs.link(d, kRootInode, "d2", e) == EPERM);
    REQUIRE(f.fs.unlink(kRootInode, "a") == 0);
    struct stat st{};
    REQUIRE(f.fs.getattr(ino, st) == 0);
    CHECK(st.st_nlink == 1);
}

TEST_CASE("directories: nlink, rmdir of non-empty, unlink of a directory") {
    Fixture f;
    InodeNumber d = f.mkdir(kRootInode, "d");
    f.mkdir(d, "sub");
    struct stat st{};
    REQUIRE(f.fs.getattr(d, st) == 0);
    CHECK(st.st_nlink == 3);
    REQUIRE(f.fs.getattr(kRootInode, st) == 0);
    CHECK(st.st_nlink == 3);
    CHECK(f.fs.rmdir(kRootInode, "d") == ENOTEMPTY);
    CHECK(f.fs.unlink(kRootInode, "d") == EISDIR);
    CHECK(f.fs.rmdir(d, "sub") == 0);
    CHECK(f.fs.rmdir(kRootInode, "d") == 0);
    REQUIRE(f.fs.getattr(kRootInode, st) == 0);
    CHECK(st.st_nlink == 2);
}

TEST_CASE("rename: replace, noreplace, exchange, and no move into itself") {
    Fixture f;
    InodeNumber a = f.create(kRootInode, "a");
    InodeNumber b = f.create(kRootInode, "b");
    InodeNumber d = f.mkdir(kRootInode, "d");
    InodeNumber sub = f.mkdir(d, "sub");
    CHECK(f.fs.rename(kRootInode, "a", kRootInode, "b", RENAME_NOREPLACE) == EEXIST);
    CHECK(f.fs.rename(kRootInode, "a", kRootInode, "b", RENAME_EXCHANGE) == 0);
    Entry e{};
    REQUIRE(f.fs.lookup(kRootInode, "a", e) == 0);
    CHECK(e.ino == b);
    CHECK(f.fs.rename(kRootInode, "d", sub, "inside", 0) == EINVAL);
    CHECK(f.fs.rename(kRootInode, "a", kRootInode, "d", 0) == EISDIR);
    CHECK(f.fs.rename(kRootInode, "d", kRootInode, "a", 0) == ENOTDIR);
    REQUIRE(f.fs.rename(kRootInode, "b", kRootInode, "a", 0) == 0); // a now names inode `a`
    REQUIRE(f.fs.lookup(kRootInode, "a", e) == 0);
    CHECK(e.ino == a);
    CHECK(f.list(kRootInode) == std::set<std::string>{".", "..", "a", "d"});
    // Moving a directory moves its ".." link.
    REQUIRE(f.fs.rename(d, "sub", kRootInode, "sub", 0) == 0);
    struct stat st{};
    REQUIRE(f.fs.getattr(d, st) == 0);
    CHECK(st.st_nlink == 2);
    REQUIRE(f.fs.getattr(kRootInode, st) == 0);
    CHECK(st.st_nlink == 4);
}

TEST_CASE("names: too long, empty, dot") {
    Fixture f;
    std::string longname(256, 'x');
    Entry e{};
    OpenReply open{};
    CHECK(f.fs.create(f.me, kRootInode, longname.c_str(), 0644, O_RDWR, e, open) == ENAMETOOLONG);
    CHECK(f.fs.lookup(kRootInode, longname.c_str(), e) == ENAMETOOLONG);
    std::string ok(255, 'y');
    CHECK(f.fs.create(f.me, kRootInode, ok.c_str(), 0644, O_RDWR, e, open) == 0);
    CHECK(f.fs.create(f.me, kRootInode, ok.c_str(), 0644, O_RDWR, e, open) == EEXIST);
}

TEST_CASE("readdir offsets stay valid while entries come and go") {
    Fixture f;
    for (int i = 0; i < 50; ++i) {
        std::string name = "f";
        name += std::to_string(i);
        f.create(kRootInode, name.c_str());
    }
    // Read in small pieces, deleting entries already listed: nothing is skipped or repeated.
    std::set<std::string> seen;
    std::uint64_t off = 0;
    int deleted = 0;
    for (;;) {
        const auto entries = f.page(kRootInode, off, 200);
        if (entries.empty()) break;
        for (const auto& [name, next] : entries) {
            CHECK(seen.insert(name).second);
            off = next;
            if (name[0] == 'f' && deleted < 20) {
                REQUIRE(f.fs.unlink(kRootInode, name.c_str()) == 0);
                ++deleted;
            }
        }
    }
    CHECK(seen.size() == 52);
}

TEST_CASE("fallocate reserves storage up front or fails with nothing changed") {
    Fixture f; // 64 blocks of 4 KiB
    InodeNumber a = f.create(kRootInode, "a");
    InodeNumber b = f.create(kRootInode, "b");
    REQUIRE(f.fs.fallocate(a, 0, 0, 40 * 4096) == 0);
    CHECK(f.fs.fallocate(b, 0, 0, 30 * 4096) == ENOSPC);
    struct stat st{};
    REQUIRE(f.fs.getattr(b, st) == 0);
    CHECK(st.st_size == 0);
    CHECK(f.pool.used_blocks() == 40);
    REQUIRE(f.fs.fallocate(b, FALLOC_FL_KEEP_SIZE, 0, 24 * 4096) == 0);
    REQUIRE(f.fs.getattr(b, st) == 0);
    CHECK(st.st_size == 0);
    CHECK(st.st_blocks == 24 * 8);
    char byte = 1;
    CHECK(f.fs.write(b, 0, 1, &byte, written) == 0); // lands in reserved space
    CHECK(f.fs.write(b, 30 * 4096, 1, &byte, written) == ENOSPC);
    REQUIRE(f.fs.fallocate(a, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 40 * 4096) == 0);
    CHECK(f.pool.used_blocks() == 24);
    REQUIRE(f.fs.getattr(a, st) == 0);
    CHECK(st.st_size == 40 * 4096);
    CHECK(f.fs.fallocate(a, FALLOC_FL_PUNCH_HOLE, 0, 4096) == EOPNOTSUPP);
    CHECK(f.fs.fallocate(a, 0x10 /* ZERO_RANGE */, 0, 4096) == EOPNOTSUPP);
}

TEST_CASE("truncate through setattr frees storage; EFBIG past the maximum") {
    Fixture f;
    InodeNumber a = f.create(kRootInode, "a");
    std::string data(10 * 4096, 'z');
    REQUIRE(f.fs.write(a, 0, data.size(), data.data(), written) == 0);
    struct stat in{}, out{};
    in.st_size = 4096;
    REQUIRE(f.fs.setattr(a, in, set_attr::size, out) == 0);
    CHECK(out.st_size == 4096);
    CHECK(f.pool.used_blocks() == 1);
    in.st_size = static_cast<off_t>(kMaxFileSize) + 1;
    CHECK(f.fs.setattr(a, in, set_attr::size, out) == EFBIG);
    CHECK(f.fs.write(a, kMaxFileSize, 1, data.data(), written) == EFBIG);
}

TEST_CASE("user xattrs") {
    Fixture f;
    InodeNumber a = f.create(kRootInode, "a");
    CHECK(f.fs.setxattr(a, "user.k", "v1", 2, 0) == 0);
    CHECK(f.fs.setxattr(a, "user.k", "v2", 2, XATTR_CREATE) == EEXIST);
    CHECK(f.fs.setxattr(a, "user.other", "v", 1, XATTR_REPLACE) == ENODATA);
    CHECK(f.fs.setxattr(a, "trusted.k", "v", 1, 0) == EOPNOTSUPP);
    std::string v;
    std::size_t need = 0;
    // Other namespaces are unsupported on read too (ls then stops asking for labels and ACLs).
    CHECK(f.fs.getxattr(a, "security.selinux", 255, v, need) == EOPNOTSUPP);
    CHECK(f.fs.getxattr(a, "system.posix_acl_access", 0, v, need) == EOPNOTSUPP);
    REQUIRE(f.fs.getxattr(a, "user.k", 0, v, need) == 0);
    CHECK(need == 2);
    CHECK(f.fs.getxattr(a, "user.k", 1, v, need) == ERANGE);
    REQUIRE(f.fs.getxattr(a, "user.k", 10, v, need) == 0);
    CHECK(v == "v1");
    REQUIRE(f.fs.listxattr(a, 100, v, need) == 0);
    CHECK(v == std::string("user.k\0", 7));
    CHECK(f.fs.removexattr(a, "user.k") == 0);
    CHECK(f.fs.getxattr(a, "user.k", 10, v, need) == ENODATA);
}

TEST_CASE("open with O_TRUNC truncates (libfuse asks for atomic O_TRUNC)") {
    Fixture f;
    InodeNumber a = f.create(kRootInode, "a");
    std::string data(3 * 4096, 'q');
    REQUIRE(f.fs.write(a, 0, data.size(), data.data(), written) == 0);
    REQUIRE(f.fs.release(a, false) == 0);
    OpenReply open{};
    REQUIRE(f.fs.open(a, O_WRONLY, open) == 0);
    struct stat st{};
    REQUIRE(f.fs.getattr(a, st) == 0);
    CHECK(st.st_size == 3 * 4096);
    REQUIRE(f.fs.open(a, O_WRONLY | O_TRUNC, open) == 0);
    REQUIRE(f.fs.getattr(a, st) == 0);
    CHECK(st.st_size == 0);
    CHECK(f.pool.used_blocks() == 0);
}

TEST_CASE("write-only opens bypass the page cache, never beside a cached handle") {
    Fixture f(FsOptions{.direct_write_only = true, .max_io = 1 << 16, .io_buffers = 2});
    Entry e{};
    OpenReply created{};
    REQUIRE(f.fs.create(f.me, kRootInode, "log", 0644, O_WRONLY | O_APPEND, e, created) == 0);
    CHECK(created.direct_io);
    CHECK(created.keep_cache);
    auto open = [&](int flags) {
        OpenReply r{};
        REQUIRE(f.fs.open(e.ino, flags, r) == 0);
        return r.direct_io;
    };
    // While the direct writer is open, a reader is direct too (it would cache otherwise).
    CHECK(open(O_RDONLY));
    CHECK(open(O_RDWR));
    REQUIRE(f.fs.release(e.ino, true) == 0);
    REQUIRE(f.fs.release(e.ino, true) == 0);
    REQUIRE(f.fs.release(e.ino, true) == 0);
    // With nothing open, a reader caches; a writer opened beside it caches too.
    CHECK_FALSE(open(O_RDONLY));
    CHECK_FALSE(open(O_WRONLY));
    REQUIRE(f.fs.release(e.ino, false) == 0);
    CHECK_FALSE(open(O_WRONLY | O_TRUNC));
    REQUIRE(f.fs.release(e.ino, false) == 0);
    REQUIRE(f.fs.release(e.ino, false) == 0);
    CHECK(open(O_WRONLY));
    CHECK(open(O_RDWR));
    REQUIRE(f.fs.release(e.ino, true) == 0);
    REQUIRE(f.fs.release(e.ino, true) == 0);
    // An O_RDWR open alone caches (it may read and map the file).
    CHECK_FALSE(open(O_RDWR));
    REQUIRE(f.fs.release(e.ino, false) == 0);
}

TEST_CASE("without direct_write_only every handle caches, and --direct-io makes all direct") {
    for (bool all : {false, true}) {
        Fixture f(FsOptions{.direct_io = all, .max_io = 1 << 16, .io_buffers = 2});
        Entry e{};
        OpenReply r{};
        REQUIRE(f.fs.create(f.me, kRootInode, "f", 0644, O_WRONLY, e, r) == 0);
        CHECK(r.direct_io == all);
        CHECK(r.keep_cache == !all);
        REQUIRE(f.fs.open(e.ino, O_RDONLY, r) == 0);
        CHECK(r.direct_io == all);
    }
}
