// ReadCache: a few preallocated host windows, looked up under one short lock.
#include "vramfs/data/read_cache.hpp"

#include <cstring>

namespace vramfs {

ReadCache::ReadCache(StorageBackend& backend, std::size_t slots, std::size_t window)
    : window_(window), windows_(backend, slots, window, "read cache buffers"), slots_(slots) {
    for (std::size_t i = 0; i < slots; ++i) slots_[i].buffer = windows_[i];
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
