// The status view: devices, files and counters of a mount, as a table or JSON, served as the
// virtual xattrs user.vramfs.status and user.vramfs.status.json of the root directory.
#include "vramfs/filesystem.hpp"

#include "vramfs/size.hpp"

#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace vramfs {
namespace {

// At most this many files are listed, so the answer stays within an xattr's 64 KiB.
constexpr std::size_t kMaxFiles = 300;

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

struct FileRow {
    std::string name;
    InodeNumber ino;
    std::uint64_t size, allocated;
    int device;
};

} // namespace

std::string Filesystem::status(bool json) {
    std::vector<FileRow> files;
    std::map<const BlockPool*, std::uint64_t> files_on;
    bool truncated = false;
    table_.for_each([&](const Inode& inode) {
        if (!inode.data) return;
        std::shared_lock lock(inode.mu);
        const bool stored = inode.data->allocated_blocks() > 0;
        if (stored) ++files_on[&inode.data->pool()];
        if (!stored && inode.device_pref < 0) return;
        if (files.size() >= kMaxFiles) {
            truncated = true;
            return;
        }
        files.push_back({inode.name, inode.ino, inode.size, inode.data->allocated_bytes(),
                         stored ? inode.data->pool().backend().device().index : inode.device_pref});
    });

    std::string out;
    char line[512];
    if (json) out += "{\"devices\":[";
    else {
        std::snprintf(line, sizeof line, "%-7s%-30s%12s%12s%12s%14s%7s\n", "DEVICE", "NAME",
                      "BUDGET", "USED", "RESERVED", "FREE ON CARD", "FILES");
        out += line;
    }
    for (std::size_t i = 0; i < pools_.size(); ++i) {
        BlockPool& p = *pools_[i];
        const PoolStats ps = p.stats();
        const DeviceInfo& d = p.backend().device();
        const std::uint64_t card_free = p.backend().query_free();
        if (json) {
            out += std::string(i ? "," : "") + "{\"index\":" + std::to_string(d.index) +
                   ",\"kind\":" + json_string(p.backend().kind()) + ",\"name\":" + json_string(d.name) +
                   ",\"budget\":" + std::to_string(ps.budget_bytes) + ",\"used\":" +
                   std::to_string(ps.used_bytes) + ",\"reserved\":" + std::to_string(ps.reserved_bytes) +
                   ",\"slabs\":" + std::to_string(ps.slabs) + ",\"empty_slabs\":" +
                   std::to_string(ps.empty_slabs) +
                   ",\"free_on_card\":" + std::to_string(card_free) + ",\"files\":" +
                   std::to_string(files_on[&p]) + "}";
        } else {
            std::snprintf(line, sizeof line, "%-7d%-30.29s%12s%12s%12s%14s%7llu\n", d.index, d.name.c_str(),
                          format_size(ps.budget_bytes).c_str(), format_size(ps.used_bytes).c_str(),
                          format_size(ps.reserved_bytes).c_str(), format_size(card_free).c_str(),
                          static_cast<unsigned long long>(files_on[&p]));
            out += line;
        }
    }
    if (json) out += "],\"files\":[";
    else {
        std::snprintf(line, sizeof line, "\n%-38s%12s%12s%8s\n", "FILE", "SIZE", "ALLOCATED", "DEVICE");
        out += line;
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        const FileRow& f = files[i];
        if (json) {
            out += std::string(i ? "," : "") + "{\"name\":" + json_string(f.name) + ",\"inode\":" +
                   std::to_string(f.ino) + ",\"size\":" + std::to_string(f.size) + ",\"allocated\":" +
                   std::to_string(f.allocated) + ",\"device\":" + std::to_string(f.device) + "}";
        } else {
            const std::string label = f.name + " (inode " + std::to_string(f.ino) + ")";
            std::snprintf(line, sizeof line, "%-38.37s%12s%12s%8d\n", label.c_str(),
                          format_size(f.size).c_str(), format_size(f.allocated).c_str(), f.device);
            out += line;
        }
    }
    const auto r = counters_.bytes_read.load(), w = counters_.bytes_written.load(),
               e = counters_.errors.load();
    // Per-request timing: totals in JSON (a caller can take differences), means in the table.
    auto timing_json = [](const char* name, const OpTiming& t) {
        return std::string("\"") + name + "\":{\"requests\":" + std::to_string(t.requests.load()) +
               ",\"handle_ns\":" + std::to_string(t.handle_ns.load()) + ",\"storage_ns\":" +
               std::to_string(t.storage_ns.load()) + ",\"received\":" +
               std::to_string(t.received.load()) + ",\"receive_ns\":" +
               std::to_string(t.receive_ns.load()) + "}";
    };
    auto timing_line = [](const char* name, const OpTiming& t) {
        const std::uint64_t n = t.requests.load(), got = t.received.load();
        if (n == 0) return std::string();
        char buf[256];
        const double us = 1e-3 / static_cast<double>(n);
        const double handle = static_cast<double>(t.handle_ns.load()) * us,
                     storage = static_cast<double>(t.storage_ns.load()) * us;
        int len = std::snprintf(buf, sizeof buf, "%-6s %llu requests, per request: storage %.1f us, "
                                "other handling and reply %.1f us",
                                name, static_cast<unsigned long long>(n), storage, handle - storage);
        if (got && len > 0 && static_cast<std::size_t>(len) < sizeof buf)
            std::snprintf(buf + len, sizeof buf - static_cast<std::size_t>(len), ", receive %.1f us",
                          static_cast<double>(t.receive_ns.load()) * 1e-3 / static_cast<double>(got));
        return std::string(buf) + "\n";
    };
    if (json) {
        out += "],\"files_truncated\":" + std::string(truncated ? "true" : "false") +
               ",\"counters\":{\"bytes_read\":" + std::to_string(r) + ",\"bytes_written\":" +
               std::to_string(w) + ",\"errors\":" + std::to_string(e) +
               ",\"read_cache_hits\":" + std::to_string(read_cache_.hits()) +
               ",\"read_cache_fills\":" + std::to_string(read_cache_.fills()) + "},\"timing\":{" +
               timing_json("read", request_stats_.read) + "," +
               timing_json("write", request_stats_.write) + "}}\n";
    } else {
        if (truncated) out += "(more files not listed)\n";
        out += "\nread " + format_size(r) + ", written " + format_size(w) + ", errors " +
               std::to_string(e) + " since mount; read cache: " +
               std::to_string(read_cache_.hits()) + " hits, " +
               std::to_string(read_cache_.fills()) + " windows filled\n";
        const std::string tr = timing_line("read", request_stats_.read),
                          tw = timing_line("write", request_stats_.write);
        if (!tr.empty() || !tw.empty()) out += "\n" + tr + tw;
    }
    return out;
}

} // namespace vramfs
