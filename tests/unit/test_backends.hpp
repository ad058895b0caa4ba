// Test backends: a host backend that can be told to fail, for error-path tests.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <atomic>
#include <cerrno>
#include <memory>

namespace vramfs::test {

// Wraps the host backend; fails the Nth allocation, or every copy, on request.
class FlakyBackend final : public StorageBackend {
public:
    FlakyBackend() : inner_(make_host_backend(0)) {}
    const char* kind() const noexcept override { return "flaky"; }
    const DeviceInfo& device() const noexcept override { return inner_->device(); }
    std::uint64_t query_free() noexcept override { return inner_->query_free(); }
    int allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        ++allocations;
        if (fail_allocations_after >= 0 && live_slabs >= fail_allocations_after) return ENOSPC;
        int err = inner_->allocate(bytes, out);
        if (!err) ++live_slabs;
        return err;
    }
    void release(DeviceAddr addr, std::uint64_t bytes) noexcept override {
        --live_slabs;
        inner_->release(addr, bytes);
    }
    int write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        return fail_copies ? EIO : inner_->write(dst, src, len);
    }
    int read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        return fail_copies ? EIO : inner_->read(src, dst, len);
    }
    int zero(DeviceAddr dst, std::size_t len) noexcept override {
        return fail_copies ? EIO : inner_->zero(dst, len);
    }
    void* allocate_host_buffer(std::size_t bytes) noexcept override {
        return inner_->allocate_host_buffer(bytes);
    }
    void release_host_buffer(void* p, std::size_t bytes) noexcept override {
        inner_->release_host_buffer(p, bytes);
    }

    int fail_allocations_after = -1; // refuse new slabs once this many are live
    std::atomic<bool> fail_copies{false};
    std::atomic<int> allocations{0};
    std::atomic<int> live_slabs{0}; // the pool's reaper thread releases concurrently

private:
    std::unique_ptr<StorageBackend> inner_;
};

} // namespace vramfs::test
