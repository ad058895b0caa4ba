// Integration: the real vramfs binary mounted through FUSE, driven with system calls and shell
// tools, compared with tmpfs doing the same steps. Backend: $VRAMFS_TEST_BACKEND (host, cuda).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "mount_fixture.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
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

namespace {

// The outcome of one system call: its return value and errno.
struct Outcome {
    long rc;
    int err;
    bool operator==(const Outcome&) const = default;
};
doctest::String toString(const Outcome& o) {
    return ("rc=" + std::to_string(o.rc) + " errno=" + std::to_string(o.err) + " (" +
            std::strerror(o.err) + ")")
        .c_str();
}
Outcome sys(long rc) { return {rc < 0 ? -1 : rc, rc < 0 ? errno : 0}; }

// A vramfs mount and a tmpfs side by side.
struct Pair {
    VramfsMount vram{"256M"};
    TmpfsDir tmp{"256M"};
    // Runs `step` on both roots and checks the outcomes agree; returns the vramfs outcome.
    Outcome same(const std::function<Outcome(const std::string&)>& step) {
        Outcome a = step(vram.path());
        Outcome b = step(tmp.path());
        CHECK_MESSAGE(a == b, "vramfs ", toString(a), " vs tmpfs ", toString(b));
        return a;
    }
    // lstat of `rel` under both roots, which must both have it: {vramfs, tmpfs}.
    std::pair<struct stat, struct stat> lstat_both(const std::string& rel) {
        struct stat a{}, b{};
        REQUIRE(::lstat((vram.path() + rel).c_str(), &a) == 0);
        REQUIRE(::lstat((tmp.path() + rel).c_str(), &b) == 0);
        return {a, b};
    }
};

std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return "<open failed: " + std::string(std::strerror(errno)) + ">";
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

std::set<std::string> list_dir(const std::string& path) {
    std::set<std::string> names;
    DIR* d = ::opendir(path.c_str());
    if (!d) return names;
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
    return names;
}

std::uint64_t used_bytes(const std::string& path) {
    struct statvfs s{};
    REQUIRE(::statvfs(path.c_str(), &s) == 0);
    return (s.f_blocks - s.f_bfree) * s.f_frsize;
}

} // namespace

TEST_CASE("mounting prints one line; statfs shows the budget") {
    VramfsMount m("96M");
    CHECK(m.mount_output().find("mounted " + m.path()) != std::string::npos);
    struct statvfs s{};
    REQUIRE(::statvfs(m.path().c_str(), &s) == 0);
    CHECK(s.f_blocks * s.f_frsize == 96ull << 20);
    CHECK(s.f_bfree == s.f_blocks);
    CHECK(s.f_namemax == 255);
}

TEST_CASE("random writes and reads match tmpfs byte for byte") {
    Pair p;
    std::mt19937_64 rng(42);
    int fa = ::open((p.vram.path() + "/f").c_str(), O_RDWR | O_CREAT, 0644);
    int fb = ::open((p.tmp.path() + "/f").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fa >= 0);
    REQUIRE(fb >= 0);
    std::vector<char> buf(3 << 20), ra, rb;
    for (int step = 0; step < 300; ++step) {
        const off_t off = static_cast<off_t>(rng() % (24 << 20));
        const std::size_t len = 1 + rng() % buf.size();
        switch (rng() % 4) {
        case 0:
        case 1: {
            for (std::size_t i = 0; i < len; i += 8) buf[i] = static_cast<char>(rng());
            CHECK(sys(::pwrite(fa, buf.data(), len, off)) == sys(::pwrite(fb, buf.data(), len, off)));
            break;
        }
        case 2: {
            ra.assign(len, 1);
            rb.assign(len, 2);
            Outcome a = sys(::pread(fa, ra.data(), len, off));
            Outcome b = sys(::pread(fb, rb.data(), len, off));
            REQUIRE(a == b);
            CHECK(std::memcmp(ra.data(), rb.data(), static_cast<std::size_t>(a.rc)) == 0);
            break;
        }
        case 3: {
            const off_t size = static_cast<off_t>(rng() % (24 << 20));
            CHECK(sys(::ftruncate(fa, size)) == sys(::ftruncate(fb, size)));
            break;
        }
        }
        struct stat sa{}, sb{};
        ::fstat(fa, &sa);
        ::fstat(fb, &sb);
        REQUIRE(sa.st_size == sb.st_size);
    }
    ::close(fa);
    ::close(fb);
    CHECK(slurp(p.vram.path() + "/f") == slurp(p.tmp.path() + "/f"));
}

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

TEST_CASE("rename across filesystems is EXDEV") {
    Pair p;
    ::close(::creat((p.vram.path() + "/f").c_str(), 0644));
    errno = 0;
    CHECK(::rename((p.vram.path() + "/f").c_str(), (p.tmp.path() + "/f").c_str()) == -1);
    CHECK(errno == EXDEV);
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

TEST_CASE("huge offsets are EFBIG") {
    VramfsMount m("64M");
    int fd = ::open((m.path() + "/f").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    errno = 0;
    CHECK(::pwrite(fd, "x", 1, 5ll << 40) == -1);
    CHECK(errno == EFBIG);
    errno = 0;
    CHECK(::ftruncate(fd, 5ll << 40) == -1);
    CHECK(errno == EFBIG);
    ::close(fd);
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

TEST_CASE("fallocate, punch hole, sparse files and the budget") {
    VramfsMount m("64M");
    const std::string f = m.path() + "/pool";
    int fd = ::open(f.c_str(), O_RDWR | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::fallocate(fd, 0, 0, 32 << 20) == 0);
    struct stat st{};
    REQUIRE(::fstat(fd, &st) == 0);
    CHECK(st.st_size == 32 << 20);
    CHECK(st.st_blocks * 512 == 32 << 20);
    CHECK(used_bytes(m.path()) == 32u << 20);
    std::vector<char> data(1 << 20, 'x');
    REQUIRE(::pwrite(fd, data.data(), data.size(), 5 << 20) == (ssize_t)data.size());
    // No overcommit: more than what is left fails now, and changes nothing.
    int fd2 = ::open((m.path() + "/other").c_str(), O_RDWR | O_CREAT, 0600);
    errno = 0;
    CHECK(::fallocate(fd2, 0, 0, 40 << 20) == -1);
    CHECK(errno == ENOSPC);
    REQUIRE(::fstat(fd2, &st) == 0);
    CHECK(st.st_size == 0);
    CHECK(used_bytes(m.path()) == 32u << 20);
    // Writes past the budget stop short (as on tmpfs: the kernel splits them into requests),
    // the next one fails with ENOSPC, and the old data is left alone.
    std::vector<char> big(40 << 20, 'y');
    const ssize_t wrote = ::pwrite(fd2, big.data(), big.size(), 0);
    CHECK(wrote == 32 << 20);
    errno = 0;
    CHECK(::pwrite(fd2, big.data(), 1 << 20, wrote) == -1);
    CHECK(errno == ENOSPC);
    CHECK(used_bytes(m.path()) == 64u << 20);
    REQUIRE(::ftruncate(fd2, 0) == 0);
    CHECK(used_bytes(m.path()) == 32u << 20);
    std::vector<char> back(1 << 20);
    REQUIRE(::pread(fd, back.data(), back.size(), 5 << 20) == (ssize_t)back.size());
    CHECK(back == data);
    // Punching a hole hands the blocks back at once.
    REQUIRE(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 16 << 20) == 0);
    CHECK(used_bytes(m.path()) == 16u << 20);
    REQUIRE(::pread(fd, back.data(), back.size(), 5 << 20) == (ssize_t)back.size());
    CHECK(back == std::vector<char>(1 << 20, 0));
    // Truncating down frees; truncating up costs nothing.
    REQUIRE(::ftruncate(fd, 20 << 20) == 0);
    CHECK(used_bytes(m.path()) == 4u << 20);
    REQUIRE(::ftruncate(fd, 1ll << 40) == 0); // a 1 TiB sparse file
    CHECK(used_bytes(m.path()) == 4u << 20);
    // Unlink while open: the data stays readable until the last close, then the VRAM is back.
    REQUIRE(::unlink(f.c_str()) == 0);
    REQUIRE(::pread(fd, back.data(), 16, 17 << 20) == 16);
    ::close(fd);
    ::close(fd2);
    for (int i = 0; i < 50 && used_bytes(m.path()) != 0; ++i) ::usleep(20000);
    CHECK(used_bytes(m.path()) == 0);
}

TEST_CASE("shared mmap reads and writes") {
    VramfsMount m("64M");
    const std::string f = m.path() + "/map";
    int fd = ::open(f.c_str(), O_RDWR | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 1 << 20) == 0);
    void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    REQUIRE(p != MAP_FAILED);
    std::memset(static_cast<char*>(p) + 4096, 'm', 8192);
    REQUIRE(::msync(p, 1 << 20, MS_SYNC) == 0);
    ::munmap(p, 1 << 20);
    ::close(fd);
    std::string all = slurp(f);
    REQUIRE(all.size() == 1u << 20);
    CHECK(all.substr(4096, 8192) == std::string(8192, 'm'));
    CHECK(all.substr(0, 4096) == std::string(4096, '\0'));
}

TEST_CASE("shell tools: dd, cp, cmp, du, mv, rm -r") {
    VramfsMount m("128M");
    TmpfsDir t("128M");
    const std::string v = m.path(), s = t.path();
    REQUIRE(shell("dd if=/dev/urandom of='" + s + "/src' bs=1M count=20 status=none") == 0);
    CHECK(shell("cp '" + s + "/src' '" + v + "/copy'") == 0);
    CHECK(shell("cmp '" + s + "/src' '" + v + "/copy'") == 0);
    CHECK(shell("dd if='" + s + "/src' of='" + v + "/dd' bs=128k status=none") == 0);
    CHECK(shell("cmp '" + s + "/src' '" + v + "/dd'") == 0);
    CHECK(shell("test \"$(du -k '" + v + "/copy' | cut -f1)\" -eq 20480") == 0);
    CHECK(shell("mkdir -p '" + v + "/a/b/c' && mv '" + v + "/copy' '" + v + "/a/b/c/' && "
                "cmp '" + s + "/src' '" + v + "/a/b/c/copy'") == 0);
    CHECK(shell("rm -r '" + v + "/a' '" + v + "/dd'") == 0);
    CHECK(list_dir(v) == std::set<std::string>{".", ".."});
    CHECK(used_bytes(v) == 0);
}

TEST_CASE("injected storage faults stay one request's error; other files are untouched") {
    // 10% of device copies fail with EIO; every 3rd slab allocation fails with ENOSPC.
    VramfsMount m("128M", {"--direct-io", "--block-size", "64K", "--inject-faults",
                           "copy-rate=0.1,alloc-nth=3,seed=5"});
    std::mt19937_64 rng(9);
    std::vector<char> keep(4 << 20);
    for (auto& c : keep) c = static_cast<char>(rng());
    // File B, written piece by piece, each piece retried until it lands.
    int fb = ::open((m.path() + "/b").c_str(), O_RDWR | O_CREAT, 0600);
    REQUIRE(fb >= 0);
    int failures = 0;
    for (std::size_t off = 0; off < keep.size(); off += 65536) {
        int tries = 0;
        while (::pwrite(fb, keep.data() + off, 65536, static_cast<off_t>(off)) != 65536) {
            CHECK((errno == EIO || errno == ENOSPC));
            ++failures;
            REQUIRE(++tries < 100);
        }
    }
    // File A takes a beating: every result is success, EIO or ENOSPC, never anything else.
    int fa = ::open((m.path() + "/a").c_str(), O_RDWR | O_CREAT, 0600);
    REQUIRE(fa >= 0);
    std::vector<char> buf(256 << 10);
    for (int i = 0; i < 400; ++i) {
        const off_t off = static_cast<off_t>(rng() % (32 << 20));
        const std::size_t len = 1 + rng() % buf.size();
        const ssize_t r = (rng() % 2) ? ::pwrite(fa, buf.data(), len, off) : ::pread(fa, buf.data(), len, off);
        if (r < 0) {
            CHECK((errno == EIO || errno == ENOSPC));
            ++failures;
        }
    }
    CHECK(failures > 10); // faults really happened
    // B reads back intact (reads may fail too: retry each piece).
    std::vector<char> back(65536);
    for (std::size_t off = 0; off < keep.size(); off += 65536) {
        int tries = 0;
        while (::pread(fb, back.data(), 65536, static_cast<off_t>(off)) != 65536) REQUIRE(++tries < 100);
        REQUIRE(std::memcmp(back.data(), keep.data() + off, 65536) == 0);
    }
    ::close(fa);
    ::close(fb);
    struct statvfs sv{};
    CHECK(::statvfs(m.path().c_str(), &sv) == 0); // the daemon is still serving
}

TEST_CASE("bad mounts: one line and a non-zero exit, nothing mounted") {
    const std::string bin = vramfs_binary(), be = test_backend();
    std::string out;
    CHECK(run_program({bin, "/nonexistent/vramfs", "64M", "--backend", be}, &out) == 2);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(run_program({bin, "/etc/hostname", "64M", "--backend", be}, &out) == 2);
    CHECK(run_program({bin, "/tmp", "banana", "--backend", be}, &out) == 2);
    CHECK(run_program({bin, "/tmp", "1P", "--backend", be}, &out) == 2); // more than the device
    CHECK(out.find("more than") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    if (be == "cuda") {
        CHECK(run_program({bin, "/tmp", "64M", "--device", "99"}, &out) == 2);
        CHECK(out.find("does not exist") != std::string::npos);
    }
    VramfsMount m("64M");
    CHECK(run_program({bin, m.path(), "64M", "--backend", be}, &out) == 2); // already mounted
    CHECK(out.find("already") != std::string::npos);
}

int main(int argc, char** argv) {
    const std::string why = unavailable_reason();
    if (!why.empty()) {
        std::printf("SKIPPED: %s\n", why.c_str());
        return 77;
    }
    std::printf("integration tests on backend '%s'\n", test_backend().c_str());
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
