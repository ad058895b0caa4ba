// IoBufferPool: host buffers for the read path, all allocated at mount time.
#pragma once

#include "vramfs/storage.hpp"

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace vramfs {

// Serving swap I/O must not need memory while the machine is short of it, so every buffer a
// request uses exists before the first request arrives. A request waits if all are in use.
class IoBufferPool {
public:
    IoBufferPool(StorageBackend& backend, std::size_t count, std::size_t bytes);
    ~IoBufferPool();
    IoBufferPool(const IoBufferPool&) = delete;
    IoBufferPool& operator=(const IoBufferPool&) = delete;

    class Lease {
    public:
        Lease(IoBufferPool& pool, void* p) : pool_(&pool), p_(p) {}
        Lease(Lease&& o) noexcept : pool_(o.pool_), p_(o.p_) { o.p_ = nullptr; }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() {
            if (p_) pool_->put(p_);
        }
        void* get() const noexcept { return p_; }

    private:
        IoBufferPool* pool_;
        void* p_;
    };

    Lease take();
    std::size_t buffer_size() const noexcept { return bytes_; }
    std::size_t count() const noexcept { return all_.size(); }

private:
    void put(void* p);
    StorageBackend& backend_;
    std::size_t bytes_;
    std::vector<void*> all_;
    std::vector<void*> free_;
    std::mutex mu_;
    std::condition_variable cv_;
};

} // namespace vramfs
