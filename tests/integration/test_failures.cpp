// Integration, failures: injected storage faults and bad mounts.
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
    const std::string empty = make_temp_dir("bad");
    CHECK(run_program({bin, empty, "banana", "--backend", be}, &out) == 2);
    CHECK(run_program({bin, empty, "1P", "--backend", be}, &out) == 2); // more than the device
    CHECK(out.find("more than") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(run_program({bin, empty, "64M", "--device", "99", "--backend", be}, &out) == 2);
    CHECK(out.find("does not exist") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    // A mount point with files in it: refused, unless -o nonempty, which says what it hides.
    const std::string full = make_temp_dir("full");
    CHECK(shell("touch '" + full + "/mine'") == 0);
    CHECK(run_program({bin, full, "64M", "--backend", be}, &out) == 2);
    CHECK(out.find("not empty") != std::string::npos);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(shell("grep -q ' " + full + " ' /proc/mounts") != 0);
    std::vector<std::string> over{bin, full, "64M", "-o", "nonempty"};
    for (const auto& a : backend_args()) over.push_back(a);
    CHECK(run_program(over, &out) == 0);
    CHECK(out.find("hidden until unmounted") != std::string::npos);
    CHECK(shell("grep -q ' " + full + " ' /proc/mounts") == 0);
    unmount(full);
    CHECK(shell("test -e '" + full + "/mine'") == 0); // there again after
    shell("rm -rf '" + full + "' '" + empty + "'");
    VramfsMount m("64M");
    CHECK(run_program({bin, m.path(), "64M", "--backend", be}, &out) == 2); // already mounted
    CHECK(out.find("already") != std::string::npos);
}
