// The copy machinery of one Vulkan device: a fixed set of copy contexts (command buffer, fence,
// staging buffer), the queues of one family they submit to, and how a thread waits for its copy.
#pragma once

#include "vk_common.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace vramfs::vk {

// What must stay true:
//   - Nothing is allocated on the I/O path: every context is made, and used once, by open()
//     (and once more by each worker before its first request: warm), so the driver's own
//     memory for them exists before memory can be short. A copy borrows a context and gives it
//     back; both waiting lists hold kContexts from the start.
//   - A copy has landed when submit returns: its bytes are in place and, where host_reads,
//     visible to the host.
//   - Copies asked for at once share one submission where the device has timeline semaphores
//     (batch): a queue works through submissions one at a time, each costing about as much as
//     a small copy. At most in_flight submissions are on a queue at once; what arrives
//     meanwhile gathers into the next. One barrier ends each submission (batch_barrier), so its
//     copies are not ordered among themselves. Every copy still returns only once its own
//     bytes have landed.
//   - A copy's completion is polled for spin_us before the thread sleeps in the driver (a
//     sleeping wait adds a wakeup to every copy); not at all on a CPU driver, where spinning
//     would take the CPU from the copy.
class VulkanQueues {
public:
    static constexpr int kContexts = 16;                 // copies in flight at once
    static constexpr std::size_t kStagingBytes = 1 << 20; // each context's staging buffer
    static constexpr std::uint32_t kQueues = 4;          // queues of the family used at most

    struct Context {
        VkCommandPool pool = VK_NULL_HANDLE;
        VkCommandBuffer cb = VK_NULL_HANDLE;
        VkFence fence = VK_NULL_HANDLE;
        VkBuffer staging = VK_NULL_HANDLE;
        VkDeviceMemory staging_mem = VK_NULL_HANDLE;
        void* mapped = nullptr; // the staging buffer, host-visible
        std::uint32_t queue = 0;
        std::atomic<int> batch_error{0}; // set by the submitter when its submission failed
    };

    struct Settings {
        int device = 0;       // names the device in log lines
        int host_type = -1;   // staging buffers' memory type
        int device_type = -1; // the probe's and warm-up's device memory
        unsigned spin_us = 0;
        bool batch = false;   // timeline semaphores enabled on the device
        bool batch_barrier = true;
        unsigned in_flight = 2; // with batch: most submissions on a queue at once (0: no limit)
    };

    VulkanQueues() = default;
    VulkanQueues(const VulkanQueues&) = delete;
    VulkanQueues& operator=(const VulkanQueues&) = delete;

    // The index in `families` of the one that copies fastest: the sum over a 4 KiB and a
    // 1 MiB copy, each way, of the best of five (after three unmeasured, as an idle GPU answers
    // the first ones slowly) on the family's first queue. 0 if it cannot tell.
    std::size_t probe(VkDevice dev, const Settings& s, const std::vector<std::uint32_t>& families) noexcept;
    // Queues 0..count-1 of `family` and every context on them, each used once; false with
    // `error` if any of it fails (close() still cleans up).
    bool open(VkDevice dev, const Settings& s, std::uint32_t family, std::uint32_t count,
              std::string& error) noexcept;
    // Destroys what open made; the device must be idle.
    void close() noexcept;

    Context& acquire() noexcept; // waits for a free context
    void release(Context& c) noexcept;
    // Every kind of command the I/O path records, run once on `c`: the driver takes the host
    // memory a context's commands need now, not at a request made under memory pressure.
    int warm(Context& c) noexcept;

    // Records one command buffer with `record(cb)`, submits it, and waits until it has run;
    // `host_reads`: the host then reads what it wrote. 0 or an errno.
    template <class Record>
    int submit(Context& c, Record&& record, bool host_reads) noexcept {
        if (int err = begin(c)) return err;
        record(c.cb);
        return finish(c, host_reads);
    }

private:
    // With a timeline, copies asked for at once share a submission: one thread, the
    // submitter, takes every waiting command buffer into one vkQueueSubmit that signals the
    // timeline's next value, and each thread waits until the timeline reaches its value.
    struct Queue {
        VkQueue queue = VK_NULL_HANDLE;
        std::mutex mutex; // guards what follows; vkQueueSubmit needs the queue to itself
        VkSemaphore timeline = VK_NULL_HANDLE;
        std::uint64_t next_value = 1;   // what the next submission signals
        std::atomic<std::uint64_t> done{0}; // a value the timeline is known to have reached
        bool submitting = false;        // a thread is submitting: it takes what is waiting
        std::vector<Context*> waiting;  // recorded, not yet submitted (capacity kContexts)
        std::vector<Context*> taken;    // the submitter's batch (capacity kContexts)
    };

    int begin(Context& c) noexcept;
    int finish(Context& c, bool host_reads) noexcept;
    static void record_barrier(VkCommandBuffer cb, bool host_reads) noexcept;
    int submit_together(Queue& q, Context& c) noexcept;
    bool may_submit(Queue& q) noexcept;
    static void reached(Queue& q, std::uint64_t value) noexcept;
    void forget(Queue& q, Context& c) noexcept;
    void submit_taken(Queue& q, std::uint64_t value) noexcept;
    template <class Poll, class Sleep>
    VkResult poll_then_sleep(Poll&& poll, Sleep&& sleep) noexcept;
    VkResult wait_value(VkSemaphore timeline, std::uint64_t value) noexcept;
    VkResult wait_fence(VkFence fence) noexcept;
    int make_context(Context& c, std::uint32_t queue) noexcept;
    void destroy_context(Context& c) noexcept;
    double probe_family(std::uint32_t family, VkBuffer device) noexcept;
    bool make_timeline(Queue& q, std::string& error) noexcept;

    static constexpr VkDeviceSize kWarmBytes = 64 << 10;
    VkDevice dev_ = VK_NULL_HANDLE;
    Settings s_;
    std::uint32_t family_ = 0, count_ = 1;
    VkBuffer warm_ = VK_NULL_HANDLE; // device memory the warm-up copies use
    VkDeviceMemory warm_mem_ = VK_NULL_HANDLE;
    std::array<Queue, kQueues> queues_;
    std::array<Context, kContexts> contexts_;
    std::mutex ctx_mutex_;
    std::condition_variable ctx_free_;
    std::vector<Context*> free_contexts_;
};

} // namespace vramfs::vk
