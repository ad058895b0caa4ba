// Integration, attributes: open flags, modes and owners, the times each operation changes, xattrs.
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

TEST_CASE("O_TRUNC, O_APPEND and O_EXCL match tmpfs") {
    Pair p;
    for (const auto& root : {p.vram.path(), p.tmp.path()}) {
        int fd = ::creat((root + "/f").c_str(), 0644);
        REQUIRE(::write(fd, "0123456789", 10) == 10);
        ::close(fd);
    }
    p.same([&](auto& r) {
        int fd = ::open((r + "/f").c_str(), O_WRONLY | O_APPEND);
        long n = ::write(fd, "ab", 2);
        ::close(fd);
        return sys(n);
    });
    CHECK(slurp(p.vram.path() + "/f") == slurp(p.tmp.path() + "/f"));
    p.same([&](auto& r) { return sys(::close(::open((r + "/f").c_str(), O_RDONLY | O_TRUNC))); });
    CHECK(slurp(p.vram.path() + "/f") == slurp(p.tmp.path() + "/f"));
    p.same([&](auto& r) {
        int fd = ::open((r + "/g").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        long n = ::write(fd, "xyz", 3);
        ::close(fd);
        fd = ::open((r + "/g").c_str(), O_WRONLY | O_TRUNC);
        n = ::write(fd, "q", 1);
        ::close(fd);
        return sys(n);
    });
    CHECK(slurp(p.vram.path() + "/g") == "q");
    CHECK(slurp(p.tmp.path() + "/g") == "q");
}

TEST_CASE("attributes: chmod, chown, utimensat") {
    Pair p;
    for (const auto& root : {p.vram.path(), p.tmp.path()}) ::close(::creat((root + "/f").c_str(), 0600));
    p.same([&](auto& r) { return sys(::chmod((r + "/f").c_str(), 04751)); });
    p.same([&](auto& r) { return sys(::chown((r + "/f").c_str(), 1234, 5678)); });
    const timespec times[2] = {{1000000, 5}, {2000000, 7}};
    p.same([&](auto& r) { return sys(::utimensat(AT_FDCWD, (r + "/f").c_str(), times, 0)); });
    auto [sa, sb] = p.lstat_both("/f");
    CHECK(sa.st_mode == sb.st_mode);
    CHECK(sa.st_uid == 1234u);
    CHECK(sa.st_gid == 5678u);
    CHECK(sa.st_atim.tv_sec == 1000000);
    CHECK(sa.st_atim.tv_nsec == 5);
    CHECK(sa.st_mtim.tv_sec == 2000000);
    // An atime-only change leaves mtime as it was.
    const timespec atime_only[2] = {{3000000, 0}, {0, UTIME_OMIT}};
    p.same([&](auto& r) { return sys(::utimensat(AT_FDCWD, (r + "/f").c_str(), atime_only, 0)); });
    REQUIRE(::stat((p.vram.path() + "/f").c_str(), &sa) == 0);
    CHECK(sa.st_atim.tv_sec == 3000000);
    CHECK(sa.st_mtim.tv_sec == 2000000);
    const timespec now[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    p.same([&](auto& r) { return sys(::utimensat(AT_FDCWD, (r + "/f").c_str(), now, 0)); });
    REQUIRE(::stat((p.vram.path() + "/f").c_str(), &sa) == 0);
    CHECK(sa.st_mtim.tv_sec >= ::time(nullptr) - 5);
}

TEST_CASE("which operations change mtime and ctime: as on tmpfs") {
    Pair p;
    for (const auto& root : {p.vram.path(), p.tmp.path()}) {
        REQUIRE(::mkdir((root + "/d").c_str(), 0755) == 0);
        ::close(::creat((root + "/d/f").c_str(), 0644));
    }
    struct Times {
        timespec fm, fc, dm, dc;
    };
    auto times = [](const std::string& root) {
        struct stat f{}, d{};
        ::stat((root + "/d/f").c_str(), &f);
        ::stat((root + "/d").c_str(), &d);
        return Times{f.st_mtim, f.st_ctim, d.st_mtim, d.st_ctim};
    };
    auto changed = [](const timespec& a, const timespec& b) {
        return a.tv_sec != b.tv_sec || a.tv_nsec != b.tv_nsec;
    };
    const std::vector<std::pair<const char*, std::function<void(const std::string&)>>> steps = {
        {"write", [](const std::string& r) { int fd = ::open((r + "/d/f").c_str(), O_WRONLY); (void)!::write(fd, "x", 1); ::close(fd); }},
        {"chmod", [](const std::string& r) { ::chmod((r + "/d/f").c_str(), 0600); }},
        {"truncate", [](const std::string& r) { (void)!::truncate((r + "/d/f").c_str(), 100); }},
        {"link", [](const std::string& r) { ::link((r + "/d/f").c_str(), (r + "/d/g").c_str()); }},
        {"unlink", [](const std::string& r) { ::unlink((r + "/d/g").c_str()); }},
        {"rename in dir", [](const std::string& r) { ::rename((r + "/d/f").c_str(), (r + "/d/h").c_str()); ::rename((r + "/d/h").c_str(), (r + "/d/f").c_str()); }},
        {"setxattr", [](const std::string& r) { ::setxattr((r + "/d/f").c_str(), "user.k", "v", 1, 0); }},
        {"read", [](const std::string& r) { slurp(r + "/d/f"); }},
        {"mkdir in dir", [](const std::string& r) { ::mkdir((r + "/d/s").c_str(), 0755); }},
    };
    for (const auto& [name, op] : steps) {
        CAPTURE(name);
        const Times va = times(p.vram.path()), ta = times(p.tmp.path());
        ::usleep(20000); // timestamps must be able to differ
        op(p.vram.path());
        op(p.tmp.path());
        // The kernel caches attributes for up to the attribute timeout; ask after it.
        ::usleep(1100000);
        const Times vb = times(p.vram.path()), tb = times(p.tmp.path());
        CHECK(changed(va.fm, vb.fm) == changed(ta.fm, tb.fm));
        CHECK(changed(va.fc, vb.fc) == changed(ta.fc, tb.fc));
        CHECK(changed(va.dm, vb.dm) == changed(ta.dm, tb.dm));
        CHECK(changed(va.dc, vb.dc) == changed(ta.dc, tb.dc));
    }
}

TEST_CASE("reads update atime as on tmpfs (relatime)") {
    Pair p;
    const timespec old[2] = {{1000, 0}, {2000, 0}}; // atime older than mtime
    for (const auto& root : {p.vram.path(), p.tmp.path()}) {
        int fd = ::creat((root + "/f").c_str(), 0644);
        REQUIRE(::write(fd, "data", 4) == 4);
        ::close(fd);
        REQUIRE(::utimensat(AT_FDCWD, (root + "/f").c_str(), old, 0) == 0);
        REQUIRE(slurp(root + "/f") == "data");
    }
    const auto [sa, sb] = p.lstat_both("/f");
    CHECK((sa.st_atim.tv_sec > 2000) == (sb.st_atim.tv_sec > 2000));
    CHECK(sa.st_atim.tv_sec > 2000);
    CHECK(sa.st_mtim.tv_sec == 2000); // reading does not touch mtime
}

TEST_CASE("user xattrs match tmpfs") {
    Pair p;
    for (const auto& root : {p.vram.path(), p.tmp.path()}) ::close(::creat((root + "/f").c_str(), 0644));
    p.same([&](auto& r) { return sys(::setxattr((r + "/f").c_str(), "user.a", "xyz", 3, 0)); });
    p.same([&](auto& r) { return sys(::setxattr((r + "/f").c_str(), "user.a", "q", 1, XATTR_CREATE)); });
    p.same([&](auto& r) { return sys(::setxattr((r + "/f").c_str(), "user.b", "q", 1, XATTR_REPLACE)); });
    p.same([&](auto& r) {
        char v[16];
        return sys(::getxattr((r + "/f").c_str(), "user.a", v, sizeof v));
    });
    p.same([&](auto& r) {
        char v[1];
        return sys(::getxattr((r + "/f").c_str(), "user.a", v, sizeof v)); // ERANGE
    });
    p.same([&](auto& r) { return sys(::getxattr((r + "/f").c_str(), "user.none", nullptr, 0)); });
    p.same([&](auto& r) { return sys(::listxattr((r + "/f").c_str(), nullptr, 0)); });
    p.same([&](auto& r) { return sys(::removexattr((r + "/f").c_str(), "user.a")); });
    p.same([&](auto& r) { return sys(::removexattr((r + "/f").c_str(), "user.a")); });
}
