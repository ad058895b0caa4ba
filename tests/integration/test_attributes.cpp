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
#include <linux/capability.h>
#include <linux/falloc.h>
#include <random>
#include <set>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
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

// Runs `step` in a child process without CAP_FSETID (as a user's process, or root in a
// container that dropped it); returns its outcome.
static Outcome without_fsetid(const std::function<Outcome()>& step) {
    int pipefd[2];
    if (::pipe(pipefd) != 0) return sys(-1);
    const pid_t pid = ::fork();
    if (pid == 0) {
        __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        Outcome o{-1, EPERM};
        if (::syscall(SYS_capget, &head, data) == 0) {
            data[0].effective &= ~(1u << CAP_FSETID);
            if (::syscall(SYS_capset, &head, data) == 0) o = step();
        }
        (void)!::write(pipefd[1], &o, sizeof o);
        ::_exit(0);
    }
    ::close(pipefd[1]);
    Outcome o{-1, ECHILD};
    if (pid > 0 && ::read(pipefd[0], &o, sizeof o) != sizeof o) o = {-1, ECHILD};
    ::close(pipefd[0]);
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    return o;
}

// The mode as a statx asking for the mode alone sees it: from the kernel's cache where it
// holds one, so this also checks that the kernel does not keep a mode the daemon changed.
static unsigned mode_only(const std::string& path) {
    struct statx stx{};
    if (::statx(AT_FDCWD, path.c_str(), 0, STATX_MODE, &stx) != 0) return ~0u;
    return stx.stx_mode & 07777;
}

// Requests the daemon counted other than reads and writes (its status), or ~0 if unreadable.
static unsigned long long other_requests(const std::string& mnt) {
    const std::string json = status_xattr(mnt, true);
    const std::size_t at = json.find("\"other_requests\":");
    return at == std::string::npos ? ~0ull : std::strtoull(json.c_str() + at + 17, nullptr, 10);
}

static Outcome write_at(const std::string& path, int flags) {
    void* buf = nullptr;
    if (::posix_memalign(&buf, 4096, 4096) != 0) return {-1, ENOMEM};
    std::memset(buf, 'x', 4096);
    const int fd = ::open(path.c_str(), O_WRONLY | flags);
    const Outcome o = fd < 0 ? sys(-1) : sys(::pwrite(fd, buf, 4096, 0));
    if (fd >= 0) ::close(fd);
    std::free(buf);
    return o;
}

TEST_CASE("set-user-ID and set-group-ID go on write, truncate and chown as on tmpfs" *
          doctest::skip(::geteuid() != 0)) {
    Pair p;
    struct Step {
        const char* what;
        unsigned mode; // before the step
        bool privileged; // with CAP_FSETID
        std::function<Outcome(const std::string&)> act;
    };
    const Step steps[] = {
        {"write", 06777, false, [](const std::string& f) { return write_at(f, 0); }},
        {"write with CAP_FSETID", 06777, true, [](const std::string& f) { return write_at(f, 0); }},
        {"O_DIRECT write", 06777, false, [](const std::string& f) { return write_at(f, O_DIRECT); }},
        {"write, set-group-ID without group execute", 06767, false,
         [](const std::string& f) { return write_at(f, 0); }},
        {"truncate", 06777, false, [](const std::string& f) { return sys(::truncate(f.c_str(), 1)); }},
        {"truncate with CAP_FSETID", 06777, true,
         [](const std::string& f) { return sys(::truncate(f.c_str(), 2)); }},
        {"fallocate", 06777, false,
         [](const std::string& f) {
             const int fd = ::open(f.c_str(), O_WRONLY);
             const Outcome o = sys(::fallocate(fd, 0, 0, 1 << 20));
             ::close(fd);
             return o;
         }},
        {"open with O_TRUNC", 06777, false,
         [](const std::string& f) { return sys(::close(::open(f.c_str(), O_WRONLY | O_TRUNC))); }},
        {"chown with CAP_FSETID", 06777, true,
         [](const std::string& f) { return sys(::chown(f.c_str(), 0, 0)); }},
    };
    for (const auto& root : {p.vram.path(), p.tmp.path()}) ::close(::creat((root + "/f").c_str(), 0644));
    for (const Step& st : steps) {
        const std::string what = st.what;
        CAPTURE(what);
        p.same([&](const std::string& r) {
            const std::string f = r + "/f";
            if (::chmod(f.c_str(), st.mode) != 0) return sys(-1);
            return st.privileged ? st.act(f) : without_fsetid([&] { return st.act(f); });
        });
        CHECK(mode_only(p.vram.path() + "/f") == mode_only(p.tmp.path() + "/f"));
    }
    // Each kind of step changed something on tmpfs (the comparison above is not vacuous).
    CHECK(mode_only(p.tmp.path() + "/f") == 0777);
}

// Only user.* xattrs exist on vramfs: other names answer EOPNOTSUPP, not ENODATA, as they do on
// setxattr. ls -l (coreutils) takes that answer to mean the mount has no SELinux labels or ACLs
// and stops asking; with ENODATA it asked twice per entry, each a round trip to the daemon.
TEST_CASE("names outside user.* are unsupported, through the kernel") {
    VramfsMount m("64M");
    const std::string f = m.path() + "/f";
    const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);
    auto get = [&](const char* name) {
        char v[256];
        return ::lgetxattr(f.c_str(), name, v, sizeof v) < 0 ? errno : 0;
    };
    CHECK(get("system.posix_acl_access") == EOPNOTSUPP);
    CHECK(get("trusted.k") == EOPNOTSUPP);
    // Where SELinux runs, the kernel answers security.selinux itself and never asks vramfs.
    if (::access("/sys/fs/selinux/enforce", F_OK) != 0) CHECK(get("security.selinux") == EOPNOTSUPP);
    CHECK(get("user.absent") == ENODATA);
    REQUIRE(::lsetxattr(f.c_str(), "user.k", "v", 1, 0) == 0);
    CHECK(get("user.k") == 0);
}

// Linux asks a filesystem that does not clear these bits itself whether a file has a
// security.capability before each write (a round trip); vramfs clears them itself.
TEST_CASE("writes do not each cost the daemon another request") {
    VramfsMount m("64M");
    const std::string f = m.path() + "/w";
    const int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    char block[4096];
    std::memset(block, 'w', sizeof block);
    REQUIRE(::pwrite(fd, block, sizeof block, 0) == static_cast<ssize_t>(sizeof block));
    const unsigned long long before = other_requests(m.path());
    REQUIRE(before != ~0ull);
    for (int i = 0; i < 64; ++i)
        REQUIRE(::pwrite(fd, block, sizeof block, i * 4096) == static_cast<ssize_t>(sizeof block));
    ::close(fd);
    const unsigned long long after = other_requests(m.path());
    CHECK(after - before < 16); // the status read, a flush and a release, attributes; not 64
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
