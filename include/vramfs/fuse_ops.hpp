// The FUSE low-level operation table for a Filesystem (passed as the session's userdata).
#pragma once

#include <fuse_lowlevel.h>

namespace vramfs {

const fuse_lowlevel_ops& fuse_operations() noexcept;

} // namespace vramfs
