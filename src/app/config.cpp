// Command-line parsing (CLI11), validation of the mount point, and the FUSE argument vector.
#include "vramfs/app/config.hpp"

#include "vramfs/app/options.hpp"

#include "vramfs/util/size.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <sstream>
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

// "--threads must be ..." on the command line, "-o threads: expected ..." in the -o form.
std::string option_error(const OptionSpec& spec, bool from_o, const std::string& err) {
    const std::string name = from_o ? "-o " + o_name(spec) : std::string("--") + spec.name;
    return name + (err.rfind("must ", 0) == 0 ? " " : ": ") + err;
}

// The devices and their budgets, from SIZE and --device; "" or what is wrong.
std::string resolve_devices(Config& c, const ParseState& st) {
    std::vector<int> indices;
    for (const auto& part : split_commas(st.device_texts)) {
        const auto d = parse_device_index(part);
        if (!d) return "--device takes device indices (0, 1, ...), not '" + part + "'";
        indices.push_back(*d);
    }
    std::string why;
    auto budget = [&](const std::string& text, std::uint64_t& out) {
        auto v = parse_size(text, &why);
        if (!v) return "invalid SIZE '" + text + "': " + why;
        if (*v == 0) return std::string("SIZE must be more than zero");
        out = *v;
        return std::string();
    };
    if (st.size_text.find(':') != std::string::npos) {
        if (!indices.empty()) return "give the devices either with --device or in SIZE, not both";
        for (const auto& item : split_commas({st.size_text})) {
            const auto colon = item.find(':');
            const auto index = colon == std::string::npos ? std::nullopt
                                                          : parse_device_index(item.substr(0, colon));
            if (!index)
                return "invalid SIZE '" + st.size_text + "': expected DEVICE:SIZE,... as in 0:4G,1:2G";
            DeviceBudget d;
            d.index = *index;
            if (auto err = budget(item.substr(colon + 1), d.size); !err.empty()) return err;
            c.devices.push_back(d);
        }
    } else {
        std::uint64_t each = 0;
        if (auto err = budget(st.size_text, each); !err.empty()) return err;
        if (indices.empty()) indices.push_back(0);
        for (int d : indices) c.devices.push_back({d, each});
    }
    for (std::size_t i = 0; i < c.devices.size(); ++i)
        for (std::size_t j = 0; j < i; ++j)
            if (c.devices[i].index == c.devices[j].index)
                return "device " + std::to_string(c.devices[i].index) + " is given twice";
    for (const auto& d : c.devices)
        if (d.size < c.block_size)
            return "SIZE " + format_size(d.size) + " is smaller than one block (" +
                   format_size(c.block_size) + ")";
    return "";
}

} // namespace

namespace {

// What CLI11 collects of the table's options: each option's values in the order given.
struct GivenOptions {
    std::vector<std::vector<std::string>> repeated; // repeatable options: every value
    std::vector<std::string> last;                  // the others: the last value
    std::vector<CLI::Option*> options;              // null for -o-only options
};

// Adds every option of the table to `app`; returns the -o names, for the help's footer.
std::string add_table_options(CLI::App& app, GivenOptions& given) {
    const auto& table = option_table();
    given.repeated.resize(table.size());
    given.last.resize(table.size());
    given.options.assign(table.size(), nullptr);
    std::string o_names;
    for (std::size_t i = 0; i < table.size(); ++i) {
        const OptionSpec& spec = table[i];
        if (spec.in_o)
            o_names += (o_names.empty() ? "" : ", ") + o_name(spec) + (spec.value_name ? "=" : "");
        if (!spec.on_command_line) continue;
        std::string names = std::string("--") + spec.name;
        if (spec.short_name) names = std::string("-") + spec.short_name + "," + names;
        CLI::Option* o;
        if (spec.kind == OptionKind::flag) {
            o = app.add_flag(names)->description(option_help(spec));
        } else {
            if (spec.repeatable)
                o = app.add_option(names, given.repeated[i], option_help(spec))->type_size(1)->allow_extra_args(false);
            else // the last one given wins
                o = app.add_option(names, given.last[i], option_help(spec))
                        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
            o->type_name(spec.value_name);
            if (spec.default_text) o->default_str(spec.default_text);
        }
        if (spec.hidden || spec.tuning) o->group("");
        given.options[i] = o;
    }
    return o_names;
}

// Applies what the command line gave, then -o's, each in table order: a later value wins.
// "" or the error line.
std::string apply_options(const GivenOptions& given, const std::vector<std::string>& o_items, Config& c,
                          ParseState& st) {
    const auto& table = option_table();
    for (std::size_t i = 0; i < table.size(); ++i) {
        std::vector<std::string> values = given.repeated[i];
        if (given.options[i] && given.options[i]->count() > 0 && !table[i].repeatable)
            values.assign(1, given.last[i]); // "" for a flag
        for (const auto& v : values)
            if (auto err = apply_option(table[i], c, st, v); !err.empty()) return option_error(table[i], false, err);
    }
    for (const auto& o : split_commas(o_items)) {
        const auto eq = o.find('=');
        const std::string key = o.substr(0, eq), val = eq == std::string::npos ? "" : o.substr(eq + 1);
        const OptionSpec* spec = nullptr;
        for (const auto& s : table)
            if (s.in_o && o_name(s) == key && (s.kind == OptionKind::flag) == (eq == std::string::npos))
                spec = &s;
        if (!spec) {
            c.fuse_options.push_back(o); // FUSE's, or the kernel's
            continue;
        }
        if (auto err = apply_option(*spec, c, st, val); !err.empty()) return option_error(*spec, true, err);
    }
    return "";
}

// The mount point, its source label and the devices, from the two positionals: MOUNTPOINT SIZE,
// or SOURCE MOUNTPOINT with -o size= (mount.fuse3 runs "vramfs SOURCE MOUNTPOINT -o ...").
// "" or the error line.
std::string place_mount(const std::string& first, const std::string& second, Config& c, ParseState& st) {
    c.mountpoint = st.size_from_o && !second.empty() ? second : first;
    if (st.size_from_o && !second.empty()) c.source = first;
    // A path that does not resolve is left as it is, for check_mountpoint to report.
    if (!c.mountpoint.empty()) c.mountpoint = absolute_path(c.mountpoint);
    if (!st.size_from_o) st.size_text = second;
    if (c.mountpoint.empty()) return "missing MOUNTPOINT and SIZE";
    if (st.size_text.empty()) return "missing SIZE, e.g. 6G";
    return resolve_devices(c, st);
}

} // namespace

ParseResult parse_command_line(int argc, const char* const* argv) {
    ParseResult r;
    CLI::App app{"vramfs: a filesystem whose files live in GPU memory (VRAM).\n"
                 "A file is a sized pool of VRAM: use it as scratch space or, through a loop\n"
                 "device, as swap (see vramfs-swap). Unmount with: fusermount3 -u MOUNTPOINT",
                 "vramfs"};
    app.set_version_flag("--version", "vramfs " VRAMFS_VERSION);
    app.get_formatter()->column_width(26);
    std::string first, second; // MOUNTPOINT SIZE, or SOURCE MOUNTPOINT in the mount(8) form
    std::vector<std::string> o_items;
    bool markdown = false, arity = false;
    app.add_option("MOUNTPOINT", first, "an existing, empty directory to mount on");
    app.add_option("SIZE", second,
                   "the VRAM budget: bytes or K/M/G/T (powers of 1024), e.g. 6G; "
                   "DEVICE:SIZE,... for a budget per device");
    app.add_option("-o", o_items, "mount options, comma separated: vramfs's own (below) and FUSE's "
                                  "(allow_other, ...)")
        ->type_size(1)
        ->allow_extra_args(false);
    GivenOptions given;
    const std::string o_names = add_table_options(app, given);
    app.add_flag("--options-markdown", markdown)->group(""); // writes docs/options.md
    app.add_flag("--option-arity", arity)->group("");        // for vramfs-swap
    app.footer("vramfs status MOUNTPOINT [--json|--prometheus|--devices] shows a mount's devices, "
               "files and counters.\nvramfs size SIZE prints the bytes SIZE means.\n\nIn the -o form "
               "(mount -t fuse.vramfs, /etc/fstab) vramfs takes " +
               o_names + ", e.g.\n  vramfs  /mnt/vram  fuse.vramfs  size=6G,device=0,nofail  0 0\n"
               "Every option is described in docs/options.md and vramfs(1).");

    auto finish = [&](std::string output) {
        r.done = true;
        r.output = std::move(output);
        return r;
    };
    auto fail = [&](const std::string& msg) {
        r.done = true;
        r.exit_code = kExitUsage;
        r.error = "vramfs: " + msg + " (see vramfs --help)";
        return r;
    };
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        return finish(app.help());
    } catch (const CLI::CallForVersion& e) {
        return finish(std::string(e.what()) + "\n");
    } catch (const CLI::ParseError& e) {
        std::string what = e.what();
        std::replace(what.begin(), what.end(), '\n', ' ');
        return fail(what);
    }
    if (markdown || arity) return finish(markdown ? options_markdown() : option_arity());

    Config& c = r.config;
    ParseState st;
    if (auto err = apply_options(given, o_items, c, st); !err.empty()) return fail(err);
    if (c.fuse_debug) c.foreground = true;
    if (!st.poll_given) c.poll_us = default_poll_us();
    if (c.list_devices || c.check) return r;
    if (auto err = place_mount(first, second, c, st); !err.empty()) return fail(err);
    return r;
}

VulkanTuning vulkan_tuning(const Config& c) {
    VulkanTuning t;
    t.fence_spin_us = c.vk_fence_spin_us;
    t.queue_write_kib = c.vk_queue_write_kib;
    t.mapped_read_kib = c.vk_mapped_read_kib;
    t.fresh_on_queue = c.vk_fresh_queue != 0;
    t.host_import = c.vk_host_import != 0;
    t.batch = c.vk_batch != 0;
    t.batch_barrier = c.vk_batch_barrier != 0;
    t.in_flight = c.vk_in_flight;
    t.queues = c.vk_queues;
    t.queue_family = c.vk_queue_family;
    return t;
}

TransportTuning transport_tuning(const Config& c) {
    TransportTuning t;
    t.killpriv_v2 = c.killpriv_v2 != 0;
    t.ring_pin_cpu = c.ring_pin_cpu != 0;
    t.ring_poll_us = c.ring_poll_us;
    t.ring_queue_threads = c.ring_queue_threads;
    return t;
}

unsigned default_poll_us() {
    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    return cpus >= 8 ? 200 : 0;
}

std::string check_mountpoint(const std::string& path, bool nonempty) {
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
    if (!nonempty && directory_has_entries(path))
        return "mount point " + path + " is not empty (its files would be hidden while mounted; "
               "-o nonempty mounts over them all the same)";
    return "";
}

std::string absolute_path(const std::string& path) {
    char buf[PATH_MAX];
    return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

bool directory_has_entries(const std::string& path) {
    DIR* dir = ::opendir(path.c_str());
    if (!dir) return false;
    bool any = false;
    while (const dirent* e = ::readdir(dir)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
            any = true;
            break;
        }
    }
    ::closedir(dir);
    return any;
}

const char* backend_name(BackendKind k) noexcept {
    switch (k) {
    case BackendKind::cuda: return "cuda";
    case BackendKind::vulkan: return "vulkan";
    case BackendKind::host: return "host";
    }
    return "?";
}

std::vector<std::string> fuse_arguments(const Config& c) {
    std::vector<std::string> args{"vramfs"};
    // default_permissions: the kernel checks modes and owners against the attributes we report.
    // The source is the mount's own name, so that two mounts tell apart in df and
    // /proc/mounts: mount(8)'s SOURCE where one was given, else "vramfs:" and the mount point
    // (`vramfs status` says which devices it uses).
    const std::string source = c.source.empty() ? "vramfs:" + c.mountpoint : c.source;
    std::string opts = "fsname=" + source + ",subtype=vramfs,default_permissions,max_read=" +
                       std::to_string(c.max_io);
    for (const auto& o : c.fuse_options) opts += "," + o;
    args.push_back("-o");
    args.push_back(opts);
    if (c.fuse_debug) args.push_back("-d");
    return args;
}

} // namespace vramfs
