// SlabSource: a pool's device memory, taken from its backend in slabs and given back whole.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <chrono>
#include <cstdint>
#include <vector>

namespace vramfs {

using BlockId = std::uint32_t;
inline constexpr BlockId kNoBlock = UINT32_MAX;

// A place in a pool: block id * block size + offset in the block. It names the same bytes
// wherever they are (in a slab of device memory, or on the spill file at this very offset), so
// files keep their places while their storage moves.
using PoolPlace = std::uint64_t;

// The size of the slabs device memory is taken in: large enough that taking one is rare,
// small enough that an emptied one can go back while others stay in use.
inline constexpr std::uint64_t kSlabBytes = 64ull << 20;

// Slab k holds blocks [k*blocks_per_slab, k*blocks_per_slab + capacity(k)); the last slab is
// short, so the device never holds more than the budget. Not locked itself: its owner's lock
// guards every call but address(), which reads without it (a block's slab stays open while
// any file holds the block). Every table is sized at construction: opening a slab later
// allocates no host memory.
class SlabSource {
public:
    SlabSource(StorageBackend& backend, std::uint64_t budget_blocks, std::uint64_t block_size,
               std::uint64_t slab_bytes);
    ~SlabSource(); // gives every open slab back
    SlabSource(const SlabSource&) = delete;
    SlabSource& operator=(const SlabSource&) = delete;

    std::uint32_t count() const noexcept { return static_cast<std::uint32_t>(slabs_.size()); }
    std::uint32_t blocks_per_slab() const noexcept { return slab_blocks_; }
    std::uint32_t capacity(std::uint32_t s) const noexcept { return slabs_[s].capacity; }
    std::uint64_t bytes(std::uint32_t s) const noexcept { return std::uint64_t{slabs_[s].capacity} * block_size_; }
    bool is_open(std::uint32_t s) const noexcept { return slabs_[s].open; }
    // The lowest slab neither open nor being opened; count() when none.
    std::uint32_t first_unopened() const noexcept;
    std::uint64_t reserved_blocks() const noexcept { return reserved_blocks_; }
    std::uint64_t open_slabs() const noexcept { return open_slabs_; }
    StorageBackend& backend() const noexcept { return backend_; }

    // The bytes between slab starts, and the slab a place lies in.
    std::uint64_t stride() const noexcept { return std::uint64_t{slab_blocks_} * block_size_; }
    std::uint32_t slab_of(PoolPlace p) const noexcept { return static_cast<std::uint32_t>(p / stride()); }
    // Where a place lies in device memory; only while its slab holds device memory.
    DeviceAddr address(PoolPlace p) const noexcept { return base_[p / stride()] + p % stride(); }

    // Takes slab s from the device now: 0 or the backend's errno.
    int open(std::uint32_t s) noexcept;
    // Opening in two steps, so that the device call can run without the owner's lock:
    // begin_open marks s as being opened, then fetch (unlocked) and end_open (locked) finish,
    // installing the memory where fetch got it.
    void begin_open(std::uint32_t s) noexcept { slabs_[s].opening = true; }
    int fetch(std::uint32_t s, DeviceBuffer& memory) noexcept { return backend_.allocate(bytes(s), memory); }
    void end_open(std::uint32_t s, int err, DeviceBuffer memory) noexcept;
    // Takes an open slab out of service and returns its memory, which goes back to the device
    // when the returned buffer is dropped (close drops it at once).
    DeviceBuffer detach(std::uint32_t s) noexcept;
    void close(std::uint32_t s) noexcept { detach(s).reset(); }

private:
    struct Slab {
        DeviceBuffer memory; // empty while the slab is not taken from the device
        std::uint32_t capacity = 0;
        bool open = false;
        bool opening = false; // being taken from the device without the owner's lock
    };
    void install(std::uint32_t s, DeviceBuffer memory) noexcept;

    StorageBackend& backend_;
    const std::uint64_t block_size_;
    const std::uint32_t slab_blocks_;
    std::vector<Slab> slabs_;
    std::vector<DeviceAddr> base_; // each open slab's address, for address()
    std::uint64_t reserved_blocks_ = 0;
    std::uint64_t open_slabs_ = 0;
};

} // namespace vramfs
