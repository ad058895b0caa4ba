// The PCIe ceiling: raw cudaMemcpy host<->device, pinned and pageable, at the request sizes a
// filesystem sees. Prints one JSON object per line: {"name", "gb_s"}.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

bool ok(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return true;
    std::fprintf(stderr, "memcpy_bench: %s: %s\n", what, cudaGetErrorString(e));
    return false;
}

double measure(void* dst, const void* src, std::size_t chunk, std::size_t total, cudaMemcpyKind kind) {
    for (int i = 0; i < 3; ++i) cudaMemcpy(dst, src, chunk, kind); // warm up
    cudaDeviceSynchronize();
    const std::size_t reps = total / chunk;
    auto t0 = std::chrono::steady_clock::now();
    // Each copy is waited for, as vramfs waits for each before it answers the request.
    for (std::size_t i = 0; i < reps; ++i) {
        cudaMemcpy(dst, src, chunk, kind);
        cudaStreamSynchronize(nullptr);
    }
    cudaDeviceSynchronize();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(reps * chunk) / s / 1e9;
}

} // namespace

int main(int argc, char** argv) {
    int device = argc > 1 ? std::atoi(argv[1]) : 0;
    if (!ok(cudaSetDevice(device), "cudaSetDevice")) return 1;
    const std::size_t max = 256u << 20;
    void* dev = nullptr;
    void* pinned = nullptr;
    if (!ok(cudaMalloc(&dev, max), "cudaMalloc") || !ok(cudaMallocHost(&pinned, max), "cudaMallocHost"))
        return 1;
    std::vector<char> pageable(max, 1);
    std::memset(pinned, 1, max);
    // 4 KiB is a swapped page: there the time of one call (microseconds), not the bandwidth,
    // is the ceiling.
    struct Size {
        std::size_t chunk, total;
        const char* label;
    };
    const Size sizes[] = {{std::size_t{4} << 10, std::size_t{64} << 20, "4KiB"},
                          {std::size_t{128} << 10, std::size_t{2048} << 20, "128KiB"},
                          {std::size_t{1} << 20, std::size_t{2048} << 20, "1MiB"},
                          {max, 8 * max, "256MiB"}};
    for (const auto& [chunk, total, label] : sizes) {
        auto row = [&](const char* what, double gb_s) {
            std::printf("{\"name\":\"cudaMemcpy %s %s\",\"gb_s\":%.3f,\"us\":%.2f}\n", what,
                        label, gb_s, static_cast<double>(chunk) / (gb_s * 1e3));
        };
        row("pinned H2D", measure(dev, pinned, chunk, total, cudaMemcpyHostToDevice));
        row("pinned D2H", measure(pinned, dev, chunk, total, cudaMemcpyDeviceToHost));
        row("pageable H2D", measure(dev, pageable.data(), chunk, total, cudaMemcpyHostToDevice));
        row("pageable D2H", measure(pageable.data(), dev, chunk, total, cudaMemcpyDeviceToHost));
    }
    cudaFree(dev);
    cudaFreeHost(pinned);
    return 0;
}
