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
    std::uint64_t do_query_free() noexcept override { return forward_query_free(*inner_); }
    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        ++allocations;
        if (fail_allocations_after >= 0 && live_slabs >= fail_allocations_after) return ENOSPC;
        int err = forward_allocate(*inner_, bytes, out);
        if (!err) ++live_slabs;
        return err;
    }
    void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept override {
        --live_slabs;
        forward_release(*inner_, addr, bytes);
    }
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        ++copies;
        if (lose_device) return kDeviceLost;
        return fail_copies ? EIO : forward_write(*inner_, dst, src, len);
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        ++copies;
        if (lose_device) return kDeviceLost;
        return fail_copies ? EIO : forward_read(*inner_, src, dst, len);
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        return fail_copies ? EIO : forward_zero(*inner_, dst, len);
    }
    void* do_allocate_host(std::size_t bytes) noexcept override {
        return forward_allocate_host(*inner_, bytes);
    }
    void do_release_host(void* p, std::size_t bytes) noexcept override {
        forward_release_host(*inner_, p, bytes);
    }

    int fail_allocations_after = -1; // refuse new slabs once this many are live
    std::atomic<bool> fail_copies{false};
    std::atomic<bool> lose_device{false}; // copies report the device gone
    std::atomic<int> copies{0};           // write and read calls that reached this backend
    std::atomic<int> allocations{0};
    std::atomic<int> live_slabs{0}; // the pool's reaper thread releases concurrently

private:
    std::unique_ptr<StorageBackend> inner_;
};

// Wraps the host backend as a card of `capacity` bytes that other programs may take from: free
// memory is the capacity less what this backend holds, and an allocation past it is refused,
// as a GPU's is. A test lowers the capacity to play a game that wants the VRAM.
class SimulatedCard final : public StorageBackend {
public:
    explicit SimulatedCard(std::uint64_t bytes) : inner_(make_host_backend(0)), capacity(bytes) {}
    const char* kind() const noexcept override { return "card"; }
    const DeviceInfo& device() const noexcept override { return inner_->device(); }
    std::uint64_t do_query_free() noexcept override {
        const std::uint64_t cap = capacity.load(), used = held.load();
        return cap > used ? cap - used : 0;
    }
    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        if (lose_device) return kDeviceLost;
        if (bytes > do_query_free()) return ENOSPC;
        int err = forward_allocate(*inner_, bytes, out);
        if (!err) held += bytes;
        return err;
    }
    void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept override {
        held -= bytes;
        forward_release(*inner_, addr, bytes);
    }
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        return lose_device ? kDeviceLost : forward_write(*inner_, dst, src, len);
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        return lose_device ? kDeviceLost : forward_read(*inner_, src, dst, len);
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        return lose_device ? kDeviceLost : forward_zero(*inner_, dst, len);
    }
    void* do_allocate_host(std::size_t bytes) noexcept override { return forward_allocate_host(*inner_, bytes); }
    void do_release_host(void* p, std::size_t bytes) noexcept override { forward_release_host(*inner_, p, bytes); }

private:
    std::unique_ptr<StorageBackend> inner_;

public:
    std::atomic<std::uint64_t> capacity;
    std::atomic<std::uint64_t> held{0};
    std::atomic<bool> lose_device{false}; // every call reports the card gone (a GPU lost over a sleep)
};

} // namespace vramfs::test
