// The transport: our own /dev/fuse worker threads over libfuse's receive/process calls, so
// that all memory a request needs exists before the first request (libfuse's loop spawns
// threads and allocates buffers on demand, which is exactly when memory is short), and with
// --transport uring the io_uring queues beside them (fuse_ring.hpp).
#include "vramfs/fuse/transport.hpp"

#include "fuse_ring.hpp"
#include "raw_request.hpp"

#include "vramfs/util/clock.hpp"
#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <fuse_lowlevel.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/fuse.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pthread.h>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vramfs {
namespace {

// libfuse 3.14 reads requests of up to 256 pages plus a header into this buffer; twice that
// leaves room for kernels and libfuse versions that allow larger requests.
constexpr std::size_t kReceiveBuffer = 2 * (256 + 1) * 4096;
constexpr std::size_t kStackSize = 8 * 1024 * 1024; // virtual; only the touched part is resident
constexpr unsigned kMaxSpinners = 2; // --poll-us: workers spinning at once (each burns a core)

// SIGINT, SIGTERM and SIGHUP: what serve()'s thread waits for; every other thread blocks them.
sigset_t stop_signals() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
}

// Busy-polling (--poll-us): shared by the workers of one session.
struct PollState {
    std::uint64_t spin_ns = 0;     // 0: workers sleep in read(2) as usual
    unsigned max_spinners = 0;     // at most this many workers spin at once
    std::atomic<unsigned> spinners{0};
};

struct Worker {
    fuse_session* se = nullptr;
    HostBuffer receive; // what the kernel writes each request into
    void* buffer = nullptr; // receive.data()
    pthread_t thread{};
    std::atomic<bool>* finished = nullptr;
    std::atomic<bool>* ended = nullptr; // set when the kernel ended the session (ENODEV)
    std::atomic<unsigned>* ready = nullptr;
    PollState* poll = nullptr;
    RequestStats* stats = nullptr;
    int epoll_fd = -1; // with busy-polling: this worker's sleep on /dev/fuse
    const std::function<void()>* prepare = nullptr; // ServeOptions::prepare_thread
};

// What a worker does when /dev/fuse (non-blocking with --poll-us) has no request: spin on it
// until `spin_until` if a spinner slot is free, else sleep until it is readable. Each worker
// sleeps on its own epoll instance with EPOLLEXCLUSIVE, so a new request wakes one sleeper, not
// all of them. Returns whether this worker holds a spinner slot afterwards.
bool wait_for_request(Worker& w, std::uint64_t spin_until, bool spinning) {
    PollState& p = *w.poll;
    if (!spinning && monotonic_ns() < spin_until) {
        unsigned n = p.spinners.load(std::memory_order_relaxed);
        while (n < p.max_spinners && !p.spinners.compare_exchange_weak(n, n + 1)) {
        }
        spinning = n < p.max_spinners;
    }
    if (spinning && monotonic_ns() < spin_until) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return true;
    }
    if (spinning) p.spinners.fetch_sub(1);
    epoll_event ev{};
    // A wakeup that finds no request (another worker took it) just comes back here; unmounting
    // makes the device readable (an error), and the next read returns ENODEV.
    (void)epoll_wait(w.epoll_fd, &ev, 1, 1000);
    return false;
}

void* worker_main(void* arg) {
    auto* w = static_cast<Worker*>(arg);
    ::pthread_setname_np(::pthread_self(), "vramfs-io");
    touch_stack();
    std::free(std::malloc(64)); // sets up this thread's malloc cache before the first request
    if (*w->prepare) (*w->prepare)();
    w->ready->fetch_add(1);
    fuse_buf buf{};
    buf.mem = w->buffer; // libfuse uses a buffer it is given and allocates none
    const bool polling = w->epoll_fd >= 0;
    std::uint64_t spin_until = 0;
    bool spinning = false;
    while (!fuse_session_exited(w->se)) {
        const std::uint64_t asked = monotonic_ns();
        const int res = fuse_session_receive_buf(w->se, &buf);
        if (res == -EAGAIN && polling) {
            spinning = wait_for_request(*w, spin_until, spinning);
            continue;
        }
        if (res == -EINTR || res == -EAGAIN) continue;
        if (res <= 0) {
            // libfuse returns 0 for ENODEV: the kernel ended the session (an unmount).
            if (res == 0 || res == -ENODEV) w->ended->store(true);
            if (res < 0 && res != -ENODEV)
                log_error("reading from /dev/fuse failed: %s", std::strerror(-res));
            fuse_session_exit(w->se);
            break;
        }
        const std::uint64_t arrived = monotonic_ns();
        // The request starts with the kernel's header (libfuse reads it into our buffer; with
        // splice, which vramfs does not ask for, it would be in a pipe instead).
        OpTiming* timing = !(buf.flags & FUSE_BUF_IS_FD) &&
                                   static_cast<std::size_t>(res) >= sizeof(fuse_in_header)
                               ? w->stats->arrived(static_cast<const fuse_in_header*>(w->buffer)->opcode)
                               : nullptr;
        // Spliced (not asked for), the request would be in a pipe: then none of its flags are known.
        const bool in_memory = !(buf.flags & FUSE_BUF_IS_FD);
        saw_request(in_memory ? w->buffer : nullptr, in_memory ? static_cast<std::size_t>(res) : 0);
        fuse_session_process_buf(w->se, &buf);
        buf.mem = w->buffer;
        const std::uint64_t done = monotonic_ns();
        if (timing) {
            timing->handle_ns.fetch_add(done - arrived, std::memory_order_relaxed);
            if (polling) { // a non-blocking read: its time is the copy, not a wait
                timing->received.fetch_add(1, std::memory_order_relaxed);
                timing->receive_ns.fetch_add(arrived - asked, std::memory_order_relaxed);
            }
        }
        if (polling) spin_until = done + w->poll->spin_ns;
    }
    if (spinning) w->poll->spinners.fetch_sub(1);
    w->finished->store(true);
    return nullptr;
}

// Sets /dev/fuse non-blocking and gives each worker an epoll instance to sleep on; false (and
// a warning: the workers then block in read as usual) if the kernel refuses.
bool prepare_polling(fuse_session* se, std::vector<Worker>& workers) {
    const int fd = fuse_session_fd(se);
    const int flags = ::fcntl(fd, F_GETFL);
    bool ok = flags >= 0;
    for (auto& w : workers) {
        if (!ok) break;
        w.epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
        ok = w.epoll_fd >= 0 && ::epoll_ctl(w.epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
    }
    if (ok) ok = ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
    if (ok) return true;
    log_warning("busy-polling is off: %s", std::strerror(errno));
    for (auto& w : workers) {
        if (w.epoll_fd >= 0) ::close(w.epoll_fd);
        w.epoll_fd = -1;
    }
    return false;
}

class DevFuseTransport final : public Transport {
public:
    DevFuseTransport(fuse_session* se, ServeOptions o, HostMemory& buffers, RequestStats& stats,
                     std::unique_ptr<FuseRing> ring)
        : se_(se), options_(std::move(o)), buffers_(buffers), stats_(stats), ring_(std::move(ring)) {}
    const char* name() const noexcept override { return stats_.over_uring.load() ? "uring" : "dev"; }
    int serve() override;

private:
    // What the workers and the waiting thread share for one serve().
    struct Shared {
        std::atomic<bool> finished{false}, ended{false};
        std::atomic<unsigned> ready{0};
        PollState poll;
    };
    unsigned start_workers(std::vector<Worker>& workers, Shared& shared);
    void wait_for_end(const Shared& shared);

    fuse_session* se_;
    ServeOptions options_;
    HostMemory& buffers_;
    RequestStats& stats_;
    std::unique_ptr<FuseRing> ring_;
};

// Starts a worker per entry of `workers`, each with its receive buffer; how many started.
unsigned DevFuseTransport::start_workers(std::vector<Worker>& workers, Shared& shared) {
    PollState& poll = shared.poll;
    poll.spin_ns = std::uint64_t{options_.poll_us} * 1000;
    poll.max_spinners = std::min(options_.threads, kMaxSpinners);
    for (auto& w : workers) {
        w.poll = &poll;
        w.stats = &stats_;
        w.prepare = &options_.prepare_thread;
    }
    if (options_.poll_us > 0) prepare_polling(se_, workers);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kStackSize);
    unsigned started = 0;
    for (auto& w : workers) {
        w.se = se_;
        w.finished = &shared.finished;
        w.ended = &shared.ended;
        w.ready = &shared.ready;
        if (buffers_.allocate_host(kReceiveBuffer, w.receive) != 0) break;
        w.buffer = w.receive.data();
        fault_in(w.buffer, kReceiveBuffer);
        if (pthread_create(&w.thread, &attr, worker_main, &w) != 0) {
            w.receive.reset();
            w.buffer = nullptr;
            break;
        }
        ++started;
    }
    pthread_attr_destroy(&attr);
    return started;
}

// Serves until the kernel ends the session: an unmount (fusermount3 -u, umount, or ours on a
// stop signal) once nobody uses the mount any more makes every read return ENODEV. A first
// stop signal detaches the mount and goes on serving its users; a second exits at once.
void DevFuseTransport::wait_for_end(const Shared& shared) {
    // Blocked in every thread since block_stop_signals(); this thread waits for them.
    const sigset_t stop = stop_signals();
    bool detached = false;
    while (!shared.finished.load() && !fuse_session_exited(se_)) {
        timespec tick{0, 200 * 1000 * 1000};
        const int sig = sigtimedwait(&stop, nullptr, &tick);
        if (sig <= 0) continue;
        if (detached) {
            // Users of the detached mount now get ENOTCONN, as after a crash: asked for twice.
            log_warning("signal %d again: exiting now", sig);
            std::_Exit(1);
        }
        log_info("signal %d: unmounting %s; serving its remaining users until they leave", sig,
                 options_.mountpoint.c_str());
        detached = detach_mount(options_.mountpoint);
        if (!detached) fuse_session_exit(se_); // cannot unmount: end the session here
    }
}

int DevFuseTransport::serve() {
    std::signal(SIGPIPE, SIG_IGN);
    Shared shared;
    std::vector<Worker> workers(options_.threads);
    const unsigned started = start_workers(workers, shared);
    if (started == 0) {
        log_error("cannot start any FUSE worker thread");
        return -1;
    }
    if (started < options_.threads) log_warning("started %u of %u worker threads", started, options_.threads);
    for (int i = 0; i < 500 && shared.ready.load() < started; ++i) ::usleep(2000);
    lock_own_memory();
    wait_for_end(shared);
    const auto join_workers = [&workers] {
        for (auto& w : workers) {
            if (!w.buffer) continue;
            pthread_join(w.thread, nullptr);
            w.receive.reset();
            w.buffer = nullptr;
        }
    };
    // Once the kernel has ended the session every worker's read returns ENODEV, so they end by
    // themselves: joined before the descriptor they read is closed. Where the session was ended
    // from here, a worker may still wait in read, which unmounting ends: joined after.
    if (shared.ended.load()) {
        join_workers();
        // Ring threads write to /dev/fuse too (notifications): ended before it closes. The
        // session has ended, so what the kernel holds of their entries may be cancelled.
        if (ring_) ring_->stop();
    }
    // Closes the session (after the kernel ended it, or when it could not be unmounted).
    fuse_session_unmount(se_);
    join_workers();
    for (auto& w : workers)
        if (w.epoll_fd >= 0) ::close(w.epoll_fd);
    if (ring_) ring_->stop();
    return 0;
}

} // namespace

void block_stop_signals() noexcept {
    const sigset_t stop = stop_signals();
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);
}

bool detach_mount(const std::string& mountpoint) noexcept {
    if (::umount2(mountpoint.c_str(), MNT_DETACH) == 0) return true;
    const int err = errno;
    if (err == EPERM) {
        // A user's mount: fusermount3 (set-user-ID root) unmounts it for its owner.
        const char* argv[] = {"fusermount3", "-u", "-z", mountpoint.c_str(), nullptr};
        pid_t pid = 0;
        int status = 0;
        if (::posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char* const*>(argv),
                           environ) == 0 &&
            ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
            return true;
    }
    log_error("cannot unmount %s: %s", mountpoint.c_str(), std::strerror(err));
    return false;
}

bool resolve_transport(TransportKind asked, TransportKind& out, std::string& why) {
    out = asked == TransportKind::dev || !kernel_offers_fuse_uring(why) ? TransportKind::dev
                                                                         : TransportKind::uring;
    return asked != TransportKind::uring || out == TransportKind::uring;
}

std::unique_ptr<Transport> make_transport(fuse_session* se, ServeOptions options,
                                          HostMemory& buffers, RequestStats& stats,
                                          std::string& why) {
    std::unique_ptr<FuseRing> ring;
    handle_killpriv_v2(options.tuning.killpriv_v2);
    if (options.transport == TransportKind::uring) {
        // The largest request libfuse 3.14 accepts is 256 pages, whatever --max-io says.
        const std::size_t payload =
            std::max<std::size_t>(8192, (std::min<std::size_t>(options.max_io, 256 * 4096) + 4095) & ~std::size_t{4095});
        ring = FuseRing::create(se, payload, buffers, stats, options, why);
        if (!ring) return nullptr;
        options.poll_us = 0; // the workers see little once the ring runs: spinning on them is waste
    } else if (!install_dev_writev(se)) {
        // Correct without it, a request more per write: the kernel keeps clearing the bits.
        log_warning("libfuse refused the custom I/O: set-user-ID bits are left to the kernel");
    }
    return std::make_unique<DevFuseTransport>(se, std::move(options), buffers, stats, std::move(ring));
}

} // namespace vramfs
