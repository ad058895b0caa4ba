// The integration suite's entry: skipped (exit 77) where this machine cannot mount vramfs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "mount_fixture.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace vramfs::test;

int main(int argc, char** argv) {
    const char* required_by = nullptr;
    const std::string why = unavailable_reason(&required_by);
    if (!why.empty()) {
        if (required_by && std::getenv(required_by)) {
            std::printf("FAILED: %s (%s is set)\n", why.c_str(), required_by);
            return 1;
        }
        std::printf("SKIPPED: %s\n", why.c_str());
        return 77;
    }
    std::printf("integration tests on backend '%s', transport '%s'\n", test_backend().c_str(),
                test_transport().empty() ? "default" : test_transport().c_str());
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
