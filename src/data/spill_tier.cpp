// SpillTier: requests' I/O chunk by chunk, and the thread that moves slabs out and back.
#include "vramfs/data/spill_tier.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"
#include "vramfs/util/size.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

// ThreadSanitizer's annotations, for the one race the design means (copy_chunk).
#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreReadsBegin(const char* file, int line);
extern "C" void AnnotateIgnoreReadsEnd(const char* file, int line);
#define VRAMFS_INTENDED_RACE_BEGIN() AnnotateIgnoreReadsBegin(__FILE__, __LINE__)
#define VRAMFS_INTENDED_RACE_END() AnnotateIgnoreReadsEnd(__FILE__, __LINE__)
#else
#define VRAMFS_INTENDED_RACE_BEGIN() ((void)0)
#define VRAMFS_INTENDED_RACE_END() ((void)0)
#endif

namespace vramfs {
namespace {

constexpr std::size_t kBounceBytes = 1 << 20; // a request's spill I/O goes through in pieces this size
constexpr std::size_t kBounceBuffers = 4;
constexpr std::uint64_t kPage = SpillFile::kAlign;
constexpr auto kTick = std::chrono::milliseconds(100); // how often the card's free memory is read

} // namespace

SpillTier::SpillTier(std::mutex& mu, SlabSource& slabs, BlockAllocator& blocks, const SpillFile& file,
                     std::uint64_t file_offset, std::uint64_t keep_free, MemoryShort memory_short)
    : mu_(mu), slabs_(slabs), blocks_(blocks), file_(file), file_offset_(file_offset),
      keep_free_(keep_free), memory_short_(memory_short), gates_(std::make_unique<Gate[]>(slabs.count())) {
    if (file_offset % kPage != 0 || slabs.stride() % kPage != 0 ||
        file_offset + region_bytes(slabs) > file.size())
        throw std::invalid_argument("the spill region does not fit the spill file");
    pthread_rwlockattr_t attr;
    ::pthread_rwlockattr_init(&attr);
    ::pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (std::uint32_t s = 0; s < slabs.count(); ++s) ::pthread_rwlock_init(&gates_[s].lock, &attr);
    ::pthread_rwlockattr_destroy(&attr);
    bounce_free_.reserve(kBounceBuffers);
    for (std::size_t i = 0; i < kBounceBuffers; ++i) {
        void* b = map_host_memory(kBounceBytes, kPage);
        if (!b) throw std::runtime_error("cannot map the spill's buffers");
        bounce_all_.push_back(b);
        bounce_free_.push_back(b);
    }
    chunk_buffer_ = map_host_memory(slabs.chunk_bytes(), kPage);
    if (!chunk_buffer_) throw std::runtime_error("cannot map the spill's buffers");
    parked_.reserve(slabs.count());
    {
        std::lock_guard lock(mu_);
        slabs_.set_spill_ready();
    }
    thread_ = std::thread([this] { main(); });
}

SpillTier::~SpillTier() {
    {
        std::lock_guard lock(wake_mu_);
        stopping_ = true;
    }
    wake_cv_.notify_all();
    thread_.join();
    parked_.clear();
    for (void* b : bounce_all_) unmap_host_memory(b, kBounceBytes, kPage);
    unmap_host_memory(chunk_buffer_, slabs_.chunk_bytes(), kPage);
    for (std::uint32_t s = 0; s < slabs_.count(); ++s) ::pthread_rwlock_destroy(&gates_[s].lock);
}

// ---- requests ----

int SpillTier::read(PoolPlace p, void* dst, std::size_t n) noexcept {
    return io(Op::read, p, static_cast<unsigned char*>(dst), n);
}
int SpillTier::write(PoolPlace p, const void* src, std::size_t n) noexcept {
    return io(Op::write, p, static_cast<unsigned char*>(const_cast<void*>(src)), n);
}
int SpillTier::zero(PoolPlace p, std::size_t n) noexcept { return io(Op::zero, p, nullptr, n); }

int SpillTier::io(Op op, PoolPlace p, unsigned char* host, std::size_t n) noexcept {
    if (n == 0) return 0;
    const std::uint32_t s = slabs_.slab_of(p);
    Gate& gate = gates_[s];
    const std::uint32_t now = tick_.load(std::memory_order_relaxed);
    if (gate.last_use.load(std::memory_order_relaxed) != now) gate.last_use.store(now, std::memory_order_relaxed);
    const std::uint64_t in = p % slabs_.stride(), chunk = slabs_.chunk_bytes();
    const std::uint64_t range = chunk_bits(in / chunk, (in + n - 1) / chunk);
    ::pthread_rwlock_rdlock(&gate.lock);
    std::uint64_t spilled = slabs_.spilled(s).load(std::memory_order_acquire) & range;
    if (spilled && op != Op::read) {
        // A write into spilled pages reads, changes and writes back whole pages: one at a time.
        ::pthread_rwlock_unlock(&gate.lock);
        ::pthread_rwlock_wrlock(&gate.lock);
        spilled = slabs_.spilled(s).load(std::memory_order_acquire) & range;
    }
    StorageBackend& be = slabs_.backend();
    int err = 0;
    while (n > 0 && !err) {
        // The longest run from p whose chunks all lie in one place.
        const bool on_spill = (spilled >> slabs_.chunk_of(p)) & 1;
        std::size_t run = 0;
        while (run < n) {
            const std::uint64_t at = (p + run) % slabs_.stride();
            if (static_cast<bool>((spilled >> (at / chunk)) & 1) != on_spill) break;
            run += static_cast<std::size_t>(std::min<std::uint64_t>(chunk - at % chunk, n - run));
        }
        if (on_spill)
            err = spill_io(op, file_offset_ + p, host, run);
        else if (op == Op::read)
            err = be.read(slabs_.address(p), host, run);
        else if (op == Op::write)
            err = be.write(slabs_.address(p), host, run);
        else
            err = be.zero(slabs_.address(p), run);
        p += run;
        n -= run;
        if (host) host += run;
    }
    // A write while the mover copies this slab marks its chunks once its bytes are in place
    // (marked earlier, a copy the mover began after clearing the mark could miss them), and
    // inside the gate: the mover looks only once every request that began before its look has
    // left.
    if (op != Op::read && gate.moving.load(std::memory_order_relaxed)) gate.dirty.fetch_or(range);
    ::pthread_rwlock_unlock(&gate.lock);
    return err;
}

// [off, off+n) of the file through a bounce buffer, in whole pages: a write that covers a page
// only in part reads it first.
int SpillTier::spill_io(Op op, std::uint64_t off, unsigned char* host, std::size_t n) noexcept {
    auto* b = static_cast<unsigned char*>(take_bounce());
    const std::uint64_t end = off + n;
    int err = 0;
    for (std::uint64_t x = off / kPage * kPage; x < end && !err; x += kBounceBytes) {
        const std::uint64_t y = std::min<std::uint64_t>(x + kBounceBytes, (end + kPage - 1) / kPage * kPage);
        const std::uint64_t lo = std::max(off, x), hi = std::min(end, y);
        const std::size_t len = static_cast<std::size_t>(y - x);
        if (op == Op::read || lo > x || hi < y) err = file_.read(x, b, len);
        if (err) break;
        if (op == Op::read) {
            std::memcpy(host + (lo - off), b + (lo - x), hi - lo);
            continue;
        }
        if (op == Op::write)
            std::memcpy(b + (lo - x), host + (lo - off), hi - lo);
        else
            std::memset(b + (lo - x), 0, hi - lo);
        err = file_.write(x, b, len);
    }
    give_bounce(b);
    if (err) log_error("spill %s: %s at offset %llu failed: %s", file_.path().c_str(),
                       op == Op::read ? "reading" : "writing", static_cast<unsigned long long>(off),
                       std::strerror(err));
    return err ? EIO : 0;
}

void* SpillTier::take_bounce() noexcept {
    std::unique_lock lock(bounce_mu_);
    bounce_cv_.wait(lock, [&] { return !bounce_free_.empty(); });
    void* b = bounce_free_.back();
    bounce_free_.pop_back();
    return b;
}

void SpillTier::give_bounce(void* b) noexcept {
    {
        std::lock_guard lock(bounce_mu_);
        bounce_free_.push_back(b); // within the capacity reserved: no allocation
    }
    bounce_cv_.notify_one();
}

// ---- yield, reclaim, stats ----

void SpillTier::set_vram_limit(std::uint64_t bytes) noexcept {
    vram_limit_.store(bytes);
    settled_.store(false);
    {
        std::lock_guard lock(wake_mu_);
    }
    wake_cv_.notify_all();
}

bool SpillTier::settled() const noexcept { return settled_.load(); }

TierStats SpillTier::stats() const noexcept {
    TierStats t;
    std::lock_guard lock(mu_);
    t.vram_bytes = slabs_.memory_bytes();
    for (const DeviceBuffer& b : parked_) t.vram_bytes += b.size();
    for (std::uint32_t s = 0; s < slabs_.count(); ++s) {
        if (!slabs_.is_open(s)) continue;
        const std::uint64_t chunks = static_cast<std::uint64_t>(
            std::popcount(slabs_.spilled(s).load(std::memory_order_relaxed)));
        t.spill_bytes += std::min(slabs_.bytes(s), chunks * slabs_.chunk_bytes());
    }
    t.moved_out = moved_out_.load();
    t.moved_in = moved_in_.load();
    t.keep_free = keep_free_;
    t.vram_limit = vram_limit_.load();
    return t;
}

// ---- the mover ----

void SpillTier::main() {
    ::pthread_setname_np(::pthread_self(), "vramfs-tier");
    touch_stack();
    if (int err = slabs_.backend().prepare_thread())
        log_warning("spill: cannot prepare the mover's thread on %s (%s)", slabs_.backend().kind(), std::strerror(err));
    std::unique_lock lock(wake_mu_);
    while (!stopping_) {
        lock.unlock();
        const bool moved = balance();
        lock.lock();
        if (!stopping_ && !moved) wake_cv_.wait_for(lock, kTick);
        tick_.fetch_add(1, std::memory_order_relaxed);
    }
}

// One step towards the marks (true: something moved, look again at once): a slab out while the card has less free than keep-free (or the
// pool holds more than yield left it), a slab back while the card has keep-free and two slabs
// more free. Between the two nothing moves, so the pool does not flap.
bool SpillTier::balance() noexcept {
    release_parked();
    // A lost device has nothing to give or take: its slabs stay where they are, and what is on
    // the spill goes on being served from there.
    if (slabs_.backend().lost()) {
        settled_.store(true);
        return false;
    }
    const std::uint64_t free = slabs_.backend().query_free();
    const std::uint64_t limit = vram_limit_.load(), stride = slabs_.stride();
    // No move while memory is short where the device's calls may fault in host memory (see
    // StorageBackend::memory_calls_may_fault): a copy that faulted could wait on swap this daemon
    // serves, in a driver thread that requests' copies share. The slabs wait, marked wanted (new
    // ones open on the spill), and the tier is not settled until they have moved.
    const bool hold = must_wait_for_memory();
    std::uint32_t pick = slabs_.count();
    bool out = false;
    {
        std::lock_guard lock(mu_);
        std::uint64_t held = slabs_.memory_bytes();
        for (const DeviceBuffer& b : parked_) held += b.size();
        const bool wanted = free < keep_free_ || held > limit;
        const bool room = !hold && free >= keep_free_ + 2 * stride && slabs_.memory_bytes() + stride <= limit;
        if (wanted) slabs_.set_memory_wanted(true);
        if (room) slabs_.set_memory_wanted(false);
        // Out: an empty slab first, else the one used longest ago; in: the one used last.
        std::uint32_t best_use = 0;
        for (std::uint32_t s = 0; s < slabs_.count(); ++s) {
            if (!slabs_.is_open(s) || slabs_.moving(s)) continue;
            const std::uint32_t use = gates_[s].last_use.load(std::memory_order_relaxed);
            if (wanted && slabs_.has_memory(s)) {
                const std::uint32_t score = blocks_.used_in(s) == 0 ? 0 : use + 1;
                if (pick == slabs_.count() || score < best_use) pick = s, best_use = score;
            } else if (!wanted && room && slabs_.spilled(s).load(std::memory_order_relaxed) != 0) {
                if (pick == slabs_.count() || use >= best_use) pick = s, best_use = use;
            }
        }
        out = wanted;
    }
    if (hold && out && pick < slabs_.count()) {
        settled_.store(false);
        return false;
    }
    const bool moved = pick < slabs_.count() && (out ? move_out(pick) : move_in(pick));
    settled_.store(!moved);
    return moved;
}

bool SpillTier::move_out(std::uint32_t s) noexcept {
    std::uint64_t chunks = 0;
    {
        std::lock_guard lock(mu_);
        if (!slabs_.is_open(s) || slabs_.moving(s) || !slabs_.has_memory(s)) return false;
        slabs_.set_moving(s, true);
        chunks = slabs_.chunks(s);
    }
    begin_moving(s);
    int err = 0;
    // An empty slab's bytes need not move: it goes back whole below.
    for (std::uint32_t c = 0; c < chunks && !err; ++c) {
        {
            std::lock_guard lock(mu_);
            if (blocks_.used_in(s) == 0) break;
        }
        if (!((slabs_.spilled(s).load() >> c) & 1)) err = move_chunk(s, c, true);
    }
    gates_[s].moving.store(false, std::memory_order_relaxed);
    DeviceBuffer memory;
    {
        std::lock_guard lock(mu_);
        slabs_.set_moving(s, false);
        if (blocks_.used_in(s) == 0) {
            blocks_.closing(s);
            memory = slabs_.detach(s);
        } else if (!err && (slabs_.spilled(s).load() & chunk_bits(0, chunks - 1)) == chunk_bits(0, chunks - 1)) {
            memory = slabs_.take_memory(s);
        }
    }
    if (err) log_error("spill: moving a slab of %s device %d out failed (errno %d); it stays as it is",
                       slabs_.backend().kind(), slabs_.backend().device().index, err);
    if (!memory) return !err;
    if (must_wait_for_memory()) {
        std::lock_guard lock(mu_);
        if (parked_.size() < parked_.capacity()) parked_.push_back(std::move(memory)); // no allocation
    }
    memory.reset(); // back to the device now, unless parked
    return true;
}

bool SpillTier::move_in(std::uint32_t s) noexcept {
    std::uint64_t chunks = 0;
    bool fetch = false;
    {
        std::lock_guard lock(mu_);
        if (!slabs_.is_open(s) || slabs_.moving(s) || slabs_.spilled(s).load() == 0) return false;
        slabs_.set_moving(s, true);
        fetch = !slabs_.has_memory(s);
        chunks = slabs_.chunks(s);
    }
    begin_moving(s);
    int err = 0;
    if (fetch) {
        DeviceBuffer memory;
        err = slabs_.fetch(s, memory);
        std::lock_guard lock(mu_);
        if (!err) slabs_.give_memory(s, std::move(memory));
    }
    for (std::uint32_t c = 0; c < chunks && !err; ++c)
        if ((slabs_.spilled(s).load() >> c) & 1) err = move_chunk(s, c, false);
    gates_[s].moving.store(false, std::memory_order_relaxed);
    {
        std::lock_guard lock(mu_);
        slabs_.set_moving(s, false);
    }
    if (err && err != ENOSPC)
        log_error("spill: moving a slab of %s device %d back failed (errno %d); it is served from the spill",
                  slabs_.backend().kind(), slabs_.backend().device().index, err);
    return !err;
}

// Marks slab s as being moved, then takes and drops its gate: every request that began before
// the mark has left, and every later one sees it (and marks the chunks it writes).
void SpillTier::begin_moving(std::uint32_t s) noexcept {
    gates_[s].moving.store(true, std::memory_order_relaxed);
    ::pthread_rwlock_wrlock(&gates_[s].lock);
    ::pthread_rwlock_unlock(&gates_[s].lock);
}

// One chunk: copied without the gate, then its place flipped under the gate if no write came
// meanwhile. A chunk written during every try stays where it is this time (0: the caller goes
// on; the next round picks the slab again).
int SpillTier::move_chunk(std::uint32_t s, std::uint32_t c, bool out) noexcept {
    constexpr int kTries = 8;
    Gate& gate = gates_[s];
    const std::uint64_t bit = std::uint64_t{1} << c;
    for (int attempt = 0; attempt < kTries; ++attempt) {
        gate.dirty.fetch_and(~bit);
        if (int err = copy_chunk(s, c, out)) return err;
        ::pthread_rwlock_wrlock(&gate.lock);
        const bool clean = (gate.dirty.load() & bit) == 0;
        if (clean) {
            if (out)
                slabs_.spilled(s).fetch_or(bit, std::memory_order_release);
            else
                slabs_.spilled(s).fetch_and(~bit, std::memory_order_release);
        }
        ::pthread_rwlock_unlock(&gate.lock);
        if (clean) {
            const std::uint64_t chunk = slabs_.chunk_bytes();
            (out ? moved_out_ : moved_in_).fetch_add(std::min(chunk, slabs_.bytes(s) - c * chunk));
            return 0;
        }
    }
    return 0;
}

// The copy itself, outside the gate: out, from the slab's memory (still where requests read and
// write it) to the spill; in, from the spill (still where requests go) to the slab's memory,
// which nothing reads for this chunk until its place flips.
int SpillTier::copy_chunk(std::uint32_t s, std::uint32_t c, bool out) noexcept {
    const std::uint64_t chunk = slabs_.chunk_bytes();
    const PoolPlace p = std::uint64_t{s} * slabs_.stride() + c * chunk;
    const std::size_t len = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, slabs_.bytes(s) - c * chunk));
    StorageBackend& be = slabs_.backend();
    if (out) {
        // Requests may write this chunk while it is read here: that is the design (the copy is
        // thrown away when a write marked the chunk meanwhile), and a GPU reads by DMA anyway;
        // the host backend's memcpy is told apart for ThreadSanitizer.
        VRAMFS_INTENDED_RACE_BEGIN();
        int err = be.read(slabs_.address(p), chunk_buffer_, len);
        VRAMFS_INTENDED_RACE_END();
        return err ? err : file_.write(file_offset_ + p, chunk_buffer_, len);
    }
    int err = file_.read(file_offset_ + p, chunk_buffer_, len);
    return err ? err : be.write(slabs_.address(p), chunk_buffer_, len);
}

bool SpillTier::must_wait_for_memory() const noexcept {
    return slabs_.backend().memory_calls_may_fault() && memory_short_ && memory_short_();
}

// Each parked buffer is taken out under the pool's lock and given back to the device without it.
void SpillTier::release_parked() noexcept {
    {
        std::lock_guard lock(mu_);
        if (parked_.empty()) return;
    }
    if (must_wait_for_memory()) return;
    for (;;) {
        DeviceBuffer memory;
        {
            std::lock_guard lock(mu_);
            if (parked_.empty()) return;
            memory = std::move(parked_.back());
            parked_.pop_back();
        }
        memory.reset();
    }
}

} // namespace vramfs
