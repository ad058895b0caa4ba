// The storage interface: where file bytes live (VRAM through CUDA, or host RAM for tests).
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vramfs {

// An address inside memory owned by a backend (a CUDA device pointer or a host pointer): where
// a copy starts. Memory itself is owned by a DeviceBuffer.
using DeviceAddr = std::uintptr_t;

struct DeviceInfo {
    int index = 0;
    std::string name;
    std::uint64_t free_bytes = 0;
    std::uint64_t total_bytes = 0;
};

class StorageBackend;

// A piece of device memory and the backend it came from: move-only, given back when it is
// destroyed or reset, so no caller keeps a bare address and a size to free it with.
class DeviceBuffer {
public:
    DeviceBuffer() noexcept = default;
    DeviceBuffer(DeviceBuffer&& o) noexcept
        : backend_(std::exchange(o.backend_, nullptr)), addr_(std::exchange(o.addr_, 0)),
          bytes_(std::exchange(o.bytes_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            backend_ = std::exchange(o.backend_, nullptr);
            addr_ = std::exchange(o.addr_, 0);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() { reset(); }

    DeviceAddr address() const noexcept { return addr_; }
    std::uint64_t size() const noexcept { return bytes_; }
    explicit operator bool() const noexcept { return backend_ != nullptr; }
    // Gives the memory back to its backend now (nothing if empty).
    void reset() noexcept;

private:
    friend class StorageBackend;
    StorageBackend* backend_ = nullptr;
    DeviceAddr addr_ = 0;
    std::uint64_t bytes_ = 0;
};

class HostMemory;

// A host buffer the backend copies fastest from and to (page-locked for CUDA); move-only.
class HostBuffer {
public:
    HostBuffer() noexcept = default;
    HostBuffer(HostBuffer&& o) noexcept
        : owner_(std::exchange(o.owner_, nullptr)), data_(std::exchange(o.data_, nullptr)),
          bytes_(std::exchange(o.bytes_, 0)) {}
    HostBuffer& operator=(HostBuffer&& o) noexcept {
        if (this != &o) {
            reset();
            owner_ = std::exchange(o.owner_, nullptr);
            data_ = std::exchange(o.data_, nullptr);
            bytes_ = std::exchange(o.bytes_, 0);
        }
        return *this;
    }
    HostBuffer(const HostBuffer&) = delete;
    HostBuffer& operator=(const HostBuffer&) = delete;
    ~HostBuffer() { reset(); }

    void* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return bytes_; }
    explicit operator bool() const noexcept { return data_ != nullptr; }
    void reset() noexcept;

private:
    friend class HostMemory;
    HostMemory* owner_ = nullptr;
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
};

// Host memory a backend copies fastest from and to (page-locked for CUDA; for Vulkan memory the
// driver maps or imports): all that the transports, which only receive and reply, need of
// storage.
class HostMemory {
public:
    virtual ~HostMemory() = default;
    // A host buffer of `bytes` into `out`: 0, or ENOMEM.
    int allocate_host(std::size_t bytes, HostBuffer& out) noexcept {
        void* p = do_allocate_host(bytes);
        if (!p) return ENOMEM;
        out = HostBuffer();
        out.owner_ = this;
        out.data_ = p;
        out.bytes_ = bytes;
        return 0;
    }

protected:
    virtual void* do_allocate_host(std::size_t bytes) noexcept = 0;
    virtual void do_release_host(void* p, std::size_t bytes) noexcept = 0; // only HostBuffer calls it

private:
    friend class HostBuffer;
};

// What a backend's do_* calls return when the device itself is gone (a GPU fallen off the bus,
// an uncorrectable ECC error, a context that did not survive a reset): not a request's
// failure but the device's. The backend then stays lost (see StorageBackend::lost).
inline constexpr int kDeviceLost = ENODEV;

// Every operation returns 0 or a positive errno (ENOSPC when memory is exhausted, EIO when the
// device failed); none throws, so a device failure can never unwind through the FUSE loop.
// Once a call reports kDeviceLost the backend is lost for good: one log line says so, and
// every later call answers EIO at once without reaching the device (releases do nothing).
class StorageBackend : public HostMemory {
public:
    ~StorageBackend() override = default;
    StorageBackend() = default;
    StorageBackend(const StorageBackend&) = delete;
    StorageBackend& operator=(const StorageBackend&) = delete;

    virtual const char* kind() const noexcept = 0;
    virtual const DeviceInfo& device() const noexcept = 0;

    // Free memory the device reports now (VRAM free on the card; MemAvailable for host); 0 once
    // the device is lost.
    std::uint64_t query_free() noexcept { return lost() ? 0 : do_query_free(); }
    bool lost() const noexcept { return lost_.load(std::memory_order_relaxed); }

    // `bytes` of device memory into `out` (which must be empty): 0, or ENOSPC / EIO.
    int allocate(std::uint64_t bytes, DeviceBuffer& out) noexcept {
        if (lost()) return EIO;
        DeviceAddr addr = 0;
        if (int err = checked(do_allocate(bytes, addr))) return err;
        out = DeviceBuffer();
        out.backend_ = this;
        out.addr_ = addr;
        out.bytes_ = bytes;
        return 0;
    }
    // Called by each thread that will serve requests, before its first one: whatever the
    // device's API sets up per thread on first use (CUDA binds the device and makes the
    // thread's stream) is made now, while memory is plentiful. A serving thread that did it
    // under memory pressure could wait in reclaim for swap writeback that it alone can serve
    // (FUSE over io_uring sends each CPU's requests to one thread). 0, or an errno.
    int prepare_thread() noexcept { return lost() ? 0 : checked(do_prepare_thread()); }
    // Whether taking device memory or giving it back calls into a driver that may fault in host
    // memory (a GPU's; a CPU driver's "device memory" is host memory, faulted in when first
    // copied into): such calls wait while memory is short (memory_is_short), since the fault
    // could wait on swap this daemon serves. The host backend's arena is faulted in and locked.
    virtual bool memory_calls_may_fault() const noexcept { return true; }

    int write(DeviceAddr dst, const void* src, std::size_t len) noexcept {
        return lost() ? EIO : checked(do_write(dst, src, len));
    }
    int read(DeviceAddr src, void* dst, std::size_t len) noexcept {
        return lost() ? EIO : checked(do_read(src, dst, len));
    }
    int zero(DeviceAddr dst, std::size_t len) noexcept {
        return lost() ? EIO : checked(do_zero(dst, len));
    }

protected:
    // What each backend implements; only the buffers call the release side. A call returns
    // kDeviceLost when the device is gone.
    virtual std::uint64_t do_query_free() noexcept = 0;
    virtual int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept = 0;
    virtual int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept = 0;
    virtual int do_zero(DeviceAddr dst, std::size_t len) noexcept = 0;
    virtual int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept = 0;
    virtual void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept = 0;
    virtual int do_prepare_thread() noexcept { return 0; }
    // For decorators, which pass their inner backend's memory on as it is.
    static int forward_allocate(StorageBackend& inner, std::uint64_t bytes, DeviceAddr& out) noexcept {
        return inner.do_allocate(bytes, out);
    }
    static std::uint64_t forward_query_free(StorageBackend& inner) noexcept { return inner.do_query_free(); }
    static int forward_prepare_thread(StorageBackend& inner) noexcept { return inner.do_prepare_thread(); }
    static int forward_write(StorageBackend& inner, DeviceAddr dst, const void* src, std::size_t len) noexcept {
        return inner.do_write(dst, src, len);
    }
    static int forward_read(StorageBackend& inner, DeviceAddr src, void* dst, std::size_t len) noexcept {
        return inner.do_read(src, dst, len);
    }
    static int forward_zero(StorageBackend& inner, DeviceAddr dst, std::size_t len) noexcept {
        return inner.do_zero(dst, len);
    }
    static void forward_release(StorageBackend& inner, DeviceAddr addr, std::uint64_t bytes) noexcept {
        inner.do_release(addr, bytes);
    }
    static void* forward_allocate_host(StorageBackend& inner, std::size_t bytes) noexcept {
        return inner.do_allocate_host(bytes);
    }
    static void forward_release_host(StorageBackend& inner, void* p, std::size_t bytes) noexcept {
        inner.do_release_host(p, bytes);
    }

private:
    friend class DeviceBuffer;
    // kDeviceLost marks the backend lost (once, with a log line) and becomes EIO.
    int checked(int err) noexcept {
        if (err != kDeviceLost) return err;
        mark_lost();
        return EIO;
    }
    void mark_lost() noexcept;
    std::atomic<bool> lost_{false};
};

inline void DeviceBuffer::reset() noexcept {
    if (backend_ && !backend_->lost()) backend_->do_release(addr_, bytes_);
    backend_ = nullptr;
    addr_ = 0;
    bytes_ = 0;
}

inline void HostBuffer::reset() noexcept {
    if (owner_) owner_->do_release_host(data_, bytes_);
    owner_ = nullptr;
    data_ = nullptr;
    bytes_ = 0;
}

// Host RAM, locked so that the kernel never swaps it (it may back a swap device). With an
// arena size, all of it is mapped and locked at once and slabs are carved from it, as from a
// GPU's fixed memory: taking a slab then never asks the kernel for memory, which could wait on
// reclaim, and so on swap I/O the daemon itself serves. Without one, each slab is its own mapping.
// With `card_file` (tests), free memory is that file's number of bytes less what the backend
// holds, and allocations past it are refused: a simulated card another program can take from.
std::unique_ptr<StorageBackend> make_host_backend(int index = 0, std::uint64_t arena_bytes = 0,
                                                  const std::string& card_file = "");
// The host backend's devices, 0 to kHostDevices - 1: enough for tests of a mount over several.
inline constexpr int kHostDevices = 4;

// CUDA VRAM. Returns nullptr and sets `error` when CUDA or the device is unusable; `bad_index`
// tells that the device does not exist. Without CUDA in the build it always fails.
std::unique_ptr<StorageBackend> make_cuda_backend(int device, std::string& error,
                                                  bool* bad_index = nullptr);

// CUDA driver and runtime versions (e.g. 13000 for 13.0); driver is 0 when no driver is loaded.
void cuda_versions(int& driver, int& runtime) noexcept;

// Lists CUDA devices; returns false and sets `error` when CUDA is unusable.
bool list_cuda_devices(std::vector<DeviceInfo>& out, std::string& error);

// How the Vulkan backend copies. The defaults are what runs; the option table's hidden --vk-*
// options (docs/options.md) set the rest, to compare; tests set transfer_writes.
struct VulkanTuning {
    static constexpr unsigned kAuto = ~0u;
    // A copy's fence is polled this long (microseconds) before the thread sleeps on it; kAuto:
    // 200 on a GPU, 0 on a CPU driver, where spinning takes the CPU from the copy.
    unsigned fence_spin_us = kAuto;
    unsigned queue_write_kib = 0;  // with mapped writes, writes of this many KiB up go on the queue (0: none)
    unsigned mapped_read_kib = 4;  // with slabs mapped, reads up to this many KiB by the CPU (0: none)
    bool fresh_on_queue = true;    // large writes into chunks the CPU has not yet written: on the queue
    bool host_import = true;       // host buffers are our own memory, imported where the driver can
    bool batch = true;             // copies asked for at once share a submission (timeline semaphores)
    bool batch_barrier = true;     // one barrier a submission, not one a copy
    // With batch, the most submissions on a queue at once (0: no limit): one running and one
    // ready keep the queue busy, and what arrives meanwhile gathers into the next.
    unsigned in_flight = 2;
    unsigned queues = 0;           // queues of the chosen family used at most (0: all it has, up to 4)
    unsigned queue_family = kAuto; // kAuto: the family that answered a probe fastest
    // Writes on the queue even where the whole heap is mappable (tests cover both paths).
    bool transfer_writes = false;
};

// Device-local memory of a GPU through Vulkan (AMD, Intel, NVIDIA; Mesa's lavapipe on a CPU).
// `device` counts the Vulkan physical devices that have a device-local heap. Returns nullptr
// and sets `error` when Vulkan or the device is unusable; without Vulkan in the build it
// always fails. Writes go by CPU into mapped device memory where the whole heap is mappable,
// else on a transfer queue.
std::unique_ptr<StorageBackend> make_vulkan_backend(int device, const VulkanTuning& tuning,
                                                    std::string& error, bool* bad_index = nullptr);

// What --list-devices and --check say about a Vulkan device. info.free_bytes is the heap's
// budget less its usage where the driver reports them (VK_EXT_memory_budget), else its size.
struct VulkanDeviceReport {
    DeviceInfo info;
    std::string vendor, type, api_version;
    bool memory_budget = false;        // VK_EXT_memory_budget: budgets are checked against it
    bool external_memory_host = false; // VK_EXT_external_memory_host
};
bool list_vulkan_devices(std::vector<VulkanDeviceReport>& out, std::string& error);

} // namespace vramfs
