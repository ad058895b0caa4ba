// SpillTier: the disk tier under a pool's VRAM. When the card's memory is wanted (another
// program brings its free memory under the keep-free mark, or `vramfs yield` asks), the tier
// moves the coldest slabs' bytes to the spill file and gives their device memory back; when the
// card is free again it brings them back. Files keep their places (PoolPlace) throughout.
#pragma once

#include "vramfs/data/block_allocator.hpp"
#include "vramfs/data/slab_source.hpp"
#include "vramfs/storage/spill_file.hpp"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace vramfs {

struct TierStats {
    std::uint64_t vram_bytes = 0;  // device memory held by the pool's slabs
    std::uint64_t spill_bytes = 0; // open slabs' bytes on the spill file
    std::uint64_t moved_out = 0, moved_in = 0; // bytes moved to the spill and back, since mount
    std::uint64_t keep_free = 0;
    std::uint64_t vram_limit = UINT64_MAX; // what `yield` left the pool (UINT64_MAX: no limit)
};

// Requests read and write through read/write/zero: each holds its slab's gate shared (exclusive
// where a write touches the spill, whose pages it reads, changes and writes back), and finds
// chunk by chunk whether the bytes are in device memory or on the spill. The tier's thread
// copies a chunk without the gate, while requests go on using it where it is; a write meanwhile
// marks the chunk dirty. Only then does the mover take the gate, for no more than a look at the
// dirty mark: clean, the chunk's place flips; dirty, the copy is thrown away and made again. So
// a request never waits on the mover's device call or disk I/O (either may wait for memory,
// and under memory pressure that wait could need this very request), and a write during a move
// is never lost. The spill I/O goes through locked buffers made here (O_DIRECT, see SpillFile):
// serving a request allocates nothing (util/memory.hpp).
class SpillTier {
public:
    using MemoryShort = bool (*)() noexcept;
    // `mu` guards `slabs` and `blocks` (the pool's lock); the pool's bytes lie at
    // [file_offset, file_offset + slabs.count() * slabs.stride()) of `file`.
    SpillTier(std::mutex& mu, SlabSource& slabs, BlockAllocator& blocks, const SpillFile& file,
              std::uint64_t file_offset, std::uint64_t keep_free, MemoryShort memory_short);
    ~SpillTier(); // stops the thread; bytes on the spill stay there until the pool goes
    SpillTier(const SpillTier&) = delete;
    SpillTier& operator=(const SpillTier&) = delete;

    // [p, p+n) lies in one slab, as BlockPool's calls require.
    int read(PoolPlace p, void* dst, std::size_t n) noexcept;
    int write(PoolPlace p, const void* src, std::size_t n) noexcept;
    int zero(PoolPlace p, std::size_t n) noexcept;

    // The most device memory the pool may hold (yield), UINT64_MAX for no limit (reclaim). The
    // tier's thread moves bytes until it holds; settled() says when it has.
    void set_vram_limit(std::uint64_t bytes) noexcept;
    bool settled() const noexcept;
    TierStats stats() const noexcept;

    // How the pool's bytes must be laid out on a spill: the file region it needs.
    static std::uint64_t region_bytes(const SlabSource& slabs) noexcept { return slabs.count() * slabs.stride(); }

private:
    enum class Op { read, write, zero };
    struct Gate { // a slab's lock; writers are preferred, so a busy slab's chunks still flip
        pthread_rwlock_t lock;
        std::atomic<std::uint32_t> last_use{0};
        std::atomic<bool> moving{false};    // the mover copies chunks of this slab: writes mark them
        std::atomic<std::uint64_t> dirty{0}; // chunks written since the mover began copying them
    };
    int io(Op op, PoolPlace p, unsigned char* host, std::size_t n) noexcept;
    int spill_io(Op op, std::uint64_t off, unsigned char* host, std::size_t n) noexcept;
    void* take_bounce() noexcept;
    void give_bounce(void* b) noexcept;

    void main();
    bool balance() noexcept;
    bool move_out(std::uint32_t s) noexcept; // false: nothing could move
    bool move_in(std::uint32_t s) noexcept;
    int move_chunk(std::uint32_t s, std::uint32_t c, bool out) noexcept;
    int copy_chunk(std::uint32_t s, std::uint32_t c, bool out) noexcept;
    void begin_moving(std::uint32_t s) noexcept;
    void release_parked() noexcept;
    bool must_wait_for_memory() const noexcept; // memory is short, and device memory calls could fault

    std::mutex& mu_;
    SlabSource& slabs_;
    BlockAllocator& blocks_;
    const SpillFile& file_;
    const std::uint64_t file_offset_;
    const std::uint64_t keep_free_;
    const MemoryShort memory_short_;
    std::unique_ptr<Gate[]> gates_;
    std::atomic<std::uint32_t> tick_{1};
    std::atomic<std::uint64_t> vram_limit_{UINT64_MAX};
    std::atomic<bool> settled_{true};
    std::atomic<std::uint64_t> moved_out_{0}, moved_in_{0};

    // Bounce buffers for requests' spill I/O (locked, aligned), and the mover's own chunk buffer.
    std::mutex bounce_mu_;
    std::condition_variable bounce_cv_;
    std::vector<void*> bounce_free_; // reserved for all: taking and giving allocate nothing
    std::vector<void*> bounce_all_;
    void* chunk_buffer_ = nullptr;

    // Device memory of slabs moved out while memory was short: given back once it is not (the
    // rule SlabReaper keeps: no driver call that may fault in host memory while memory is short).
    std::vector<DeviceBuffer> parked_;

    std::mutex wake_mu_;
    std::condition_variable wake_cv_;
    bool stopping_ = false;
    std::thread thread_; // last: started once everything above is
};

} // namespace vramfs
