// IoBufferPool: a fixed set of host I/O buffers handed out per request.
#include "vramfs/buffer_pool.hpp"

#include <cstring>
#include <stdexcept>

namespace vramfs {

IoBufferPool::IoBufferPool(StorageBackend& backend, std::size_t count, std::size_t bytes)
    : backend_(backend), bytes_(bytes) {
    all_.reserve(count);
    free_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        void* p = backend_.allocate_host_buffer(bytes);
        if (!p) {
            for (void* q : all_) backend_.release_host_buffer(q, bytes_);
            throw std::runtime_error("cannot allocate I/O buffers");
        }
        // Faulted in now: the first request to use it may come when memory is short (swap), and
        // the daemon locks its memory on fault, so a page touched now stays.
        std::memset(p, 0, bytes);
        all_.push_back(p);
        free_.push_back(p);
    }
}

IoBufferPool::~IoBufferPool() {
    for (void* p : all_) backend_.release_host_buffer(p, bytes_);
}

IoBufferPool::Lease IoBufferPool::take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty(); });
    void* p = free_.back();
    free_.pop_back();
    return Lease(*this, p);
}

void IoBufferPool::put(void* p) {
    {
        std::lock_guard lock(mu_);
        free_.push_back(p); // capacity reserved up front: never allocates
    }
    cv_.notify_one();
}

} // namespace vramfs
