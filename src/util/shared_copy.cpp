// A large memcpy shared among a few threads started up front (see shared_copy.hpp).
#include "vramfs/util/shared_copy.hpp"

#include "vramfs/util/clock.hpp"
#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>

namespace vramfs {
namespace {

void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

} // namespace

SharedCopy::SharedCopy(unsigned threads, std::size_t piece, std::size_t min_bytes, unsigned spin_us)
    : piece_(std::max<std::size_t>(piece, 4096)), min_bytes_(std::max(min_bytes, 2 * piece_)),
      spin_us_(spin_us) {
    if (threads <= 1) return;
    helpers_.reserve(threads - 1);
    for (unsigned i = 0; i + 1 < threads; ++i) {
        pthread_t t;
        if (pthread_create(&t, nullptr, helper_main, this) != 0) {
            log_warning("started %u of %u copy helper threads", i, threads - 1);
            break;
        }
        helpers_.push_back(t);
    }
}

SharedCopy::~SharedCopy() {
    stopping_.store(true);
    wake_.fetch_add(1);
    wake_.notify_all();
    for (pthread_t t : helpers_) pthread_join(t, nullptr);
}

void* SharedCopy::helper_main(void* self) noexcept {
    // Signals go to the threads that serve or mount, not to these.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    ::pthread_setname_np(::pthread_self(), "vramfs-copy");
    touch_stack();
    static_cast<SharedCopy*>(self)->serve();
    return nullptr;
}

void SharedCopy::serve() noexcept {
    std::uint32_t seen = wake_.load();
    while (true) {
        // Poll for the next copy for a while (a stream of large writes comes faster than a
        // sleeping thread wakes), then sleep until one comes.
        const std::uint64_t until = monotonic_ns() + std::uint64_t{spin_us_} * 1000;
        for (unsigned n = 0; wake_.load(std::memory_order_acquire) == seen; ++n) {
            if ((n & 63) == 0 && monotonic_ns() >= until) {
                wake_.wait(seen);
                break;
            }
            cpu_relax();
        }
        seen = wake_.load(std::memory_order_acquire);
        if (stopping_.load()) return;
        take_pieces();
    }
}

void SharedCopy::take_pieces() noexcept {
    std::uint32_t left = unclaimed_.load(std::memory_order_acquire);
    while (left != 0) {
        if (!unclaimed_.compare_exchange_weak(left, left - 1, std::memory_order_acq_rel,
                                              std::memory_order_acquire))
            continue;
        // Piece left-1 is ours; the copy cannot end before it is done, so its parameters hold.
        const std::size_t off = static_cast<std::size_t>(left - 1) * piece_;
        std::memcpy(dst_ + off, src_ + off, std::min(piece_, len_ - off));
        // Drains write-combined stores before the piece counts as done.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        undone_.fetch_sub(1, std::memory_order_release);
        left = unclaimed_.load(std::memory_order_acquire);
    }
}

void SharedCopy::copy(void* dst, const void* src, std::size_t len) noexcept {
    if (len < min_bytes_) {
        std::memcpy(dst, src, len);
        return;
    }
    const std::uint64_t t0 = monotonic_ns();
    if (helpers_.empty() || !busy_.try_lock()) {
        std::memcpy(dst, src, len);
        alone_.fetch_add(1, std::memory_order_relaxed);
        alone_ns_.fetch_add(monotonic_ns() - t0, std::memory_order_relaxed);
        return;
    }
    const auto pieces = static_cast<std::uint32_t>((len + piece_ - 1) / piece_);
    dst_ = static_cast<char*>(dst);
    src_ = static_cast<const char*>(src);
    len_ = len;
    undone_.store(pieces, std::memory_order_relaxed);
    unclaimed_.store(pieces, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    take_pieces();
    while (undone_.load(std::memory_order_acquire) != 0) cpu_relax();
    busy_.unlock();
    shared_.fetch_add(1, std::memory_order_relaxed);
    shared_ns_.fetch_add(monotonic_ns() - t0, std::memory_order_relaxed);
}

} // namespace vramfs
