// The command line: every malformed input gets one line and exit code 2; good input parses.
#include "vramfs/app/config.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>
#include <vector>

using namespace vramfs;

namespace {
ParseResult parse(std::vector<const char*> args) {
    args.insert(args.begin(), "vramfs");
    return parse_command_line(static_cast<int>(args.size()), args.data());
}
} // namespace

TEST_CASE("a plain mount line") {
    auto r = parse({"/mnt/vram", "6G"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.mountpoint == "/mnt/vram");
    CHECK(r.config.devices.at(0).size == 6ull << 30);
    CHECK(r.config.devices.at(0).index == 0);
    CHECK(r.config.backend == BackendKind::cuda);
    CHECK_FALSE(r.config.foreground);
}

TEST_CASE("options") {
    auto r = parse({"/m", "512M", "--device", "1", "--backend", "host", "-f", "-o",
                    "allow_other,ro", "-o", "noatime", "--threads", "4", "--block-size",
                    "256K", "--null-io", "--poll-us", "50"});
    REQUIRE_FALSE(r.done);
    CHECK_FALSE(r.config.writeback_cache);
    CHECK(parse({"/m", "1G"}).config.poll_us == default_poll_us());
    CHECK(parse({"/m", "1G", "--poll-us", "0"}).config.poll_us == 0);
    CHECK(r.config.poll_us == 50);
    CHECK(r.config.devices.at(0).index == 1);
    CHECK(r.config.backend == BackendKind::host);
    CHECK(r.config.foreground);
    CHECK(r.config.fuse_options == std::vector<std::string>{"allow_other", "ro", "noatime"});
    CHECK(r.config.threads == 4);
    CHECK(r.config.block_size == 256 << 10);
    CHECK(r.config.null_io);
    auto args = fuse_arguments(r.config);
    REQUIRE(args.size() == 3);
    CHECK(args[2].find("allow_other,ro,noatime") != std::string::npos);
    CHECK(args[2].find("default_permissions") != std::string::npos);
}

TEST_CASE("--max-io sets the largest request, for the kernel (max_read) and the daemon") {
    CHECK(parse({"/m", "1G"}).config.max_io == 1 << 20);
    CHECK(fuse_arguments(parse({"/m", "1G"}).config)[2].find("max_read=1048576") != std::string::npos);
    auto r = parse({"/m", "1G", "--max-io", "256K"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.max_io == 256 << 10);
    CHECK(fuse_arguments(r.config)[2].find("max_read=262144") != std::string::npos);
    CHECK(parse({"vramfs", "/m", "-o", "size=1G,max_io=64K"}).config.max_io == 64 << 10);
}

TEST_CASE("-o takes one value each time, before or after the positionals") {
    auto r = parse({"-o", "allow_other", "/m", "1G", "-o", "ro"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.mountpoint == "/m");
    CHECK(r.config.devices.at(0).size == 1ull << 30);
    CHECK(r.config.fuse_options == std::vector<std::string>{"allow_other", "ro"});
}

TEST_CASE("the mount(8) form: vramfs SOURCE MOUNTPOINT -o size=...,device=...") {
    auto r = parse({"vramfs", "/mnt/vram", "-o", "rw,nosuid,size=6G,device=1,backend=host,threads=4,null_io,allow_other,poll_us=20,writeback_cache"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.writeback_cache);
    CHECK(r.config.poll_us == 20);
    CHECK(r.config.read_cache == 8);
    CHECK(parse({"/m", "1G", "-o", "read_cache=0"}).config.read_cache == 0);
    CHECK(r.config.mountpoint == "/mnt/vram");
    CHECK(r.config.devices.at(0).size == 6ull << 30);
    CHECK(r.config.devices.at(0).index == 1);
    CHECK(r.config.backend == BackendKind::host);
    CHECK(r.config.threads == 4);
    CHECK(r.config.null_io);
    CHECK(r.config.fuse_options == std::vector<std::string>{"rw", "nosuid", "allow_other"});
    auto one = parse({"/mnt/vram", "-o", "size=1G"});
    REQUIRE_FALSE(one.done);
    CHECK(one.config.mountpoint == "/mnt/vram");
    CHECK(one.config.devices.at(0).size == 1ull << 30);
    for (const char* bad : {"size=abc", "device=x", "backend=opencl", "threads=0", "release_delay=z", "poll_us=x", "read_cache=x", "read_cache=65"}) {
        CAPTURE(bad);
        auto b = parse({"vramfs", "/m", "-o", bad});
        CHECK(b.done);
        CHECK(b.exit_code == kExitUsage);
    }
}

TEST_CASE("help and version answer on stdout with exit 0") {
    auto h = parse({"--help"});
    CHECK(h.done);
    CHECK(h.exit_code == 0);
    CHECK(h.output.find("--list-devices") != std::string::npos);
    CHECK(h.output.find("SIZE") != std::string::npos);
    CHECK(h.output.find("vramfs status MOUNTPOINT") != std::string::npos);
    auto v = parse({"--version"});
    CHECK(v.done);
    CHECK(v.exit_code == 0);
    CHECK(v.output.rfind("vramfs ", 0) == 0);
}

TEST_CASE("list-devices needs no mount point") {
    auto r = parse({"--list-devices"});
    CHECK_FALSE(r.done);
    CHECK(r.config.list_devices);
}

TEST_CASE("bad input: one line, exit code 2") {
    const std::vector<std::vector<const char*>> bad = {
        {},
        {"/m"},
        {"/m", "0"},
        {"/m", "0G"},
        {"/m", "abc"},
        {"/m", "-5G"},
        {"/m", "6X"},
        {"/m", "1.5"},
        {"/m", "99999999999999999999999"},
        {"/m", "6G", "--backend", "opencl"},
        {"/m", "6G", "--device", "-1"},
        {"/m", "6G", "--device", "x"},
        {"/m", "6G", "--threads", "0"},
        {"/m", "6G", "--threads", "1000"},
        {"/m", "6G", "--poll-us", "10001"},
        {"/m", "6G", "--poll-us", "-1"},
        {"/m", "6G", "--read-cache", "65"},
        {"/m", "6G", "--block-size", "3000"},
        {"/m", "6G", "--block-size", "1K"},
        {"/m", "6G", "--block-size", "1G"},
        {"/m", "6G", "--max-io", "2M"},
        {"/m", "6G", "--max-io", "2K"},
        {"/m", "6G", "--max-io", "100K"},
        {"/m", "512K"}, // smaller than one 1 MiB block
        {"/m", "6G", "--bogus"},
        {"/m", "6G", "extra"},
        {"/m", "6G", "--log-level", "loud"},
        {"/m", "6G", "--release-delay", "-1"},
        {"/m", "6G", "--inject-faults", "copy-rate=2"},
        {"/m", "6G", "--inject-faults", "nothing"},
    };
    for (const auto& args : bad) {
        auto r = parse(args);
        std::string joined;
        for (auto* a : args) joined += std::string(a) + " ";
        CAPTURE(joined);
        CHECK(r.done);
        CHECK(r.exit_code == kExitUsage);
        CHECK_FALSE(r.error.empty());
        CHECK(r.error.find('\n') == std::string::npos);
        CHECK(r.error.rfind("vramfs: ", 0) == 0);
    }
}

TEST_CASE("mount point checks") {
    CHECK(check_mountpoint("/nonexistent-vramfs-dir").find("No such file") != std::string::npos);
    CHECK(check_mountpoint("/etc/hostname").find("not a directory") != std::string::npos);
    CHECK(check_mountpoint("/proc").find("already a mount point") != std::string::npos);
    CHECK(check_mountpoint("/").find("already a mount point") != std::string::npos);
    // A directory with files is refused unless nonempty is given.
    char dir[] = "/tmp/vramfs-mp-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    CHECK(check_mountpoint(dir).empty());
    const std::string file = std::string(dir) + "/f";
    std::FILE* f = std::fopen(file.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fclose(f);
    CHECK(check_mountpoint(dir).find("not empty") != std::string::npos);
    CHECK(check_mountpoint(dir, true).empty());
    std::remove(file.c_str());
    ::rmdir(dir);
}

TEST_CASE("several devices: --device lists and per-device SIZE") {
    auto a = parse({"/m", "4G", "--device", "0,1"});
    REQUIRE_FALSE(a.done);
    REQUIRE(a.config.devices.size() == 2);
    CHECK(a.config.devices[1].index == 1);
    CHECK(a.config.devices[1].size == 4ull << 30);
    auto b = parse({"/m", "0:4G,1:2G"});
    REQUIRE_FALSE(b.done);
    REQUIRE(b.config.devices.size() == 2);
    CHECK(b.config.devices[0].size == 4ull << 30);
    CHECK(b.config.devices[1].size == 2ull << 30);
    // The mount's own name: "vramfs:" and the mount point, or mount(8)'s SOURCE.
    CHECK(fuse_arguments(b.config)[2].rfind("fsname=vramfs:/", 0) == 0);
    const ParseResult labelled = parse({"scratch", "/m", "-o", "size=1G"});
    CHECK(labelled.config.source == "scratch");
    CHECK(fuse_arguments(labelled.config)[2].rfind("fsname=scratch,", 0) == 0);
    auto c = parse({"/m", "1G", "--device", "2", "--device", "3"});
    REQUIRE_FALSE(c.done);
    CHECK(c.config.devices.size() == 2);
    for (auto bad : std::vector<std::vector<const char*>>{{"/m", "0:4G,0:2G"},
                                                         {"/m", "0:4G", "--device", "1"},
                                                         {"/m", "x:4G"},
                                                         {"/m", "0:"},
                                                         {"/m", "1G", "--device", "0,0"},
                                                         {"/m", "1G", "--device", "a"}}) {
        auto r = parse(bad);
        CHECK(r.done);
        CHECK(r.exit_code == kExitUsage);
    }
}

TEST_CASE("fault plans") {
    FaultPlan plan;
    std::string why;
    REQUIRE(parse_fault_plan("copy-rate=0.25,alloc-nth=3,seed=9", plan, why));
    CHECK(plan.copy_rate == doctest::Approx(0.25));
    CHECK(plan.alloc_nth == 3u);
    CHECK(plan.seed == 9u);
    CHECK(plan.any());
    FaultPlan other;
    CHECK_FALSE(parse_fault_plan("copy-rate=1.5", other, why));
    CHECK_FALSE(parse_fault_plan("speed=3", other, why));
    CHECK(why.find("unknown key") != std::string::npos);
}
