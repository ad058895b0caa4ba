// Command-line parsing (CLI11), validation of the mount point, and the FUSE argument vector.
#include "vramfs/app/config.hpp"

#include "vramfs/util/size.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <type_traits>
#include <sys/stat.h>
#include <unistd.h>

#ifndef VRAMFS_VERSION
#define VRAMFS_VERSION "0.0.0"
#endif

namespace vramfs {
namespace {

std::vector<std::string> split_commas(const std::vector<std::string>& items) {
    std::vector<std::string> out;
    for (const auto& item : items) {
        std::stringstream ss(item);
        std::string part;
        while (std::getline(ss, part, ','))
            if (!part.empty()) out.push_back(part);
    }
    return out;
}

} // namespace

ParseResult parse_command_line(int argc, const char* const* argv) {
    ParseResult r;
    Config& c = r.config;
    CLI::App app{"vramfs: a filesystem whose files live in GPU memory (VRAM).\n"
                 "A file is a sized pool of VRAM: use it as scratch space or, through a loop\n"
                 "device, as swap (see vramfs-swap). Unmount with: fusermount3 -u MOUNTPOINT",
                 "vramfs"};
    app.set_version_flag("--version", "vramfs " VRAMFS_VERSION);
    app.get_formatter()->column_width(26);

    std::string size_text, backend_text = "cuda", block_text = "1M", max_io_text = "1M",
                level_text = "info";
    std::string size_text_o, backend_text_o; // from -o size=..., backend=...
    std::vector<std::string> opts;
    app.add_option("MOUNTPOINT", c.mountpoint, "an existing, empty directory to mount on");
    app.add_option("SIZE", size_text,
                   "the VRAM budget: bytes or K/M/G/T (powers of 1024), e.g. 6G");
    std::vector<std::string> device_texts;
    app.add_option("--device", device_texts,
                   "CUDA device index (see --list-devices); repeat it or give a list (0,1) to "
                   "span several GPUs, each with SIZE")
        ->type_size(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--backend", backend_text,
                   "where file data lives: cuda (VRAM) or host (locked RAM, for tests)")
        ->default_val("cuda");
    app.add_flag("-f,--foreground", c.foreground, "stay in the foreground, log to stderr");
    app.add_option("-o", opts, "FUSE mount options, comma separated (allow_other, ...)")
        ->type_size(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    app.add_option("--threads", c.threads, "FUSE worker threads (1-256)")->default_val(8);
    auto* poll_opt = app.add_option("--poll-us", c.poll_us,
                   "after a request, spin this many microseconds for the next before sleeping "
                   "(0-10000; default 200 with 8 or more CPUs, else 0; lower latency, costs up "
                   "to two cores while busy)");
    bool poll_from_o = false;
    app.add_option("--read-cache", c.read_cache,
                   "1 MiB host windows kept for small reads that walk through a file, as swap-in "
                   "does (0-64; 0 turns it off)")
        ->default_val(8);
    app.add_option("--block-size", block_text,
                   "allocation unit, a power of two from 4K to 64M")
        ->default_val("1M");
    app.add_option("--max-io", max_io_text,
                   "largest read or write request, a power of two from 4K to 1M; the kernel "
                   "splits a larger O_DIRECT request into pieces it sends at once")
        ->default_val("1M");
    app.add_flag("--null-io", c.null_io,
                 "benchmark mode: store nothing, read zeros (measures FUSE alone)");
    app.add_flag("--direct-io", c.direct_io, "bypass the kernel page cache for file data");
    app.add_flag("--writeback-cache", c.writeback_cache,
                 "let the kernel gather buffered writes before sending them (a full mount then "
                 "reports ENOSPC at fsync or close, not at write)");
    app.add_option("--release-delay", c.release_delay,
                   "seconds freed VRAM waits before going back to the GPU (0: at once)")
        ->default_val(5);
    app.add_option("--log-level", level_text, "error, warning, info or debug")
        ->default_val("info");
    app.add_flag("-d,--debug", c.fuse_debug, "print every FUSE request (implies -f)");
    app.add_flag("--list-devices", c.list_devices,
                 "list CUDA devices with free and total VRAM, then exit");
    std::string faults_text;
    // Test only, so not in --help: make the storage fail on purpose.
    app.add_option("--inject-faults", faults_text)->group("");
    app.add_flag("--check", c.check,
                 "check what vramfs and vramfs-swap need on this machine, then exit");
    app.footer("vramfs status MOUNTPOINT [--json] shows a mount's devices, files and counters.\n\n"
               "Options may also be given as -o size=6G,device=0,backend=cuda,threads=8,\n"
               "poll_us=200,read_cache=8,block_size=1M,max_io=1M,release_delay=5,\n"
               "log_level=info,null_io,direct_io,writeback_cache: that is how mount -t\n"
               "fuse.vramfs and /etc/fstab pass them, e.g.\n"
               "  vramfs  /mnt/vram  fuse.vramfs  size=6G,device=0,nofail  0 0");

    auto fail = [&](const std::string& msg) {
        r.done = true;
        r.exit_code = kExitUsage;
        r.error = "vramfs: " + msg + " (see vramfs --help)";
        return r;
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        r.done = true;
        r.output = app.help();
        return r;
    } catch (const CLI::CallForVersion& e) {
        r.done = true;
        r.output = std::string(e.what()) + "\n";
        return r;
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        for (char& ch : what)
            if (ch == '\n') ch = ' ';
        return fail(what);
    }

    auto set_backend = [&](const std::string& text) {
        if (text == "cuda")
            c.backend = BackendKind::cuda;
        else if (text == "host")
            c.backend = BackendKind::host;
        else
            return false;
        return true;
    };
    if (!set_backend(backend_text))
        return fail("unknown backend '" + backend_text + "' (use cuda or host)");
    if (c.fuse_debug) c.foreground = true;

    std::string why;
    // vramfs's own options inside -o (the mount(8)/fstab form) are taken out; the rest go to FUSE.
    bool size_from_o = false;
    for (const auto& o : split_commas(opts)) {
        const auto eq = o.find('=');
        const std::string key = o.substr(0, eq), val = eq == std::string::npos ? "" : o.substr(eq + 1);
        auto number = [&](auto& out) {
            try {
                std::size_t used = 0;
                const long long v = std::stoll(val, &used);
                if (used != val.size()) return false;
                out = static_cast<std::remove_reference_t<decltype(out)>>(v);
                return true;
            } catch (...) {
                return false;
            }
        };
        bool ok = true;
        if (key == "size" && eq != std::string::npos) {
            size_text_o = val;
            size_from_o = true;
        } else if (key == "device" && eq != std::string::npos) {
            device_texts.push_back(val);
        } else if (key == "threads" && eq != std::string::npos) {
            ok = number(c.threads);
        } else if (key == "read_cache" && eq != std::string::npos) {
            ok = number(c.read_cache);
        } else if (key == "poll_us" && eq != std::string::npos) {
            ok = number(c.poll_us);
            poll_from_o = true;
        } else if (key == "backend" && eq != std::string::npos) {
            backend_text_o = val;
        } else if (key == "block_size" && eq != std::string::npos) {
            block_text = val;
        } else if (key == "max_io" && eq != std::string::npos) {
            max_io_text = val;
        } else if (key == "release_delay" && eq != std::string::npos) {
            try {
                c.release_delay = std::stod(val);
            } catch (...) {
                ok = false;
            }
        } else if (key == "log_level" && eq != std::string::npos) {
            level_text = val;
        } else if (o == "null_io") {
            c.null_io = true;
        } else if (o == "direct_io") {
            c.direct_io = true;
        } else if (o == "writeback_cache") {
            c.writeback_cache = true;
        } else {
            c.fuse_options.push_back(o);
            continue;
        }
        if (!ok) return fail("invalid value in -o " + o);
    }
    if (!backend_text_o.empty() && !set_backend(backend_text_o))
        return fail("unknown backend '" + backend_text_o + "' (use cuda or host)");
    if (!parse_log_level(level_text.c_str(), c.log_level))
        return fail("unknown log level '" + level_text + "'");
    if (size_from_o) {
        // mount.fuse3 runs "vramfs SOURCE MOUNTPOINT -o size=...": the source is a label.
        if (!size_text.empty()) c.mountpoint = size_text;
        size_text = size_text_o;
    }
    if (!faults_text.empty() && !parse_fault_plan(faults_text, c.faults, why))
        return fail("invalid --inject-faults: " + why);
    if (c.list_devices || c.check) return r;

    if (c.mountpoint.empty()) return fail("missing MOUNTPOINT and SIZE");
    if (size_text.empty()) return fail("missing SIZE, e.g. 6G");

    // Devices: "--device 0 --device 1", "--device 0,1", or in SIZE as "0:4G,1:2G".
    std::vector<int> indices;
    for (const auto& part : split_commas(device_texts)) {
        const auto d = parse_device_index(part);
        if (!d) return fail("--device takes device indices (0, 1, ...), not '" + part + "'");
        indices.push_back(*d);
    }
    auto parse_budget = [&](const std::string& text, std::uint64_t& out) {
        auto v = parse_size(text, &why);
        if (!v) return "invalid SIZE '" + text + "': " + why;
        if (*v == 0) return std::string("SIZE must be more than zero");
        out = *v;
        return std::string();
    };
    if (size_text.find(':') != std::string::npos) {
        if (!indices.empty()) return fail("give the devices either with --device or in SIZE, not both");
        for (const auto& item : split_commas({size_text})) {
            const auto colon = item.find(':');
            const auto index = colon == std::string::npos ? std::nullopt
                                                          : parse_device_index(item.substr(0, colon));
            if (!index)
                return fail("invalid SIZE '" + size_text + "': expected DEVICE:SIZE,... as in 0:4G,1:2G");
            DeviceBudget d;
            d.index = *index;
            if (auto err = parse_budget(item.substr(colon + 1), d.size); !err.empty()) return fail(err);
            c.devices.push_back(d);
        }
    } else {
        std::uint64_t each = 0;
        if (auto err = parse_budget(size_text, each); !err.empty()) return fail(err);
        if (indices.empty()) indices.push_back(0);
        for (int d : indices) c.devices.push_back({d, each});
    }
    for (std::size_t i = 0; i < c.devices.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (c.devices[i].index == c.devices[j].index)
                return fail("device " + std::to_string(c.devices[i].index) + " is given twice");
    auto block = parse_size(block_text, &why);
    if (!block) return fail("invalid --block-size '" + block_text + "': " + why);
    if (*block < 4096 || *block > (64u << 20) || (*block & (*block - 1)) != 0)
        return fail("--block-size must be a power of two from 4K to 64M");
    c.block_size = *block;
    auto max_io = parse_size(max_io_text, &why);
    if (!max_io) return fail("invalid --max-io '" + max_io_text + "': " + why);
    if (*max_io < 4096 || *max_io > (1u << 20) || (*max_io & (*max_io - 1)) != 0)
        return fail("--max-io must be a power of two from 4K to 1M");
    c.max_io = *max_io;
    for (const auto& d : c.devices)
        if (d.size < c.block_size)
            return fail("SIZE " + format_size(d.size) + " is smaller than one block (" +
                        format_size(c.block_size) + ")");
    if (c.threads < 1 || c.threads > 256) return fail("--threads must be from 1 to 256");
    if (poll_opt->count() == 0 && !poll_from_o) c.poll_us = default_poll_us();
    if (c.poll_us > 10000) return fail("--poll-us must be from 0 to 10000");
    if (c.read_cache > 64) return fail("--read-cache must be from 0 to 64");
    if (!(c.release_delay >= 0 && c.release_delay <= 3600))
        return fail("--release-delay must be from 0 to 3600 seconds");
    return r;
}

unsigned default_poll_us() {
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 8 ? 200 : 0;
}

std::string check_mountpoint(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOTCONN)
            return "mount point " + path +
                   " is a dead FUSE mount; run: fusermount3 -u " + path;
        return "mount point " + path + ": " + std::strerror(errno);
    }
    if (!S_ISDIR(st.st_mode)) return "mount point " + path + " is not a directory";
    struct stat parent{};
    const std::string up = path + "/..";
    if (::stat(up.c_str(), &parent) == 0 &&
        (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino))
        return path + " is already a mount point (already mounted?)";
    return "";
}

std::vector<std::string> fuse_arguments(const Config& c) {
    std::vector<std::string> args{"vramfs"};
    // default_permissions: the kernel checks modes and owners against the attributes we report.
    // The source names the backend and device ("vramfs-cuda0"), so /proc/mounts and df tell
    // which GPU a mount uses.
    std::string source = std::string("vramfs-") + (c.backend == BackendKind::cuda ? "cuda" : "host");
    for (std::size_t i = 0; i < c.devices.size(); ++i)
        source += (i ? "+" : "") + std::to_string(c.devices[i].index);
    if (c.devices.empty()) source += "0"; // a Config made by hand: device 0, as the default
    std::string opts = "fsname=" + source + ",subtype=vramfs,default_permissions,max_read=" +
                       std::to_string(c.max_io);
    for (const auto& o : c.fuse_options) opts += "," + o;
    args.push_back("-o");
    args.push_back(opts);
    if (c.fuse_debug) args.push_back("-d");
    return args;
}

} // namespace vramfs
