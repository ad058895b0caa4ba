// Which transport carries FUSE requests (--transport): its own header, so that the command line
// (app/config.hpp) names it without linking the FUSE layer.
#pragma once

namespace vramfs {

// automatic: FUSE over io_uring where the kernel offers it, else /dev/fuse alone.
enum class TransportKind { automatic, uring, dev };

} // namespace vramfs
