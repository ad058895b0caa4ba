// SlabSource: slabs of device memory, opened and closed.
#include "vramfs/data/slab_source.hpp"

#include <algorithm>
#include <stdexcept>

namespace vramfs {

SlabSource::SlabSource(StorageBackend& backend, std::uint64_t budget_blocks, std::uint64_t block_size,
                       std::uint64_t slab_bytes)
    : backend_(backend), block_size_(block_size),
      slab_blocks_(static_cast<std::uint32_t>(std::max<std::uint64_t>(1, slab_bytes / block_size))) {
    const std::size_t n = (budget_blocks + slab_blocks_ - 1) / slab_blocks_;
    slabs_.resize(n);
    base_.assign(n, 0);
    for (std::uint32_t s = 0; s < n; ++s) {
        const std::uint64_t first = std::uint64_t{s} * slab_blocks_;
        slabs_[s].capacity = static_cast<std::uint32_t>(std::min<std::uint64_t>(slab_blocks_, budget_blocks - first));
    }
}

SlabSource::~SlabSource() {
    for (std::uint32_t s = 0; s < count(); ++s)
        if (slabs_[s].open) close(s);
}

std::uint32_t SlabSource::first_unopened() const noexcept {
    std::uint32_t s = 0;
    while (s < count() && (slabs_[s].open || slabs_[s].opening)) ++s;
    return s;
}

int SlabSource::open(std::uint32_t s) noexcept {
    DeviceBuffer memory;
    if (int err = fetch(s, memory)) return err;
    install(s, std::move(memory));
    return 0;
}

void SlabSource::end_open(std::uint32_t s, int err, DeviceBuffer memory) noexcept {
    slabs_[s].opening = false;
    if (!err) install(s, std::move(memory));
}

void SlabSource::install(std::uint32_t s, DeviceBuffer memory) noexcept {
    Slab& slab = slabs_[s];
    base_[s] = memory.address();
    slab.memory = std::move(memory);
    slab.open = true;
    reserved_blocks_ += slab.capacity;
    ++open_slabs_;
}

DeviceBuffer SlabSource::detach(std::uint32_t s) noexcept {
    Slab& slab = slabs_[s];
    base_[s] = 0;
    slab.open = false;
    reserved_blocks_ -= slab.capacity;
    --open_slabs_;
    return std::move(slab.memory);
}

} // namespace vramfs
