// Which transport carries FUSE requests (--transport). In util, below both of its users: the
// command line (app/config.hpp, the options layer) names it without linking the FUSE layer,
// and the FUSE layer acts on it.
#pragma once

namespace vramfs {

// automatic: FUSE over io_uring where the kernel offers it, else /dev/fuse alone.
enum class TransportKind { automatic, uring, dev };

} // namespace vramfs
