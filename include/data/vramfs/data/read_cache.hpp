// ReadCache: host copies of small windows of files, for small reads that walk through a file.
#pragma once

#include "vramfs/data/buffer_pool.hpp"
#include "vramfs/storage/backend.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vramfs {

// Swap-in through a loop device reads a file 32 KiB at a time (vm.page-cluster 3), in rising
// order; each read from VRAM is a device copy whose fixed cost dominates. When a small read
// follows the previous read of the same file closely, the whole window around it (1 MiB, or a
// block if blocks are smaller) is copied to host memory at once, and the next reads of that
// window are served from there. Buffers are allocated up front (pinned for CUDA); none is
// taken on the I/O path.
//
// Staleness: every change to a file's contents bumps its generation after the change is in
// storage (FileData). A window remembers the generation read before it was filled and serves
// reads only while that is still the file's generation.
class ReadCache {
public:
    // slots == 0: no cache (every call answers "not served").
    ReadCache(StorageBackend& backend, std::size_t slots, std::size_t window);
    ReadCache(const ReadCache&) = delete;
    ReadCache& operator=(const ReadCache&) = delete;

    static constexpr int kSkipFill = -1; // what a fill returns when it cannot run now

    std::size_t window() const noexcept { return window_; }
    bool enabled() const noexcept { return !slots_.empty(); }

    // A window is identified by (file id, window start); `generation` is the file's now.
    struct Key {
        std::uint64_t file = 0;
        std::uint64_t start = 0;
    };
    // Copies [off, off+len) (inside the window at key.start) into dst if the window is held at
    // this generation: true. Otherwise, with fill set, takes a slot, calls fill(buffer) to
    // read the whole window, and copies from it: true, or `err` set by fill. Without fill, when
    // every slot is being filled, or when fill answers kSkipFill: false (err 0), and the caller
    // reads storage itself.
    template <class Fill>
    bool read(Key key, std::uint64_t generation, std::uint64_t off, std::size_t len, void* dst,
              bool fill, Fill&& fill_fn, int& err);

    std::uint64_t hits() const noexcept { return hits_.load(std::memory_order_relaxed); }
    std::uint64_t fills() const noexcept { return fills_.load(std::memory_order_relaxed); }

private:
    struct Slot {
        void* buffer = nullptr;
        Key key;
        std::uint64_t generation = 0;
        std::uint64_t last_use = 0;
        bool valid = false;
        bool busy = false; // being filled: not served, not chosen
    };
    Slot* find_locked(Key key, std::uint64_t generation) noexcept;
    Slot* victim_locked() noexcept;
    void copy_out(const Slot& s, std::uint64_t off, std::size_t len, void* dst) const noexcept;

    std::size_t window_;
    // Faulted in at mount: a fill holds a lock that writes in place wait for, so a fresh page
    // there under memory pressure could wait on swap writes those writers serve (CI's
    // swap_pressure_host deadlocked on exactly that before the windows were faulted in).
    HostBuffers windows_;
    std::vector<Slot> slots_;
    std::mutex mu_;
    std::uint64_t tick_ = 0;
    std::atomic<std::uint64_t> hits_{0}, fills_{0};
};

template <class Fill>
bool ReadCache::read(Key key, std::uint64_t generation, std::uint64_t off, std::size_t len,
                     void* dst, bool fill, Fill&& fill_fn, int& err) {
    err = 0;
    if (slots_.empty()) return false;
    Slot* s = nullptr;
    {
        std::lock_guard lock(mu_);
        if (Slot* hit = find_locked(key, generation)) {
            hit->last_use = ++tick_;
            copy_out(*hit, off, len, dst);
            hits_.fetch_add(1, std::memory_order_relaxed);
            return true;
        }
        if (!fill || !(s = victim_locked())) return false;
        s->busy = true;
        s->valid = false;
        s->key = key;
        s->generation = generation;
        s->last_use = ++tick_;
    }
    // Filled outside the lock: other windows stay readable meanwhile. While busy, no other
    // thread reads or reuses this slot.
    err = fill_fn(s->buffer);
    if (!err) copy_out(*s, off, len, dst);
    std::lock_guard lock(mu_);
    s->busy = false;
    s->valid = err == 0;
    if (!err) fills_.fetch_add(1, std::memory_order_relaxed);
    if (err == kSkipFill) err = 0;
    return s->valid;
}

} // namespace vramfs
