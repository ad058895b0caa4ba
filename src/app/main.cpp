// vramfs: parse the command line, then mount and serve; or `vramfs status MOUNTPOINT`.
#include "vramfs/app/config.hpp"
#include "vramfs/app/daemon.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/xattr.h>

namespace {

// vramfs status MOUNTPOINT [--json]: the running daemon's view, read through the filesystem
// itself (a virtual xattr of the root directory), so no other channel to the daemon exists.
int status_command(int argc, char** argv) {
    std::string mountpoint;
    bool json = false;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json") {
            json = true;
        } else if (a == "-h" || a == "--help") {
            std::puts("Usage: vramfs status MOUNTPOINT [--json]\n"
                      "Devices (budget, used, reserved, free VRAM on the card, files), files (size,\n"
                      "VRAM allocated, device) and counters of a mounted vramfs.");
            return 0;
        } else if (mountpoint.empty() && a[0] != '-') {
            mountpoint = a;
        } else {
            std::fprintf(stderr, "vramfs: status: unexpected argument '%s' (see vramfs status --help)\n", a.c_str());
            return vramfs::kExitUsage;
        }
    }
    if (mountpoint.empty()) {
        std::fprintf(stderr, "vramfs: status needs a MOUNTPOINT (see vramfs status --help)\n");
        return vramfs::kExitUsage;
    }
    const char* name = json ? "user.vramfs.status.json" : "user.vramfs.status";
    ssize_t n = ::getxattr(mountpoint.c_str(), name, nullptr, 0);
    std::string value;
    if (n > 0) {
        value.resize(static_cast<std::size_t>(n));
        n = ::getxattr(mountpoint.c_str(), name, value.data(), value.size());
    }
    if (n < 0) {
        std::fprintf(stderr, "vramfs: %s is not a vramfs mount (%s)\n", mountpoint.c_str(),
                     errno == ENODATA || errno == ENOTSUP ? "no status there" : std::strerror(errno));
        return vramfs::kExitFailure;
    }
    value.resize(static_cast<std::size_t>(n));
    std::fputs(value.c_str(), stdout);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "status") == 0) return status_command(argc, argv);
    const vramfs::ParseResult parsed = vramfs::parse_command_line(argc, argv);
    if (parsed.done) {
        if (!parsed.output.empty()) std::fputs(parsed.output.c_str(), stdout);
        if (!parsed.error.empty()) std::fprintf(stderr, "%s\n", parsed.error.c_str());
        return parsed.exit_code;
    }
    return vramfs::run(parsed.config);
}
