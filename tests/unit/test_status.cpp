// The status formats: JSON reads back to the same snapshot, the table and the Prometheus text
// carry what they should, and label values are escaped.
#include "vramfs/status/format.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace vramfs;

namespace {
StatusSnapshot sample() {
    StatusSnapshot s;
    s.devices.push_back({0, "cuda", "NVIDIA \"H200\"\\x", 6ull << 30, 1 << 20, 64 << 20, 1, 0, 100, 2});
    s.devices.push_back({1, "host", "host RAM", 1 << 30, 0, 0, 0, 0, 200, 0, true});
    s.files.push_back({"swap", 2, 4 << 20, 4 << 20, 0});
    s.files.push_back({"na\"me\n", 3, 5, 1 << 20, 1});
    s.files_truncated = true;
    s.bytes_read = 11;
    s.bytes_written = 22;
    s.errors = 3;
    s.read_cache_hits = 4;
    s.read_cache_fills = 5;
    s.read = {7, 7000, 3000, 1, 100};
    s.write = {9, 9000, 4000, 0, 0};
    s.transport = "uring";
    s.ring_requests = 42;
    s.other_requests = 17;
    return s;
}
} // namespace

TEST_CASE("status JSON reads back to the same snapshot") {
    const StatusSnapshot s = sample();
    const std::string text = status_json(s);
    CHECK(text.find("\"devices\":[{\"index\":0") != std::string::npos); // the order scripts see
    StatusSnapshot back;
    std::string error;
    REQUIRE(parse_status_json(text, back, error));
    CHECK(status_json(back) == text);
    REQUIRE(back.devices.size() == 2);
    CHECK(back.devices[0].name == s.devices[0].name);
    CHECK(back.files.at(1).name == "na\"me\n");
    CHECK(back.read.receive_ns == 100);
    CHECK(back.transport == "uring");
    CHECK(back.ring_requests == 42);
    CHECK(back.other_requests == 17);
    CHECK_FALSE(back.devices[0].lost);
    CHECK(back.devices[1].lost);
    CHECK(back.files_truncated);
    CHECK_FALSE(back.files_hidden);
    StatusSnapshot hidden = s;
    hidden.files.clear();
    hidden.files_hidden = true;
    REQUIRE(parse_status_json(status_json(hidden), back, error));
    CHECK(back.files_hidden);
    CHECK(back.files.empty());
    CHECK(status_text(hidden).find("listed for root and the mount's owner only") != std::string::npos);
    // A daemon from before the transport seam sends no "transport": it reads back as unknown.
    std::string old = status_json(s);
    old.erase(old.find(",\"transport\":"), std::string::npos);
    old += "}";
    REQUIRE(parse_status_json(old, back, error));
    CHECK(back.transport.empty());
    CHECK(status_text(back).find("transport:") == std::string::npos);
    CHECK_FALSE(parse_status_json("{\"devices\":[]}", back, error));
    CHECK_FALSE(error.empty());
    CHECK_FALSE(parse_status_json("not json", back, error));
}

TEST_CASE("the status table") {
    const std::string t = status_text(sample());
    CHECK(t.find("swap (inode 2)") != std::string::npos);
    CHECK(t.find("6.0 GiB") != std::string::npos);
    CHECK(t.find("     2     ok\n") != std::string::npos);
    CHECK(t.find("     0   LOST\n") != std::string::npos);
    CHECK(t.find("(more files not listed)") != std::string::npos);
    CHECK(t.find("errors 3 since mount; read cache: 4 hits, 5 windows filled") != std::string::npos);
    CHECK(t.find("read   7 requests, per request: storage 0.4 us, other handling and reply 0.6 us, receive 0.1 us") != std::string::npos);
    CHECK(t.find("\ntransport: FUSE over io_uring\n") != std::string::npos);
    CHECK(t.find("17") == std::string::npos); // other requests: JSON and Prometheus only
    StatusSnapshot dev = sample();
    dev.transport = "dev";
    CHECK(status_text(dev).find("\ntransport: /dev/fuse\n") != std::string::npos);
    StatusSnapshot quiet = sample();
    quiet.read = quiet.write = {};
    CHECK(status_text(quiet).find("requests") == std::string::npos);
}

TEST_CASE("the status in the Prometheus text format") {
    const std::string p = status_prometheus(sample(), "/mnt/v\"ram");
    CHECK(p.find("# TYPE vramfs_device_budget_bytes gauge\n") != std::string::npos);
    CHECK(p.find("vramfs_device_budget_bytes{mountpoint=\"/mnt/v\\\"ram\",device=\"0\",kind=\"cuda\","
                 "name=\"NVIDIA \\\"H200\\\"\\\\x\"} 6442450944\n") != std::string::npos);
    CHECK(p.find("vramfs_device_free_on_card_bytes{mountpoint=\"/mnt/v\\\"ram\",device=\"1\"") != std::string::npos);
    CHECK(p.find("# TYPE vramfs_errors_total counter\nvramfs_errors_total{mountpoint=\"/mnt/v\\\"ram\"} 3\n") != std::string::npos);
    CHECK(p.find("vramfs_requests_total{mountpoint=\"/mnt/v\\\"ram\",op=\"write\"} 9\n") != std::string::npos);
    CHECK(p.find("vramfs_request_storage_seconds_total{mountpoint=\"/mnt/v\\\"ram\",op=\"read\"} 0.000003000\n") != std::string::npos);
    CHECK(p.find("swap") == std::string::npos); // no per-file series
    // Every sample line is NAME{LABELS} VALUE, and every family has HELP and TYPE.
    std::size_t pos = 0, samples = 0;
    while (pos < p.size()) {
        const std::size_t end = p.find('\n', pos);
        REQUIRE(end != std::string::npos);
        const std::string line = p.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("# ", 0) == 0) continue;
        ++samples;
        CHECK(line.find("} ") != std::string::npos);
        CHECK(line.rfind("vramfs_", 0) == 0);
    }
    CHECK(p.find("vramfs_device_lost{mountpoint=\"/mnt/v\\\"ram\",device=\"1\",kind=\"host\",name=\"host RAM\"} 1\n") != std::string::npos);
    CHECK(p.find("vramfs_transport_info{mountpoint=\"/mnt/v\\\"ram\",transport=\"uring\"} 1\n") != std::string::npos);
    CHECK(p.find("vramfs_ring_requests_total{mountpoint=\"/mnt/v\\\"ram\"} 42\n") != std::string::npos);
    CHECK(p.find("vramfs_requests_total{mountpoint=\"/mnt/v\\\"ram\",op=\"other\"} 17\n") != std::string::npos);
    CHECK(samples == 8 * 2 + 5 + 3 * 2 + 3);
}

TEST_CASE("a device's spill in every form") {
    StatusSnapshot s = sample();
    s.devices[0].has_spill = true;
    s.devices[0].spill = {1 << 30, 3ull << 30, 5ull << 30, 2ull << 30, 1ull << 30, 0, false};
    s.files[0].on_spill = 3 << 20;
    StatusSnapshot back;
    std::string error;
    REQUIRE(parse_status_json(status_json(s), back, error));
    CHECK(status_json(back) == status_json(s));
    REQUIRE(back.devices[0].has_spill);
    CHECK_FALSE(back.devices[1].has_spill);
    CHECK(back.devices[0].spill.on_spill == 3ull << 30);
    CHECK(back.devices[0].spill.vram_limit == 0);
    CHECK_FALSE(back.devices[0].spill.settled);
    CHECK(back.files[0].on_spill == 3 << 20);
    const std::string t = status_text(s);
    CHECK(t.find("device 0 spill: 1.0 GiB in VRAM, 3.0 GiB on the spill; moved out 5.0 GiB, back 2.0 GiB; "
                 "keeps 1.0 GiB of the card free; yielded: holds at most 0 B; moving\n") != std::string::npos);
    CHECK(t.find("ON SPILL") != std::string::npos);
    CHECK(t.find("     3.0 MiB\n") != std::string::npos);
    CHECK(status_text(sample()).find("ON SPILL") == std::string::npos); // no spill, no column
    const std::string p = status_prometheus(s, "/m");
    CHECK(p.find("vramfs_spill_on_spill_bytes{mountpoint=\"/m\",device=\"0\"") != std::string::npos);
    CHECK(p.find("device=\"1\",kind=\"host\",name=\"host RAM\"} 0\nvramfs_spill") == std::string::npos);
    CHECK(status_prometheus(sample(), "/m").find("vramfs_spill_") == std::string::npos);
}
