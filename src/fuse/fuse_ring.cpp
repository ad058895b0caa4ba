// FUSE over io_uring: see fuse_ring.hpp for the design, fuse_uring_abi.hpp for the kernel's side.
#include "fuse_ring.hpp"

#include "fuse_uring_abi.hpp"
#include "raw_request.hpp"
#include "vramfs/fuse/fuse_ops.hpp"
#include "vramfs/fuse/transport.hpp"
#include "vramfs/util/clock.hpp"
#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

namespace vramfs {

using namespace uring_abi;

namespace {

// What serves one kernel queue: the kernel sends a request to the queue of the CPU it was made
// on, and a thread handles its requests one after another, so one thread per queue serialises
// whatever one task sends at once, such as a loop device's reads and writes (its worker makes
// them all, swap's included). So each queue of an online CPU has up to kThreadsPerQueue threads
// (each with its own io_uring, registering entries for the same queue), which serve its
// requests side by side: the kernel hands a request to whichever entry is free.
// Each entry costs a payload buffer of page-locked memory: the threads per queue are halved
// until they fit in kRingMemory for every online CPU; with one thread per queue it holds two
// entries where they fit (the next request is in place when it is done), else one. The queue of
// a CPU that is not online has one thread and one entry (the kernel wants an entry on every
// possible CPU's queue). --ring-queue-threads N (1-8) sets the threads per queue regardless
// of kRingMemory, to compare.
constexpr unsigned kThreadsPerQueue = 4;
constexpr unsigned kMaxThreadsPerQueue = 8;
constexpr std::size_t kRingMemory = 72 << 20;
// The request is rebuilt just before the payload, which starts this far into the entry's
// buffer (page-aligned for the device copy; room for the ring header and the request header).
constexpr std::size_t kPayloadOffset = 4096;
constexpr std::size_t kStackSize = 8 * 1024 * 1024; // virtual; only the touched part is resident
constexpr std::uint64_t kStopTag = 1;                // user_data of the stop eventfd's poll

static_assert(sizeof(ReqHeader) + sizeof(fuse_in_header) + kOpInOutSize <= kPayloadOffset);

struct RingThread;

struct RingEntry {
    RingThread* owner = nullptr;
    HostBuffer memory; // [ReqHeader ... request header][payload]
    ReqHeader* header = nullptr;
    char* payload = nullptr;
    iovec iov[2]{};
    std::uint64_t commit_id = 0;
    bool replied = false;
};

struct RingThread {
    FuseRing::Impl* ring = nullptr;
    unsigned qid = 0;
    io_uring uring{};
    int setup_error = 0; // the thread's io_uring set-up: 0 or a negative errno
    int stop_fd = -1;
    std::vector<RingEntry> entries;
    pthread_t handle{};
    bool thread_started = false;
    std::uint64_t served = 0; // requests handled (by this thread only; read after it ends)
};

// The entry whose request this thread is handling: its reply goes into the entry, not /dev/fuse.
thread_local RingEntry* tls_entry = nullptr;

} // namespace

struct FuseRing::Impl {
    fuse_session* se = nullptr;
    int fuse_fd = -1;
    std::size_t payload = 0;
    RequestStats* stats = nullptr;
    bool required = false; // --transport uring: not getting it is an error, not information
    std::function<void()> prepare_thread; // each ring thread, before its first request
    std::vector<RingThread> threads; // kThreadsPerQueue (or 1) per kernel queue

    // 0: waiting for INIT; 1: registering; 2: stopping.
    std::atomic<int> state{0};
    std::atomic<unsigned> ready{0};
    std::atomic<bool> failure_logged{false};

    ssize_t writev(int fd, iovec* iov, int count) noexcept;
    void reply(RingEntry& e, const iovec* iov, int count) noexcept;
    void commit(RingEntry& e, int error, std::size_t payload_len) noexcept;
    bool patch_init_reply(iovec* iov, int count, std::uint64_t offered) noexcept;
    void handle(RingEntry& e) noexcept;
    void serve(RingThread& q) noexcept;
    int setup_uring(RingThread& q) noexcept;
    void entry_failed(RingEntry& e, int res) noexcept;
    int wait_for_work(RingThread& q) noexcept;
    std::uint64_t spin_ns = 0; // TransportTuning::ring_poll_us
    bool pin = false;          // each ring thread on its queue's CPU (TransportTuning::ring_pin_cpu)
};

namespace {

// One session per process: the custom I/O callbacks find the ring here.
std::atomic<FuseRing::Impl*> g_ring{nullptr};

ssize_t ring_writev(int fd, iovec* iov, int count, void*) {
    FuseRing::Impl* r = g_ring.load(std::memory_order_acquire);
    if (!r) return ::writev(fd, iov, count);
    return r->writev(fd, iov, count);
}

ssize_t ring_read(int fd, void* buf, size_t len, void*) { return ::read(fd, buf, len); }

void prep_cmd(io_uring_sqe* sqe, RingEntry& e, std::uint32_t cmd) noexcept {
    io_uring_prep_rw(IORING_OP_URING_CMD, sqe, 0, nullptr, 0, 0); // fd 0: the registered /dev/fuse
    sqe->flags |= IOSQE_FIXED_FILE;
    sqe->cmd_op = cmd;
    std::memset(sqe->cmd, 0, 80);
    CmdReq req{};
    req.commit_id = cmd == kCmdCommitAndFetch ? e.commit_id : 0;
    req.qid = static_cast<std::uint16_t>(e.owner->qid);
    std::memcpy(sqe->cmd, &req, sizeof req);
    io_uring_sqe_set_data(sqe, &e);
    if (cmd == kCmdRegister) {
        sqe->addr = reinterpret_cast<std::uint64_t>(e.iov);
        sqe->len = 2;
    }
}

// The CPUs of a sysfs CPU list ("0-3,8,10-11"), as a bitmap indexed by CPU number; empty if
// the file cannot be read.
std::vector<bool> cpu_list(const char* path) {
    std::vector<bool> cpus;
    FILE* f = std::fopen(path, "re");
    if (!f) return cpus;
    char line[4096] = {};
    const bool got = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    for (char* p = line; got && *p >= '0' && *p <= '9';) {
        char* end = nullptr;
        const unsigned long first = std::strtoul(p, &end, 10);
        unsigned long last = first;
        if (*end == '-') last = std::strtoul(end + 1, &end, 10);
        if (last >= cpus.size()) cpus.resize(last + 1, false);
        for (unsigned long c = first; c <= last; ++c) cpus[c] = true;
        p = *end == ',' ? end + 1 : end;
    }
    return cpus;
}

void* queue_main(void* arg) {
    auto* q = static_cast<RingThread*>(arg);
    ::pthread_setname_np(::pthread_self(), "vramfs-ring");
    q->ring->serve(*q);
    return nullptr;
}

} // namespace

bool kernel_offers_fuse_uring(std::string& why) {
    int fd = ::open("/sys/module/fuse/parameters/enable_uring", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        why = "this kernel has no FUSE over io_uring (Linux 6.14 or later, CONFIG_FUSE_IO_URING)";
        return false;
    }
    char c = 0;
    const bool on = ::read(fd, &c, 1) == 1 && (c == 'Y' || c == '1');
    ::close(fd);
    if (!on)
        why = "FUSE over io_uring is off in this kernel (as root: echo 1 > "
              "/sys/module/fuse/parameters/enable_uring)";
    return on;
}

// ---- replies -------------------------------------------------------------------------------

ssize_t FuseRing::Impl::writev(int fd, iovec* iov, int count) noexcept {
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    std::size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    RingEntry* e = tls_entry;
    // A reply made on a ring thread for its own request; anything else (a notification, an
    // interrupt's answer, a /dev/fuse worker's reply) goes to /dev/fuse.
    if (e && !e->replied && out->unique == e->commit_id) {
        reply(*e, iov, count);
        return static_cast<ssize_t>(total);
    }
    std::uint64_t offered = 0;
    const bool init = amend_init_reply(iov, count, offered);
    const bool ours = init && patch_init_reply(iov, count, offered);
    const ssize_t n = ::writev(fd, iov, count);
    if (ours && n >= 0) {
        // The kernel took the reply: it has the connection set up and accepts registrations.
        stats->over_uring.store(true);
        state.store(1);
        state.notify_all();
    } else if (ours) {
        log_error("the INIT reply was refused (%s): serving over /dev/fuse", std::strerror(errno));
    }
    return n;
}

bool FuseRing::Impl::patch_init_reply(iovec* iov, int count, std::uint64_t offered) noexcept {
    if (count < 2 || iov[1].iov_len < offsetof(fuse_init_out, flags2) + sizeof(std::uint32_t))
        return false;
    if (!(offered & kOverIoUring)) {
        if (required)
            log_error("the kernel did not offer FUSE over io_uring at INIT: serving over /dev/fuse");
        else
            log_info("the kernel did not offer FUSE over io_uring: serving over /dev/fuse");
        return false;
    }
    auto* o = static_cast<fuse_init_out*>(iov[1].iov_base);
    // What the kernel will require of each payload buffer (fs/fuse/dev_uring.c).
    const std::size_t pages = (o->flags & FUSE_MAX_PAGES) ? o->max_pages : 32;
    const std::size_t need = std::max<std::size_t>({8192, o->max_write, pages * 4096});
    if (need > payload) {
        log_error("FUSE over io_uring needs %zu-byte buffers, %zu were made: serving over /dev/fuse",
                  need, payload);
        return false;
    }
    o->flags |= FUSE_INIT_EXT;
    o->flags2 |= static_cast<std::uint32_t>(kOverIoUring >> 32);
    return true;
}

void FuseRing::Impl::reply(RingEntry& e, const iovec* iov, int count) noexcept {
    const auto* out = static_cast<const fuse_out_header*>(iov[0].iov_base);
    std::size_t len = 0;
    int error = out->error;
    for (int i = 1; i < count; ++i) {
        if (len + iov[i].iov_len > payload) {
            log_error("a reply of more than %zu bytes does not fit the ring entry", payload);
            error = -EIO;
            len = 0;
            break;
        }
        // A read's data is already where it goes (current_reply_buffer).
        if (iov[i].iov_base != e.payload + len) std::memmove(e.payload + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    commit(e, error, len);
}

void FuseRing::Impl::commit(RingEntry& e, int error, std::size_t payload_len) noexcept {
    auto* out = reinterpret_cast<fuse_out_header*>(e.header->in_out);
    out->unique = e.commit_id;
    out->error = error;
    out->len = static_cast<std::uint32_t>(sizeof(fuse_out_header) + payload_len);
    e.header->ring_ent_in_out.payload_sz = static_cast<std::uint32_t>(payload_len);
    e.replied = true;
    // Never empty: a thread's io_uring has as many SQEs as its entries, plus the stop poll's.
    io_uring_sqe* sqe = io_uring_get_sqe(&e.owner->uring);
    if (!sqe) {
        log_error("io_uring queue %u has no free submission entry", e.owner->qid);
        return;
    }
    prep_cmd(sqe, e, kCmdCommitAndFetch); // submitted by the thread's loop before it waits
}

// ---- requests ------------------------------------------------------------------------------

void FuseRing::Impl::handle(RingEntry& e) noexcept {
    const auto* in = reinterpret_cast<const fuse_in_header*>(e.header->in_out);
    const EntInOut& io = e.header->ring_ent_in_out;
    e.commit_id = io.commit_id;
    e.replied = false;
    const std::size_t body = io.payload_sz;
    // The opcode's header is what the length leaves after the in-header and the payload.
    if (in->len < sizeof(fuse_in_header) + body || body > payload ||
        in->len - sizeof(fuse_in_header) - body > kOpInOutSize) {
        log_error("malformed request over io_uring (opcode %u, length %u, payload %zu)", in->opcode,
                  in->len, body);
        commit(e, -EIO, 0);
        return;
    }
    const std::size_t op = in->len - sizeof(fuse_in_header) - body;
    char* start = e.payload - sizeof(fuse_in_header) - op;
    std::memcpy(start, in, sizeof(fuse_in_header));
    std::memcpy(start + sizeof(fuse_in_header), e.header->op_in, op);

    const std::uint64_t arrived = monotonic_ns();
    OpTiming* timing = stats->arrived(in->opcode);
    stats->ring_requests.fetch_add(1, std::memory_order_relaxed);
    ++e.owner->served;
    tls_entry = &e;
    current_reply_buffer = ReplyBuffer{e.payload, payload};
    fuse_buf buf{};
    buf.mem = start;
    buf.size = in->len;
    saw_request(start, in->len);
    fuse_session_process_buf(se, &buf);
    current_reply_buffer = ReplyBuffer{};
    tls_entry = nullptr;
    if (!e.replied) { // every request the kernel sends over the ring expects a reply
        log_error("request %u over io_uring got no reply", in->opcode);
        commit(e, -EIO, 0);
    }
    if (timing) timing->handle_ns.fetch_add(monotonic_ns() - arrived, std::memory_order_relaxed);
}

// An entry the kernel gave back with an error: it takes no more requests.
void FuseRing::Impl::entry_failed(RingEntry& e, int res) noexcept {
    // ENOTCONN and ENODEV: the session ended, as on every unmount.
    if (res == -ENOTCONN || res == -ENODEV) return;
    stats->over_uring.store(false);
    if (!failure_logged.exchange(true))
        log_error("io_uring queue %u: the kernel refused an entry (%s)", e.owner->qid,
                  std::strerror(-res));
}

void FuseRing::Impl::serve(RingThread& q) noexcept {
    touch_stack();
    std::free(std::malloc(64)); // sets up this thread's malloc cache before the first request
    if (pin) { // where that CPU is not ours to use, anywhere
        cpu_set_t cpu;
        CPU_ZERO(&cpu);
        CPU_SET(q.qid, &cpu);
        (void)sched_setaffinity(0, sizeof cpu, &cpu);
    }
    if (prepare_thread) prepare_thread();
    q.setup_error = setup_uring(q);
    ready.fetch_add(1);
    ready.notify_all();
    if (q.setup_error != 0) return;
    int s = state.load();
    while (s == 0) {
        state.wait(0);
        s = state.load();
    }
    if (s == 2) {
        io_uring_queue_exit(&q.uring);
        return;
    }
    for (RingEntry& e : q.entries) {
        io_uring_sqe* sqe = io_uring_get_sqe(&q.uring);
        if (sqe) prep_cmd(sqe, e, kCmdRegister);
    }
    if (io_uring_sqe* sqe = io_uring_get_sqe(&q.uring)) {
        io_uring_prep_poll_add(sqe, q.stop_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, kStopTag);
    }
    bool stopping = false;
    std::size_t gone = 0;
    while (!stopping && gone < q.entries.size()) {
        io_uring_cqe* cqe = nullptr;
        const int rc = wait_for_work(q);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            log_error("io_uring queue %u: %s", q.qid, std::strerror(-rc));
            break;
        }
        unsigned head = 0, seen = 0;
        io_uring_for_each_cqe(&q.uring, head, cqe) {
            ++seen;
            if (cqe->user_data == kStopTag) {
                stopping = true;
                continue;
            }
            auto* e = static_cast<RingEntry*>(io_uring_cqe_get_data(cqe));
            if (cqe->res == 0) {
                handle(*e);
            } else if (cqe->res == -EINTR || cqe->res == -EAGAIN) {
                if (io_uring_sqe* sqe = io_uring_get_sqe(&q.uring))
                    prep_cmd(sqe, *e, e->replied ? kCmdCommitAndFetch : kCmdRegister);
            } else {
                entry_failed(*e, cqe->res);
                ++gone;
            }
        }
        io_uring_cq_advance(&q.uring, seen);
    }
    if (!stopping && gone < q.entries.size()) fuse_session_exit(se);
    io_uring_queue_exit(&q.uring); // cancels what the kernel still holds of this thread's entries
}

// Submits the thread's commits and waits for a completion. With spin_ns, it first asks the
// kernel for completions without sleeping for up to that long (yielding to anything else that
// wants the CPU), so that with DEFER_TASKRUN a request for this queue is taken without the
// thread being woken. Off by default: it slowed swap (docs/performance.md).
int FuseRing::Impl::wait_for_work(RingThread& q) noexcept {
    if (spin_ns == 0) return io_uring_submit_and_wait(&q.uring, 1);
    int rc = io_uring_submit(&q.uring);
    if (rc < 0) return rc;
    const std::uint64_t until = monotonic_ns() + spin_ns;
    while (io_uring_cq_ready(&q.uring) == 0) {
        if (monotonic_ns() >= until) return io_uring_submit_and_wait(&q.uring, 1);
        (void)io_uring_get_events(&q.uring);
        if (io_uring_cq_ready(&q.uring) == 0) sched_yield();
    }
    return 0;
}

// On the ring thread itself, its io_uring's only submitter: SINGLE_ISSUER and DEFER_TASKRUN let
// the kernel skip the cross-thread wakeup machinery and run completions when the thread asks
// for them (it waits only in wait_for_work). Without them where the kernel refuses them.
int FuseRing::Impl::setup_uring(RingThread& q) noexcept {
    io_uring_params p{};
    p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    const unsigned sqes = static_cast<unsigned>(q.entries.size()) + 2; // and the stop poll
    int rc = io_uring_queue_init_params(sqes, &q.uring, &p);
    if (rc == -EINVAL) {
        p = io_uring_params{};
        p.flags = IORING_SETUP_SQE128;
        rc = io_uring_queue_init_params(sqes, &q.uring, &p);
    }
    if (rc < 0) return rc;
    rc = io_uring_register_files(&q.uring, &fuse_fd, 1);
    if (rc < 0) {
        io_uring_queue_exit(&q.uring);
        return rc;
    }
    return 0;
}

// ---- set-up and tear-down ------------------------------------------------------------------

namespace {

// The threads of every queue and the entries of each (kThreadsPerQueue above); nothing made yet.
// Returns the number of queues.
unsigned plan_threads(FuseRing::Impl& r, std::size_t payload, unsigned queue_threads) {
    // The kernel makes a queue for each possible CPU and uses the ring only once every one of
    // them has an entry.
    const std::vector<bool> possible = cpu_list("/sys/devices/system/cpu/possible");
    std::vector<bool> online = cpu_list("/sys/devices/system/cpu/online");
    const unsigned nq = possible.empty()
                            ? static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)))
                            : static_cast<unsigned>(possible.size());
    if (online.empty()) online.assign(nq, true);
    const std::size_t n_online = static_cast<std::size_t>(std::count(online.begin(), online.end(), true));
    // Threads and entries for an online CPU's queue (kThreadsPerQueue above).
    const std::size_t entry_bytes = kPayloadOffset + payload;
    const auto fits = [&](unsigned entries_per_queue) {
        return n_online * entries_per_queue * entry_bytes <= kRingMemory;
    };
    unsigned per_queue = kThreadsPerQueue;
    if (queue_threads > 0)
        per_queue = std::min(queue_threads, kMaxThreadsPerQueue);
    else
        while (per_queue > 1 && !fits(per_queue)) per_queue /= 2;
    const unsigned per_thread = per_queue == 1 && fits(2) ? 2 : 1;
    r.threads.reserve(static_cast<std::size_t>(nq) * per_queue);
    for (unsigned i = 0; i < nq; ++i) {
        const bool busy = i < online.size() && online[i];
        for (unsigned t = 0; t < (busy ? per_queue : 1); ++t) {
            RingThread& q = r.threads.emplace_back();
            q.ring = &r;
            q.qid = i;
            q.entries = std::vector<RingEntry>(busy ? per_thread : 1);
        }
    }
    return nq;
}

// Each thread's stop eventfd and each entry's page-locked buffer, faulted in; false with `why`.
bool make_buffers(FuseRing::Impl& r, HostMemory& buffers, std::size_t payload, std::string& why) {
    for (RingThread& q : r.threads) {
        q.stop_fd = ::eventfd(0, EFD_CLOEXEC);
        if (q.stop_fd < 0) {
            why = std::string("eventfd: ") + std::strerror(errno);
            return false;
        }
        for (RingEntry& e : q.entries) {
            e.owner = &q;
            if (buffers.allocate_host(kPayloadOffset + payload, e.memory) != 0) {
                why = "cannot allocate the ring's buffers";
                return false;
            }
            fault_in(e.memory.data(), e.memory.size());
            e.header = static_cast<ReqHeader*>(e.memory.data());
            e.payload = static_cast<char*>(e.memory.data()) + kPayloadOffset;
            e.iov[0] = iovec{e.header, sizeof(ReqHeader)};
            e.iov[1] = iovec{e.payload, payload};
        }
    }
    return true;
}

// Starts every queue's thread and waits until each has set up its own io_uring (it is the
// ring's only submitter); false with `why`.
bool start_threads(FuseRing::Impl& r, std::string& why) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kStackSize);
    for (RingThread& q : r.threads) {
        if (pthread_create(&q.handle, &attr, queue_main, &q) != 0) {
            pthread_attr_destroy(&attr);
            why = "cannot start the ring's threads";
            return false;
        }
        q.thread_started = true;
    }
    pthread_attr_destroy(&attr);
    // Each thread sets up its own io_uring (it is the ring's only submitter) and says so.
    for (unsigned n = r.ready.load(); n < r.threads.size(); n = r.ready.load()) r.ready.wait(n);
    for (RingThread& q : r.threads) {
        if (q.setup_error == 0) continue;
        why = std::string("io_uring_setup: ") + std::strerror(-q.setup_error);
        return false;
    }
    return true;
}

} // namespace

std::unique_ptr<FuseRing> FuseRing::create(fuse_session* se, std::size_t payload,
                                           HostMemory& buffers, RequestStats& stats,
                                           const ServeOptions& options, std::string& why) {
    auto impl = std::make_unique<Impl>();
    Impl& r = *impl;
    r.prepare_thread = options.prepare_thread;
    r.se = se;
    r.fuse_fd = fuse_session_fd(se);
    r.payload = payload;
    r.stats = &stats;
    r.required = options.uring_asked;
    r.spin_ns = std::uint64_t{options.tuning.ring_poll_us} * 1000;
    r.pin = options.tuning.ring_pin_cpu;
    const unsigned nq = plan_threads(r, payload, options.tuning.ring_queue_threads);
    std::unique_ptr<FuseRing> ring(new FuseRing(std::move(impl)));
    if (!make_buffers(r, buffers, payload, why) || !start_threads(r, why)) return nullptr;
    std::size_t entries = 0;
    for (const RingThread& q : r.threads) entries += q.entries.size();
    log_debug("FUSE over io_uring: %u queues, %zu threads, %zu entries, %zu MiB of buffers", nq,
              r.threads.size(), entries, entries * (kPayloadOffset + payload) >> 20);
    fuse_custom_io io{};
    io.writev = ring_writev;
    io.read = ring_read;
    g_ring.store(&r, std::memory_order_release);
    // The same descriptor: libfuse goes on reading and writing /dev/fuse through these two.
    if (fuse_session_custom_io(se, &io, r.fuse_fd) != 0) {
        g_ring.store(nullptr);
        why = "libfuse refused the custom I/O";
        return nullptr;
    }
    return ring;
}

FuseRing::FuseRing(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

void FuseRing::stop() noexcept {
    Impl& r = *impl_;
    r.state.store(2);
    r.state.notify_all();
    bool joined = false;
    for (RingThread& q : r.threads) {
        if (!q.thread_started) continue;
        const std::uint64_t one = 1;
        (void)!::write(q.stop_fd, &one, sizeof one);
        pthread_join(q.handle, nullptr);
        q.thread_started = false;
        joined = true;
    }
    g_ring.store(nullptr);
    if (!joined) return; // stopped before
    // Where the requests went (the kernel picks the queue, the free entry the thread): for
    // tuning the threads per queue. Each queue's threads are adjacent, in order. A fixed buffer:
    // nothing here may throw.
    char split[2048];
    std::size_t used = 0;
    for (std::size_t i = 0; i < r.threads.size() && used < sizeof split;) {
        const unsigned qid = r.threads[i].qid;
        std::size_t end = i;
        std::uint64_t total = 0;
        for (; end < r.threads.size() && r.threads[end].qid == qid; ++end) total += r.threads[end].served;
        for (std::size_t t = i; total > 0 && t < end && used < sizeof split; ++t) {
            const auto n = static_cast<unsigned long long>(r.threads[t].served);
            const int w = t == i ? std::snprintf(split + used, sizeof split - used, " %u:%llu", qid, n)
                                 : std::snprintf(split + used, sizeof split - used, "+%llu", n);
            used += w > 0 ? static_cast<std::size_t>(w) : 0;
        }
        i = end;
    }
    if (used > 0) log_debug("io_uring requests by queue (by thread):%s", split);
}

FuseRing::~FuseRing() {
    stop();
    for (RingThread& q : impl_->threads)
        if (q.stop_fd >= 0) ::close(q.stop_fd);
}

} // namespace vramfs
