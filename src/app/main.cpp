// vramfs: parse the command line, then mount and serve; or `vramfs status MOUNTPOINT`.
#include "vramfs/app/config.hpp"
#include "vramfs/app/daemon.hpp"
#include "vramfs/status/format.hpp"
#include "vramfs/util/size.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/xattr.h>

namespace {

// vramfs status MOUNTPOINT [--json|--prometheus]: the running daemon's view, read through the
// filesystem itself (the virtual xattr user.vramfs.status.json of its root), so no other
// channel to the daemon exists; formatted here.
int status_command(int argc, char** argv) {
    std::string mountpoint;
    enum class Form { text, json, prometheus } form = Form::text;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--json") {
            form = Form::json;
        } else if (a == "--prometheus") {
            form = Form::prometheus;
        } else if (a == "-h" || a == "--help") {
            std::puts("Usage: vramfs status MOUNTPOINT [--json | --prometheus]\n"
                      "Devices (budget, used, reserved, free VRAM on the card, files), files (size,\n"
                      "VRAM allocated, device), counters and request timing of a mounted vramfs.\n"
                      "--json: the same for scripts. --prometheus: device totals, counters and\n"
                      "timing in the Prometheus text format, for node_exporter's textfile\n"
                      "collector (vramfs status /mnt/vram --prometheus > DIR/vramfs.prom).");
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
    // The status is made afresh for each call, and its counters move: it can outgrow the size
    // the first call gave (ERANGE), so ask with room to spare, and again if that was not enough.
    std::string value;
    ssize_t n = -1;
    for (int attempt = 0; attempt < 5; ++attempt) {
        n = ::getxattr(mountpoint.c_str(), vramfs::kStatusJsonXattr, nullptr, 0);
        if (n <= 0) break;
        value.resize(static_cast<std::size_t>(n) + 4096);
        n = ::getxattr(mountpoint.c_str(), vramfs::kStatusJsonXattr, value.data(), value.size());
        if (n >= 0 || errno != ERANGE) break;
    }
    if (n < 0) {
        std::fprintf(stderr, "vramfs: %s is not a vramfs mount (%s)\n", mountpoint.c_str(),
                     errno == ENODATA || errno == ENOTSUP ? "no status there" : std::strerror(errno));
        return vramfs::kExitFailure;
    }
    value.resize(static_cast<std::size_t>(n));
    vramfs::StatusSnapshot snapshot;
    std::string error;
    if (!vramfs::parse_status_json(value, snapshot, error)) {
        std::fprintf(stderr, "vramfs: the status of %s is not readable (%s): a different vramfs version?\n",
                     mountpoint.c_str(), error.c_str());
        return vramfs::kExitFailure;
    }
    const std::string out = form == Form::json         ? vramfs::status_json(snapshot)
                            : form == Form::prometheus ? vramfs::status_prometheus(snapshot, mountpoint)
                                                       : vramfs::status_text(snapshot);
    std::fputs(out.c_str(), stdout);
    return 0;
}

// vramfs size SIZE: the bytes SIZE means to vramfs, for scripts (vramfs-swap) that must mean
// the same.
int size_command(int argc, char** argv) {
    if (argc == 3 && (std::strcmp(argv[2], "-h") == 0 || std::strcmp(argv[2], "--help") == 0)) {
        std::puts("Usage: vramfs size SIZE\nPrints the bytes SIZE means to vramfs (6G, 1.5G, 200MB, "
                  "4GiB, 4096). Exit 2 if it is not a size.");
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "vramfs: size takes one SIZE, e.g. vramfs size 6G\n");
        return vramfs::kExitUsage;
    }
    std::string why;
    const auto bytes = vramfs::parse_size(argv[2], &why);
    if (!bytes) {
        std::fprintf(stderr, "vramfs: invalid SIZE '%s': %s\n", argv[2], why.c_str());
        return vramfs::kExitUsage;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*bytes));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "status") == 0) return status_command(argc, argv);
    if (argc >= 2 && std::strcmp(argv[1], "size") == 0) return size_command(argc, argv);
    const vramfs::ParseResult parsed = vramfs::parse_command_line(argc, argv);
    if (parsed.done) {
        if (!parsed.output.empty()) std::fputs(parsed.output.c_str(), stdout);
        if (!parsed.error.empty()) std::fprintf(stderr, "%s\n", parsed.error.c_str());
        return parsed.exit_code;
    }
    return vramfs::run(parsed.config);
}
