// The option table is the one definition of each option: the command line and -o accept and
// refuse the same values, the defaults it shows are the defaults used, and the man page, the
// bash completion and docs/options.md name exactly its options.
#include "vramfs/app/options.hpp"
#include "vramfs/util/size.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace vramfs;

namespace {

std::string read_source(const std::string& path) {
    std::ifstream in(std::string(VRAMFS_SOURCE_DIR) + "/" + path);
    REQUIRE_MESSAGE(in.good(), "cannot read " << path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

ParseResult parse(std::vector<std::string> args) {
    args.insert(args.begin(), "vramfs");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

// Every "--name" in `text` (with `dash` spelling each '-', as groff writes "\-").
std::set<std::string> long_options_in(const std::string& text, const std::string& dash) {
    std::set<std::string> out;
    const std::string lead = dash + dash;
    for (std::size_t p = text.find(lead); p != std::string::npos; p = text.find(lead, p + 1)) {
        std::size_t q = p + lead.size();
        std::string name;
        for (;;) {
            if (q < text.size() && (std::islower(static_cast<unsigned char>(text[q])) != 0)) {
                name += text[q++];
            } else if (!name.empty() && text.compare(q, dash.size(), dash) == 0 &&
                       q + dash.size() < text.size() &&
                       std::islower(static_cast<unsigned char>(text[q + dash.size()])) != 0) {
                name += '-';
                q += dash.size();
            } else {
                break;
            }
        }
        if (!name.empty()) out.insert(name);
    }
    return out;
}

// The table's public long options, with the ones every command has and the subcommands' own
// (status, size, yield and reclaim).
std::set<std::string> documented_options() {
    std::set<std::string> out{"help", "version", "json", "prometheus", "devices", "swap-budget", "timeout", "no-wait"};
    for (const auto& s : option_table())
        if (!s.hidden && !s.tuning && s.on_command_line) out.insert(s.name);
    return out;
}

} // namespace

TEST_CASE("the defaults the table shows are the defaults a parse gives") {
    const Config defaults = parse({"/m", "1G"}).config;
    for (const auto& s : option_table()) {
        CAPTURE(s.name);
        if (!s.default_text) continue;
        const std::string d = s.default_text;
        // A default that depends on the machine is said in words: checked below.
        if (s.kind == OptionKind::unsigned_int && d.find_first_not_of("0123456789") == std::string::npos)
            CHECK(std::to_string(defaults.*s.unsigned_field) == d);
        if (s.kind == OptionKind::size) CHECK(parse_size(d) == defaults.*s.size_field);
        if (s.kind == OptionKind::seconds) CHECK(std::stod(d) == defaults.*s.seconds_field);
    }
    CHECK(defaults.poll_us == default_poll_us());
    CHECK(defaults.vk_fence_spin_us == VulkanTuning::kAuto);
    CHECK(defaults.vk_queue_family == VulkanTuning::kAuto);
    // The knobs' defaults are the ones the code they feed declares.
    CHECK(vulkan_tuning(defaults).batch == VulkanTuning{}.batch);
    CHECK(vulkan_tuning(defaults).in_flight == VulkanTuning{}.in_flight);
    CHECK(transport_tuning(defaults).killpriv_v2 == TransportTuning{}.killpriv_v2);
    CHECK(transport_tuning(defaults).ring_queue_threads == TransportTuning{}.ring_queue_threads);
    CHECK(defaults.backend == BackendKind::cuda);
    CHECK(defaults.transport == TransportKind::dev);
    CHECK(parse({"/m", "1G", "--transport", "uring"}).config.transport == TransportKind::uring);
    CHECK(parse({"/m", "-o", "size=1G,transport=auto"}).config.transport == TransportKind::automatic);
    CHECK(defaults.log_level == LogLevel::info);
}

TEST_CASE("the command line and -o accept and refuse the same values") {
    struct Probe {
        const char* option;
        const char* good;
        const char* bad;
    };
    const Probe probes[] = {
        {"threads", "4", "0"},        {"threads", "256", "257"},  {"threads", "4", "x"},
        {"poll-us", "10", "-1"},      {"read-cache", "0", "65"},  {"block-size", "64K", "3000"},
        {"max-io", "256K", "2M"},     {"release-delay", "0.5", "-1"}, {"release-delay", "3600", "nan"},
        {"log-level", "debug", "loud"}, {"backend", "host", "opencl"},
        {"transport", "uring", "sockets"}, {"transport", "dev", "URING"},
    };
    for (const Probe& p : probes) {
        CAPTURE(p.option);
        CAPTURE(p.bad);
        std::string o = p.option;
        for (char& ch : o)
            if (ch == '-') ch = '_';
        const auto cli_good = parse({"/m", "1G", std::string("--") + p.option, p.good});
        const auto o_good = parse({"/m", "-o", "size=1G," + o + "=" + p.good});
        CHECK_FALSE(cli_good.done);
        CHECK_FALSE(o_good.done);
        const auto cli_bad = parse({"/m", "1G", std::string("--") + p.option, p.bad});
        const auto o_bad = parse({"/m", "-o", "size=1G," + o + "=" + p.bad});
        CHECK(cli_bad.exit_code == kExitUsage);
        CHECK(o_bad.exit_code == kExitUsage);
        CHECK(cli_bad.error.find(std::string("--") + p.option) != std::string::npos);
        CHECK(o_bad.error.find("-o " + o) != std::string::npos);
    }
    // The same value, either way, gives the same config; -o wins over the command line.
    CHECK(parse({"/m", "1G", "--max-io", "64K"}).config.max_io ==
          parse({"/m", "-o", "size=1G,max_io=64K"}).config.max_io);
    CHECK(parse({"/m", "1G", "--threads", "3", "-o", "threads=5"}).config.threads == 5);
    CHECK(parse({"/m", "1G", "--threads", "3", "--threads", "6"}).config.threads == 6);
}

TEST_CASE("the man page documents exactly the table's options") {
    const std::set<std::string> man = long_options_in(read_source("mount-helpers/man/vramfs.1"), "\\-");
    CHECK(man == documented_options());
}

TEST_CASE("the bash completion offers exactly the table's options") {
    const std::set<std::string> words = long_options_in(read_source("mount-helpers/completion/vramfs"), "-");
    CHECK(words == documented_options());
    for (const auto& s : option_table()) {
        if (s.hidden || !s.short_name) continue;
        CHECK(read_source("mount-helpers/completion/vramfs").find(std::string(" -") + s.short_name + " ") !=
              std::string::npos);
    }
}

TEST_CASE("the spill's options") {
    const auto r = parse({"/m", "1G", "--spill", "/var/tmp", "--keep-free", "3G"});
    CHECK_FALSE(r.done);
    CHECK(r.config.spill == "/var/tmp");
    CHECK(r.config.keep_free == 3ull << 30); // any size, not only a power of two
    CHECK(parse({"/m", "-o", "size=1G,spill=/s,keep_free=1.5G"}).config.keep_free == 3ull << 29);
    CHECK(parse({"/m", "1G"}).config.spill.empty());
    CHECK(parse({"/m", "1G", "--keep-free", "2T"}).exit_code == kExitUsage);
}

TEST_CASE("tuning knobs are parsed and range-checked, and kept out of --help") {
    const auto r = parse({"/m", "1G", "--vk-batch", "0", "-o", "vk_in_flight=1,ring_queue_threads=2,killpriv_v2=0"});
    CHECK_FALSE(r.done);
    CHECK_FALSE(vulkan_tuning(r.config).batch);
    CHECK(vulkan_tuning(r.config).in_flight == 1);
    CHECK(transport_tuning(r.config).ring_queue_threads == 2);
    CHECK_FALSE(transport_tuning(r.config).killpriv_v2);
    CHECK(parse({"/m", "1G", "--vk-batch", "2"}).exit_code == kExitUsage);
    CHECK(parse({"/m", "1G", "--ring-queue-threads", "9"}).exit_code == kExitUsage);
    const auto help = parse({"--help"});
    CHECK(help.output.find("--vk-batch") == std::string::npos);
    CHECK(help.output.find("--threads") != std::string::npos);
    CHECK(options_markdown().find("`--vk-batch`") != std::string::npos);
}

TEST_CASE("--option-arity says of every command-line option whether it takes a value") {
    const auto r = parse({"--option-arity"});
    CHECK(r.done);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("\n--threads 1\n") != std::string::npos);
    CHECK(r.output.find("\n--writeback-cache 0\n") != std::string::npos);
    CHECK(r.output.find("\n-f 0\n") != std::string::npos);
    CHECK(r.output.rfind("-o 1\n", 0) == 0);
    for (const auto& s : option_table()) {
        if (!s.on_command_line) continue;
        CAPTURE(s.name);
        const std::string line = std::string("--") + s.name + (s.kind == OptionKind::flag ? " 0\n" : " 1\n");
        CHECK(r.output.find(line) != std::string::npos);
    }
}

TEST_CASE("a swap's budget fits its file whatever the block size") {
    CHECK(budget_for_file(1) == 64u << 20);
    CHECK(budget_for_file(64u << 20) == 64u << 20);
    CHECK(budget_for_file((64u << 20) + 1) == 128u << 20);
    CHECK(budget_for_file(0) == 0);
}

TEST_CASE("docs/options.md is the table's (regenerate: vramfs --options-markdown > docs/options.md)") {
    CHECK(read_source("docs/options.md") == options_markdown());
    const auto r = parse({"--options-markdown"});
    CHECK(r.done);
    CHECK(r.exit_code == 0);
    CHECK(r.output == options_markdown());
}
