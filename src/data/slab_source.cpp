// SlabSource: slabs of device memory, opened and closed.
#include "vramfs/data/slab_source.hpp"

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace vramfs {
namespace {

// A 64th of a slab, rounded up to whole pages (the spill file's unit).
std::uint64_t chunk_size(std::uint64_t stride) {
    constexpr std::uint64_t kPage = 4096;
    return std::max<std::uint64_t>(kPage, ((stride + 63) / 64 + kPage - 1) / kPage * kPage);
}

} // namespace

SlabSource::SlabSource(StorageBackend& backend, std::uint64_t budget_blocks, std::uint64_t block_size,
                       std::uint64_t slab_bytes)
    : backend_(backend), block_size_(block_size),
      slab_blocks_(static_cast<std::uint32_t>(std::max<std::uint64_t>(1, slab_bytes / block_size))),
      chunk_bytes_(chunk_size(stride())),
      all_chunks_(chunk_bits(0, (stride() + chunk_bytes_ - 1) / chunk_bytes_ - 1)) {
    const std::size_t n = (budget_blocks + slab_blocks_ - 1) / slab_blocks_;
    slabs_.resize(n);
    base_.assign(n, 0);
    spilled_ = std::make_unique<std::atomic<std::uint64_t>[]>(n);
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
    if (!memory_wanted_)
        if (int err = fetch(s, memory); err && !(spill_ready_ && (err == ENOSPC || backend_.lost()))) return err;
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
    memory_bytes_ += memory.size();
    spilled_[s].store(memory ? 0 : all_chunks_, std::memory_order_release);
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
    memory_bytes_ -= slab.memory.size();
    return std::move(slab.memory);
}

DeviceBuffer SlabSource::take_memory(std::uint32_t s) noexcept {
    Slab& slab = slabs_[s];
    base_[s] = 0;
    memory_bytes_ -= slab.memory.size();
    return std::move(slab.memory);
}

void SlabSource::give_memory(std::uint32_t s, DeviceBuffer memory) noexcept {
    base_[s] = memory.address();
    memory_bytes_ += memory.size();
    slabs_[s].memory = std::move(memory);
}

} // namespace vramfs
