// The storage contract, written once and run against each backend:
//   vramfs_contract host | cuda
// Exits 77 (ctest: skipped) when the backend's device does not exist here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "vramfs/data/block_pool.hpp"
#include "vramfs/data/file_data.hpp"
#include "vramfs/storage/backend.hpp"

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
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
} // namespace

TEST_CASE("allocate, write, read back, release") {
    StorageBackend& be = *g_backend;
    DeviceAddr a = 0;
    REQUIRE(be.allocate(8 << 20, a) == 0);
    auto data = random_bytes(3 << 20, 1);
    REQUIRE(be.write(a + 12345, data.data(), data.size()) == 0);
    std::vector<unsigned char> out(data.size());
    REQUIRE(be.read(a + 12345, out.data(), out.size()) == 0);
    CHECK(out == data);
    REQUIRE(be.zero(a + 12345 + 100, 1000) == 0);
    REQUIRE(be.read(a + 12345, out.data(), out.size()) == 0);
    for (std::size_t i = 0; i < out.size(); ++i)
        if ((i >= 100 && i < 1100) ? out[i] != 0 : out[i] != data[i]) FAIL("byte " << i);
    be.release(a, 8 << 20);
}

TEST_CASE("host buffers are usable for copies") {
    StorageBackend& be = *g_backend;
    void* buf = be.allocate_host_buffer(1 << 20);
    REQUIRE(buf != nullptr);
    DeviceAddr a = 0;
    REQUIRE(be.allocate(1 << 20, a) == 0);
    std::memset(buf, 0x5a, 1 << 20);
    REQUIRE(be.write(a, buf, 1 << 20) == 0);
    std::memset(buf, 0, 1 << 20);
    REQUIRE(be.read(a, buf, 1 << 20) == 0);
    CHECK(static_cast<unsigned char*>(buf)[(1 << 20) - 1] == 0x5a);
    be.release(a, 1 << 20);
    be.release_host_buffer(buf, 1 << 20);
}

TEST_CASE("an impossible allocation is ENOSPC, not a crash") {
    StorageBackend& be = *g_backend;
    DeviceAddr a = 0;
    // Far more than any device or host has.
    CHECK(be.allocate(1ull << 50, a) == ENOSPC);
    // The backend still works afterwards.
    REQUIRE(be.allocate(4096, a) == 0);
    be.release(a, 4096);
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

int main(int argc, char** argv) {
    const std::string kind = argc > 1 ? argv[1] : "host";
    std::unique_ptr<StorageBackend> backend;
    if (kind == "host") {
        backend = make_host_backend(0);
    } else if (kind == "cuda") {
        std::string error;
        backend = make_cuda_backend(0, error);
        if (!backend) {
            std::printf("SKIPPED: no CUDA device here (%s)\n", error.c_str());
            return 77;
        }
    } else {
        std::fprintf(stderr, "usage: %s host|cuda [doctest options]\n", argv[0]);
        return 2;
    }
    std::printf("storage contract on %s device %d (%s)\n", backend->kind(),
                backend->device().index, backend->device().name.c_str());
    g_backend = backend.get();
    doctest::Context ctx;
    ctx.applyCommandLine(argc - 1, argv + 1);
    return ctx.run();
}
