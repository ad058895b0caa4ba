// HostBackend: storage in locked host RAM, so the filesystem runs and is tested without a GPU.
#include "vramfs/log.hpp"
#include "vramfs/storage.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>

namespace vramfs {
namespace {

std::uint64_t meminfo_bytes(const char* key) noexcept {
    std::FILE* f = std::fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kib = 0;
    const std::size_t klen = std::strlen(key);
    while (std::fgets(line, sizeof line, f))
        if (std::strncmp(line, key, klen) == 0 && line[klen] == ':') {
            std::sscanf(line + klen + 1, "%llu", &kib);
            break;
        }
    std::fclose(f);
    return kib * 1024;
}

class HostBackend final : public StorageBackend {
public:
    explicit HostBackend(int index) {
        info_.index = index;
        info_.name = "host RAM";
        info_.total_bytes = meminfo_bytes("MemTotal");
        info_.free_bytes = meminfo_bytes("MemAvailable");
    }
    const char* kind() const noexcept override { return "host"; }
    const DeviceInfo& device() const noexcept override { return info_; }
    std::uint64_t query_free() noexcept override { return meminfo_bytes("MemAvailable"); }

    int allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (p == MAP_FAILED) return ENOSPC;
        // Locked and populated, like VRAM: this memory may back a swap device, so the kernel
        // must never try to swap it out. Without the privilege to lock, warn once and go on.
        if (::mlock(p, bytes) != 0 && !warned_.exchange(true))
            log_warning("host backend: mlock failed (%s); its memory can be swapped out",
                        std::strerror(errno));
        out = reinterpret_cast<DeviceAddr>(p);
        return 0;
    }
    void release(DeviceAddr addr, std::uint64_t bytes) noexcept override {
        ::munmap(reinterpret_cast<void*>(addr), bytes);
    }
    int write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        std::memcpy(reinterpret_cast<void*>(dst), src, len);
        return 0;
    }
    int read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        std::memcpy(dst, reinterpret_cast<const void*>(src), len);
        return 0;
    }
    int zero(DeviceAddr dst, std::size_t len) noexcept override {
        std::memset(reinterpret_cast<void*>(dst), 0, len);
        return 0;
    }
    void* allocate_host_buffer(std::size_t bytes) noexcept override {
        return std::aligned_alloc(4096, (bytes + 4095) & ~std::size_t{4095});
    }
    void release_host_buffer(void* p, std::size_t) noexcept override { std::free(p); }

private:
    DeviceInfo info_;
    std::atomic<bool> warned_{false};
};

} // namespace

std::unique_ptr<StorageBackend> make_host_backend(int index) {
    return std::make_unique<HostBackend>(index);
}

} // namespace vramfs
