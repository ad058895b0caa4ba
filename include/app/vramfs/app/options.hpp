// The option table: every vramfs option declared once. It drives the command line (CLI11),
// the -o form (mount(8), fstab), --help and docs/options.md; a unit test checks the man page
// and the bash completion against it.
#pragma once

#include "vramfs/app/config.hpp"

#include <string>
#include <vector>

namespace vramfs {

enum class OptionKind {
    flag,     // no value
    unsigned_int, // a whole number in [min, max]
    seconds,  // a real number in [min, max]
    size,     // a byte size (util/size.hpp) in [min, max], a power of two where pow2 is set
    text,     // anything; apply() checks it
};

// What parsing collects beside Config while it applies options.
struct ParseState {
    std::string size_text;                // SIZE, or -o size=
    bool size_from_o = false;             // mount(8) form: the first positional is a label
    std::vector<std::string> device_texts; // --device and -o device=, each maybe a list
    bool poll_given = false;
};

struct OptionSpec {
    const char* name;         // long option without dashes ("read-cache"); in -o, '-' is '_'
    const char* short_name;   // "f" for -f, or nullptr
    OptionKind kind;
    const char* value_name;   // the value's placeholder in help ("N"); nullptr for a flag
    const char* default_text; // shown in help and docs; nullptr when there is none to show
    const char* help;         // one line (CLI11 wraps it)
    double min = 0, max = 0;  // for unsigned_int, seconds and size
    bool pow2 = false;        // for size
    bool in_o = true;         // accepted as -o NAME[=VALUE]
    bool on_command_line = true; // false: -o only (size, which is SIZE on the command line)
    bool hidden = false;      // for tests only: in neither --help nor the docs
    // A knob to compare with: not in --help, the man page or the completion; in docs/options.md's
    // table of tuning knobs.
    bool tuning = false;
    bool repeatable = false;  // every value counts (--device 0 --device 1); else the last wins
    // For kinds that need more than the range check (and for text): applies `value` to the
    // config, returning "" or what is wrong (without the option's name).
    std::string (*apply)(Config&, ParseState&, const std::string& value) = nullptr;
    // Where a plain kind's value goes (exactly one is set for flag, unsigned_int, seconds, size).
    bool Config::*flag_field = nullptr;
    unsigned Config::*unsigned_field = nullptr;
    double Config::*seconds_field = nullptr;
    std::uint64_t Config::*size_field = nullptr;
};

const std::vector<OptionSpec>& option_table();

// Applies one option's value ("" for a flag); returns "" or the reason, naming no option.
std::string apply_option(const OptionSpec& spec, Config& c, ParseState& st, const std::string& value);

// The help line with its range, as --help and the docs show it.
std::string option_help(const OptionSpec& spec);

// "-o NAME" for an option, as the -o form spells it.
std::string o_name(const OptionSpec& spec);

// docs/options.md, made from the table (vramfs --options-markdown prints it).
std::string options_markdown();

// For scripts that pass options on to vramfs (vramfs-swap): one line per way of writing an
// option on the command line, "--NAME 1" where it takes a value and "--NAME 0" where it does
// not, short forms and -o included (vramfs --option-arity prints it).
std::string option_arity();

// The budget a mount needs to hold a file of `bytes` whatever --block-size it is given: `bytes`
// rounded up to the largest block size the table allows.
std::uint64_t budget_for_file(std::uint64_t bytes);

} // namespace vramfs
