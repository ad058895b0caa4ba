// The option table and what reads it: applying a value, the -o names, docs/options.md.
#include "vramfs/app/options.hpp"

#include "vramfs/util/size.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace vramfs {
namespace {

std::string set_device(Config&, ParseState& st, const std::string& v) {
    st.device_texts.push_back(v);
    return "";
}

std::string set_backend(Config& c, ParseState&, const std::string& v) {
    if (v == "cuda")
        c.backend = BackendKind::cuda;
    else if (v == "vulkan")
        c.backend = BackendKind::vulkan;
    else if (v == "host")
        c.backend = BackendKind::host;
    else
        return "unknown backend '" + v + "' (use cuda, vulkan or host)";
    c.backend_given = true;
    return "";
}

std::string set_transport(Config& c, ParseState&, const std::string& v) {
    if (v == "auto")
        c.transport = TransportKind::automatic;
    else if (v == "uring")
        c.transport = TransportKind::uring;
    else if (v == "dev")
        c.transport = TransportKind::dev;
    else
        return "unknown transport '" + v + "' (use auto, uring or dev)";
    return "";
}

std::string set_log_level(Config& c, ParseState&, const std::string& v) {
    return parse_log_level(v.c_str(), c.log_level) ? "" : "unknown log level '" + v + "'";
}

std::string poll_given(Config&, ParseState& st, const std::string&) {
    st.poll_given = true;
    return "";
}

std::string set_faults(Config& c, ParseState&, const std::string& v) {
    std::string why;
    return parse_fault_plan(v, c.faults, why) ? "" : why;
}

std::string set_spill(Config& c, ParseState&, const std::string& v) {
    if (v.empty()) return "needs a path";
    c.spill = v;
    return "";
}

std::string set_host_card_file(Config& c, ParseState&, const std::string& v) {
    c.host_card_file = v;
    return "";
}

std::string set_size(Config&, ParseState& st, const std::string& v) {
    st.size_text = v;
    st.size_from_o = true;
    return "";
}

std::string range_text(const OptionSpec& s) {
    if (s.kind == OptionKind::size)
        return format_size(static_cast<std::uint64_t>(s.min)) + " to " +
               format_size(static_cast<std::uint64_t>(s.max));
    auto num = [](double v) {
        std::string t = std::to_string(v);
        t.erase(t.find_last_not_of('0') + 1);
        if (!t.empty() && t.back() == '.') t.pop_back();
        return t;
    };
    return num(s.min) + " to " + num(s.max);
}

OptionSpec flag(const char* name, const char* short_name, const char* help, bool Config::*field,
                bool in_o = true) {
    OptionSpec s{name, short_name, OptionKind::flag, nullptr, nullptr, help};
    s.flag_field = field;
    s.in_o = in_o;
    return s;
}

OptionSpec whole(const char* name, const char* value, const char* def, const char* help,
                 double min, double max, unsigned Config::*field) {
    OptionSpec s{name, nullptr, OptionKind::unsigned_int, value, def, help, min, max};
    s.unsigned_field = field;
    return s;
}

OptionSpec size_opt(const char* name, const char* def, const char* help, double min, double max,
                    std::uint64_t Config::*field) {
    OptionSpec s{name, nullptr, OptionKind::size, "B", def, help, min, max, true};
    s.size_field = field;
    return s;
}

OptionSpec text(const char* name, const char* value, const char* def, const char* help,
                std::string (*apply)(Config&, ParseState&, const std::string&)) {
    OptionSpec s{name, nullptr, OptionKind::text, value, def, help};
    s.apply = apply;
    return s;
}

std::vector<OptionSpec> make_table() {
    std::vector<OptionSpec> t;
    OptionSpec device = text("device", "N[,M...]", "0",
                             "device index of the backend (see --list-devices); repeat it or give a list "
                             "(0,1) to span several GPUs, each with SIZE",
                             set_device);
    device.repeatable = true;
    t.push_back(device);
    t.push_back(text("backend", "cuda|vulkan|host", "cuda",
                     "where file data lives: cuda (NVIDIA VRAM), vulkan (VRAM of any GPU with a "
                     "Vulkan driver) or host (RAM, for tests: devices 0-3, each locking its whole "
                     "budget at mount, since taking RAM while serving swap could wait on the swap)",
                     set_backend));
    t.push_back(flag("foreground", "f", "stay in the foreground, log to stderr",
                     &Config::foreground, false));
    t.push_back(text("transport", "dev|uring|auto", "dev",
                     "how FUSE requests travel: dev (/dev/fuse alone), uring (FUSE over io_uring: "
                     "one queue per CPU, Linux 6.14+ with the fuse module's enable_uring on; "
                     "not yet faster than dev on a GPU: docs/performance.md), or auto (uring where the "
                     "kernel offers it)",
                     set_transport));
    t.push_back(whole("threads", "N", "8", "/dev/fuse worker threads", 1, 256, &Config::threads));
    OptionSpec poll = whole("poll-us", "N", "200 with 8 or more CPUs, else 0",
                            "after a request, spin this many microseconds for the next before "
                            "sleeping (lower latency; costs up to two cores while busy)",
                            0, 10000, &Config::poll_us);
    poll.apply = poll_given;
    t.push_back(poll);
    t.push_back(whole("read-cache", "N", "8",
                      "1 MiB host windows kept for small reads that walk through a file, as "
                      "swap-in does (0 turns it off)",
                      0, 64, &Config::read_cache));
    t.push_back(size_opt("readahead", "2M",
                         "page-cache readahead of the mount, for buffered reads (set as root; "
                         "0 leaves the kernel's 128K)",
                         0, 64 << 20, &Config::readahead));
    t.push_back(size_opt("block-size", "1M",
                         "allocation unit of files past half a block, a power of two (smaller "
                         "files take 4 KiB granules cut from blocks)",
                         4096, 64 << 20,
                         &Config::block_size));
    t.push_back(size_opt("max-io", "1M",
                         "largest read or write request, a power of two; the kernel splits a "
                         "larger O_DIRECT request into pieces it sends at once",
                         4096, 1 << 20, &Config::max_io));
    t.push_back(flag("null-io", nullptr,
                     "benchmark mode: store nothing, read zeros (measures FUSE alone)",
                     &Config::null_io));
    t.push_back(flag("direct-io", nullptr, "bypass the kernel page cache for file data",
                     &Config::direct_io));
    t.push_back(flag("buffered-writes", nullptr,
                     "send writes through the page cache also for files opened write-only (by "
                     "default those bypass it, as cp, dd and tar open them: faster, the same data)",
                     &Config::buffered_writes));
    t.push_back(flag("writeback-cache", nullptr,
                     "let the kernel gather buffered writes before sending them (a full mount "
                     "then reports ENOSPC at fsync or close, not at write)",
                     &Config::writeback_cache));
    OptionSpec delay{"release-delay", nullptr, OptionKind::seconds, "S", "5",
                     "seconds freed VRAM waits before going back to the GPU (0: at once)", 0, 3600};
    delay.seconds_field = &Config::release_delay;
    t.push_back(delay);
    t.push_back(text("spill", "PATH", nullptr,
                     "a disk tier under VRAM: a file (kept, written once) or a directory (an "
                     "unnamed file in it) on a local disk, as large as the budget, that the "
                     "coldest data moves to when other programs want the card's memory (and "
                     "back when it is free); see docs/spill.md",
                     set_spill));
    OptionSpec keep_free = size_opt("keep-free", "1G",
                                    "with --spill: free VRAM left to other programs; when the card has "
                                    "less, data moves to the spill until it has",
                                    0, 1ull << 40, &Config::keep_free);
    keep_free.pow2 = false; // any size: 1.5G, 3G
    t.push_back(keep_free);
    OptionSpec card = text("host-card-file", "PATH", nullptr,
                           "tests: the host backend plays a card of the size (bytes) in PATH, read "
                           "afresh each time, for spill tests",
                           set_host_card_file);
    card.hidden = true;
    t.push_back(card);
    t.push_back(text("log-level", "L", "info", "error, warning, info or debug", set_log_level));
    t.push_back(flag("debug", "d", "print every FUSE request (implies -f)", &Config::fuse_debug,
                     false));
    t.push_back(flag("nonempty", nullptr,
                     "mount over a directory that is not empty (its files are hidden while "
                     "mounted); without it such a mount point is refused",
                     &Config::nonempty));
    t.push_back(flag("list-devices", nullptr,
                     "list CUDA and Vulkan devices (only --backend's, if given) with their free "
                     "memory, then exit",
                     &Config::list_devices, false));
    t.push_back(flag("check", nullptr,
                     "check what vramfs and vramfs-swap need on this machine, then exit",
                     &Config::check, false));
    // Tuning knobs: each default is the one its VulkanTuning or TransportTuning field declares.
    const auto knob = [&t](const char* name, const char* value, const char* def, const char* help,
                           double min, double max, unsigned Config::*field) {
        OptionSpec s = whole(name, value, def, help, min, max, field);
        s.tuning = true;
        t.push_back(s);
    };
    knob("max-background", "N", "0",
         "asynchronous requests the kernel may have waiting on the daemon (0: 64 over /dev/fuse, "
         "where more than the kernel's 12 let the workers take readahead and a loop device's reads "
         "side by side; the kernel's 12 over io_uring)",
         0, 65535, &Config::max_background);
    knob("killpriv-v2", "0|1", "1",
         "the daemon clears set-user-ID and set-group-ID bits itself (0: the kernel does, a request "
         "more per write into such a file)",
         0, 1, &Config::killpriv_v2);
    knob("ring-pin-cpu", "0|1", "0",
         "pin each io_uring queue's threads to its CPU (only small synchronous reads gain: the "
         "kernel's copy of a reply runs on the committing thread)",
         0, 1, &Config::ring_pin_cpu);
    knob("ring-poll-us", "N", "0", "io_uring threads spin this long for a completion before waiting",
         0, 10000, &Config::ring_poll_us);
    knob("ring-queue-threads", "N", "0",
         "threads per online CPU's io_uring queue (0: four, halved while their buffers would pass "
         "72 MiB)",
         0, 8, &Config::ring_queue_threads);
    knob("vk-fence-spin-us", "N", "200 on a GPU, 0 on a CPU driver",
         "microseconds a Vulkan copy's fence is polled before the thread sleeps on it", 0, 100000,
         &Config::vk_fence_spin_us);
    knob("vk-queue-write-kib", "N", "0",
         "with mapped writes, writes of N KiB or more go on the queue instead (0: none)", 0,
         1 << 20, &Config::vk_queue_write_kib);
    knob("vk-mapped-read-kib", "N", "4",
         "with slabs mapped, reads of up to N KiB are the CPU's, out of the mapping (0: all on "
         "the queue)",
         0, 1024, &Config::vk_mapped_read_kib);
    knob("vk-fresh-queue", "0|1", "1",
         "large writes into chunks of a slab the CPU has not written yet go on the queue (0: "
         "through the mapping, page faults and all)",
         0, 1, &Config::vk_fresh_queue);
    knob("vk-host-import", "0|1", "1",
         "host buffers are the daemon's own memory imported into Vulkan where the driver can (0: "
         "the driver's host-visible memory)",
         0, 1, &Config::vk_host_import);
    knob("vk-batch", "0|1", "1",
         "Vulkan copies asked for at once share a submission (0: one submission and fence each)",
         0, 1, &Config::vk_batch);
    knob("vk-batch-barrier", "0|1", "1", "one barrier a submission (0: one after every copy)", 0, 1,
         &Config::vk_batch_barrier);
    knob("vk-in-flight", "N", "2", "with batching, most submissions on a queue at once (0: no limit)",
         0, 64, &Config::vk_in_flight);
    knob("vk-queues", "N", "0", "queues of the copy family used at most (0: all it has, up to 4)", 0,
         4, &Config::vk_queues);
    knob("vk-queue-family", "N", "probed",
         "the Vulkan queue family for copies (default: the one that answered a probe fastest)", 0,
         63, &Config::vk_queue_family);
    OptionSpec faults = text("inject-faults", "PLAN", nullptr,
                             "make the storage fail on purpose (tests)", set_faults);
    faults.in_o = false;
    faults.hidden = true;
    t.push_back(faults);
    OptionSpec size = text("size", "SIZE", nullptr,
                           "the VRAM budget, as SIZE on the command line (the form mount(8) and "
                           "/etc/fstab use)",
                           set_size);
    size.on_command_line = false;
    t.push_back(size);
    return t;
}

// A whole number in [min, max], all digits.
std::string parse_whole(const OptionSpec& s, const std::string& v, unsigned& out) {
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
        return "expected a whole number, not '" + v + "'";
    errno = 0;
    const unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE || n < s.min || n > s.max) return "must be from " + range_text(s);
    out = static_cast<unsigned>(n);
    return "";
}

std::string parse_seconds(const OptionSpec& s, const std::string& v, double& out) {
    char* end = nullptr;
    const double d = v.empty() ? NAN : std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(d)) return "expected seconds, not '" + v + "'";
    if (!(d >= s.min && d <= s.max)) return "must be from " + range_text(s) + " seconds";
    out = d;
    return "";
}

std::string parse_bytes(const OptionSpec& s, const std::string& v, std::uint64_t& out) {
    std::string why;
    const auto n = parse_size(v, &why);
    if (!n) return "invalid size '" + v + "': " + why;
    if (*n < s.min || *n > s.max || (s.pow2 && (*n & (*n - 1)) != 0))
        return std::string("must be ") + (s.pow2 ? "a power of two " : "") + "from " + range_text(s);
    out = *n;
    return "";
}

} // namespace

const std::vector<OptionSpec>& option_table() {
    static const std::vector<OptionSpec> table = make_table();
    return table;
}

std::string o_name(const OptionSpec& spec) {
    std::string n = spec.name;
    for (char& ch : n)
        if (ch == '-') ch = '_';
    return n;
}

std::string apply_option(const OptionSpec& s, Config& c, ParseState& st, const std::string& v) {
    std::string err;
    switch (s.kind) {
    case OptionKind::flag: c.*s.flag_field = true; break;
    case OptionKind::unsigned_int: err = parse_whole(s, v, c.*s.unsigned_field); break;
    case OptionKind::seconds: err = parse_seconds(s, v, c.*s.seconds_field); break;
    case OptionKind::size: err = parse_bytes(s, v, c.*s.size_field); break;
    case OptionKind::text: break;
    }
    if (err.empty() && s.apply) err = s.apply(c, st, v);
    return err;
}

namespace {
// Text for a Markdown table cell: a '|' would end the cell.
std::string cell(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '|') out += '\\';
        out += c;
    }
    return out;
}
} // namespace

std::string option_help(const OptionSpec& s) {
    if (s.kind == OptionKind::unsigned_int || s.kind == OptionKind::seconds ||
        s.kind == OptionKind::size)
        return std::string(s.help) + " (" + range_text(s) + ")";
    return s.help;
}

std::string options_markdown() {
    std::string out =
        "# vramfs options\n\n"
        "Made from the option table in src/app/options.cpp (`vramfs --options-markdown`); a unit\n"
        "test fails when this page, the man page or the bash completion drift from it.\n\n"
        "    vramfs MOUNTPOINT SIZE [OPTIONS]\n"
        "    mount -t fuse.vramfs -o size=SIZE[,OPTION[=VALUE]...] vramfs MOUNTPOINT\n\n"
        "SIZE is bytes or K, M, G, T, P: powers of 1024, with or without `iB`; KB, MB, GB, TB, PB\n"
        "are powers of 1000; fractions take a unit (`1.5G`). `DEVICE:SIZE,...` (`0:4G,1:2G`) gives\n"
        "each device its own budget. `-o` options that vramfs does not know go to FUSE\n"
        "(`allow_other`, `ro`, ...).\n\n"
        "| option | -o form | value | default | what it does |\n"
        "|---|---|---|---|---|\n";
    const auto rows = [&out](bool tuning) {
        for (const OptionSpec& s : option_table()) {
            if (s.hidden || s.tuning != tuning) continue;
            std::string cli = s.on_command_line ? std::string("`--") + s.name + "`" : "";
            if (s.short_name) cli = std::string("`-") + s.short_name + "`, " + cli;
            const std::string o = s.in_o ? "`" + o_name(s) + (s.value_name ? "=`" : "`") : "";
            out += "| " + (cli.empty() ? std::string("(SIZE)") : cli) + " | " + o + " | " +
                   cell(s.value_name ? s.value_name : "") + " | " +
                   cell(s.default_text ? s.default_text : "") + " | " + cell(option_help(s)) + " |\n";
        }
    };
    rows(false);
    out += "\nAlso: `-o OPTIONS` (comma separated, repeatable), `--help`, `--version`,\n"
           "`vramfs status MOUNTPOINT [--json | --prometheus | --devices]` and\n"
           "`vramfs size SIZE [--swap-budget]`.\n\n"
           "## Tuning knobs\n\n"
           "For comparisons (docs/performance.md's lever tables name them): the defaults are what\n"
           "is measured best. Not in `--help`, the man page or the completion, but parsed and\n"
           "range-checked like every option, on the command line and in `-o`.\n\n"
           "| option | -o form | value | default | what it does |\n"
           "|---|---|---|---|---|\n";
    rows(true);
    return out;
}

std::string option_arity() {
    std::string out = "-o 1\n";
    for (const OptionSpec& s : option_table()) {
        if (!s.on_command_line) continue;
        const char* arity = s.kind == OptionKind::flag ? " 0\n" : " 1\n";
        if (s.short_name) out += std::string("-") + s.short_name + arity;
        out += std::string("--") + s.name + arity;
    }
    return out;
}

std::uint64_t budget_for_file(std::uint64_t bytes) {
    for (const OptionSpec& s : option_table()) {
        if (s.size_field != &Config::block_size) continue;
        const auto largest = static_cast<std::uint64_t>(s.max);
        return (bytes + largest - 1) / largest * largest;
    }
    return bytes;
}

} // namespace vramfs
