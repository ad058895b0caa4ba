// vramfs: parse the command line, then mount and serve.
#include "vramfs/config.hpp"
#include "vramfs/daemon.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    const vramfs::ParseResult parsed = vramfs::parse_command_line(argc, argv);
    if (parsed.done) {
        if (!parsed.output.empty()) std::fputs(parsed.output.c_str(), stdout);
        if (!parsed.error.empty()) std::fprintf(stderr, "%s\n", parsed.error.c_str());
        return parsed.exit_code;
    }
    return vramfs::run(parsed.config);
}
