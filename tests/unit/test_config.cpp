// The command line: every malformed input gets one line and exit code 2; good input parses.
#include "vramfs/config.hpp"

#include <doctest/doctest.h>

#include <string>
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
    CHECK(r.config.size == 6ull << 30);
    CHECK(r.config.device == 0);
    CHECK(r.config.backend == BackendKind::cuda);
    CHECK_FALSE(r.config.foreground);
}

TEST_CASE("options") {
    auto r = parse({"/m", "512M", "--device", "1", "--backend", "host", "-f", "-o",
                    "allow_other,ro", "-o", "noatime", "--threads", "4", "--block-size",
                    "256K", "--null-io"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.device == 1);
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

TEST_CASE("-o takes one value each time, before or after the positionals") {
    auto r = parse({"-o", "allow_other", "/m", "1G", "-o", "ro"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.mountpoint == "/m");
    CHECK(r.config.size == 1ull << 30);
    CHECK(r.config.fuse_options == std::vector<std::string>{"allow_other", "ro"});
}

TEST_CASE("the mount(8) form: vramfs SOURCE MOUNTPOINT -o size=...,device=...") {
    auto r = parse({"vramfs", "/mnt/vram", "-o", "rw,nosuid,size=6G,device=1,backend=host,threads=4,null_io,allow_other"});
    REQUIRE_FALSE(r.done);
    CHECK(r.config.mountpoint == "/mnt/vram");
    CHECK(r.config.size == 6ull << 30);
    CHECK(r.config.device == 1);
    CHECK(r.config.backend == BackendKind::host);
    CHECK(r.config.threads == 4);
    CHECK(r.config.null_io);
    CHECK(r.config.fuse_options == std::vector<std::string>{"rw", "nosuid", "allow_other"});
    auto one = parse({"/mnt/vram", "-o", "size=1G"});
    REQUIRE_FALSE(one.done);
    CHECK(one.config.mountpoint == "/mnt/vram");
    CHECK(one.config.size == 1ull << 30);
    for (const char* bad : {"size=abc", "device=x", "backend=opencl", "threads=0", "release_delay=z"}) {
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
        {"/m", "6G", "--block-size", "3000"},
        {"/m", "6G", "--block-size", "1K"},
        {"/m", "6G", "--block-size", "1G"},
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
}
