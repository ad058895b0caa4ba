// The storage interface: where file bytes live (VRAM through CUDA, or host RAM for tests).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vramfs {

// An address inside memory owned by a backend (a CUDA device pointer or a host pointer).
using DeviceAddr = std::uintptr_t;

struct DeviceInfo {
    int index = 0;
    std::string name;
    std::uint64_t free_bytes = 0;
    std::uint64_t total_bytes = 0;
};

// Every operation returns 0 or a positive errno (ENOSPC when memory is exhausted, EIO when the
// device failed); none throws, so a device failure can never unwind through the FUSE loop.
class StorageBackend {
public:
    virtual ~StorageBackend() = default;
    StorageBackend() = default;
    StorageBackend(const StorageBackend&) = delete;
    StorageBackend& operator=(const StorageBackend&) = delete;

    virtual const char* kind() const noexcept = 0;
    virtual const DeviceInfo& device() const noexcept = 0;
    // Free memory the device reports now (VRAM free on the card; MemAvailable for host).
    virtual std::uint64_t query_free() noexcept = 0;

    virtual int allocate(std::uint64_t bytes, DeviceAddr& out) noexcept = 0;
    virtual void release(DeviceAddr addr, std::uint64_t bytes) noexcept = 0;

    virtual int write(DeviceAddr dst, const void* src, std::size_t len) noexcept = 0;
    virtual int read(DeviceAddr src, void* dst, std::size_t len) noexcept = 0;
    virtual int zero(DeviceAddr dst, std::size_t len) noexcept = 0;

    // Host buffers the backend copies fastest from and to (pinned memory for CUDA).
    virtual void* allocate_host_buffer(std::size_t bytes) noexcept = 0;
    virtual void release_host_buffer(void* p, std::size_t bytes) noexcept = 0;
};

// Host RAM, locked so that the kernel never swaps it (it may back a swap device). With an
// arena size, all of it is mapped and locked at once and slabs are carved from it, as from a
// GPU's fixed memory: taking a slab then never asks the kernel for memory, which could wait on
// reclaim, and so on swap I/O the daemon itself serves. Without one, each slab is its own mapping.
std::unique_ptr<StorageBackend> make_host_backend(int index = 0, std::uint64_t arena_bytes = 0);

// CUDA VRAM. Returns nullptr and sets `error` when CUDA or the device is unusable; `bad_index`
// tells that the device does not exist. Without CUDA in the build it always fails.
std::unique_ptr<StorageBackend> make_cuda_backend(int device, std::string& error,
                                                  bool* bad_index = nullptr);

// CUDA driver and runtime versions (e.g. 13000 for 13.0); driver is 0 when no driver is loaded.
void cuda_versions(int& driver, int& runtime) noexcept;

// Lists CUDA devices; returns false and sets `error` when CUDA is unusable.
bool list_cuda_devices(std::vector<DeviceInfo>& out, std::string& error);

} // namespace vramfs
