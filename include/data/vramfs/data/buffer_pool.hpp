// HostBuffers: a fixed set of host buffers allocated at mount time; IoBufferPool hands them
// out per request.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace vramfs {

// `count` buffers of `bytes` from the backend (page-locked for CUDA), each faulted in when it is
// allocated: the daemon locks its memory on fault, and the first use of a buffer may come when
// memory is short (serving swap), where a fresh page could wait on swap I/O the daemon itself
// must serve. Throws std::runtime_error("cannot allocate " + what) if the backend refuses.
class HostBuffers {
public:
    HostBuffers(StorageBackend& backend, std::size_t count, std::size_t bytes, const char* what);
    HostBuffers(const HostBuffers&) = delete;
    HostBuffers& operator=(const HostBuffers&) = delete;

    void* operator[](std::size_t i) const noexcept { return all_[i].data(); }
    std::size_t count() const noexcept { return all_.size(); }
    std::size_t bytes() const noexcept { return bytes_; }

private:
    std::size_t bytes_;
    std::vector<HostBuffer> all_;
};

// Serving swap I/O must not need memory while the machine is short of it, so every buffer a
// request uses exists before the first request arrives. A request waits if all are in use.
// Buffers are handed out in turn (the one returned longest ago first), not the one just
// returned: a read copies from the device into its buffer after the kernel copied the last
// reply out of it, and a device copy into lines still in a core's cache is slower
// (docs/performance.md, "read buffers in turn").
class IoBufferPool {
public:
    IoBufferPool(StorageBackend& backend, std::size_t count, std::size_t bytes);
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
    std::size_t buffer_size() const noexcept { return buffers_.bytes(); }
    std::size_t count() const noexcept { return buffers_.count(); }

private:
    void put(void* p);
    HostBuffers buffers_;
    std::vector<void*> free_; // a ring of count() slots: free_count_ buffers from first_free_
    std::size_t first_free_ = 0, free_count_ = 0;
    std::mutex mu_;
    std::condition_variable cv_;
};

} // namespace vramfs
