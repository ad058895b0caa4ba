// The integration suite's entry: skipped (exit 77) where this machine cannot mount vramfs.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "mount_fixture.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace vramfs::test;

int main(int argc, char** argv) {
    const std::string why = unavailable_reason();
    if (!why.empty()) {
        // CI has lavapipe, so there a missing Vulkan device is a failure, not a skip.
        if (test_backend() == "vulkan" && std::getenv("VRAMFS_REQUIRE_VULKAN")) {
            std::printf("FAILED: %s (VRAMFS_REQUIRE_VULKAN is set)\n", why.c_str());
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
