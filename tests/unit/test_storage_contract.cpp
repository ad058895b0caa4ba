// The storage contract, written once and run against each backend:
//   vramfs_contract host | host-arena | fault-host | cuda | fault-cuda | vulkan | fault-vulkan |
//                   vulkan-transfer (writes on the transfer queue where they would be mapped)
// (fault-*: the fault-injecting decorator over that backend, with a plan that never fires, so
// it must keep the contract exactly). Exits 77 (ctest: skipped) when the device is not here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "vramfs/app/config.hpp"
#include "vramfs/app/options.hpp"
#include "vramfs/data/block_pool.hpp"
#include "vramfs/data/file_data.hpp"
#include "vramfs/storage/backend.hpp"
#include "vramfs/storage/fault_backend.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace vramfs;

namespace {
StorageBackend* g_backend = nullptr;

std::vector<unsigned char> random_bytes(std::size_t n, unsigned seed) {
    std::vector<unsigned char> v(n);
    std::mt19937_64 rng(seed);
    for (auto& c : v) c = static_cast<unsigned char>(rng());
    return v;
}

// A 1 MiB host buffer of the backend's and device memory, for copies straight from and into
// the backend's host buffers.
struct HostAndDevice {
    HostBuffer host;
    DeviceBuffer device;
    unsigned char* h() const { return static_cast<unsigned char*>(host.data()); }
};
void allocate_both(StorageBackend& be, std::size_t device_bytes, HostAndDevice& out) {
    REQUIRE(be.allocate_host(1 << 20, out.host) == 0);
    REQUIRE(out.host.data() != nullptr);
    REQUIRE(be.allocate(device_bytes, out.device) == 0);
}
} // namespace

TEST_CASE("allocate, write, read back, release") {
    StorageBackend& be = *g_backend;
    DeviceBuffer a;
    REQUIRE(be.allocate(8 << 20, a) == 0);
    CHECK(a.size() == 8u << 20);
    auto data = random_bytes(3 << 20, 1);
    REQUIRE(be.write(a.address() + 12345, data.data(), data.size()) == 0);
    std::vector<unsigned char> out(data.size());
    REQUIRE(be.read(a.address() + 12345, out.data(), out.size()) == 0);
    CHECK(out == data);
    REQUIRE(be.zero(a.address() + 12345 + 100, 1000) == 0);
    REQUIRE(be.read(a.address() + 12345, out.data(), out.size()) == 0);
    for (std::size_t i = 0; i < out.size(); ++i)
        if ((i >= 100 && i < 1100) ? out[i] != 0 : out[i] != data[i]) FAIL("byte " << i);
    a.reset();
    CHECK_FALSE(a);
}

TEST_CASE("buffers own their memory: moved, not copied, and given back once") {
    StorageBackend& be = *g_backend;
    DeviceBuffer a;
    REQUIRE(be.allocate(4 << 20, a) == 0);
    const DeviceAddr addr = a.address();
    DeviceBuffer b = std::move(a);
    CHECK_FALSE(a);
    CHECK(b.address() == addr);
    std::vector<DeviceBuffer> held;
    held.push_back(std::move(b));
    held.emplace_back();
    REQUIRE(be.allocate(1 << 20, held.back()) == 0);
    held.clear(); // both go back here, once each
    // More than the host arena (256 MiB) holds, if any of it were not given back.
    for (int i = 0; i < 100; ++i) {
        DeviceBuffer c;
        REQUIRE(be.allocate(4 << 20, c) == 0);
        DeviceBuffer d = std::move(c);
        c = std::move(d); // move-assigned back: still one owner
    }
}

TEST_CASE("host buffers are usable for copies") {
    StorageBackend& be = *g_backend;
    HostAndDevice both;
    allocate_both(be, 1 << 20, both);
    const DeviceBuffer& a = both.device;
    auto* h = both.h();
    std::memset(h, 0x5a, 1 << 20);
    REQUIRE(be.write(a.address(), h, 1 << 20) == 0);
    std::memset(h, 0, 1 << 20);
    REQUIRE(be.read(a.address(), h, 1 << 20) == 0);
    CHECK(h[(1 << 20) - 1] == 0x5a);
    // A part of a host buffer, at odd offsets on both sides.
    auto data = random_bytes(5000, 7);
    std::memcpy(h + 100, data.data(), data.size());
    REQUIRE(be.write(a.address() + 7, h + 100, data.size()) == 0);
    std::memset(h, 0, 1 << 20);
    REQUIRE(be.read(a.address() + 7, h + 300001, data.size()) == 0);
    CHECK(std::memcmp(h + 300001, data.data(), data.size()) == 0);
    CHECK(h[300000] == 0);
    CHECK(h[300001 + data.size()] == 0);
}

TEST_CASE("a large write from a host buffer over bytes written before lands whole") {
    // Both writes meet memory already written, where a backend may take another path than
    // into fresh memory (Vulkan with mapped writes: the CPU through the mapping, not the queue).
    StorageBackend& be = *g_backend;
    HostAndDevice both;
    allocate_both(be, 2 << 20, both);
    const DeviceBuffer& a = both.device;
    REQUIRE(be.zero(a.address(), 2 << 20) == 0);
    auto* h = both.h();
    for (unsigned seed : {11u, 12u}) {
        CAPTURE(seed);
        const auto data = random_bytes((1 << 20) - 3, seed);
        std::memcpy(h + 3, data.data(), data.size());
        REQUIRE(be.write(a.address() + 4099, h + 3, data.size()) == 0);
        std::vector<unsigned char> out(data.size() + 1, 0xee);
        REQUIRE(be.read(a.address() + 4098, out.data(), out.size()) == 0);
        CHECK(out.front() == 0); // the byte before the write, untouched
        CHECK(std::memcmp(out.data() + 1, data.data(), data.size()) == 0);
    }
}

TEST_CASE("small and large reads see what small and large writes left, whichever way each went") {
    // A backend may move small and large copies by different paths (Vulkan with mapped slabs:
    // large writes into fresh memory on the queue, small ones by the CPU; small reads by the
    // CPU, large ones on the queue). Every mix must see the last bytes written.
    StorageBackend& be = *g_backend;
    HostAndDevice both;
    allocate_both(be, 4 << 20, both);
    const DeviceBuffer& a = both.device;
    auto* h = both.h();
    auto want = random_bytes(1 << 20, 21);
    std::memcpy(h, want.data(), want.size());
    REQUIRE(be.write(a.address() + (1 << 20), h, want.size()) == 0);
    for (const std::size_t piece : {std::size_t{4096}, std::size_t{32768}, std::size_t{65536}, std::size_t{65537},
                                    std::size_t{131072}}) {
        CAPTURE(piece);
        std::vector<unsigned char> out(piece);
        for (std::size_t off = 13; off + piece <= want.size(); off += piece * 3 + 4097) {
            REQUIRE(be.read(a.address() + (1 << 20) + off, out.data(), piece) == 0);
            REQUIRE(std::memcmp(out.data(), want.data() + off, piece) == 0);
        }
    }
    // Small writes over it, then reads large and small of the same bytes.
    for (std::size_t off = 5; off + 4096 <= want.size(); off += 40000) {
        const auto patch = random_bytes(4096, static_cast<unsigned>(off));
        REQUIRE(be.write(a.address() + (1 << 20) + off, patch.data(), patch.size()) == 0);
        std::memcpy(want.data() + off, patch.data(), patch.size());
    }
    REQUIRE(be.read(a.address() + (1 << 20), h, want.size()) == 0);
    CHECK(std::memcmp(h, want.data(), want.size()) == 0);
    std::vector<unsigned char> out(8192);
    for (std::size_t off = 1; off + out.size() <= want.size(); off += 40000) {
        REQUIRE(be.read(a.address() + (1 << 20) + off, out.data(), out.size()) == 0);
        REQUIRE(std::memcmp(out.data(), want.data() + off, out.size()) == 0);
    }
}

TEST_CASE("a page of all ones reads back, small and large") {
    // Vulkan reads a small read out of the mapping again on the queue when it is all ones (what
    // a GPU gone from the bus answers): such data must still read back as written.
    StorageBackend& be = *g_backend;
    DeviceBuffer a;
    REQUIRE(be.allocate(1 << 20, a) == 0);
    const std::vector<unsigned char> ones(8192, 0xff);
    REQUIRE(be.write(a.address() + 100, ones.data(), ones.size()) == 0);
    for (const std::size_t len : {std::size_t{1}, std::size_t{4096}, std::size_t{8192}}) {
        CAPTURE(len);
        std::vector<unsigned char> out(len, 0);
        REQUIRE(be.read(a.address() + 100, out.data(), len) == 0);
        CHECK(std::memcmp(out.data(), ones.data(), len) == 0);
    }
}

TEST_CASE("an impossible allocation is ENOSPC, not a crash") {
    StorageBackend& be = *g_backend;
    DeviceBuffer a;
    // Far more than any device or host has.
    CHECK(be.allocate(1ull << 50, a) == ENOSPC);
    CHECK_FALSE(a);
    // The backend still works afterwards.
    REQUIRE(be.allocate(4096, a) == 0);
}

TEST_CASE("a serving thread prepared up front copies into memory another thread allocated") {
    StorageBackend& be = *g_backend;
    DeviceBuffer mem;
    REQUIRE(be.allocate(2 << 20, mem) == 0);
    const auto data = random_bytes(1 << 20, 7);
    int prepared = -1, wrote = -1, read = -1;
    std::vector<unsigned char> out(data.size());
    std::thread([&] {
        prepared = be.prepare_thread();
        prepared = prepared != 0 ? prepared : be.prepare_thread(); // twice is harmless
        wrote = be.write(mem.address() + 4096, data.data(), data.size());
        read = be.read(mem.address() + 4096, out.data(), out.size());
    }).join();
    CHECK(prepared == 0);
    CHECK(wrote == 0);
    CHECK(read == 0);
    CHECK(out == data);
}

TEST_CASE("several threads allocate and copy at once, each seeing only its own bytes") {
    StorageBackend& be = *g_backend;
    constexpr int kThreads = 8, kRounds = 16;
    constexpr std::size_t kBytes = 1 << 20;
    std::vector<int> bad(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            HostBuffer in, out;
            if (be.allocate_host(kBytes, in) != 0 || be.allocate_host(kBytes, out) != 0) {
                bad[t] = -1;
                return;
            }
            for (int r = 0; r < kRounds; ++r) {
                DeviceBuffer mem;
                if (be.allocate(2 * kBytes, mem) != 0) {
                    bad[t] = -2;
                    return;
                }
                const auto data = random_bytes(kBytes, static_cast<unsigned>(t * 1000 + r));
                std::memcpy(in.data(), data.data(), kBytes);
                const std::size_t off = static_cast<std::size_t>(r) * 4096 + 1;
                if (be.write(mem.address() + off, in.data(), kBytes - off) != 0 ||
                    be.zero(mem.address(), off) != 0 ||
                    be.read(mem.address(), out.data(), kBytes) != 0) {
                    bad[t] = -3;
                    return;
                }
                const auto* got = static_cast<const unsigned char*>(out.data());
                for (std::size_t i = 0; i < kBytes; ++i)
                    if (got[i] != (i < off ? 0 : data[i - off])) ++bad[t];
            }
        });
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) {
        CAPTURE(t);
        CHECK(bad[t] == 0);
    }
}

TEST_CASE("a file over a block pool on this backend") {
    BlockPool pool(*g_backend, 64 << 20, 1 << 20, 16 << 20);
    FileData f(pool);
    auto data = random_bytes(5 << 20, 2);
    REQUIRE(f.write(777, data.size(), data.data()) == 0);
    std::vector<unsigned char> out(data.size());
    REQUIRE(f.read(777, out.size(), out.data()) == 0);
    CHECK(out == data);
    REQUIRE(f.punch_hole(0, 3 << 20) == 0);
    CHECK(pool.used_blocks() == 3); // blocks 3, 4, 5 remain
    REQUIRE(f.truncate(0) == 0);
    CHECK(pool.used_blocks() == 0);
    CHECK(pool.stats().reserved_bytes == 0);
}

// The tuning knobs given after the backend's name (--vk-batch 0), read through the option
// table as vramfs reads them; what is not one goes on to doctest. False on a bad knob.
bool take_tuning(int& argc, char** argv, Config& config) {
    ParseState st;
    int out = 2;
    for (int i = 2; i < argc; ++i) {
        const OptionSpec* spec = nullptr;
        for (const auto& s : option_table())
            if (s.tuning && std::string("--") + s.name == argv[i]) spec = &s;
        if (!spec) {
            argv[out++] = argv[i];
            continue;
        }
        if (i + 1 >= argc || !apply_option(*spec, config, st, argv[i + 1]).empty()) {
            std::fprintf(stderr, "bad value for %s\n", argv[i]);
            return false;
        }
        ++i;
    }
    argc = out;
    return true;
}

int main(int argc, char** argv) {
    const std::string kind = argc > 1 ? argv[1] : "host";
    Config config;
    if (!take_tuning(argc, argv, config)) return 2;
    std::unique_ptr<StorageBackend> backend;
    const std::string base = kind.rfind("fault-", 0) == 0 ? kind.substr(6) : kind;
    if (base == "host") {
        backend = make_host_backend(0);
    } else if (base == "host-arena") {
        backend = make_host_backend(0, 256 << 20); // slabs carved from one locked arena
    } else if (base == "cuda") {
        std::string error;
        backend = make_cuda_backend(0, error);
        if (!backend) {
            std::printf("SKIPPED: no CUDA device here (%s)\n", error.c_str());
            return 77;
        }
    } else if (base == "vulkan" || base == "vulkan-transfer") {
        std::string error;
        VulkanTuning tuning = vulkan_tuning(config);
        tuning.transfer_writes = base == "vulkan-transfer";
        backend = make_vulkan_backend(0, tuning, error);
        if (!backend) {
            // CI has lavapipe, so there a missing Vulkan device is a failure, not a skip.
            const bool required = std::getenv("VRAMFS_REQUIRE_VULKAN") != nullptr;
            std::printf("%s: no Vulkan device here (%s)\n", required ? "FAILED" : "SKIPPED", error.c_str());
            return required ? 1 : 77;
        }
    } else {
        std::fprintf(stderr, "usage: %s [fault-]host|host-arena|cuda|vulkan|vulkan-transfer [--vk-KNOB N...] "
                             "[doctest options]\n", argv[0]);
        return 2;
    }
    if (base != kind) {
        FaultPlan never; // a decorator that passes everything through must keep the contract
        never.copy_nth = ~std::uint64_t{0};
        backend = make_fault_injecting_backend(std::move(backend), never);
    }
    std::printf("storage contract on %s%s device %d (%s)\n", base != kind ? "fault-injecting " : "",
                backend->kind(), backend->device().index, backend->device().name.c_str());
    g_backend = backend.get();
    doctest::Context ctx;
    ctx.applyCommandLine(argc - 1, argv + 1);
    return ctx.run();
}
