// Mounting and serving: backend start-up, the fork into the background, the FUSE session loop.
#pragma once

#include "vramfs/app/config.hpp"

namespace vramfs {

// Runs the program for a parsed configuration; returns the process exit code.
int run(const Config& config);

} // namespace vramfs
