// VulkanQueues: copy contexts, submission (one by one with a fence, or shared on a timeline),
// waiting, and the probe that picks the family copies go to.
#include "vk_queues.hpp"

#include "vramfs/util/log.hpp"

#include <algorithm>
#include <cstring>
#include <thread>

namespace vramfs::vk {

std::size_t VulkanQueues::probe(VkDevice dev, const Settings& s,
                                const std::vector<std::uint32_t>& families) noexcept {
    dev_ = dev;
    s_ = s;
    VkBuffer db;
    VkDeviceMemory dm;
    if (make_buffer(dev_, s_.device, kStagingBytes, s_.device_type, db, dm)) return 0;
    std::size_t best = 0;
    double best_us = 0;
    for (std::size_t i = 0; i < families.size(); ++i) {
        const double us = probe_family(families[i], db);
        log_debug("Vulkan device %d: queue family %u copies in %.1f us", s_.device, families[i], us);
        if (us > 0 && (best_us == 0 || us < best_us)) {
            best = i;
            best_us = us;
        }
    }
    destroy_buffer(dev_, db, dm);
    queues_[0].queue = VK_NULL_HANDLE; // open() sets the chosen family's
    return best;
}

// Microseconds for probe()'s copies on `family`, between a copy context's staging buffer and
// `device` and as the I/O path submits them; 0 if one failed.
double VulkanQueues::probe_family(std::uint32_t family, VkBuffer device) noexcept {
    family_ = family;
    vkGetDeviceQueue(dev_, family, 0, &queues_[0].queue);
    Context c;
    bool ok = make_context(c, 0) == 0;
    double total = 0;
    for (const std::size_t bytes : {std::size_t{4096}, kStagingBytes})
        for (const bool to_device : {true, false}) {
            double best = 0;
            for (int run = 0; run < 8 && ok; ++run) {
                const auto t0 = std::chrono::steady_clock::now();
                ok = submit(c, [&](VkCommandBuffer cb) {
                    const VkBufferCopy r{0, 0, bytes};
                    vkCmdCopyBuffer(cb, to_device ? c.staging : device, to_device ? device : c.staging, 1, &r);
                }, !to_device) == 0;
                const double us =
                    std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
                if (run == 3 || (run > 3 && us < best)) best = us;
            }
            total += best;
        }
    destroy_context(c);
    return ok ? total : 0;
}

bool VulkanQueues::open(VkDevice dev, const Settings& s, std::uint32_t family, std::uint32_t count,
                        std::string& error) noexcept {
    dev_ = dev;
    s_ = s;
    family_ = family;
    count_ = std::clamp<std::uint32_t>(count, 1, kQueues);
    const std::string who = "Vulkan device " + std::to_string(s_.device);
    for (std::uint32_t q = 0; q < count_; ++q) {
        Queue& queue = queues_[q];
        vkGetDeviceQueue(dev_, family_, q, &queue.queue);
        if (s_.batch && !make_timeline(queue, error)) return false;
    }
    log_debug("%s: copies on queue family %u (%u queues), their completion polled %u us", who.c_str(),
              family_, count_, s_.spin_us);
    log_debug("%s: copies asked for at once %s%s, at most %u submissions on a queue (0: no limit)",
              who.c_str(), s_.batch ? "share a submission (timeline semaphores)" : "are submitted one by one",
              s_.batch && s_.batch_barrier ? ", one barrier a submission" : "", s_.in_flight);
    free_contexts_.reserve(kContexts);
    for (int i = 0; i < kContexts; ++i) {
        if (int err = make_context(contexts_[i], static_cast<std::uint32_t>(i) % count_)) {
            error = who + ": cannot make its copy buffers (" + std::strerror(err) + ")";
            return false;
        }
        free_contexts_.push_back(&contexts_[i]);
    }
    if (int err = make_buffer(dev_, s_.device, kWarmBytes, s_.device_type, warm_, warm_mem_)) {
        error = who + ": cannot make a buffer (" + std::strerror(err) + ")";
        return false;
    }
    for (Context& c : contexts_)
        if (int err = warm(c)) {
            error = who + ": a first copy failed (" + std::strerror(err) + ")";
            return false;
        }
    return true;
}

bool VulkanQueues::make_timeline(Queue& q, std::string& error) noexcept {
    VkSemaphoreTypeCreateInfo tci{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
    tci.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
    VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
    sci.pNext = &tci;
    if (VkResult r = vkCreateSemaphore(dev_, &sci, nullptr, &q.timeline); r != VK_SUCCESS) {
        q.timeline = VK_NULL_HANDLE;
        error = "Vulkan device " + std::to_string(s_.device) + ": vkCreateSemaphore: " + result_name(r);
        return false;
    }
    q.waiting.reserve(kContexts);
    q.taken.reserve(kContexts);
    return true;
}

void VulkanQueues::close() noexcept {
    if (dev_ == VK_NULL_HANDLE) return;
    if (warm_) destroy_buffer(dev_, warm_, warm_mem_);
    warm_ = VK_NULL_HANDLE;
    for (auto& c : contexts_) destroy_context(c);
    for (auto& q : queues_)
        if (q.timeline) vkDestroySemaphore(dev_, q.timeline, nullptr);
    dev_ = VK_NULL_HANDLE;
}

int VulkanQueues::make_context(Context& c, std::uint32_t queue) noexcept {
    c.queue = queue;
    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT | VK_COMMAND_POOL_CREATE_TRANSIENT_BIT;
    pci.queueFamilyIndex = family_;
    VRAMFS_VK_TRY(vkCreateCommandPool(dev_, &pci, nullptr, &c.pool), "vkCreateCommandPool");
    VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = c.pool;
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    VRAMFS_VK_TRY(vkAllocateCommandBuffers(dev_, &cai, &c.cb), "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VRAMFS_VK_TRY(vkCreateFence(dev_, &fci, nullptr, &c.fence), "vkCreateFence");
    if (int err = make_buffer(dev_, s_.device, kStagingBytes, s_.host_type, c.staging, c.staging_mem))
        return err;
    VRAMFS_VK_TRY(vkMapMemory(dev_, c.staging_mem, 0, VK_WHOLE_SIZE, 0, &c.mapped), "vkMapMemory");
    std::memset(c.mapped, 0, kStagingBytes); // faulted in now, not on the first request
    return 0;
}

void VulkanQueues::destroy_context(Context& c) noexcept {
    if (c.staging_mem) vkFreeMemory(dev_, c.staging_mem, nullptr);
    if (c.staging) vkDestroyBuffer(dev_, c.staging, nullptr);
    if (c.fence) vkDestroyFence(dev_, c.fence, nullptr);
    if (c.pool) vkDestroyCommandPool(dev_, c.pool, nullptr);
    c.pool = VK_NULL_HANDLE;
    c.cb = VK_NULL_HANDLE;
    c.fence = VK_NULL_HANDLE;
    c.staging = VK_NULL_HANDLE;
    c.staging_mem = VK_NULL_HANDLE;
    c.mapped = nullptr;
}

int VulkanQueues::warm(Context& c) noexcept {
    const VkBufferCopy r{0, 0, kWarmBytes};
    if (int err = submit(c, [&](VkCommandBuffer cb) { vkCmdCopyBuffer(cb, c.staging, warm_, 1, &r); }, false))
        return err;
    if (int err = submit(c, [&](VkCommandBuffer cb) { vkCmdCopyBuffer(cb, warm_, c.staging, 1, &r); }, true))
        return err;
    return submit(c, [&](VkCommandBuffer cb) { vkCmdFillBuffer(cb, warm_, 0, kWarmBytes, 0); }, false);
}

VulkanQueues::Context& VulkanQueues::acquire() noexcept {
    std::unique_lock lock(ctx_mutex_);
    ctx_free_.wait(lock, [&] { return !free_contexts_.empty(); });
    Context* c = free_contexts_.back();
    free_contexts_.pop_back();
    return *c;
}

void VulkanQueues::release(Context& c) noexcept {
    {
        std::lock_guard lock(ctx_mutex_);
        free_contexts_.push_back(&c);
    }
    ctx_free_.notify_one();
}

int VulkanQueues::begin(Context& c) noexcept {
    VRAMFS_VK_TRY(vkResetCommandBuffer(c.cb, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VRAMFS_VK_TRY(vkBeginCommandBuffer(c.cb, &bi), "vkBeginCommandBuffer");
    return 0;
}

int VulkanQueues::finish(Context& c, bool host_reads) noexcept {
    Queue& q = queues_[c.queue];
    // Sharing a submission, c.cb is left open: the submitter ends it, and records the barrier
    // in the last of the submission's command buffers only.
    if (q.timeline != VK_NULL_HANDLE && s_.batch_barrier) return submit_together(q, c);
    record_barrier(c.cb, host_reads);
    VRAMFS_VK_TRY(vkEndCommandBuffer(c.cb), "vkEndCommandBuffer");
    if (q.timeline != VK_NULL_HANDLE) return submit_together(q, c);
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &c.cb;
    {
        std::lock_guard lock(q.mutex);
        VRAMFS_VK_TRY(vkQueueSubmit(q.queue, 1, &si, c.fence), "vkQueueSubmit");
    }
    VRAMFS_VK_TRY(wait_fence(c.fence), "waiting for a copy's fence");
    VRAMFS_VK_TRY(vkResetFences(dev_, 1, &c.fence), "vkResetFences");
    return 0;
}

// The copies' writes made available to the host (where it reads them) and to later copies: a
// barrier's first scope is every command submitted to the queue before it, so one at the end
// of a submission covers all of its copies, which may then run side by side as cuda's streams
// do (copies asked for at once are never ordered among themselves). A barrier after every copy
// of a submission made small reads measurably slower (docs/performance.md#vulkan).
void VulkanQueues::record_barrier(VkCommandBuffer cb, bool host_reads) noexcept {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                       (host_reads ? VK_ACCESS_HOST_READ_BIT : 0);
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_TRANSFER_BIT | (host_reads ? VK_PIPELINE_STAGE_HOST_BIT : 0), 0,
                         1, &mb, 0, nullptr, 0, nullptr);
}

// Submits c's recorded command buffer with whatever others are waiting for the queue, and
// waits until it has run. A queue runs one submission at a time (the queues of a family do not
// copy side by side either), and each costs the queue a fixed time however small the copy;
// several together cost little more than one (docs/performance.md#vulkan). With in_flight set,
// no more than that many submissions are on the queue at once: what arrives meanwhile waits and
// goes in one submission when one of them has run.
int VulkanQueues::submit_together(Queue& q, Context& c) noexcept {
    c.batch_error.store(0, std::memory_order_relaxed);
    std::unique_lock lock(q.mutex);
    q.waiting.push_back(&c);
    const std::uint64_t mine = q.next_value; // the submission that takes the waiting list signals this
    while (q.next_value == mine) { // not yet taken
        if (!q.submitting) {
            q.submitting = true;
            while (!q.waiting.empty() && may_submit(q)) {
                q.taken.swap(q.waiting);
                const std::uint64_t value = q.next_value++;
                lock.unlock();
                submit_taken(q, value);
                lock.lock();
                q.taken.clear();
            }
            q.submitting = false;
            if (q.next_value != mine) break;
        }
        // Held back: wait until the oldest submission on the queue has run, then try again
        // (or, while another thread is submitting, until it has taken c).
        const std::uint64_t oldest = q.next_value - std::max<std::uint64_t>(s_.in_flight, 1);
        const bool other = q.submitting;
        if (other && s_.in_flight == 0) break; // with no limit the submitter takes c
        lock.unlock();
        if (other) {
            std::this_thread::yield();
        } else if (VkResult r = wait_value(q.timeline, oldest); r != VK_SUCCESS) {
            forget(q, c);
            return failure(r, "waiting for a copy's turn on its queue");
        } else {
            reached(q, oldest); // so may_submit need not read the timeline again
        }
        lock.lock();
    }
    lock.unlock();
    if (VkResult r = wait_value(q.timeline, mine); r != VK_SUCCESS) {
        forget(q, c); // the caller gives c back: no submission may still hold it
        return failure(r, "waiting for a copy's submission");
    }
    reached(q, mine);
    return c.batch_error.load(std::memory_order_acquire);
}

// Whether a submission may go on q now (q.mutex held): with in_flight set, only while fewer than
// that are on the queue. Where the timeline cannot be read, yes: the waits will fail. What the
// waiters have seen is asked first: reading the timeline is a driver call.
bool VulkanQueues::may_submit(Queue& q) noexcept {
    if (s_.in_flight == 0 || q.next_value - 1 - q.done.load(std::memory_order_relaxed) < s_.in_flight)
        return true;
    std::uint64_t done = 0;
    if (vkGetSemaphoreCounterValue(dev_, q.timeline, &done) != VK_SUCCESS) return true;
    reached(q, done);
    return q.next_value - 1 - done < s_.in_flight;
}

void VulkanQueues::reached(Queue& q, std::uint64_t value) noexcept {
    std::uint64_t seen = q.done.load(std::memory_order_relaxed);
    while (seen < value && !q.done.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
    }
}

// After a failed wait (a lost device): takes c off the waiting list, or waits until the
// submission that took it has been made.
void VulkanQueues::forget(Queue& q, Context& c) noexcept {
    for (;;) {
        {
            std::lock_guard lock(q.mutex);
            auto it = std::find(q.waiting.begin(), q.waiting.end(), &c);
            if (it != q.waiting.end()) {
                q.waiting.erase(it);
                return;
            }
            if (!q.submitting || std::find(q.taken.begin(), q.taken.end(), &c) == q.taken.end()) return;
        }
        std::this_thread::yield();
    }
}

// One vkQueueSubmit of q.taken, signalling `value`. Where it fails, each of them is told, and
// the timeline is moved on from the host so that none waits for ever. With batch_barrier their
// command buffers come open: ended here, the last after the barrier (their threads wait
// meanwhile, so nothing else touches them or their pools).
void VulkanQueues::submit_taken(Queue& q, std::uint64_t value) noexcept {
    std::array<VkCommandBuffer, kContexts> cbs;
    std::uint32_t n = 0;
    VkResult r = VK_SUCCESS;
    for (Context* t : q.taken) {
        cbs[n++] = t->cb;
        if (!s_.batch_barrier) continue;
        if (n == q.taken.size()) record_barrier(t->cb, true);
        if (VkResult er = vkEndCommandBuffer(t->cb); er != VK_SUCCESS) r = er;
    }
    VkTimelineSemaphoreSubmitInfo ts{VK_STRUCTURE_TYPE_TIMELINE_SEMAPHORE_SUBMIT_INFO};
    ts.signalSemaphoreValueCount = 1;
    ts.pSignalSemaphoreValues = &value;
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.pNext = &ts;
    si.commandBufferCount = n;
    si.pCommandBuffers = cbs.data();
    si.signalSemaphoreCount = 1;
    si.pSignalSemaphores = &q.timeline;
    if (r == VK_SUCCESS) r = vkQueueSubmit(q.queue, 1, &si, VK_NULL_HANDLE);
    if (r == VK_SUCCESS) return;
    const int err = failure(r, "vkQueueSubmit");
    for (Context* t : q.taken) t->batch_error.store(err, std::memory_order_release);
    // The value may only be signalled from here once the submissions before it have run.
    if (value > 1) (void)wait_value(q.timeline, value - 1);
    VkSemaphoreSignalInfo sig{VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO};
    sig.semaphore = q.timeline;
    sig.value = value;
    if (VkResult sr = vkSignalSemaphore(dev_, &sig); sr != VK_SUCCESS)
        (void)failure(sr, "vkSignalSemaphore after a failed submission");
}

// Calls `poll` (VK_NOT_READY: not yet) for up to spin_us, then `sleep`, which waits in the
// driver: how every copy's completion is waited for.
template <class Poll, class Sleep>
VkResult VulkanQueues::poll_then_sleep(Poll&& poll, Sleep&& sleep) noexcept {
    if (s_.spin_us > 0) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(s_.spin_us);
        do {
            const VkResult st = poll();
            if (st != VK_NOT_READY) return st;
        } while (std::chrono::steady_clock::now() < until);
    }
    return sleep();
}

VkResult VulkanQueues::wait_value(VkSemaphore timeline, std::uint64_t value) noexcept {
    return poll_then_sleep(
        [&] {
            std::uint64_t now = 0;
            const VkResult st = vkGetSemaphoreCounterValue(dev_, timeline, &now);
            return st != VK_SUCCESS ? st : now >= value ? VK_SUCCESS : VK_NOT_READY;
        },
        [&] {
            VkSemaphoreWaitInfo wi{VK_STRUCTURE_TYPE_SEMAPHORE_WAIT_INFO};
            wi.semaphoreCount = 1;
            wi.pSemaphores = &timeline;
            wi.pValues = &value;
            return vkWaitSemaphores(dev_, &wi, UINT64_MAX);
        });
}

VkResult VulkanQueues::wait_fence(VkFence fence) noexcept {
    return poll_then_sleep([&] { return vkGetFenceStatus(dev_, fence); },
                           [&] { return vkWaitForFences(dev_, 1, &fence, VK_TRUE, UINT64_MAX); });
}

} // namespace vramfs::vk
