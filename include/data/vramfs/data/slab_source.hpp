// SlabSource: a pool's device memory, taken from its backend in slabs and given back whole.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <atomic>
#include <chrono>
#include <memory>
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

// A mask of chunks first..last (at most 64: see SlabSource::spilled).
inline std::uint64_t chunk_bits(std::uint64_t first, std::uint64_t last) noexcept {
    const std::uint64_t upto = last >= 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (last + 1)) - 1;
    return upto & ~((std::uint64_t{1} << first) - 1);
}

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

    // With a spill tier (SpillTier): while the card's memory is wanted, open() opens slabs
    // without device memory (their bytes on the spill from the start), and a slab's memory may
    // leave and come back while it stays open and its blocks keep their places.
    // Where a fetch finds no room and spill_ready, open() opens without memory too.
    void set_spill_ready() noexcept { spill_ready_ = true; }
    void set_memory_wanted(bool wanted) noexcept { memory_wanted_ = wanted; }
    bool memory_wanted() const noexcept { return memory_wanted_; }
    bool has_memory(std::uint32_t s) const noexcept { return static_cast<bool>(slabs_[s].memory); }
    DeviceBuffer take_memory(std::uint32_t s) noexcept;
    void give_memory(std::uint32_t s, DeviceBuffer memory) noexcept;
    // A tier is moving the slab's bytes: it is neither closed nor moved by anyone else meanwhile.
    void set_moving(std::uint32_t s, bool moving) noexcept { slabs_[s].moving = moving; }
    bool moving(std::uint32_t s) const noexcept { return slabs_[s].moving; }
    std::uint64_t memory_bytes() const noexcept { return memory_bytes_; } // held from the device
    // A slab moves in chunks (at most 64 of them, whole pages): bit c of spilled(s) is set while
    // chunk c's bytes are on the spill rather than in the slab's memory. A slab opened with
    // memory starts with none set, one opened without with all; a tier flips them one by one.
    std::uint64_t chunk_bytes() const noexcept { return chunk_bytes_; }
    std::uint32_t chunk_of(PoolPlace p) const noexcept { return static_cast<std::uint32_t>(p % stride() / chunk_bytes_); }
    std::uint32_t chunks(std::uint32_t s) const noexcept {
        return static_cast<std::uint32_t>((bytes(s) + chunk_bytes_ - 1) / chunk_bytes_);
    }
    std::uint64_t all_chunks() const noexcept { return all_chunks_; }
    std::atomic<std::uint64_t>& spilled(std::uint32_t s) const noexcept { return spilled_[s]; }

private:
    struct Slab {
        DeviceBuffer memory; // empty while the slab is not taken from the device
        std::uint32_t capacity = 0;
        bool open = false;
        bool opening = false; // being taken from the device without the owner's lock
        bool moving = false;  // a tier moves its bytes between the device and the spill
    };
    void install(std::uint32_t s, DeviceBuffer memory) noexcept;

    StorageBackend& backend_;
    const std::uint64_t block_size_;
    const std::uint32_t slab_blocks_;
    std::vector<Slab> slabs_;
    std::vector<DeviceAddr> base_; // each open slab's address, for address()
    std::uint64_t reserved_blocks_ = 0;
    std::uint64_t open_slabs_ = 0;
    std::uint64_t memory_bytes_ = 0;
    bool memory_wanted_ = false;
    bool spill_ready_ = false;
    const std::uint64_t chunk_bytes_;
    const std::uint64_t all_chunks_; // the mask of every chunk of a full slab
    std::unique_ptr<std::atomic<std::uint64_t>[]> spilled_;
};

} // namespace vramfs
