// vramfs-vram-claim: takes VRAM the way a game loads its assets, STEP every PERIOD until the
// card has only LEAVE free by its total, and says how long each step waited for memory: what a
// program that wants the card sees while a vramfs mount with --spill gives its VRAM back.
// Holds what it took until HOLD_FILE is removed (or at once without one), then frees it.
// Prints one JSON line: steps, bytes taken, the wait behind each step, and how fast VRAM came
// back (bytes that were not free at the start / the time from the first step that had to
// wait to the last). Exit 0 when it got all it asked for, 1 when a step waited past --timeout.
#include <cuda_runtime_api.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "vramfs/util/size.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Takes VRAM in steps, as a game loads, and reports the wait behind each step."};
    int device = 0;
    std::string step_text = "1G", leave_text = "4G", hold_file;
    int period_ms = 100;
    double timeout = 120;
    app.add_option("--device", device, "CUDA device");
    app.add_option("--step", step_text, "bytes taken at each step (default 1G)");
    app.add_option("--every-ms", period_ms, "milliseconds between steps (default 100)");
    app.add_option("--leave", leave_text, "stop when the card's total less what is taken is this (default 4G)");
    app.add_option("--timeout", timeout, "seconds one step may wait for memory (default 120)");
    app.add_option("--hold-file", hold_file, "hold the memory until this file is removed");
    CLI11_PARSE(app, argc, argv);
    const auto step = vramfs::parse_size(step_text), leave = vramfs::parse_size(leave_text);
    if (!step || !leave || *step == 0) {
        std::fprintf(stderr, "vramfs-vram-claim: bad --step or --leave\n");
        return 2;
    }
    if (cudaSetDevice(device) != cudaSuccess || cudaFree(nullptr) != cudaSuccess) {
        std::fprintf(stderr, "vramfs-vram-claim: no CUDA device %d\n", device);
        return 1;
    }
    std::size_t free0 = 0, total = 0;
    cudaMemGetInfo(&free0, &total);
    const std::uint64_t want = total > *leave ? total - *leave : 0;
    std::vector<void*> taken;
    std::vector<double> waits;
    std::uint64_t got = 0;
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    clock::time_point first_wait{}, last_done{};
    bool waited = false, failed = false;
    for (auto next = start; got + *step <= want; next += std::chrono::milliseconds(period_ms)) {
        std::this_thread::sleep_until(next);
        const auto ask = clock::now();
        void* p = nullptr;
        while (cudaMalloc(&p, *step) != cudaSuccess) {
            (void)cudaGetLastError();
            if (!waited) first_wait = ask, waited = true;
            if (std::chrono::duration<double>(clock::now() - ask).count() > timeout) {
                failed = true;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        if (failed) break;
        last_done = clock::now();
        waits.push_back(std::chrono::duration<double>(last_done - ask).count());
        taken.push_back(p);
        got += *step;
    }
    const double elapsed = std::chrono::duration<double>(last_done - start).count();
    double max_wait = 0, sum_wait = 0;
    for (double w : waits) max_wait = std::max(max_wait, w), sum_wait += w;
    const double came_back = got > free0 ? static_cast<double>(got - free0) : 0;
    const double span = waited ? std::chrono::duration<double>(last_done - first_wait).count() : 0;
    std::printf("{\"total\":%zu,\"free_at_start\":%zu,\"asked\":%llu,\"got\":%llu,\"steps\":%zu,"
                "\"elapsed_s\":%.3f,\"max_wait_s\":%.3f,\"mean_wait_s\":%.4f,\"came_back_bytes\":%.0f,"
                "\"came_back_gib_s\":%.3f,\"waits_s\":[",
                total, free0, static_cast<unsigned long long>(want), static_cast<unsigned long long>(got),
                waits.size(), elapsed, max_wait, waits.empty() ? 0 : sum_wait / waits.size(), came_back,
                span > 0 ? came_back / span / (1ull << 30) : 0);
    for (std::size_t i = 0; i < waits.size(); ++i) std::printf("%s%.3f", i ? "," : "", waits[i]);
    std::printf("],\"ok\":%s}\n", failed ? "false" : "true");
    std::fflush(stdout);
    while (!hold_file.empty() && std::filesystem::exists(hold_file))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (void* p : taken) cudaFree(p);
    return failed ? 1 : 0;
}
