// StatusSnapshot: a mount's state as plain numbers and names (devices, files, counters, request
// timing), taken by the fs layer and turned into text, JSON or Prometheus by src/status.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace vramfs {

// The virtual attributes of the mount's root that carry the status; read-only, never listed.
inline constexpr const char* kStatusXattr = "user.vramfs.status";           // a table
inline constexpr const char* kStatusJsonXattr = "user.vramfs.status.json";  // JSON
// Written on the root to move data between VRAM and the spill: "yield BYTES", "yield all" or
// "reclaim" (vramfs yield and reclaim); write-only, never listed.
inline constexpr const char* kSpillXattr = "user.vramfs.spill";

// A device's spill tier (SpillTier), where the mount has one.
struct SpillStatus {
    std::uint64_t in_vram = 0, on_spill = 0;   // bytes held in device memory, and on the spill
    std::uint64_t moved_out = 0, moved_in = 0; // bytes moved to the spill and back since mount
    std::uint64_t keep_free = 0;
    std::uint64_t vram_limit = UINT64_MAX; // what yield left it (UINT64_MAX: none)
    bool settled = true;                   // nothing is moving now
};

struct DeviceStatus {
    int index = 0;
    std::string kind; // the backend: cuda, host
    std::string name;
    std::uint64_t budget = 0, used = 0, reserved = 0, slabs = 0, empty_slabs = 0;
    std::uint64_t free_on_card = 0;
    std::uint64_t files = 0; // files with storage on this device
    bool lost = false;       // the device is gone: its files answer EIO (StorageBackend::lost)
    bool has_spill = false;
    SpillStatus spill;
};

struct FileStatus {
    std::string name;
    std::uint64_t inode = 0, size = 0, allocated = 0;
    int device = -1;
    std::uint64_t on_spill = 0; // of `allocated`, the bytes on the device's spill now
};

// Totals since mount for one kind of request (read or write); see fuse/request_stats.hpp.
struct TimingTotals {
    std::uint64_t requests = 0, handle_ns = 0, storage_ns = 0, received = 0, receive_ns = 0;
};

struct StatusSnapshot {
    std::vector<DeviceStatus> devices;
    std::vector<FileStatus> files; // at most kMaxStatusFiles
    bool files_truncated = false;
    // The files were left out: they are shown only to root and the mount's owner (a file's
    // name can be secret where its directory is not readable to the asker).
    bool files_hidden = false;
    std::uint64_t bytes_read = 0, bytes_written = 0, errors = 0;
    std::uint64_t read_cache_hits = 0, read_cache_fills = 0;
    TimingTotals read, write; // filled in by the FUSE layer, which does the timing
    // Also the FUSE layer's: what carries the requests ("uring" or "dev"; empty: not known, as
    // from a daemon older than the field), and how many came over io_uring.
    std::string transport;
    std::uint64_t ring_requests = 0;
    std::uint64_t other_requests = 0; // every request that is not a read or a write
};

// Files listed at most, so that the JSON stays within an xattr's 64 KiB.
inline constexpr std::size_t kMaxStatusFiles = 300;

} // namespace vramfs
