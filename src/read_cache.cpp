// ReadCache: a few preallocated host windows, looked up under one short lock.
#include "vramfs/read_cache.hpp"

#include <cstring>
#include <stdexcept>

namespace vramfs {

ReadCache::ReadCache(StorageBackend& backend, std::size_t slots, std::size_t window)
    : backend_(backend), window_(window) {
    slots_.resize(slots);
    for (auto& s : slots_) {
        s.buffer = backend_.allocate_host_buffer(window_);
        if (!s.buffer) {
            for (auto& t : slots_)
                if (t.buffer) backend_.release_host_buffer(t.buffer, window_);
            throw std::runtime_error("cannot allocate read cache buffers");
        }
        // Faulted in now (and so locked with the daemon's memory): a fill holds a lock that
        // writes wait for, and under memory pressure a fresh page there could wait on swap
        // writes that those writers serve. CI's swap_pressure_host deadlocked on exactly that.
        std::memset(s.buffer, 0, window_);
    }
}

ReadCache::~ReadCache() {
    for (auto& s : slots_) backend_.release_host_buffer(s.buffer, window_);
}

ReadCache::Slot* ReadCache::find_locked(Key key, std::uint64_t generation) noexcept {
    for (auto& s : slots_)
        if (s.valid && !s.busy && s.key.file == key.file && s.key.start == key.start &&
            s.generation == generation)
            return &s;
    return nullptr;
}

ReadCache::Slot* ReadCache::victim_locked() noexcept {
    Slot* best = nullptr;
    for (auto& s : slots_) {
        if (s.busy) continue;
        if (!best || s.last_use < best->last_use) best = &s;
    }
    return best;
}

void ReadCache::copy_out(const Slot& s, std::uint64_t off, std::size_t len, void* dst) const noexcept {
    std::memcpy(dst, static_cast<const char*>(s.buffer) + (off - s.key.start), len);
}

} // namespace vramfs
