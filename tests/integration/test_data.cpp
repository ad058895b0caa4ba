// Integration, file data: reads and writes against tmpfs, fallocate and holes, mmap, huge offsets, shell tools.
// The real vramfs binary, mounted through FUSE and driven with system calls and shell tools,
// beside tmpfs doing the same steps. Backend: $VRAMFS_TEST_BACKEND (host, cuda).
#include <doctest/doctest.h>

#include "posix_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <functional>
#include <linux/falloc.h>
#include <random>
#include <set>
#include <thread>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <vector>

using namespace vramfs::test;

TEST_CASE("mounting prints one line; statfs shows the budget") {
    VramfsMount m("96M");
    CHECK(m.mount_output().find("mounted " + m.path()) != std::string::npos);
    // (With --transport auto on a kernel without io_uring, a second line says why not.)
    if (!test_transport().empty())
        CHECK(std::count(m.mount_output().begin(), m.mount_output().end(), '\n') == 1);
    struct statvfs s{};
    REQUIRE(::statvfs(m.path().c_str(), &s) == 0);
    CHECK(s.f_blocks * s.f_frsize == 96ull << 20);
    CHECK(s.f_bfree == s.f_blocks);
    CHECK(s.f_namemax == 255);
}

// The transport the suite runs over is the one serving it: the mount line and the status say
// so, and with io_uring the data requests came over the ring (reads into its buffers in place).
TEST_CASE("the transport asked for carries the requests" *
          doctest::skip(test_transport().empty())) {
    VramfsMount m("64M");
    const bool uring = test_transport() == "uring";
    CHECK(m.mount_output().find(uring ? ", FUSE over io_uring" : ", /dev/fuse") != std::string::npos);
    std::vector<char> data(3 << 20);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
    const std::string f = m.path() + "/t";
    int fd = ::open(f.c_str(), O_CREAT | O_RDWR | O_DIRECT, 0644);
    REQUIRE(fd >= 0);
    void* buf = nullptr;
    REQUIRE(::posix_memalign(&buf, 4096, data.size()) == 0);
    std::memcpy(buf, data.data(), data.size());
    CHECK(::pwrite(fd, buf, data.size(), 0) == static_cast<ssize_t>(data.size()));
    std::memset(buf, 0, data.size());
    CHECK(::pread(fd, buf, data.size(), 0) == static_cast<ssize_t>(data.size()));
    CHECK(std::memcmp(buf, data.data(), data.size()) == 0);
    std::free(buf);
    ::close(fd);
    const std::string json = status_xattr(m.path(), true);
    REQUIRE_FALSE(json.empty());
    CHECK(json.find("\"transport\":{\"name\":\"" + test_transport() + "\"") != std::string::npos);
    const std::size_t at = json.find("\"ring_requests\":");
    REQUIRE(at != std::string::npos);
    const unsigned long long ring = std::strtoull(json.c_str() + at + 16, nullptr, 10);
    if (uring)
        CHECK(ring >= 6); // 3 MiB each way in requests of at most 1 MiB
    else
        CHECK(ring == 0);
}

// A one-line kernel file (sysfs, fusectl) without its newline.
static std::string kernel_value(const std::string& path) {
    std::string v = slurp(path);
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
}

// The mount's readahead, as root sets it (the kernel's default for FUSE is 128 KiB), after a
// file was opened (the daemon sets it at the first open, once the kernel has taken INIT).
static std::string readahead_kb(const std::string& mountpoint) {
    const int fd = ::open((mountpoint + "/ra").c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0) return "cannot open a file";
    ::close(fd);
    struct stat st{};
    if (::stat(mountpoint.c_str(), &st) != 0) return "no mount";
    return kernel_value("/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                        std::to_string(minor(st.st_dev)) + "/read_ahead_kb");
}

TEST_CASE("the mount's readahead: 2 MiB by default, --readahead, 0 for the kernel's" *
          doctest::skip(::geteuid() != 0)) {
    {
        VramfsMount m("64M");
        CHECK(readahead_kb(m.path()) == "2048");
    }
    {
        VramfsMount m("64M", {"--readahead", "4M"});
        CHECK(readahead_kb(m.path()) == "4096");
    }
    {
        VramfsMount m("64M", {"-o", "readahead=0"});
        CHECK(readahead_kb(m.path()) == "128");
    }
}

// A value of the mount's FUSE connection in the fusectl filesystem, which this mounts where it
// is not (it is root's), once the kernel has the INIT reply (a stat of the root waits for it).
static std::string fuse_connection_value(const std::string& mountpoint, const char* name) {
    struct stat st{};
    if (::stat(mountpoint.c_str(), &st) != 0) return "no mount";
    const std::string dir = "/sys/fs/fuse/connections/" + std::to_string(st.st_dev);
    struct stat d{};
    if (::stat(dir.c_str(), &d) != 0 && shell("mount -t fusectl none /sys/fs/fuse/connections") != 0)
        return "cannot mount fusectl";
    return kernel_value(dir + "/" + name);
}

TEST_CASE("over /dev/fuse the kernel lets 64 asynchronous requests wait, over io_uring its own 12" *
          doctest::skip(::geteuid() != 0)) {
    VramfsMount m("64M");
    const bool uring = test_transport() == "uring";
    CHECK(fuse_connection_value(m.path(), "max_background") == (uring ? "12" : "64"));
    CHECK(fuse_connection_value(m.path(), "congestion_threshold") == (uring ? "9" : "48"));
}

// The daemon serving a mount: the process whose command line names its mount point.
static pid_t daemon_of(const std::string& mountpoint) {
    DIR* proc = ::opendir("/proc");
    if (!proc) return -1;
    pid_t found = -1;
    while (dirent* d = ::readdir(proc)) {
        const pid_t pid = static_cast<pid_t>(std::atoi(d->d_name));
        if (pid <= 0) continue;
        std::string cmd = slurp("/proc/" + std::string(d->d_name) + "/cmdline");
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        if (cmd.find("vramfs " + mountpoint + " ") != std::string::npos) {
            found = pid;
            break;
        }
    }
    ::closedir(proc);
    return found;
}

// Threads of `pid` allowed on one CPU alone.
static int threads_on_one_cpu(pid_t pid) {
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    DIR* dir = ::opendir(tasks.c_str());
    if (!dir) return -1;
    int pinned = 0;
    while (dirent* d = ::readdir(dir)) {
        if (d->d_name[0] == '.') continue;
        const std::string status = slurp(tasks + "/" + d->d_name + "/status");
        const std::size_t at = status.find("Cpus_allowed_list:");
        if (at == std::string::npos) continue;
        const std::string list = status.substr(at + 18, status.find('\n', at) - at - 18);
        if (list.find_first_of(",-") == std::string::npos) ++pinned;
    }
    ::closedir(dir);
    return pinned;
}

TEST_CASE("the io_uring queues' threads are not pinned unless --ring-pin-cpu 1" *
          doctest::skip(test_transport() != "uring" || ::sysconf(_SC_NPROCESSORS_ONLN) < 2)) {
    {
        VramfsMount m("64M");
        const pid_t pid = daemon_of(m.path());
        REQUIRE(pid > 0);
        CHECK(threads_on_one_cpu(pid) == 0);
    }
    VramfsMount m("64M", {"--ring-pin-cpu", "1"});
    const pid_t pid = daemon_of(m.path());
    REQUIRE(pid > 0);
    CHECK(threads_on_one_cpu(pid) >= 2); // a queue per CPU, each thread on its own
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
    // RELEASE reaches the daemon in the background, after close returns: up to 10 s.
    for (int i = 0; i < 500 && used_bytes(m.path()) != 0; ++i) ::usleep(20000);
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

// Pages of the first `len` bytes of the file open at `fd` that are in the page cache. (Mapping
// an open descriptor refreshes nothing: opening the path again could, once the attributes have
// expired, and a newer mtime then drops the file's cached pages.)
static std::size_t cached_pages(int fd, std::size_t len) {
    void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(p != MAP_FAILED);
    const long page = ::sysconf(_SC_PAGESIZE);
    std::vector<unsigned char> in(len / static_cast<std::size_t>(page));
    REQUIRE(::mincore(p, len, in.data()) == 0);
    ::munmap(p, len);
    return static_cast<std::size_t>(
        std::count_if(in.begin(), in.end(), [](unsigned char b) { return b & 1; }));
}

TEST_CASE("a file written through a write-only handle skips the page cache; --buffered-writes keeps it") {
    const std::string data(1 << 20, 'w');
    auto write_only = [&](const std::string& f) {
        const int w = ::open(f.c_str(), O_WRONLY | O_CREAT, 0644);
        REQUIRE(w >= 0);
        REQUIRE(::write(w, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
        ::close(w);
    };
    {
        VramfsMount m("64M");
        const std::string f = m.path() + "/w";
        write_only(f);
        const int r = ::open(f.c_str(), O_RDONLY);
        REQUIRE(r >= 0);
        CHECK(cached_pages(r, data.size()) == 0); // nothing read it, and the write bypassed
        ::close(r);
        CHECK(slurp(f) == data);
    }
    {
        // The reader is open first, so that the count needs no new lookup after the write.
        VramfsMount m("64M", {"--buffered-writes"});
        const std::string f = m.path() + "/w";
        const int r = ::open(f.c_str(), O_RDONLY | O_CREAT, 0644);
        REQUIRE(r >= 0);
        write_only(f);
        CHECK(cached_pages(r, data.size()) > 0);
        ::close(r);
        CHECK(slurp(f) == data);
    }
}

TEST_CASE("a reader following a file sees every byte a write-only appender writes, "
          "whichever opened first") {
    // The kernel drops a direct write's cached pages before sending it: a cached read of the
    // last page racing the append would keep zeros there. vramfs never lets the two kinds of
    // handle be open together, so the reader never sees a zero.
    constexpr int kRecords = 3000;
    constexpr std::size_t kLen = 100; // records straddle pages
    auto expected = [](std::uint64_t pos) { return static_cast<char>('a' + (pos / kLen) % 26); };
    for (const bool reader_first : {true, false}) {
        CAPTURE(reader_first);
        VramfsMount m("64M");
        const std::string f = m.path() + "/log";
        ::close(::open(f.c_str(), O_WRONLY | O_CREAT, 0644));
        int r = reader_first ? ::open(f.c_str(), O_RDONLY) : -1;
        const int w = ::open(f.c_str(), O_WRONLY | O_APPEND);
        if (!reader_first) r = ::open(f.c_str(), O_RDONLY);
        REQUIRE(r >= 0);
        REQUIRE(w >= 0);
        std::atomic<bool> done{false};
        std::thread writer([&] {
            for (int i = 0; i < kRecords; ++i) {
                const std::string rec(kLen, expected(static_cast<std::uint64_t>(i) * kLen));
                if (::write(w, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size())) break;
            }
            done = true;
        });
        std::uint64_t seen = 0;
        std::int64_t first_bad = -1;
        std::vector<char> buf(8192);
        for (bool stop = false; !stop && first_bad < 0;) {
            stop = done.load(); // then the size below is the final one
            struct stat st{};
            if (::fstat(r, &st) != 0) {
                FAIL_CHECK("fstat of the reader: " << std::strerror(errno));
                break;
            }
            while (seen < static_cast<std::uint64_t>(st.st_size) && first_bad < 0) {
                const std::size_t want = std::min<std::uint64_t>(buf.size(), st.st_size - seen);
                const ssize_t n = ::pread(r, buf.data(), want, static_cast<off_t>(seen));
                if (n <= 0) break;
                for (ssize_t i = 0; i < n; ++i)
                    if (buf[i] != expected(seen + i)) {
                        first_bad = static_cast<std::int64_t>(seen + i);
                        break;
                    }
                seen += static_cast<std::uint64_t>(n);
            }
        }
        writer.join();
        CHECK(first_bad == -1);
        CHECK(seen == kRecords * kLen);
        ::close(w);
        ::close(r);
        const std::string all = slurp(f);
        REQUIRE(all.size() == kRecords * kLen);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < all.size(); ++i) wrong += all[i] != expected(i);
        CHECK(wrong == 0);
    }
}

TEST_CASE("a file opened beside a write-only handle can be mapped shared, and sees its writes") {
    VramfsMount m("64M");
    const std::string f = m.path() + "/m";
    const int w = ::open(f.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(w >= 0);
    REQUIRE(::pwrite(w, std::string(65536, 'x').data(), 65536, 0) == 65536);
    const int r = ::open(f.c_str(), O_RDWR); // bypasses the cache too, as w is open
    REQUIRE(r >= 0);
    void* p = ::mmap(nullptr, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, r, 0);
    REQUIRE_MESSAGE(p != MAP_FAILED, std::strerror(errno));
    char* map = static_cast<char*>(p);
    CHECK(std::string(map, 65536) == std::string(65536, 'x'));
    std::memset(map, 'y', 4096);
    REQUIRE(::msync(map, 65536, MS_SYNC) == 0);
    REQUIRE(::pwrite(w, std::string(4096, 'z').data(), 4096, 8192) == 4096);
    CHECK(std::string(map + 8192, 4096) == std::string(4096, 'z'));
    ::munmap(p, 65536);
    ::close(r);
    ::close(w);
    const std::string all = slurp(f);
    CHECK(all == std::string(4096, 'y') + std::string(4096, 'x') + std::string(4096, 'z') +
                     std::string(65536 - 12288, 'x'));
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

// A tree of small files (a source tree's sizes, made the same every time) costs about what it
// holds, not a block a file: the space df and st_blocks show is asserted, not timed.
TEST_CASE("small files take what they hold: df and st_blocks within 1.25x of the bytes") {
    VramfsMount m("64M"); // a block a file would need 1.5 GiB
    std::mt19937 rng(3);
    std::lognormal_distribution<double> size(8.5, 1.3); // a median near 5 KiB, as /usr/include
    std::uint64_t apparent = 0, blocks = 0;
    std::vector<char> data(256 << 10, 'x');
    const std::uint64_t before = used_bytes(m.path());
    for (int d = 0; d < 30; ++d) {
        const std::string dir = m.path() + "/d" + std::to_string(d);
        REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
        for (int i = 0; i < 50; ++i) {
            const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(size(rng)) + 1, data.size());
            const std::string f = dir + "/f" + std::to_string(i);
            int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
            REQUIRE(fd >= 0);
            REQUIRE(::write(fd, data.data(), n) == static_cast<ssize_t>(n));
            ::close(fd);
            struct stat st{};
            REQUIRE(::stat(f.c_str(), &st) == 0);
            CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 == (n + 4095) / 4096 * 4096);
            apparent += n;
            blocks += static_cast<std::uint64_t>(st.st_blocks) * 512;
        }
    }
    const std::uint64_t used = used_bytes(m.path()) - before;
    CAPTURE(apparent);
    CAPTURE(used);
    CHECK(used == blocks); // the mount counts exactly the granules its files hold
    CHECK(used <= apparent * 5 / 4);
    CHECK(used >= apparent);
    REQUIRE(shell("rm -rf '" + m.path() + "'/d*") == 0);
    CHECK(used_bytes(m.path()) == before);
}

// When the mount fills, a write writes what fits and says so, as tmpfs does; the next is ENOSPC.
TEST_CASE("a write past the budget is short, then ENOSPC") {
    VramfsMount m("4M");
    const std::string f = m.path() + "/fill";
    int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    REQUIRE(fd >= 0);
    std::vector<char> data(6 << 20);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + 1);
    const ssize_t n = ::write(fd, data.data(), data.size());
    CHECK(n == 4 << 20);
    errno = 0;
    CHECK(::write(fd, data.data(), 4096) == -1);
    CHECK(errno == ENOSPC);
    ::close(fd);
    CHECK(slurp(f) == std::string(data.data(), 4 << 20));
}

// Listings of 0, 1 and 20,000 entries, through readdir and readdirplus alike, whole and in
// order, and the directory empties again.
TEST_CASE("readdir of directories of 0, 1 and 20,000 entries") {
    VramfsMount m("64M");
    for (int count : {0, 1, 20000}) {
        CAPTURE(count);
        const std::string dir = m.path() + "/n" + std::to_string(count);
        REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
        for (int i = 0; i < count; ++i)
            REQUIRE(::mknod((dir + "/e" + std::to_string(i)).c_str(), S_IFREG | 0644, 0) == 0);
        const std::set<std::string> names = list_dir(dir);
        CHECK(names.size() == static_cast<std::size_t>(count) + 2);
        CHECK(names.count(".") == 1);
        CHECK(names.count("..") == 1);
        if (count > 0) {
            CHECK(names.count("e0") == 1);
            CHECK(names.count("e" + std::to_string(count - 1)) == 1);
        }
        // ls -l asks for every entry's attributes: readdirplus.
        std::string out;
        REQUIRE(run_program({"ls", "-l", dir}, &out) == 0);
        CHECK(static_cast<int>(std::count(out.begin(), out.end(), '\n')) == count + 1); // and "total"
        REQUIRE(shell("rm -rf '" + dir + "'") == 0);
        CHECK(::access(dir.c_str(), F_OK) != 0);
    }
}
