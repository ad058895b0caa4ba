// Integration: one mount over several devices (emulated by the host backend in CI, real GPUs
// with VRAMFS_TEST_BACKEND=cuda where there are enough): placement, the user.vramfs.device
// xattr, per-device ENOSPC, statfs over the whole mount, and the status view.
#include <doctest/doctest.h>

#include "mount_fixture.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

using namespace vramfs::test;

namespace {

std::string device_of(const std::string& path) {
    char buf[32] = {};
    const ssize_t n = ::getxattr(path.c_str(), "user.vramfs.device", buf, sizeof buf - 1);
    return n < 0 ? "errno " + std::to_string(errno) : std::string(buf, static_cast<std::size_t>(n));
}

int set_device(const std::string& path, const char* value) {
    return ::setxattr(path.c_str(), "user.vramfs.device", value, std::strlen(value), 0) == 0 ? 0 : errno;
}

int fallocate_file(const std::string& path, off_t bytes) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0) return errno;
    const int rc = ::fallocate(fd, 0, 0, bytes) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
}

// The status table with the FREE ON CARD column blanked: it is the device's free memory now
// (host RAM for the host backend), which moves between two reads on a busy machine.
std::string without_free_column(const std::string& table) {
    const std::size_t header_end = table.find('\n');
    const std::size_t from = table.find("RESERVED");
    const std::size_t to = table.find("FREE ON CARD");
    if (header_end == std::string::npos || from == std::string::npos || to == std::string::npos) return table;
    const std::size_t begin = from + std::strlen("RESERVED"), end = to + std::strlen("FREE ON CARD");
    std::string out;
    std::size_t at = 0;
    bool devices = true; // the device rows run from the header to the first blank line
    while (at < table.size()) {
        std::size_t nl = table.find('\n', at);
        if (nl == std::string::npos) nl = table.size();
        std::string line = table.substr(at, nl - at);
        if (line.empty()) devices = false;
        if (devices && line.size() >= end) line.replace(begin, end - begin, end - begin, ' ');
        out += line;
        if (nl < table.size()) out += '\n';
        at = nl + 1;
    }
    return out;
}

} // namespace

// With a GPU backend this case needs two GPUs; with fewer it is reported as skipped (decided
// when the case is registered, so doctest counts it as skipped, never as passed).
bool fewer_than_two_gpus() {
    if (test_backend() == "host") return false; // as many host devices as asked for
    std::string out;
    if (run_program({vramfs_binary(), "--list-devices", "--backend", test_backend()}, &out) != 0) return false; // the suite skips
    return std::count(out.begin(), out.end(), '\n') < 3; // a header and one line per device
}

TEST_CASE("several devices in one mount: placement, xattrs, per-device ENOSPC, status" *
          doctest::skip(fewer_than_two_gpus())) {
    VramfsMount m("0:64M,1:32M");
    const std::string v = m.path();
    struct statvfs sv{};
    REQUIRE(::statvfs(v.c_str(), &sv) == 0);
    CHECK(sv.f_blocks * sv.f_frsize == 96ull << 20); // the whole mount

    // Default placement: the device with the most free budget when the file first gets storage.
    REQUIRE(fallocate_file(v + "/a", 40 << 20) == 0);
    CHECK(device_of(v + "/a") == "0");
    REQUIRE(fallocate_file(v + "/b", 8 << 20) == 0); // 24 MiB left on 0, 32 on 1
    CHECK(device_of(v + "/b") == "1");

    // An empty file has no device until it gets storage or is given one.
    ::close(::creat((v + "/c").c_str(), 0600));
    CHECK(device_of(v + "/c") == "errno " + std::to_string(ENODATA));
    CHECK(set_device(v + "/c", "7") == EINVAL);
    CHECK(set_device(v + "/c", "x") == EINVAL);
    REQUIRE(set_device(v + "/c", "0") == 0);
    CHECK(device_of(v + "/c") == "0");
    // Per-device budget: device 0 has 24 MiB left; device 1's room does not help.
    CHECK(fallocate_file(v + "/c", 30 << 20) == ENOSPC);
    REQUIRE(fallocate_file(v + "/c", 20 << 20) == 0);
    CHECK(device_of(v + "/c") == "0");
    // Data does not move between devices.
    CHECK(set_device(v + "/c", "1") == EBUSY);
    CHECK(set_device(v + "/c", "0") == 0);

    // A directory's device is inherited by what is created in it.
    REQUIRE(::mkdir((v + "/on1").c_str(), 0755) == 0);
    REQUIRE(set_device(v + "/on1", "1") == 0);
    REQUIRE(::mkdir((v + "/on1/sub").c_str(), 0755) == 0);
    REQUIRE(fallocate_file(v + "/on1/sub/d", 4 << 20) == 0);
    CHECK(device_of(v + "/on1/sub/d") == "1");
    CHECK(device_of(v + "/on1/sub") == "1");

    // The virtual xattrs are not listed (cp -a does not copy them) and cannot be written.
    char names[1024];
    const ssize_t ln = ::listxattr((v + "/a").c_str(), names, sizeof names);
    CHECK(ln == 0);
    CHECK(::setxattr(v.c_str(), "user.vramfs.status", "x", 1, 0) == -1);

    const std::string text = status_xattr(v, false);
    CHECK(text.find("DEVICE") != std::string::npos);
    CHECK(text.find("b (inode") != std::string::npos);
    const std::string json = status_xattr(v, true);
    CHECK(json.find("\"devices\":[{\"index\":0") != std::string::npos);
    CHECK(json.find("{\"index\":1") != std::string::npos);
    CHECK(json.find("\"name\":\"d\"") != std::string::npos);
    CHECK(json.find("\"counters\":") != std::string::npos);
    std::string out;
    CHECK(run_program({vramfs_binary(), "status", v}, &out) == 0);
    // The same table, counters aside.
    CHECK(without_free_column(out) == without_free_column(text.substr(0, out.size())));
    CHECK(run_program({vramfs_binary(), "status", "/tmp"}, &out) == 1);
    CHECK(run_program({vramfs_binary(), "status"}, &out) == 2);
}

namespace {
// A number field of the status JSON's timing for one operation ("read" or "write").
std::uint64_t timing_field(const std::string& json, const char* op, const char* field) {
    const std::size_t at = json.find(std::string("\"timing\":"));
    if (at == std::string::npos) return 0;
    const std::size_t o = json.find(std::string("\"") + op + "\":{", at);
    const std::size_t f = json.find(std::string("\"") + field + "\":", o);
    if (o == std::string::npos || f == std::string::npos) return 0;
    return std::stoull(json.substr(f + std::strlen(field) + 3));
}
} // namespace

TEST_CASE("status times read and write requests") {
    // Busy-polling on, so that the time to receive a request from /dev/fuse is measured too.
    VramfsMount m("64M", {"--poll-us", "50"});
    const std::string f = m.path() + "/t";
    const std::string before = status_xattr(m.path(), true);
    constexpr std::size_t kSize = 256 * 1024;
    int fd = ::open(f.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
    REQUIRE(fd >= 0);
    void* buf = nullptr;
    REQUIRE(::posix_memalign(&buf, 4096, kSize) == 0); // O_DIRECT wants an aligned buffer
    std::memset(buf, 'x', kSize);
    for (int i = 0; i < 4; ++i)
        CHECK(::pwrite(fd, buf, kSize, static_cast<off_t>(i * kSize)) == static_cast<ssize_t>(kSize));
    for (int i = 0; i < 4; ++i)
        CHECK(::pread(fd, buf, kSize, static_cast<off_t>(i * kSize)) == static_cast<ssize_t>(kSize));
    ::close(fd);
    std::free(buf);
    // A request's storage time is added before its reply, its handling time just after: a
    // status read at once may see a worker between the two. Wait (up to 10 s) until they agree.
    std::string after;
    for (int i = 0; i < 200; ++i) {
        after = status_xattr(m.path(), true);
        if (timing_field(after, "read", "handle_ns") >= timing_field(after, "read", "storage_ns") &&
            timing_field(after, "write", "handle_ns") >= timing_field(after, "write", "storage_ns"))
            break;
        ::usleep(50000);
    }
    for (const char* op : {"read", "write"}) {
        CAPTURE(op);
        CHECK(timing_field(after, op, "requests") >= timing_field(before, op, "requests") + 4);
        CHECK(timing_field(after, op, "storage_ns") > timing_field(before, op, "storage_ns"));
        CHECK(timing_field(after, op, "handle_ns") >= timing_field(after, op, "storage_ns"));
        if (test_transport() == "uring") { // no /dev/fuse read carried them: nothing to time
            CHECK(timing_field(after, op, "received") == 0);
        } else {
            CHECK(timing_field(after, op, "received") > 0);
            CHECK(timing_field(after, op, "receive_ns") > 0);
        }
    }
    const std::string text = status_xattr(m.path(), false);
    CHECK(text.find("write  ") != std::string::npos);
    CHECK(text.find("per request: storage") != std::string::npos);
}

namespace {
// Writes 1 MiB pieces into `path` (O_DIRECT, so each reaches the daemon) until one fails;
// returns its errno, or 0 if all `pieces` landed.
int write_until_failure(const std::string& path, int pieces) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd < 0) return errno;
    void* buf = nullptr;
    if (::posix_memalign(&buf, 4096, 1 << 20) != 0) return ENOMEM;
    std::memset(buf, 0x5a, 1 << 20);
    int err = 0;
    for (int i = 0; i < pieces && err == 0; ++i)
        if (::pwrite(fd, buf, 1 << 20, static_cast<off_t>(i) << 20) != (1 << 20)) err = errno;
    std::free(buf);
    ::close(fd);
    return err;
}
} // namespace

TEST_CASE("--check names each device and what its driver offers") {
    std::string out;
    const int rc = run_program({vramfs_binary(), "--check"}, &out);
    CHECK((rc == 0 || rc == 1)); // 1: something is missing (no GPU here), said on its line
    if (test_backend() == "vulkan") {
        // Each Vulkan device gets a line for the budget and one for importing host memory.
        CHECK(out.find("Vulkan device 0: ") != std::string::npos);
        CHECK(out.find(": VK_EXT_memory_budget") != std::string::npos);
        CHECK(out.find(": VK_EXT_external_memory_host") != std::string::npos);
    } else if (test_backend() == "cuda") {
        CHECK(out.find("CUDA GPU 0: ") != std::string::npos);
    }
}

TEST_CASE("a lost device: its files answer EIO at once, status says so, unmounting works") {
    // From the 20th device copy on, the device is gone (as after an Xid or a GPU off the bus).
    std::string out;
    {
        VramfsMount m("64M", {"--direct-io", "--inject-faults", "lost-after=20"});
        const std::string v = m.path();
        CHECK(write_until_failure(v + "/f", 60) == EIO);
        CHECK(status_xattr(v, true).find("\"lost\":true") != std::string::npos);
        CHECK(status_xattr(v, false).find("LOST") != std::string::npos);
        REQUIRE(run_program({vramfs_binary(), "status", v, "--prometheus"}, &out) == 0);
        CHECK(out.find("vramfs_device_lost{mountpoint=\"" + v + "\",device=\"0\"") != std::string::npos);
        CHECK(out.find("\"} 1\n", out.find("vramfs_device_lost{")) != std::string::npos);
        // Every later request on the device's data fails, at once; the namespace still works.
        CHECK(write_until_failure(v + "/f", 1) == EIO);
        CHECK(fallocate_file(v + "/g", 4 << 20) == EIO);
        struct stat st{};
        CHECK(::stat((v + "/f").c_str(), &st) == 0);
        CHECK(::unlink((v + "/f").c_str()) == 0);
    } // unmounting a mount whose device is lost works (the destructor would throw otherwise)
}

TEST_CASE("a lost device leaves the files on the other devices working" *
          doctest::skip(fewer_than_two_gpus())) {
    VramfsMount m("0:64M,1:64M", {"--direct-io", "--inject-faults", "lost-after=10,lost-device=1"});
    const std::string v = m.path();
    ::close(::creat((v + "/a").c_str(), 0600));
    ::close(::creat((v + "/b").c_str(), 0600));
    REQUIRE(set_device(v + "/a", "0") == 0);
    REQUIRE(set_device(v + "/b", "1") == 0);
    CHECK(write_until_failure(v + "/b", 40) == EIO);
    CHECK(write_until_failure(v + "/a", 16) == 0); // device 0 takes 16 MiB as if nothing happened
    const std::string json = status_xattr(v, true);
    const std::size_t d1 = json.find("{\"index\":1");
    REQUIRE(d1 != std::string::npos);
    CHECK(json.find("\"lost\":false") < d1);          // device 0
    CHECK(json.find("\"lost\":true", d1) != std::string::npos); // device 1
    CHECK(shell("cmp -n 16777216 " + v + "/a /dev/zero >/dev/null 2>&1") != 0); // 0x5a, not zeros
    CHECK(shell("dd if=" + v + "/a of=/dev/null bs=1M iflag=direct status=none") == 0);
}
