// vramfs-fsx: a random-operation differential tester. It runs the same seeded sequence of file
// operations on two directories (a vramfs mount and a tmpfs) and compares data, sizes and errno
// after every step. A failure prints the seed and the step; the same seed reproduces it.
//
//   vramfs-fsx --a /mnt/vram --b /tmp/tmpfs --ops 200000 --seed 1 [--threads 4]
//
// With --threads N, N threads run at once, each on files of its own plus one shared file in
// which each thread writes only its own interleaved stripes; all are compared at the end.
#include <CLI/CLI.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/falloc.h>
#include <mutex>
#include <random>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr int kFiles = 4;
constexpr std::uint64_t kMaxSize = 4ull << 20;
constexpr std::size_t kMaxIo = 300 * 1024;

struct Side {
    std::string root;
    int fd[kFiles];
};

struct Outcome {
    long rc;
    int err;
};
Outcome sys(long rc) { return {rc < 0 ? -1 : rc, rc < 0 ? errno : 0}; }

class Tester {
public:
    Tester(std::string a, std::string b, std::uint64_t seed, std::string prefix)
        : rng_(seed), seed_(seed), prefix_(std::move(prefix)) {
        sides_[0].root = std::move(a);
        sides_[1].root = std::move(b);
        for (auto& s : sides_)
            for (int i = 0; i < kFiles; ++i) s.fd[i] = -1;
        buf_[0].resize(kMaxIo);
        buf_[1].resize(kMaxIo);
        data_.resize(kMaxIo);
    }
    ~Tester() {
        for (auto& s : sides_)
            for (int fd : s.fd)
                if (fd >= 0) ::close(fd);
    }

    std::string path(int side, int file) const {
        return sides_[side].root + "/" + prefix_ + std::to_string(file);
    }

    // Runs one random step; false (after a message) when the two sides disagree.
    bool step(std::uint64_t n) {
        step_ = n;
        const int f = static_cast<int>(rng_() % kFiles);
        if (sides_[0].fd[f] < 0 && rng_() % 4 != 0) return reopen(f, true);
        switch (rng_() % 16) {
        case 0: case 1: case 2: case 3: return write(f);
        case 4: case 5: case 6: return read(f);
        case 7: return truncate(f);
        case 8: return falloc(f, 0);
        case 9: return falloc(f, FALLOC_FL_KEEP_SIZE);
        case 10: return falloc(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
        case 11: return mapped(f);
        case 12: return rename(f, static_cast<int>(rng_() % kFiles));
        case 13: return link(f, static_cast<int>(rng_() % kFiles));
        case 14: return unlink(f);
        default: return reopen(f, rng_() % 2 == 0);
        }
    }

    bool compare_all() {
        for (int f = 0; f < kFiles; ++f) {
            struct stat sa{}, sb{};
            Outcome a = sys(::stat(path(0, f).c_str(), &sa));
            Outcome b = sys(::stat(path(1, f).c_str(), &sb));
            if (!same(a, b, "final stat", f)) return false;
            if (a.rc < 0) continue;
            if (sa.st_size != sb.st_size) return fail("final size", f);
            const int fa = ::open(path(0, f).c_str(), O_RDONLY), fb = ::open(path(1, f).c_str(), O_RDONLY);
            bool ok = fa >= 0 && fb >= 0;
            for (off_t off = 0; ok && off < sa.st_size; off += static_cast<off_t>(kMaxIo)) {
                const ssize_t ra = ::pread(fa, buf_[0].data(), kMaxIo, off);
                const ssize_t rb = ::pread(fb, buf_[1].data(), kMaxIo, off);
                ok = ra == rb && ra >= 0 && std::memcmp(buf_[0].data(), buf_[1].data(), static_cast<std::size_t>(ra)) == 0;
            }
            if (fa >= 0) ::close(fa);
            if (fb >= 0) ::close(fb);
            if (!ok) return fail("final contents", f);
        }
        return true;
    }

    std::uint64_t ops() const { return ops_; }

private:
    bool fail(const char* what, int f) {
        std::fprintf(stderr, "fsx: MISMATCH seed %llu step %llu: %s on %s%d\n",
                     static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(step_),
                     what, prefix_.c_str(), f);
        return false;
    }
    bool same(Outcome a, Outcome b, const char* what, int f) {
        ++ops_;
        if (a.rc == b.rc && a.err == b.err) return true;
        std::fprintf(stderr, "fsx: MISMATCH seed %llu step %llu: %s on %s%d: vramfs rc %ld errno %d (%s), "
                             "tmpfs rc %ld errno %d (%s)\n",
                     static_cast<unsigned long long>(seed_), static_cast<unsigned long long>(step_), what,
                     prefix_.c_str(), f, a.rc, a.err, std::strerror(a.err), b.rc, b.err, std::strerror(b.err));
        return false;
    }
    bool sizes_match(int f) {
        if (sides_[0].fd[f] < 0) return true;
        struct stat sa{}, sb{};
        ::fstat(sides_[0].fd[f], &sa);
        ::fstat(sides_[1].fd[f], &sb);
        if (sa.st_size != sb.st_size) {
            std::fprintf(stderr, "fsx: after %s: vramfs size %lld, tmpfs size %lld\n", last_.c_str(),
                         static_cast<long long>(sa.st_size), static_cast<long long>(sb.st_size));
            return fail("size", f);
        }
        return true;
    }
    std::uint64_t offset() { return rng_() % kMaxSize; }
    std::size_t length() {
        // Mostly small, sometimes block-sized or larger, so block boundaries are crossed.
        switch (rng_() % 4) {
        case 0: return 1 + rng_() % 64;
        case 1: return 1 + rng_() % 8192;
        default: return 1 + rng_() % kMaxIo;
        }
    }

    bool write(int f) {
        const std::uint64_t off = offset();
        const std::size_t len = length();
        for (std::size_t i = 0; i < len; i += 8) data_[i] = static_cast<char>(rng_());
        last_ = "pwrite " + std::to_string(off) + "+" + std::to_string(len);
        Outcome a = sys(::pwrite(sides_[0].fd[f], data_.data(), len, static_cast<off_t>(off)));
        Outcome b = sys(::pwrite(sides_[1].fd[f], data_.data(), len, static_cast<off_t>(off)));
        return same(a, b, "pwrite", f) && sizes_match(f);
    }
    bool read(int f) {
        const std::uint64_t off = offset();
        const std::size_t len = length();
        Outcome a = sys(::pread(sides_[0].fd[f], buf_[0].data(), len, static_cast<off_t>(off)));
        Outcome b = sys(::pread(sides_[1].fd[f], buf_[1].data(), len, static_cast<off_t>(off)));
        if (!same(a, b, "pread", f)) return false;
        if (a.rc > 0 && std::memcmp(buf_[0].data(), buf_[1].data(), static_cast<std::size_t>(a.rc)) != 0)
            return fail("pread data", f);
        return true;
    }
    bool truncate(int f) {
        const off_t size = static_cast<off_t>(rng_() % 2 ? offset() : rng_() % 65536);
        last_ = "ftruncate " + std::to_string(size);
        Outcome a = sys(::ftruncate(sides_[0].fd[f], size));
        Outcome b = sys(::ftruncate(sides_[1].fd[f], size));
        return same(a, b, "ftruncate", f) && sizes_match(f);
    }
    bool falloc(int f, int mode) {
        const off_t off = static_cast<off_t>(offset());
        const off_t len = static_cast<off_t>(length());
        last_ = "fallocate mode " + std::to_string(mode) + " " + std::to_string(off) + "+" + std::to_string(len);
        Outcome a = sys(::fallocate(sides_[0].fd[f], mode, off, len));
        Outcome b = sys(::fallocate(sides_[1].fd[f], mode, off, len));
        return same(a, b, "fallocate", f) && sizes_match(f);
    }
    bool mapped(int f) {
        struct stat st{};
        if (::fstat(sides_[0].fd[f], &st) != 0 || st.st_size == 0) return true;
        const std::size_t size = static_cast<std::size_t>(st.st_size);
        const std::size_t off = rng_() % size;
        const std::size_t len = std::min<std::size_t>(1 + rng_() % 16384, size - off);
        const bool writing = rng_() % 2;
        for (std::size_t i = 0; i < len; ++i) data_[i] = static_cast<char>(rng_());
        for (int s = 0; s < 2; ++s) {
            void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, sides_[s].fd[f], 0);
            if (p == MAP_FAILED) return fail(s == 0 ? "mmap on vramfs" : "mmap on tmpfs", f);
            char* c = static_cast<char*>(p);
            if (writing) {
                std::memcpy(c + off, data_.data(), len);
                ::msync(p, size, MS_SYNC);
            } else {
                std::memcpy(buf_[s].data(), c + off, len);
            }
            ::munmap(p, size);
        }
        ++ops_;
        if (!writing && std::memcmp(buf_[0].data(), buf_[1].data(), len) != 0) return fail("mmap read data", f);
        return true;
    }
    bool rename(int f, int g) {
        Outcome a = sys(::rename(path(0, f).c_str(), path(0, g).c_str()));
        Outcome b = sys(::rename(path(1, f).c_str(), path(1, g).c_str()));
        if (!same(a, b, "rename", f)) return false;
        if (a.rc == 0 && f != g) {
            // The open descriptors follow the inodes: g's old file, if any, is gone from the tree.
            for (auto& s : sides_) {
                if (s.fd[g] >= 0) ::close(s.fd[g]);
                s.fd[g] = s.fd[f];
                s.fd[f] = -1;
            }
        }
        return true;
    }
    bool link(int f, int g) {
        Outcome a = sys(::link(path(0, f).c_str(), path(0, g).c_str()));
        Outcome b = sys(::link(path(1, f).c_str(), path(1, g).c_str()));
        if (!same(a, b, "link", f)) return false;
        struct stat sa{}, sb{};
        if (::stat(path(0, f).c_str(), &sa) == 0 && ::stat(path(1, f).c_str(), &sb) == 0 && sa.st_nlink != sb.st_nlink)
            return fail("nlink", f);
        return true;
    }
    bool unlink(int f) {
        Outcome a = sys(::unlink(path(0, f).c_str()));
        Outcome b = sys(::unlink(path(1, f).c_str()));
        // Open descriptors stay usable after unlink, as on any POSIX filesystem.
        return same(a, b, "unlink", f);
    }
    bool reopen(int f, bool create) {
        const int flags = O_RDWR | (create ? O_CREAT : 0) | (rng_() % 8 == 0 ? O_TRUNC : 0);
        last_ = std::string("open") + (flags & O_TRUNC ? " O_TRUNC" : "");
        Outcome r[2];
        for (int s = 0; s < 2; ++s) {
            if (sides_[s].fd[f] >= 0) ::close(sides_[s].fd[f]);
            const int fd = ::open(path(s, f).c_str(), flags, 0644);
            r[s] = fd >= 0 ? Outcome{0, 0} : sys(fd); // descriptor numbers may differ
            sides_[s].fd[f] = fd;
        }
        return same(r[0], r[1], "open", f) && sizes_match(f);
    }

    Side sides_[2];
    std::mt19937_64 rng_;
    std::uint64_t seed_, step_ = 0, ops_ = 0;
    std::string prefix_;
    std::vector<char> buf_[2], data_;
    std::string last_; // the last operation, for messages
};

// A shared file: thread t owns the stripes t, t+T, t+2T... of `stripe` bytes.
bool shared_writer(const std::string& a, const std::string& b, int t, int threads, std::uint64_t seed,
                   std::uint64_t writes) {
    const std::size_t stripe = 40000; // not a block multiple: stripes share blocks
    std::mt19937_64 rng(seed * 1000 + t);
    const int fa = ::open((a + "/shared").c_str(), O_RDWR | O_CREAT, 0644);
    const int fb = ::open((b + "/shared").c_str(), O_RDWR | O_CREAT, 0644);
    if (fa < 0 || fb < 0) return false;
    std::vector<char> data(stripe);
    for (std::uint64_t i = 0; i < writes; ++i) {
        const std::uint64_t k = rng() % 64;
        const off_t off = static_cast<off_t>((k * threads + t) * stripe);
        for (auto& c : data) c = static_cast<char>(rng());
        if (::pwrite(fa, data.data(), stripe, off) != static_cast<ssize_t>(stripe) ||
            ::pwrite(fb, data.data(), stripe, off) != static_cast<ssize_t>(stripe))
            return false;
    }
    ::close(fa);
    ::close(fb);
    return true;
}

} // namespace

int main(int argc, char** argv) {
    std::string a, b;
    std::uint64_t ops = 10000, seed = 1;
    int threads = 1;
    CLI::App app{"vramfs-fsx: random operations on two directories, compared step by step"};
    app.add_option("--a", a, "the directory under test (a vramfs mount)")->required();
    app.add_option("--b", b, "the reference directory (tmpfs)")->required();
    app.add_option("--ops", ops, "operations per thread")->default_val(10000);
    app.add_option("--seed", seed, "seed; a failing seed reproduces the failure")->default_val(1);
    app.add_option("--threads", threads, "threads running at once")->default_val(1);
    CLI11_PARSE(app, argc, argv);
    std::printf("fsx: seed %llu, %llu operations x %d threads\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(ops), threads);

    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> done{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            Tester tester(a, b, seed + static_cast<std::uint64_t>(t) * 7919, "t" + std::to_string(t) + "f");
            for (std::uint64_t i = 0; i < ops && !failed; ++i)
                if (!tester.step(i)) failed = true;
            if (!failed && !tester.compare_all()) failed = true;
            done += tester.ops();
            if (threads > 1 && !failed && !shared_writer(a, b, t, threads, seed, ops / 50 + 1)) {
                std::fprintf(stderr, "fsx: shared-file writes failed\n");
                failed = true;
            }
        });
    }
    for (auto& th : pool) th.join();
    if (!failed && threads > 1) {
        // The shared file, byte for byte.
        const std::string pa = a + "/shared", pb = b + "/shared";
        struct stat sa{}, sb{};
        if (::stat(pa.c_str(), &sa) != 0 || ::stat(pb.c_str(), &sb) != 0 || sa.st_size != sb.st_size) {
            std::fprintf(stderr, "fsx: MISMATCH seed %llu: shared file size\n", static_cast<unsigned long long>(seed));
            failed = true;
        } else {
            std::string da(static_cast<std::size_t>(sa.st_size), 0), db(da.size(), 0);
            const int fa = ::open(pa.c_str(), O_RDONLY), fb = ::open(pb.c_str(), O_RDONLY);
            if (::pread(fa, da.data(), da.size(), 0) != static_cast<ssize_t>(da.size()) ||
                ::pread(fb, db.data(), db.size(), 0) != static_cast<ssize_t>(db.size()) || da != db) {
                std::fprintf(stderr, "fsx: MISMATCH seed %llu: shared file contents\n",
                             static_cast<unsigned long long>(seed));
                failed = true;
            }
            ::close(fa);
            ::close(fb);
        }
    }
    std::printf("fsx: %llu operations compared: %s\n", static_cast<unsigned long long>(done.load()),
                failed ? "MISMATCH" : "all equal");
    return failed ? 1 : 0;
}
