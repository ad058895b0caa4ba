// vramfs-iobench: a small, dependency-free I/O load generator for the benchmark table.
//   vramfs-iobench --dir D --rw write|read|randread|randwrite --bs 1M --direct 0|1 --jobs N
//                  --size 1G --runtime 3
// Each job has its own file. Sequential rows move --size bytes per job once; random rows run
// for --runtime seconds over a laid-out file. Prints {"gb_s": ..., "iops": ...}.
#include <CLI/CLI.hpp>

#include "vramfs/util/size.hpp"

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
    std::string dir, rw = "write";
    std::uint64_t bs = 1 << 20, size = 1ull << 30;
    int direct = 0, jobs = 1;
    double runtime = 3;
};

void* aligned_buffer(std::size_t n, unsigned seed) {
    void* p = std::aligned_alloc(4096, (n + 4095) & ~std::size_t{4095});
    std::mt19937_64 rng(seed);
    auto* w = static_cast<std::uint64_t*>(p);
    for (std::size_t i = 0; i < n / 8; ++i) w[i] = rng();
    return p;
}

bool lay_out(const std::string& path, std::uint64_t size, std::uint64_t bs) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    void* buf = aligned_buffer(bs, 7);
    bool ok = true;
    for (std::uint64_t off = 0; off < size && ok; off += bs)
        ok = ::pwrite(fd, buf, bs, static_cast<off_t>(off)) == static_cast<ssize_t>(bs);
    ::fsync(fd);
    // Buffered reads must come from the filesystem, not from pages cached by this write.
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    std::free(buf);
    return ok;
}

} // namespace

int main(int argc, char** argv) {
    Options o;
    std::string bs_text = "1M", size_text = "1G";
    CLI::App app{"vramfs-iobench: sequential and random I/O against a directory"};
    app.add_option("--dir", o.dir)->required();
    app.add_option("--rw", o.rw)->check(CLI::IsMember({"write", "read", "randread", "randwrite"}));
    app.add_option("--bs", bs_text);
    app.add_option("--size", size_text);
    app.add_option("--direct", o.direct);
    app.add_option("--jobs", o.jobs);
    app.add_option("--runtime", o.runtime);
    CLI11_PARSE(app, argc, argv);
    o.bs = vramfs::parse_size(bs_text).value_or(0);
    o.size = vramfs::parse_size(size_text).value_or(0);
    if (o.bs == 0 || o.size < o.bs || o.jobs < 1) {
        std::fprintf(stderr, "vramfs-iobench: bad --bs, --size or --jobs\n");
        return 2;
    }
    o.size = o.size / o.bs * o.bs;
    const bool random = o.rw.rfind("rand", 0) == 0;
    const bool reading = o.rw.find("read") != std::string::npos;

    std::vector<std::string> paths;
    for (int j = 0; j < o.jobs; ++j) paths.push_back(o.dir + "/iobench." + std::to_string(j));
    if (reading || random)
        for (auto& p : paths)
            if (!lay_out(p, o.size, std::min<std::uint64_t>(o.size, 1 << 20))) {
                std::fprintf(stderr, "vramfs-iobench: cannot lay out %s\n", p.c_str());
                return 1;
            }

    std::atomic<std::uint64_t> bytes{0}, ops{0};
    std::atomic<bool> failed{false};
    std::barrier start(o.jobs + 1);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int j = 0; j < o.jobs; ++j) {
        threads.emplace_back([&, j] {
            int flags = reading ? O_RDONLY : O_WRONLY;
            if (!reading && !random) flags |= O_CREAT | O_TRUNC;
            if (o.direct) flags |= O_DIRECT;
            int fd = ::open(paths[j].c_str(), flags, 0644);
            void* buf = aligned_buffer(o.bs, 100 + j);
            std::mt19937_64 rng(j);
            start.arrive_and_wait();
            if (fd < 0) {
                failed = true;
                return;
            }
            std::uint64_t done = 0, n = 0;
            const std::uint64_t blocks = o.size / o.bs;
            for (std::uint64_t i = 0;; ++i) {
                if (random ? stop.load(std::memory_order_relaxed) : i >= blocks) break;
                const std::uint64_t off = (random ? rng() % blocks : i) * o.bs;
                const ssize_t r = reading ? ::pread(fd, buf, o.bs, static_cast<off_t>(off))
                                          : ::pwrite(fd, buf, o.bs, static_cast<off_t>(off));
                if (r != static_cast<ssize_t>(o.bs)) {
                    failed = true;
                    break;
                }
                done += o.bs;
                ++n;
            }
            bytes += done;
            ops += n;
            ::close(fd);
            std::free(buf);
        });
    }
    start.arrive_and_wait();
    const auto t0 = Clock::now();
    if (random) {
        std::this_thread::sleep_for(std::chrono::duration<double>(o.runtime));
        stop = true;
    }
    for (auto& t : threads) t.join();
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    for (auto& p : paths) ::unlink(p.c_str());
    if (failed) {
        std::fprintf(stderr, "vramfs-iobench: an I/O failed\n");
        return 1;
    }
    std::printf("{\"gb_s\":%.4f,\"iops\":%.1f,\"seconds\":%.3f}\n", bytes / s / 1e9, ops / s, s);
    return 0;
}
