// RequestStats: the opcode lookup behind the per-request timing counters, and their totals.
#include "vramfs/fuse/request_stats.hpp"

#include <linux/fuse.h>

namespace vramfs {

OpTiming* RequestStats::arrived(std::uint32_t opcode) noexcept {
    OpTiming* t = opcode == FUSE_READ ? &read : opcode == FUSE_WRITE ? &write : nullptr;
    (t ? t->requests : other_requests).fetch_add(1, std::memory_order_relaxed);
    return t;
}

namespace {
TimingTotals totals(const OpTiming& t) noexcept {
    return TimingTotals{t.requests.load(), t.handle_ns.load(), t.storage_ns.load(),
                        t.received.load(), t.receive_ns.load()};
}
} // namespace

void RequestStats::fill(StatusSnapshot& s) const noexcept {
    s.read = totals(read);
    s.write = totals(write);
    s.transport = over_uring.load() ? "uring" : "dev";
    s.ring_requests = ring_requests.load();
    s.other_requests = other_requests.load();
}

} // namespace vramfs
