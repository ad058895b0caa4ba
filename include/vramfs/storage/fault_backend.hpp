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
    bool any() const { return copy_rate > 0 || copy_nth || alloc_rate > 0 || alloc_nth; }
};

// "copy-rate=0.1,alloc-nth=2,seed=7"; false with `why` on a malformed spec.
bool parse_fault_plan(const std::string& text, FaultPlan& plan, std::string& why);

std::unique_ptr<StorageBackend> make_fault_injecting_backend(std::unique_ptr<StorageBackend> inner,
                                                             const FaultPlan& plan);

} // namespace vramfs
