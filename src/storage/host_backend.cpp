// HostBackend: storage in locked host RAM, so the filesystem runs and is tested without a GPU.
#include "vramfs/util/log.hpp"
#include "vramfs/storage/backend.hpp"
#include "vramfs/util/memory.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>
#include <mutex>
#include <stdexcept>
#include <sys/mman.h>
#include <vector>

namespace vramfs {
namespace {

// 0 where /proc/meminfo cannot say.
std::uint64_t meminfo(const char* key) noexcept {
    std::uint64_t bytes = 0;
    return meminfo_bytes(key, bytes) ? bytes : 0;
}

class HostBackend final : public StorageBackend {
public:
    HostBackend(int index, std::uint64_t arena_bytes, std::string card_file) : card_file_(std::move(card_file)) {
        info_.index = index;
        info_.name = "host RAM";
        info_.total_bytes = meminfo("MemTotal");
        info_.free_bytes = meminfo("MemAvailable");
        if (arena_bytes > 0) {
            arena_bytes_ = (arena_bytes + 4095) & ~std::uint64_t{4095};
            void* p = ::mmap(nullptr, arena_bytes_, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
            if (p == MAP_FAILED) throw std::runtime_error("cannot map the host arena");
            lock(p, arena_bytes_);
            arena_ = static_cast<char*>(p);
            free_.reserve(arena_bytes_ / 4096 + 2);
            free_.push_back({0, arena_bytes_});
        }
    }
    ~HostBackend() override {
        if (arena_) ::munmap(arena_, arena_bytes_);
    }
    const char* kind() const noexcept override { return "host"; }
    bool memory_calls_may_fault() const noexcept override { return arena_ == nullptr; }
    const DeviceInfo& device() const noexcept override { return info_; }
    std::uint64_t do_query_free() noexcept override {
        if (card_file_.empty()) return meminfo("MemAvailable");
        const std::uint64_t cap = card_capacity(), used = held_.load();
        return cap > used ? cap - used : 0;
    }

    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        // A simulated card refuses past its free memory, as a GPU does.
        if (!card_file_.empty() && bytes > do_query_free()) return ENOSPC;
        const int err = allocate_memory(bytes, out);
        if (!err) held_ += bytes;
        return err;
    }
    int allocate_memory(std::uint64_t bytes, DeviceAddr& out) noexcept {
        if (arena_) return arena_allocate(bytes, out);
        void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                         -1, 0);
        if (p == MAP_FAILED) return ENOSPC;
        lock(p, bytes);
        out = reinterpret_cast<DeviceAddr>(p);
        return 0;
    }
    void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept override {
        held_ -= bytes;
        if (arena_)
            arena_release(addr, bytes);
        else
            ::munmap(reinterpret_cast<void*>(addr), bytes);
    }
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        std::memcpy(reinterpret_cast<void*>(dst), src, len);
        return 0;
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        std::memcpy(dst, reinterpret_cast<const void*>(src), len);
        return 0;
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        std::memset(reinterpret_cast<void*>(dst), 0, len);
        return 0;
    }
    void* do_allocate_host(std::size_t bytes) noexcept override {
        return std::aligned_alloc(4096, (bytes + 4095) & ~std::size_t{4095});
    }
    void do_release_host(void* p, std::size_t) noexcept override { std::free(p); }

private:
    // The simulated card's size, read afresh each time from the file a test writes (a whole
    // number of bytes); 0 where it cannot be read. Fixed buffer, plain calls: no allocation.
    std::uint64_t card_capacity() const noexcept {
        const int fd = ::open(card_file_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return 0;
        char buf[32] = {};
        const ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        return n > 0 ? std::strtoull(buf, nullptr, 10) : 0;
    }

    // Locked, like VRAM: this memory may back a swap device, so the kernel must never try to
    // swap it out. Without the privilege to lock, warn once and go on.
    void lock(void* p, std::uint64_t bytes) noexcept {
        if (::mlock(p, bytes) != 0 && !warned_.exchange(true))
            log_warning("host backend: mlock failed (%s); its memory can be swapped out",
                        std::strerror(errno));
    }

    struct Range {
        std::uint64_t off, len;
    };
    // First fit over a sorted free list whose capacity was reserved up front.
    int arena_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept {
        bytes = (bytes + 4095) & ~std::uint64_t{4095};
        std::lock_guard lock(mu_);
        for (std::size_t i = 0; i < free_.size(); ++i) {
            if (free_[i].len < bytes) continue;
            out = reinterpret_cast<DeviceAddr>(arena_ + free_[i].off);
            free_[i].off += bytes;
            free_[i].len -= bytes;
            if (free_[i].len == 0) free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
            return 0;
        }
        return ENOSPC;
    }
    void arena_release(DeviceAddr addr, std::uint64_t bytes) noexcept {
        bytes = (bytes + 4095) & ~std::uint64_t{4095};
        const std::uint64_t off = addr - reinterpret_cast<DeviceAddr>(arena_);
        std::lock_guard lock(mu_);
        std::size_t i = 0;
        while (i < free_.size() && free_[i].off < off) ++i;
        free_.insert(free_.begin() + static_cast<std::ptrdiff_t>(i), Range{off, bytes});
        // Merge with the neighbours.
        if (i + 1 < free_.size() && free_[i].off + free_[i].len == free_[i + 1].off) {
            free_[i].len += free_[i + 1].len;
            free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i + 1));
        }
        if (i > 0 && free_[i - 1].off + free_[i - 1].len == free_[i].off) {
            free_[i - 1].len += free_[i].len;
            free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }

    DeviceInfo info_;
    const std::string card_file_; // tests: a card of this many bytes stands in for RAM's free memory
    std::atomic<std::uint64_t> held_{0};
    std::atomic<bool> warned_{false};
    char* arena_ = nullptr;
    std::uint64_t arena_bytes_ = 0;
    std::mutex mu_;
    std::vector<Range> free_;
};

} // namespace

std::unique_ptr<StorageBackend> make_host_backend(int index, std::uint64_t arena_bytes, const std::string& card_file) {
    return std::make_unique<HostBackend>(index, arena_bytes, card_file);
}

} // namespace vramfs
