// FaultInjectingBackend: a test-only decorator that makes a backend fail copies (EIO) or
// allocations (ENOSPC) at a seeded rate or at the Nth call, to prove that every failure stays
// one request's error and changes nothing else.
#include "vramfs/storage/fault_backend.hpp"

#include "vramfs/util/log.hpp"

#include <atomic>
#include <cerrno>

namespace vramfs {
namespace {

std::uint64_t mix(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

class FaultInjectingBackend final : public StorageBackend {
public:
    FaultInjectingBackend(std::unique_ptr<StorageBackend> inner, FaultPlan plan)
        : inner_(std::move(inner)), plan_(plan) {}
    const char* kind() const noexcept override { return inner_->kind(); }
    const DeviceInfo& device() const noexcept override { return inner_->device(); }
    std::uint64_t do_query_free() noexcept override { return forward_query_free(*inner_); }
    int do_prepare_thread() noexcept override { return forward_prepare_thread(*inner_); }
    bool memory_calls_may_fault() const noexcept override { return inner_->memory_calls_may_fault(); }
    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        if (gone()) return kDeviceLost;
        if (hit(allocs_, plan_.alloc_nth, plan_.alloc_rate, 1)) return ENOSPC;
        return forward_allocate(*inner_, bytes, out);
    }
    void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept override { forward_release(*inner_, addr, bytes); }
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        if (copy_loses_device()) return kDeviceLost;
        return hit(copies_, plan_.copy_nth, plan_.copy_rate, 2) ? EIO : forward_write(*inner_, dst, src, len);
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        if (copy_loses_device()) return kDeviceLost;
        return hit(copies_, plan_.copy_nth, plan_.copy_rate, 2) ? EIO : forward_read(*inner_, src, dst, len);
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        if (copy_loses_device()) return kDeviceLost;
        return hit(copies_, plan_.copy_nth, plan_.copy_rate, 2) ? EIO : forward_zero(*inner_, dst, len);
    }
    void* do_allocate_host(std::size_t bytes) noexcept override {
        return forward_allocate_host(*inner_, bytes);
    }
    void do_release_host(void* p, std::size_t bytes) noexcept override {
        forward_release_host(*inner_, p, bytes);
    }

private:
    bool applies_lost() const noexcept {
        return plan_.lost_after && (plan_.lost_device < 0 || plan_.lost_device == inner_->device().index);
    }
    bool gone() const noexcept { return applies_lost() && lost_copies_.load() >= plan_.lost_after; }
    // Counts the copy; true from the lost_after-th on.
    bool copy_loses_device() noexcept { return applies_lost() && ++lost_copies_ >= plan_.lost_after; }

    bool hit(std::atomic<std::uint64_t>& counter, std::uint64_t nth, double rate, std::uint64_t salt) {
        const std::uint64_t n = ++counter;
        if (nth && n == nth) return true;
        if (rate <= 0) return false;
        const double u = static_cast<double>(mix(plan_.seed * 1000003 + salt * 7 + n) >> 11) * 0x1.0p-53;
        return u < rate;
    }
    std::unique_ptr<StorageBackend> inner_;
    FaultPlan plan_;
    std::atomic<std::uint64_t> copies_{0}, allocs_{0}, lost_copies_{0};
};

} // namespace

bool parse_fault_plan(const std::string& text, FaultPlan& plan, std::string& why) {
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(start, end - start);
        const auto eq = item.find('=');
        if (eq == std::string::npos) {
            why = "expected key=value in '" + item + "'";
            return false;
        }
        const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
        try {
            std::size_t used = 0;
            if (key == "copy-rate" || key == "alloc-rate") {
                const double r = std::stod(val, &used);
                if (used != val.size() || r < 0 || r > 1) throw 0;
                (key == "copy-rate" ? plan.copy_rate : plan.alloc_rate) = r;
            } else if (key == "copy-nth" || key == "alloc-nth" || key == "seed" || key == "lost-after") {
                if (val.empty() || val[0] == '-') throw 0;
                const unsigned long long v = std::stoull(val, &used);
                if (used != val.size()) throw 0;
                (key == "copy-nth"    ? plan.copy_nth
                 : key == "alloc-nth" ? plan.alloc_nth
                 : key == "seed"      ? plan.seed
                                      : plan.lost_after) = v;
            } else if (key == "lost-device") {
                const int v = std::stoi(val, &used);
                if (used != val.size() || v < 0) throw 0;
                plan.lost_device = v;
            } else {
                why = "unknown key '" + key +
                      "' (copy-rate, copy-nth, alloc-rate, alloc-nth, seed, lost-after, lost-device)";
                return false;
            }
        } catch (...) {
            why = "bad value in '" + item + "'";
            return false;
        }
        start = end + 1;
    }
    return true;
}

std::unique_ptr<StorageBackend> make_fault_injecting_backend(std::unique_ptr<StorageBackend> inner,
                                                             const FaultPlan& plan) {
    log_warning("fault injection is on: copies fail at rate %g (and call %llu), allocations at "
                "rate %g (and call %llu), the device is lost from copy %llu (0: never)",
                plan.copy_rate, static_cast<unsigned long long>(plan.copy_nth), plan.alloc_rate,
                static_cast<unsigned long long>(plan.alloc_nth),
                static_cast<unsigned long long>(plan.lost_after));
    return std::make_unique<FaultInjectingBackend>(std::move(inner), plan);
}

} // namespace vramfs
