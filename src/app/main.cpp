// vramfs: parse the command line, then mount and serve; or one of the subcommands that answer
// scripts (status, size) without mounting.
#include "vramfs/app/config.hpp"
#include "vramfs/app/daemon.hpp"
#include "vramfs/app/options.hpp"
#include "vramfs/status/format.hpp"
#include "vramfs/util/size.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/xattr.h>

namespace {

// Runs a subcommand's CLI11 parser over argv[1..]: 0 to go on, else the exit code to end with
// (help answered, or bad usage said in one line).
int parse_subcommand(CLI::App& app, int argc, char** argv, int& exit_code) {
    try {
        app.parse(argc - 1, argv + 1);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        exit_code = 0;
        return 1;
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        for (char& ch : what)
            if (ch == '\n') ch = ' ';
        std::fprintf(stderr, "%s: %s (see %s --help)\n", app.get_name().c_str(), what.c_str(),
                     app.get_name().c_str());
        exit_code = vramfs::kExitUsage;
        return 1;
    }
    return 0;
}

// The status JSON of a mount, read through the filesystem itself (the virtual xattr
// user.vramfs.status.json of its root), so no other channel to the daemon exists.
bool read_status(const std::string& mountpoint, vramfs::StatusSnapshot& snapshot) {
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
        const char* why = errno == ENODATA || errno == ENOTSUP ? "no status there"
                          : errno == ENOTCONN ? "its daemon is gone"
                                              : std::strerror(errno);
        std::fprintf(stderr, "vramfs: %s is not a working vramfs mount (%s)\n", mountpoint.c_str(), why);
        return false;
    }
    value.resize(static_cast<std::size_t>(n));
    std::string error;
    if (!vramfs::parse_status_json(value, snapshot, error)) {
        std::fprintf(stderr, "vramfs: the status of %s is not readable (%s): a different vramfs version?\n",
                     mountpoint.c_str(), error.c_str());
        return false;
    }
    return true;
}

// vramfs status MOUNTPOINT [--json|--prometheus|--devices]: the running daemon's view.
int status_command(int argc, char** argv) {
    CLI::App app{"Devices (budget, used, reserved, free VRAM on the card, files), files (size,\n"
                 "VRAM allocated, device), counters and request timing of a mounted vramfs.",
                 "vramfs status"};
    std::string mountpoint;
    bool json = false, prometheus = false, devices = false;
    app.add_option("MOUNTPOINT", mountpoint, "a vramfs mount")->required();
    auto* j = app.add_flag("--json", json, "the same for scripts");
    auto* p = app.add_flag("--prometheus", prometheus,
                           "device totals, counters and timing in the Prometheus text format, for "
                           "node_exporter's textfile collector (> DIR/vramfs.prom)");
    auto* d = app.add_flag("--devices", devices,
                           "one line per device, 'INDEX BACKEND ok|lost', for scripts (vramfs-swap)");
    j->excludes(p)->excludes(d);
    p->excludes(d);
    int rc = 0;
    if (parse_subcommand(app, argc, argv, rc)) return rc;
    vramfs::StatusSnapshot snapshot;
    if (!read_status(mountpoint, snapshot)) return vramfs::kExitFailure;
    if (devices) {
        for (const auto& dev : snapshot.devices)
            std::printf("%d %s %s\n", dev.index, dev.kind.c_str(), dev.lost ? "lost" : "ok");
        return 0;
    }
    const std::string out = json         ? vramfs::status_json(snapshot)
                            : prometheus ? vramfs::status_prometheus(snapshot, vramfs::absolute_path(mountpoint))
                                         : vramfs::status_text(snapshot);
    std::fputs(out.c_str(), stdout);
    return 0;
}

// vramfs size SIZE [--swap-budget]: the bytes SIZE means to vramfs, for scripts (vramfs-swap)
// that must mean the same.
int size_command(int argc, char** argv) {
    CLI::App app{"Prints the bytes SIZE means to vramfs (6G, 1.5G, 200MB, 4GiB, 4096).\n"
                 "Exit 2 if it is not a size.",
                 "vramfs size"};
    std::string text;
    bool swap_budget = false;
    app.add_option("SIZE", text, "a size")->required();
    app.add_flag("--swap-budget", swap_budget,
                 "print instead the budget a mount needs for a file of SIZE bytes whatever "
                 "--block-size it has (SIZE rounded up to the largest block)");
    int rc = 0;
    if (parse_subcommand(app, argc, argv, rc)) return rc;
    std::string why;
    const auto bytes = vramfs::parse_size(text, &why);
    if (!bytes) {
        std::fprintf(stderr, "vramfs: invalid SIZE '%s': %s\n", text.c_str(), why.c_str());
        return vramfs::kExitUsage;
    }
    const std::uint64_t out = swap_budget ? vramfs::budget_for_file(*bytes) : *bytes;
    std::printf("%llu\n", static_cast<unsigned long long>(out));
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
