// Integration, the namespace: lookups, creation and removal errors, rename, links, symlinks, file types, long paths.
// The real vramfs binary, mounted through FUSE and driven with system calls and shell tools,
// beside tmpfs doing the same steps. Backend: $VRAMFS_TEST_BACKEND (host, cuda).
#include <doctest/doctest.h>

#include "posix_helpers.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <linux/falloc.h>
#include <random>
#include <set>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

using namespace vramfs::test;

TEST_CASE("namespace errors match tmpfs") {
    Pair p;
    auto path = [](const std::string& root, const char* rel) { return root + "/" + rel; };
    p.same([&](auto& r) { return sys(::mkdir(path(r, "d").c_str(), 0755)); });
    p.same([&](auto& r) { return sys(::mkdir(path(r, "d").c_str(), 0755)); }); // EEXIST
    p.same([&](auto& r) { return sys(::mkdir(path(r, "missing/d").c_str(), 0755)); }); // ENOENT
    p.same([&](auto& r) { return sys(::close(::creat(path(r, "d/f").c_str(), 0644))); });
    p.same([&](auto& r) { return sys(::rmdir(path(r, "d").c_str())); });         // ENOTEMPTY
    p.same([&](auto& r) { return sys(::unlink(path(r, "d").c_str())); });        // EISDIR
    p.same([&](auto& r) { return sys(::rmdir(path(r, "d/f").c_str())); });      // ENOTDIR
    p.same([&](auto& r) { return sys(::mkdir(path(r, "d/f/x").c_str(), 0755)); }); // ENOTDIR
    p.same([&](auto& r) { return sys(::open(path(r, "d").c_str(), O_WRONLY)); }); // EISDIR
    p.same([&](auto& r) {
        return sys(::open(path(r, "d/f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644));
    }); // EEXIST
    std::string longname(256, 'n');
    p.same([&](auto& r) { return sys(::creat((r + "/" + longname).c_str(), 0644)); });
    std::string okname(255, 'n');
    p.same([&](auto& r) { return sys(::close(::creat((r + "/" + okname).c_str(), 0644))); });
    p.same([&](auto& r) { return sys(::unlink(path(r, "nothing").c_str())); });
    p.same([&](auto& r) { return sys(::unlink(path(r, "d/f").c_str())); });
    p.same([&](auto& r) { return sys(::rmdir(path(r, "d").c_str())); });
    CHECK(list_dir(p.vram.path()) == list_dir(p.tmp.path()));
}

TEST_CASE("rename, links and symlinks match tmpfs") {
    Pair p;
    for (const auto& root : {p.vram.path(), p.tmp.path()}) {
        REQUIRE(::mkdir((root + "/d").c_str(), 0755) == 0);
        REQUIRE(::mkdir((root + "/d/sub").c_str(), 0755) == 0);
        REQUIRE(::mkdir((root + "/e").c_str(), 0755) == 0);
        for (const char* f : {"/a", "/b", "/d/c"}) {
            int fd = ::creat((root + f).c_str(), 0644);
            REQUIRE(::write(fd, f, std::strlen(f)) > 0);
            ::close(fd);
        }
    }
    auto ren = [&](const char* from, const char* to, unsigned flags) {
        p.same([&](auto& r) {
            return sys(::renameat2(AT_FDCWD, (r + from).c_str(), AT_FDCWD, (r + to).c_str(), flags));
        });
    };
    ren("/a", "/b", RENAME_NOREPLACE);  // EEXIST
    ren("/a", "/b", RENAME_EXCHANGE);
    ren("/a", "/zz", RENAME_EXCHANGE);  // ENOENT
    ren("/d", "/d/sub/x", 0);           // EINVAL
    ren("/a", "/d", 0);                 // EISDIR
    ren("/d", "/a", 0);                 // ENOTDIR
    ren("/e", "/d", 0);                 // ENOTEMPTY
    ren("/d/sub", "/e/sub", 0);
    ren("/b", "/d/c", 0);               // replaces
    ren("/nothing", "/x", 0);           // ENOENT
    p.same([&](auto& r) { return sys(::link((r + "/a").c_str(), (r + "/a2").c_str())); });
    p.same([&](auto& r) { return sys(::link((r + "/d").c_str(), (r + "/d2").c_str())); }); // EPERM
    p.same([&](auto& r) { return sys(::symlink("a", (r + "/s").c_str())); });
    p.same([&](auto& r) { return sys(::symlink("a", (r + "/s").c_str())); }); // EEXIST
    for (const char* rel : {"/a", "/a2", "/d", "/e", "/e/sub", "/d/c", "/s"}) {
        CAPTURE(rel);
        const auto [sa, sb] = p.lstat_both(rel);
        CHECK(sa.st_mode == sb.st_mode);
        CHECK(sa.st_nlink == sb.st_nlink);
        CHECK(sa.st_size == sb.st_size);
        if (!S_ISDIR(sa.st_mode) && !S_ISLNK(sa.st_mode))
            CHECK(slurp(p.vram.path() + rel) == slurp(p.tmp.path() + rel));
    }
    char ta[64] = {}, tb[64] = {};
    CHECK(::readlink((p.vram.path() + "/s").c_str(), ta, sizeof ta) ==
          ::readlink((p.tmp.path() + "/s").c_str(), tb, sizeof tb));
    CHECK(std::string(ta) == std::string(tb));
    CHECK(slurp(p.vram.path() + "/s") == slurp(p.tmp.path() + "/s"));
    for (const char* dir : {"", "/d", "/e"})
        CHECK(list_dir(p.vram.path() + dir) == list_dir(p.tmp.path() + dir));
}

TEST_CASE("rename across filesystems is EXDEV") {
    Pair p;
    ::close(::creat((p.vram.path() + "/f").c_str(), 0644));
    errno = 0;
    CHECK(::rename((p.vram.path() + "/f").c_str(), (p.tmp.path() + "/f").c_str()) == -1);
    CHECK(errno == EXDEV);
}

TEST_CASE("every file type tmpfs holds, and long paths") {
    Pair p;
    p.same([&](auto& r) { return sys(::mkfifo((r + "/fifo").c_str(), 0640)); });
    p.same([&](auto& r) { return sys(::mknod((r + "/sock").c_str(), S_IFSOCK | 0600, 0)); });
    p.same([&](auto& r) { return sys(::mknod((r + "/chr").c_str(), S_IFCHR | 0600, makedev(1, 3))); });
    p.same([&](auto& r) { return sys(::mknod((r + "/blk").c_str(), S_IFBLK | 0600, makedev(7, 0))); });
    for (const char* n : {"/fifo", "/sock", "/chr", "/blk"}) {
        CAPTURE(n);
        const auto [sa, sb] = p.lstat_both(n);
        CHECK(sa.st_mode == sb.st_mode);
        CHECK(sa.st_rdev == sb.st_rdev);
    }
    // A path near PATH_MAX: 15 levels of 250-byte names.
    std::string rel;
    for (int i = 0; i < 15; ++i) {
        rel += "/" + std::string(250, static_cast<char>('a' + i));
        p.same([&](auto& r) { return sys(::mkdir((r + rel).c_str(), 0755)); });
    }
    p.same([&](auto& r) { return sys(::close(::creat((r + rel + "/x").c_str(), 0644))); });
    p.same([&](auto& r) { return sys(::access((r + rel + "/x").c_str(), F_OK)); });
    CHECK((p.vram.path() + rel + "/x").size() > 3700);
}
