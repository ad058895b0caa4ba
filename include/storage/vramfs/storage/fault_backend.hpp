// Fault injection for tests: a backend decorator that fails copies and allocations on purpose.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace vramfs {

struct FaultPlan {
    double copy_rate = 0;       // each copy (read, write, zero) fails with EIO with this chance
    std::uint64_t copy_nth = 0; // ...and the Nth copy fails (0: none)
    double alloc_rate = 0;      // each slab allocation fails with ENOSPC with this chance
    std::uint64_t alloc_nth = 0;
    std::uint64_t seed = 1;
    // From the Nth copy on (0: never), the device is lost: every call reports kDeviceLost, as
    // a GPU that fell off the bus would. Only on device lost_device, if that is set.
    std::uint64_t lost_after = 0;
    int lost_device = -1;
    bool any() const { return copy_rate > 0 || copy_nth || alloc_rate > 0 || alloc_nth || lost_after; }
};

// "copy-rate=0.1,alloc-nth=2,seed=7,lost-after=50,lost-device=1"; false with `why` on a
// malformed spec.
bool parse_fault_plan(const std::string& text, FaultPlan& plan, std::string& why);

std::unique_ptr<StorageBackend> make_fault_injecting_backend(std::unique_ptr<StorageBackend> inner,
                                                             const FaultPlan& plan);

} // namespace vramfs
