// Copies out of write-combined memory: a GPU's memory mapped to the CPU through its PCIe BAR.
#pragma once

#include <cstddef>

namespace vramfs {

// Copies `len` bytes from `src`, which may be write-combined (uncached) memory, to ordinary
// memory at `dst`. Plain loads from such memory are uncached, each a bus read of its own, so
// memcpy crawls (tens of MB/s from a GPU's BAR); on x86 with SSE4.1 this uses streaming loads
// (MOVNTDQA), which fetch a whole 64-byte line at a time. Elsewhere it is memcpy. Any alignment
// and length: whole 64-byte lines are loaded, so the lines that hold [src, src + len) must be
// readable (always so where `src` lies in a page-aligned mapping). Correct on ordinary memory
// too, only no faster there.
void copy_from_write_combined(void* dst, const void* src, std::size_t len) noexcept;

} // namespace vramfs
