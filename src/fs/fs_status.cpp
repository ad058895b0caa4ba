// Filesystem::snapshot: the numbers behind `vramfs status`, taken under the table lock.
#include "vramfs/fs/filesystem.hpp"

#include <map>
#include <mutex>

namespace vramfs {

StatusSnapshot Filesystem::snapshot() {
    StatusSnapshot s;
    std::map<const BlockPool*, std::uint64_t> files_on;
    table_.for_each([&](const Inode& inode) {
        if (!inode.data) return;
        std::shared_lock lock(inode.mu);
        const bool stored = inode.data->allocated_units() > 0;
        if (stored) ++files_on[&inode.data->pool()];
        if (!stored && inode.device_pref < 0) return;
        if (s.files.size() >= kMaxStatusFiles) {
            s.files_truncated = true;
            return;
        }
        s.files.push_back({inode.name, inode.ino, inode.size, inode.data->allocated_bytes(),
                           stored ? inode.data->pool().backend().device().index
                                  : inode.device_pref,
                           inode.data->spilled_bytes()});
    });
    for (BlockPool* p : pools_) {
        const PoolStats ps = p->stats();
        DeviceStatus d;
        d.index = p->backend().device().index;
        d.kind = p->backend().kind();
        d.name = p->backend().device().name;
        d.budget = ps.budget_bytes;
        d.used = ps.used_bytes;
        d.reserved = ps.reserved_bytes;
        d.slabs = ps.slabs;
        d.empty_slabs = ps.empty_slabs;
        d.free_on_card = p->backend().query_free();
        d.files = files_on[p];
        d.lost = p->backend().lost();
        if (ps.spill) {
            d.has_spill = true;
            d.spill = {ps.tier.vram_bytes, ps.tier.spill_bytes, ps.tier.moved_out, ps.tier.moved_in,
                       ps.tier.keep_free, ps.tier.vram_limit, p->tier()->settled()};
        }
        s.devices.push_back(std::move(d));
    }
    s.bytes_read = counters_.bytes_read.load();
    s.bytes_written = counters_.bytes_written.load();
    s.errors = counters_.errors.load();
    s.read_cache_hits = read_cache_.hits();
    s.read_cache_fills = read_cache_.fills();
    return s;
}

} // namespace vramfs
