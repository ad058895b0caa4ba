// vramfs: parse the command line, then mount and serve; or one of the subcommands that answer
// scripts (status, size) or move a mount's data (yield, reclaim) without mounting.
#include "vramfs/app/config.hpp"
#include "vramfs/app/daemon.hpp"
#include "vramfs/app/options.hpp"
#include "vramfs/status/format.hpp"
#include "vramfs/util/size.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <chrono>
#include <optional>
#include <thread>
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
                           "one line per device, 'INDEX BACKEND ok|lost spill|-', for scripts (vramfs-swap)");
    j->excludes(p)->excludes(d);
    p->excludes(d);
    int rc = 0;
    if (parse_subcommand(app, argc, argv, rc)) return rc;
    vramfs::StatusSnapshot snapshot;
    if (!read_status(mountpoint, snapshot)) return vramfs::kExitFailure;
    if (devices) {
        for (const auto& dev : snapshot.devices)
            std::printf("%d %s %s %s\n", dev.index, dev.kind.c_str(), dev.lost ? "lost" : "ok",
                        dev.has_spill ? "spill" : "-");
        return 0;
    }
    const std::string out = json         ? vramfs::status_json(snapshot)
                            : prometheus ? vramfs::status_prometheus(snapshot, vramfs::absolute_path(mountpoint))
                                         : vramfs::status_text(snapshot);
    std::fputs(out.c_str(), stdout);
    return 0;
}

// vramfs yield MOUNTPOINT SIZE|all and vramfs reclaim MOUNTPOINT: moves data of a mount with
// --spill to its spill file (giving the VRAM back to the GPU) or back, through the root's
// user.vramfs.spill attribute, then waits for the daemon's tier to settle and says where it is.
int spill_command(int argc, char** argv, bool yield) {
    CLI::App app{yield ? "Moves SIZE of a --spill mount's data (all: everything) from VRAM to its spill file\n"
                         "and gives that VRAM back to the GPU, for a game or a GPU job; it stays yielded\n"
                         "until 'vramfs reclaim'. Files keep their contents and size throughout."
                       : "Lifts what 'vramfs yield' set: data comes back from the spill to VRAM as far as\n"
                         "the card's free memory allows (above --keep-free).",
                 yield ? "vramfs yield" : "vramfs reclaim"};
    std::string mountpoint, amount;
    double timeout = 600;
    bool no_wait = false;
    app.add_option("MOUNTPOINT", mountpoint, "a vramfs mount with --spill")->required();
    if (yield) app.add_option("SIZE", amount, "how much VRAM to give back (6G, 512M), or all")->required();
    app.add_option("--timeout", timeout, "seconds to wait for the data to move (default 600)")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_flag("--no-wait", no_wait, "ask and return at once; 'vramfs status' shows the progress");
    int rc = 0;
    if (parse_subcommand(app, argc, argv, rc)) return rc;
    const char* name = yield ? "vramfs yield" : "vramfs reclaim";
    std::string value = "reclaim";
    if (yield) {
        std::string why;
        const auto bytes = amount == "all" ? std::optional<std::uint64_t>(0) : vramfs::parse_size(amount, &why);
        if (!bytes) {
            std::fprintf(stderr, "%s: invalid SIZE '%s': %s (or all)\n", name, amount.c_str(), why.c_str());
            return vramfs::kExitUsage;
        }
        value = amount == "all" ? "yield all" : "yield " + std::to_string(*bytes);
    }
    if (::setxattr(mountpoint.c_str(), vramfs::kSpillXattr, value.data(), value.size(), 0) != 0) {
        const int err = errno;
        const char* why = err == EOPNOTSUPP ? "it was mounted without --spill: nothing can move"
                          : err == ENOTSUP || err == ENODATA ? "not a vramfs mount"
                          : err == EPERM || err == EACCES ? "only root and the mount's owner may do this"
                                                          : std::strerror(err);
        std::fprintf(stderr, "%s: %s: %s\n", name, mountpoint.c_str(), why);
        return vramfs::kExitFailure;
    }
    const auto start = std::chrono::steady_clock::now();
    vramfs::StatusSnapshot snapshot;
    for (;;) {
        if (!read_status(mountpoint, snapshot)) return vramfs::kExitFailure;
        bool settled = true;
        for (const auto& d : snapshot.devices) settled = settled && (!d.has_spill || d.spill.settled);
        const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (settled || no_wait || waited >= timeout) {
            for (const auto& d : snapshot.devices) {
                if (!d.has_spill) continue;
                std::printf("%s device %d: %s in VRAM, %s on the spill%s\n", d.kind.c_str(), d.index,
                            vramfs::format_size(d.spill.in_vram).c_str(), vramfs::format_size(d.spill.on_spill).c_str(),
                            d.spill.settled ? "" : " (still moving)");
            }
            if (!settled && !no_wait) {
                std::fprintf(stderr, "%s: still moving after %.0f s (see vramfs status %s)\n", name, waited,
                             mountpoint.c_str());
                return vramfs::kExitFailure;
            }
            return 0;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
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
    if (argc >= 2 && std::strcmp(argv[1], "yield") == 0) return spill_command(argc, argv, true);
    if (argc >= 2 && std::strcmp(argv[1], "reclaim") == 0) return spill_command(argc, argv, false);
    const vramfs::ParseResult parsed = vramfs::parse_command_line(argc, argv);
    if (parsed.done) {
        if (!parsed.output.empty()) std::fputs(parsed.output.c_str(), stdout);
        if (!parsed.error.empty()) std::fprintf(stderr, "%s\n", parsed.error.c_str());
        return parsed.exit_code;
    }
    return vramfs::run(parsed.config);
}
