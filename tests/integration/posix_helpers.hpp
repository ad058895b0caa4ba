// What the POSIX integration tests share: a vramfs mount beside a tmpfs, a system call's
// outcome, and small file helpers.
#pragma once

#include <doctest/doctest.h>

#include "mount_fixture.hpp"

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


namespace vramfs::test {

// The outcome of one system call: its return value and errno.
struct Outcome {
    long rc;
    int err;
    bool operator==(const Outcome&) const = default;
};
inline doctest::String toString(const Outcome& o) {
    return ("rc=" + std::to_string(o.rc) + " errno=" + std::to_string(o.err) + " (" +
            std::strerror(o.err) + ")")
        .c_str();
}
inline Outcome sys(long rc) { return {rc < 0 ? -1 : rc, rc < 0 ? errno : 0}; }

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

inline std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) return "<open failed: " + std::string(std::strerror(errno)) + ">";
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

inline std::set<std::string> list_dir(const std::string& path) {
    std::set<std::string> names;
    DIR* d = ::opendir(path.c_str());
    if (!d) return names;
    while (dirent* e = ::readdir(d)) names.insert(e->d_name);
    ::closedir(d);
    return names;
}

inline std::uint64_t used_bytes(const std::string& path) {
    struct statvfs s{};
    REQUIRE(::statvfs(path.c_str(), &s) == 0);
    return (s.f_blocks - s.f_bfree) * s.f_frsize;
}

} // namespace vramfs::test
