// status_text, status_json, status_prometheus and parse_status_json.
#include "vramfs/status/format.hpp"

#include "vramfs/util/size.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>

namespace vramfs {
namespace {

// Keys in the order written, as the output has always had them (scripts may grep it).
using json = nlohmann::ordered_json;

json timing_json(const TimingTotals& t) {
    return json{{"requests", t.requests}, {"handle_ns", t.handle_ns},
                {"storage_ns", t.storage_ns}, {"received", t.received},
                {"receive_ns", t.receive_ns}};
}

void timing_from(const json& j, TimingTotals& t) {
    t.requests = j.at("requests").get<std::uint64_t>();
    t.handle_ns = j.at("handle_ns").get<std::uint64_t>();
    t.storage_ns = j.at("storage_ns").get<std::uint64_t>();
    t.received = j.at("received").get<std::uint64_t>();
    t.receive_ns = j.at("receive_ns").get<std::uint64_t>();
}

// One line of per-request means, or "" when no such request was served.
std::string timing_line(const char* name, const TimingTotals& t) {
    if (t.requests == 0) return "";
    char buf[256];
    const double us = 1e-3 / static_cast<double>(t.requests);
    const double handle = static_cast<double>(t.handle_ns) * us,
                 storage = static_cast<double>(t.storage_ns) * us;
    int len = std::snprintf(buf, sizeof buf,
                            "%-6s %llu requests, per request: storage %.1f us, "
                            "other handling and reply %.1f us",
                            name, static_cast<unsigned long long>(t.requests), storage,
                            handle - storage);
    if (t.received && len > 0 && static_cast<std::size_t>(len) < sizeof buf)
        std::snprintf(buf + len, sizeof buf - static_cast<std::size_t>(len), ", receive %.1f us",
                      static_cast<double>(t.receive_ns) * 1e-3 / static_cast<double>(t.received));
    return std::string(buf) + "\n";
}

// A Prometheus label value: backslash, double quote and newline escaped.
std::string label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

} // namespace

std::string status_text(const StatusSnapshot& s) {
    std::string out;
    char line[1024];
    // The NAME column fits the longest device name whole (GPU names run past 30 characters).
    int name_width = 30;
    for (const DeviceStatus& d : s.devices)
        name_width = std::max(name_width, static_cast<int>(std::min<std::size_t>(d.name.size(), 256)) + 1);
    std::snprintf(line, sizeof line, "%-7s%-*s%12s%12s%12s%14s%7s%7s\n", "DEVICE", name_width, "NAME",
                  "BUDGET", "USED", "RESERVED", "FREE ON CARD", "FILES", "STATE");
    out += line;
    for (const DeviceStatus& d : s.devices) {
        std::snprintf(line, sizeof line, "%-7d%-*.256s%12s%12s%12s%14s%7llu%7s\n", d.index,
                      name_width, d.name.c_str(), format_size(d.budget).c_str(), format_size(d.used).c_str(),
                      format_size(d.reserved).c_str(), format_size(d.free_on_card).c_str(),
                      static_cast<unsigned long long>(d.files), d.lost ? "LOST" : "ok");
        out += line;
    }
    for (const DeviceStatus& d : s.devices) {
        if (!d.has_spill) continue;
        const SpillStatus& t = d.spill;
        out += "device " + std::to_string(d.index) + " spill: " + format_size(t.in_vram) + " in VRAM, " +
               format_size(t.on_spill) + " on the spill; moved out " + format_size(t.moved_out) +
               ", back " + format_size(t.moved_in) + "; keeps " + format_size(t.keep_free) +
               " of the card free" +
               (t.vram_limit == UINT64_MAX ? std::string()
                                           : "; yielded: holds at most " + format_size(t.vram_limit)) +
               (t.settled ? "" : "; moving") + "\n";
    }
    // The ON SPILL column only where a device has a spill.
    const bool spill = std::any_of(s.devices.begin(), s.devices.end(), [](const DeviceStatus& d) { return d.has_spill; });
    std::snprintf(line, sizeof line, "\n%-38s%12s%12s%8s%s\n", "FILE", "SIZE", "ALLOCATED", "DEVICE",
                  spill ? "    ON SPILL" : "");
    out += line;
    for (const FileStatus& f : s.files) {
        const std::string name = f.name + " (inode " + std::to_string(f.inode) + ")";
        char on_spill[32] = "";
        if (spill) std::snprintf(on_spill, sizeof on_spill, "%12s", format_size(f.on_spill).c_str());
        std::snprintf(line, sizeof line, "%-38.37s%12s%12s%8d%s\n", name.c_str(),
                      format_size(f.size).c_str(), format_size(f.allocated).c_str(), f.device, on_spill);
        out += line;
    }
    if (s.files_truncated) out += "(more files not listed)\n";
    if (s.files_hidden) out += "(files are listed for root and the mount's owner only)\n";
    out += "\nread " + format_size(s.bytes_read) + ", written " + format_size(s.bytes_written) +
           ", errors " + std::to_string(s.errors) + " since mount; read cache: " +
           std::to_string(s.read_cache_hits) + " hits, " + std::to_string(s.read_cache_fills) +
           " windows filled\n";
    if (!s.transport.empty())
        out += std::string("transport: ") +
               (s.transport == "uring" ? "FUSE over io_uring" : "/dev/fuse") + "\n";
    const std::string tr = timing_line("read", s.read), tw = timing_line("write", s.write);
    if (!tr.empty() || !tw.empty()) out += "\n" + tr + tw;
    return out;
}

std::string status_json(const StatusSnapshot& s) {
    json devices = json::array(), files = json::array();
    for (const DeviceStatus& d : s.devices) {
        json dev{{"index", d.index}, {"kind", d.kind}, {"name", d.name},
                 {"budget", d.budget}, {"used", d.used}, {"reserved", d.reserved},
                 {"slabs", d.slabs}, {"empty_slabs", d.empty_slabs},
                 {"free_on_card", d.free_on_card}, {"files", d.files},
                 {"lost", d.lost}};
        if (d.has_spill) {
            const SpillStatus& t = d.spill;
            dev["spill"] = {{"in_vram", t.in_vram}, {"on_spill", t.on_spill}, {"moved_out", t.moved_out},
                            {"moved_in", t.moved_in}, {"keep_free", t.keep_free},
                            {"vram_limit", t.vram_limit}, {"settled", t.settled}};
        }
        devices.push_back(std::move(dev));
    }
    for (const FileStatus& f : s.files)
        files.push_back({{"name", f.name}, {"inode", f.inode}, {"size", f.size},
                         {"allocated", f.allocated}, {"device", f.device}, {"on_spill", f.on_spill}});
    const json j{{"devices", devices},
                 {"files", files},
                 {"files_truncated", s.files_truncated},
                 {"files_hidden", s.files_hidden},
                 {"counters",
                  {{"bytes_read", s.bytes_read}, {"bytes_written", s.bytes_written},
                   {"errors", s.errors}, {"read_cache_hits", s.read_cache_hits},
                   {"read_cache_fills", s.read_cache_fills}}},
                 {"timing", {{"read", timing_json(s.read)}, {"write", timing_json(s.write)}}},
                 {"transport",
                  {{"name", s.transport},
                   {"ring_requests", s.ring_requests},
                   {"other_requests", s.other_requests}}}};
    // A file name need not be UTF-8: such bytes are replaced rather than failing the answer.
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

bool parse_status_json(const std::string& text, StatusSnapshot& out, std::string& error) {
    try {
        const json j = json::parse(text);
        StatusSnapshot s;
        for (const json& d : j.at("devices")) {
            DeviceStatus ds;
            ds.index = d.at("index").get<int>();
            ds.kind = d.at("kind").get<std::string>();
            ds.name = d.at("name").get<std::string>();
            ds.budget = d.at("budget").get<std::uint64_t>();
            ds.used = d.at("used").get<std::uint64_t>();
            ds.reserved = d.at("reserved").get<std::uint64_t>();
            ds.slabs = d.at("slabs").get<std::uint64_t>();
            ds.empty_slabs = d.at("empty_slabs").get<std::uint64_t>();
            ds.free_on_card = d.at("free_on_card").get<std::uint64_t>();
            ds.files = d.at("files").get<std::uint64_t>();
            ds.lost = d.at("lost").get<bool>();
            if (d.contains("spill")) {
                const json& t = d["spill"];
                ds.has_spill = true;
                ds.spill.in_vram = t.at("in_vram").get<std::uint64_t>();
                ds.spill.on_spill = t.at("on_spill").get<std::uint64_t>();
                ds.spill.moved_out = t.at("moved_out").get<std::uint64_t>();
                ds.spill.moved_in = t.at("moved_in").get<std::uint64_t>();
                ds.spill.keep_free = t.at("keep_free").get<std::uint64_t>();
                ds.spill.vram_limit = t.at("vram_limit").get<std::uint64_t>();
                ds.spill.settled = t.at("settled").get<bool>();
            }
            s.devices.push_back(std::move(ds));
        }
        for (const json& f : j.at("files"))
            s.files.push_back({f.at("name").get<std::string>(), f.at("inode").get<std::uint64_t>(),
                               f.at("size").get<std::uint64_t>(),
                               f.at("allocated").get<std::uint64_t>(), f.at("device").get<int>(),
                               f.value("on_spill", std::uint64_t{0})});
        s.files_truncated = j.at("files_truncated").get<bool>();
        s.files_hidden = j.at("files_hidden").get<bool>();
        const json& c = j.at("counters");
        s.bytes_read = c.at("bytes_read").get<std::uint64_t>();
        s.bytes_written = c.at("bytes_written").get<std::uint64_t>();
        s.errors = c.at("errors").get<std::uint64_t>();
        s.read_cache_hits = c.at("read_cache_hits").get<std::uint64_t>();
        s.read_cache_fills = c.at("read_cache_fills").get<std::uint64_t>();
        timing_from(j.at("timing").at("read"), s.read);
        timing_from(j.at("timing").at("write"), s.write);
        if (j.contains("transport")) { // absent from daemons older than the transport seam
            s.transport = j["transport"].at("name").get<std::string>();
            s.ring_requests = j["transport"].at("ring_requests").get<std::uint64_t>();
            s.other_requests = j["transport"].value("other_requests", std::uint64_t{0});
        }
        out = std::move(s);
        return true;
    } catch (const json::exception& ex) {
        error = ex.what();
        return false;
    }
}

std::string status_prometheus(const StatusSnapshot& s, const std::string& mountpoint) {
    std::string out;
    const std::string mount = "mountpoint=\"" + label(mountpoint) + "\"";
    auto family = [&](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto sample = [&](const char* name, const std::string& labels, std::uint64_t value) {
        out += std::string(name) + "{" + labels + "} " + std::to_string(value) + "\n";
    };
    auto seconds = [&](const char* name, const std::string& labels, std::uint64_t ns) {
        char v[64];
        std::snprintf(v, sizeof v, "%.9f", static_cast<double>(ns) * 1e-9);
        out += std::string(name) + "{" + labels + "} " + v + "\n";
    };
    struct DeviceGauge {
        const char* name;
        const char* help;
        std::uint64_t DeviceStatus::*field;
    };
    static const DeviceGauge kGauges[] = {
        {"vramfs_device_budget_bytes", "Bytes of the device the mount may use.", &DeviceStatus::budget},
        {"vramfs_device_used_bytes", "Bytes held by files.", &DeviceStatus::used},
        {"vramfs_device_reserved_bytes", "Bytes taken from the device (slabs).", &DeviceStatus::reserved},
        {"vramfs_device_free_on_card_bytes", "Free memory the device reports.", &DeviceStatus::free_on_card},
        {"vramfs_device_slabs", "Slabs held from the device.", &DeviceStatus::slabs},
        {"vramfs_device_empty_slabs", "Held slabs no file has a block in.", &DeviceStatus::empty_slabs},
        {"vramfs_device_files", "Files with storage on the device.", &DeviceStatus::files},
    };
    auto device_labels = [&](const DeviceStatus& d) {
        return mount + ",device=\"" + std::to_string(d.index) + "\",kind=\"" + label(d.kind) +
               "\",name=\"" + label(d.name) + "\"";
    };
    for (const DeviceGauge& g : kGauges) {
        family(g.name, "gauge", g.help);
        for (const DeviceStatus& d : s.devices) sample(g.name, device_labels(d), d.*g.field);
    }
    family("vramfs_device_lost", "gauge", "1 when the device is gone and its files answer EIO.");
    for (const DeviceStatus& d : s.devices) sample("vramfs_device_lost", device_labels(d), d.lost ? 1 : 0);
    struct SpillGauge {
        const char* name;
        const char* type;
        const char* help;
        std::uint64_t SpillStatus::*field;
    };
    static const SpillGauge kSpill[] = {
        {"vramfs_spill_in_vram_bytes", "gauge", "With a spill: bytes held in device memory.", &SpillStatus::in_vram},
        {"vramfs_spill_on_spill_bytes", "gauge", "With a spill: bytes on the spill file.", &SpillStatus::on_spill},
        {"vramfs_spill_moved_out_bytes_total", "counter", "Bytes moved from VRAM to the spill.", &SpillStatus::moved_out},
        {"vramfs_spill_moved_in_bytes_total", "counter", "Bytes moved from the spill to VRAM.", &SpillStatus::moved_in},
        {"vramfs_spill_keep_free_bytes", "gauge", "Free VRAM the mount leaves other programs.", &SpillStatus::keep_free},
    };
    const bool any_spill = std::any_of(s.devices.begin(), s.devices.end(), [](const DeviceStatus& d) { return d.has_spill; });
    for (const SpillGauge& g : kSpill) {
        if (!any_spill) break;
        family(g.name, g.type, g.help);
        for (const DeviceStatus& d : s.devices)
            if (d.has_spill) sample(g.name, device_labels(d), d.spill.*g.field);
    }
    family("vramfs_read_bytes_total", "counter", "Bytes read since mount.");
    sample("vramfs_read_bytes_total", mount, s.bytes_read);
    family("vramfs_written_bytes_total", "counter", "Bytes written since mount.");
    sample("vramfs_written_bytes_total", mount, s.bytes_written);
    family("vramfs_errors_total", "counter", "Requests that failed with a device or system error.");
    sample("vramfs_errors_total", mount, s.errors);
    family("vramfs_read_cache_hits_total", "counter", "Reads served from the read cache.");
    sample("vramfs_read_cache_hits_total", mount, s.read_cache_hits);
    family("vramfs_read_cache_fills_total", "counter", "Read cache windows filled.");
    sample("vramfs_read_cache_fills_total", mount, s.read_cache_fills);
    if (!s.transport.empty()) {
        family("vramfs_transport_info", "gauge", "What carries FUSE requests: uring or dev.");
        sample("vramfs_transport_info", mount + ",transport=\"" + label(s.transport) + "\"", 1);
        family("vramfs_ring_requests_total", "counter", "Requests carried by FUSE over io_uring.");
        sample("vramfs_ring_requests_total", mount, s.ring_requests);
    }
    const std::pair<const char*, const TimingTotals*> ops[] = {{"read", &s.read}, {"write", &s.write}};
    family("vramfs_requests_total", "counter", "Requests served: reads, writes and the others.");
    for (const auto& [op, t] : ops) sample("vramfs_requests_total", mount + ",op=\"" + op + "\"", t->requests);
    sample("vramfs_requests_total", mount + ",op=\"other\"", s.other_requests);
    family("vramfs_request_storage_seconds_total", "counter",
           "Time in storage (the device copy) for read and write requests.");
    for (const auto& [op, t] : ops)
        seconds("vramfs_request_storage_seconds_total", mount + ",op=\"" + op + "\"", t->storage_ns);
    family("vramfs_request_handle_seconds_total", "counter",
           "Time from a request's arrival to the end of its reply.");
    for (const auto& [op, t] : ops)
        seconds("vramfs_request_handle_seconds_total", mount + ",op=\"" + op + "\"", t->handle_ns);
    return out;
}

} // namespace vramfs
