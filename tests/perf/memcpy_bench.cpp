// The PCIe ceiling: raw cudaMemcpy host<->device, pinned and pageable, at the request sizes a
// filesystem sees. Prints one JSON object per line: {"name", "gb_s"}.
#include <cuda_runtime_api.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
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
    // What a request's copy meets inside the daemon, which the rows above do not: the buffer was
    // just touched by the CPU (the kernel copies a write's data in, a read's reply out), there
    // are several buffers in turn, the copy runs on the per-thread stream, and two workers spin
    // on /dev/fuse beside it (--poll-us). 1 MiB copies, each waited for; microseconds per copy.
    {
        const std::size_t chunk = std::size_t{1} << 20;
        const int reps = 1024;
        constexpr int kBuffers = 18; // 8 receive buffers and 10 read buffers, as the daemon has
        auto* base = static_cast<char*>(pinned);
        auto timed_copies = [&](const char* name, cudaMemcpyKind kind, bool touch, int buffers,
                                bool per_thread_stream, int spinners) {
            std::atomic<bool> stop{false};
            std::vector<std::thread> spin;
            for (int i = 0; i < spinners; ++i)
                spin.emplace_back([&] {
                    while (!stop.load(std::memory_order_relaxed)) {
#if defined(__x86_64__)
                        __builtin_ia32_pause();
#endif
                    }
                });
            double total = 0;
            for (int i = 0; i < reps; ++i) {
                char* buf = base + (i % buffers) * (2 * chunk) + (kind == cudaMemcpyHostToDevice ? 80 : 0);
                // The kernel's copy of the request's data in (a write) or the reply out (a read).
                if (touch) {
                    if (kind == cudaMemcpyHostToDevice)
                        std::memcpy(buf, pageable.data(), chunk);
                    else
                        std::memcpy(pageable.data(), buf, chunk);
                }
                auto t0 = std::chrono::steady_clock::now();
                void* d = static_cast<char*>(dev) + (i % 64) * chunk;
                void* dst = kind == cudaMemcpyHostToDevice ? d : static_cast<void*>(buf);
                const void* src = kind == cudaMemcpyHostToDevice ? static_cast<const void*>(buf) : d;
                if (per_thread_stream) {
                    cudaMemcpyAsync(dst, src, chunk, kind, cudaStreamPerThread);
                    cudaStreamSynchronize(cudaStreamPerThread);
                } else {
                    cudaMemcpy(dst, src, chunk, kind);
                    cudaStreamSynchronize(nullptr);
                }
                total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            stop = true;
            for (auto& t : spin) t.join();
            const double us = total / reps * 1e6;
            std::printf("{\"name\":\"%s\",\"gb_s\":%.3f,\"us\":%.2f}\n", name,
                        static_cast<double>(chunk) / (us * 1e3), us);
        };
        for (auto kind : {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost}) {
            const bool h2d = kind == cudaMemcpyHostToDevice;
            auto name = [&](const char* what) {
                static char buf[160];
                std::snprintf(buf, sizeof buf, "daemon-like %s 1MiB: %s", h2d ? "H2D" : "D2H", what);
                return buf;
            };
            timed_copies(name("one buffer, untouched"), kind, false, 1, false, 0);
            timed_copies(name("one buffer, CPU copy between"), kind, true, 1, false, 0);
            timed_copies(name("18 buffers in turn, untouched"), kind, false, kBuffers, false, 0);
            timed_copies(name("18 buffers in turn, CPU copy between"), kind, true, kBuffers, false, 0);
            timed_copies(name("per-thread stream, untouched"), kind, false, 1, true, 0);
            timed_copies(name("two spinning threads beside, untouched"), kind, false, 1, false, 2);
            timed_copies(name("all of it (18 buffers, CPU copy, per-thread stream, 2 spinners)"),
                         kind, true, kBuffers, true, 2);
        }
        // A read's order is the other way round: the device copies into a buffer, then the
        // kernel copies the reply out of it. Handing the buffers out in turn (FIFO) instead of
        // the last one returned (LIFO) gives a buffer's lines time to leave the core's cache
        // before the next device copy into it. Timed: the device copy alone.
        for (int buffers : {1, 2, 4, 10}) {
            double total = 0;
            for (int i = 0; i < reps; ++i) {
                char* buf = base + (i % buffers) * (2 * chunk);
                auto t0 = std::chrono::steady_clock::now();
                cudaMemcpy(buf, static_cast<char*>(dev) + (i % 64) * chunk, chunk, cudaMemcpyDeviceToHost);
                total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                std::memcpy(pageable.data(), buf, chunk);
            }
            const double us = total / reps * 1e6;
            std::printf("{\"name\":\"read order D2H 1MiB then CPU copy out, %d buffers in turn\",\"gb_s\":%.3f,\"us\":%.2f}\n",
                        buffers, static_cast<double>(chunk) / (us * 1e3), us);
        }
#if defined(__x86_64__)
        // A write's data was just written into the receive buffer by the CPU. Does pushing the
        // lines out of the core's cache first (clwb, cldemote, clflushopt) make the device copy
        // faster by more than it costs? Timed: the cache instructions and the device copy.
        unsigned a = 0, b = 0, c = 0, d = 0;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
        std::printf("cpu has cldemote: %s\n", (c >> 25) & 1 ? "yes" : "no (it runs as a no-op)");
        enum class Op { none, clwb, cldemote, clflushopt };
        for (Op op : {Op::none, Op::clwb, Op::cldemote, Op::clflushopt}) {
            double total = 0;
            for (int i = 0; i < reps; ++i) {
                char* buf = base + 80;
                std::memcpy(buf, pageable.data(), chunk);
                auto t0 = std::chrono::steady_clock::now();
                for (std::size_t off = 0; off < chunk && op != Op::none; off += 64) {
                    char* line = buf + off;
                    if (op == Op::clwb) __asm__ volatile("clwb %0" : "+m"(*line));
                    else if (op == Op::cldemote) __asm__ volatile("cldemote %0" : "+m"(*line));
                    else __asm__ volatile("clflushopt %0" : "+m"(*line));
                }
                if (op != Op::none) __asm__ volatile("sfence" ::: "memory");
                cudaMemcpy(static_cast<char*>(dev) + (i % 64) * chunk, buf, chunk, cudaMemcpyHostToDevice);
                total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            const char* names[] = {"nothing", "clwb", "cldemote", "clflushopt"};
            const double us = total / reps * 1e6;
            std::printf("{\"name\":\"write order CPU copy in, %s, then H2D 1MiB\",\"gb_s\":%.3f,\"us\":%.2f}\n",
                        names[static_cast<int>(op)], static_cast<double>(chunk) / (us * 1e3), us);
        }
#endif
    }
    cudaFree(dev);
    cudaFreeHost(pinned);
    return 0;
}
