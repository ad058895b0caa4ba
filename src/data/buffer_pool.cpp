// HostBuffers and IoBufferPool: a fixed set of host buffers, and handing them out per request.
#include "vramfs/data/buffer_pool.hpp"

#include "vramfs/util/memory.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace vramfs {

HostBuffers::HostBuffers(StorageBackend& backend, std::size_t count, std::size_t bytes,
                         const char* what)
    : bytes_(bytes) {
    all_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        HostBuffer b;
        if (backend.allocate_host(bytes, b) != 0)
            throw std::runtime_error(std::string("cannot allocate ") + what); // all_ frees the rest
        fault_in(b.data(), bytes); // see util/memory.hpp
        all_.push_back(std::move(b));
    }
}

IoBufferPool::IoBufferPool(StorageBackend& backend, std::size_t count, std::size_t bytes)
    : buffers_(backend, count, bytes, "I/O buffers"), free_(count), free_count_(count) {
    for (std::size_t i = 0; i < count; ++i) free_[i] = buffers_[i];
}

IoBufferPool::Lease IoBufferPool::take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return free_count_ > 0; });
    void* p = free_[first_free_];
    first_free_ = (first_free_ + 1) % free_.size();
    --free_count_;
    return Lease(*this, p);
}

void IoBufferPool::put(void* p) {
    {
        std::lock_guard lock(mu_);
        free_[(first_free_ + free_count_) % free_.size()] = p; // slots exist: never allocates
        ++free_count_;
    }
    cv_.notify_one();
}

} // namespace vramfs
