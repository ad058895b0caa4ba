// VulkanBackend: storage in a GPU's device-local memory through Vulkan, for AMD, Intel and
// NVIDIA GPUs alike (and Mesa's lavapipe, a CPU driver, so CI runs this data path). Its parts:
// vk_device.cpp finds the devices, vk_queues.hpp copies, vk_host.hpp makes host buffers; this
// class holds the slabs and decides how each read and write goes.
#pragma once

#include "vk_common.hpp"
#include "vk_host.hpp"
#include "vk_queues.hpp"

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace vramfs::vk {

// What must stay true:
//   - Nothing is allocated on the I/O path: the copy contexts and host buffers are made at
//     mount (VulkanQueues, VulkanHostMemory), slabs by BlockPool's background thread.
//   - No silent spill and no overcommit: a slab is only allocated while the device-local heap's
//     budget (VK_EXT_memory_budget, else the heap's size less what we hold) has room for it;
//     otherwise ENOSPC. A driver that would back "device memory" with system RAM past the
//     budget is never asked to.
//   - A copy has landed when it returns, as with CUDA: a write is in device memory when write()
//     returns, and a later read on any queue, or by the CPU through a mapping, sees it (every
//     queue write into a mapped slab ends with a barrier to host reads). Reads go through a
//     queue, except reads of up to a page from a mapped slab, which the CPU makes with
//     streaming loads (plain loads read a GPU's BAR a line at a time; streaming loads read a
//     page in less time than a submission). Writes go through the queue, or, where the
//     device-local heap is host-visible as a whole (resizable BAR; lavapipe), by the CPU
//     straight into the slab's mapping, which costs far less than a submission
//     (docs/performance.md#vulkan), except the first store to each page of a mapping, a page
//     fault: large writes into chunks of a slab the CPU has not yet written whole still go on
//     the queue. Mapped writes are to host-coherent memory and fenced before returning; Vulkan
//     makes host writes visible to every later submission.
//   - Copies go to the queue family that answered fastest when the backend was opened (NVIDIA
//     has several transfer-only families whose latencies differ severalfold).
//   - VK_ERROR_DEVICE_LOST becomes kDeviceLost, so the backend is marked lost once.
class VulkanBackend final : public StorageBackend {
public:
    VulkanBackend(VkPhysicalDevice pd, const VulkanDeviceReport& report, const VulkanTuning& tuning);
    ~VulkanBackend() override;

    // Opens the logical device and everything a copy needs; false with `error` if it cannot.
    bool open(std::string& error);

    const char* kind() const noexcept override { return "vulkan"; }
    const DeviceInfo& device() const noexcept override { return info_; }

protected:
    std::uint64_t do_query_free() noexcept override;
    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override;
    void do_release(DeviceAddr addr, std::uint64_t bytes) noexcept override;
    int do_prepare_thread() noexcept override;
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override;
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override;
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override;
    void* do_allocate_host(std::size_t bytes) noexcept override { return host_.allocate(bytes); }
    void do_release_host(void* p, std::size_t) noexcept override { host_.release(p); }

private:
    using Context = VulkanQueues::Context;
    // A DeviceAddr is (slot + 1) << kSlotShift | offset: slabs are buffers, not pointers.
    static constexpr int kSlotShift = 40;
    static constexpr std::size_t kSlots = 1 << 16;
    // With mapped writes, what the touched bitmap tracks, and the least write that goes on the
    // queue where the mapping is not all touched yet (below it a queue submission costs more
    // than the page faults).
    static constexpr std::uint64_t kTouchChunk = 64 << 10;
    static constexpr std::size_t kFreshQueueMin = 256 << 10;

    struct Slot {
        std::atomic<VkBuffer> buffer{VK_NULL_HANDLE};
        VkDeviceMemory memory = VK_NULL_HANDLE;
        std::uint64_t bytes = 0;
        char* mapped = nullptr; // with mapped writes
        // With mapped writes: one bit per kTouchChunk of the mapping the CPU has written whole,
        // so every page of it is mapped in. A hint only: a bit never set costs a queue copy.
        std::unique_ptr<std::atomic<std::uint64_t>[]> touched;
    };
    // Where a DeviceAddr is: its slab's buffer, the offset in it, and the slab's mapping.
    struct Target {
        VkBuffer buffer;
        VkDeviceSize offset;
        char* mapped;
        std::size_t slot;
    };

    // open()'s steps.
    bool choose_memory_types(std::string& error);
    std::vector<VkDeviceQueueCreateInfo> copy_families(const float* priorities);
    bool create_device(const std::vector<VkDeviceQueueCreateInfo>& families, std::string& error);
    std::uint32_t choose_family(const std::vector<VkDeviceQueueCreateInfo>& families);
    VulkanQueues::Settings queue_settings() const noexcept;

    static std::size_t touch_words(std::uint64_t bytes) noexcept;
    bool touched(const Target& t, std::size_t len) const noexcept;
    void mark_touched(const Target& t, std::size_t len) noexcept;
    bool resolve(DeviceAddr addr, std::size_t len, Target& t) noexcept;
    int copy(DeviceAddr addr, void* host, std::size_t len, bool to_device) noexcept;

    VkPhysicalDevice pd_;
    DeviceInfo info_;
    VkDevice dev_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties mp_{};
    int heap_ = -1, device_type_ = -1, host_type_ = -1;
    const bool has_budget_;      // VK_EXT_memory_budget: budgets come from the driver
    const bool transfer_writes_; // asked for: writes on the transfer queue even where mapping works
    bool mapped_writes_ = false; // slabs are mapped and the CPU writes into them
    const unsigned spin_us_;     // how long a copy's completion is polled before sleeping on it
    const std::size_t queue_write_min_; // with mapped writes: from this size on, on the queue
    const std::size_t mapped_read_max_; // with mapped writes: reads up to this by the CPU
    const bool fresh_on_queue_;         // with mapped writes: large writes to untouched pages too
    bool host_import_;         // host buffers are our memory, imported (VK_EXT_external_memory_host)
    bool batch_;               // copies asked for at once share a submission
    const bool batch_barrier_; // with batch_: one barrier ends each submission, not each copy
    const unsigned in_flight_; // with batch_: most submissions on a queue at once; 0: no limit
    const unsigned forced_family_; // VulkanTuning::kAuto: probe
    const unsigned max_queues_;    // 0: all the family has, up to VulkanQueues::kQueues
    VulkanQueues queues_;
    VulkanHostMemory host_;
    std::array<Slot, kSlots> slots_;
    std::mutex slot_mutex_;
    std::vector<std::size_t> free_slots_;
    std::atomic<std::uint64_t> held_{0};
};

} // namespace vramfs::vk
