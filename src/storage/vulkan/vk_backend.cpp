// VulkanBackend: opening the device, slabs, and how each read, write and zero goes.
#include "vk_backend.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/wc_copy.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <new>

namespace vramfs::vk {
namespace {

// How long a copy's completion is polled before the thread sleeps on it: on a GPU longer than
// a 1 MiB copy takes, since a sleeping wait adds a wakeup to every copy; none on a CPU driver.
unsigned fence_spin_us(const VulkanDeviceReport& r, const VulkanTuning& t) {
    if (t.fence_spin_us != VulkanTuning::kAuto) return t.fence_spin_us;
    return r.type == "CPU" ? 0 : 200;
}

// With mapped writes, the smallest write that goes on the queue instead where its data are in
// one of our host buffers: none by default. A queue copies a MiB faster than the CPU writes the
// BAR, but writes on the queue delay the reads behind them, and swap-in suffers most
// (docs/performance.md#vulkan).
std::size_t queue_write_min(const VulkanTuning& t) {
    return t.queue_write_kib > 0 ? std::size_t{t.queue_write_kib} << 10 : SIZE_MAX;
}

} // namespace

// With slabs mapped, the CPU reads up to tuning.mapped_read_kib (a page) out of the mapping
// itself (streaming loads, copy_from_write_combined) instead of a copy on the queue: it reads a
// GPU's BAR a 64-byte line at a time, so a page costs less than a submission, and a few pages
// more (docs/performance.md#vulkan).
VulkanBackend::VulkanBackend(VkPhysicalDevice pd, const VulkanDeviceReport& report, const VulkanTuning& tuning)
    : pd_(pd), info_(report.info), has_budget_(report.memory_budget),
      transfer_writes_(tuning.transfer_writes), spin_us_(fence_spin_us(report, tuning)),
      queue_write_min_(queue_write_min(tuning)), mapped_read_max_(std::size_t{tuning.mapped_read_kib} << 10),
      fresh_on_queue_(tuning.fresh_on_queue), host_import_(report.external_memory_host && tuning.host_import),
      batch_(tuning.batch), batch_barrier_(tuning.batch_barrier), in_flight_(tuning.in_flight),
      forced_family_(tuning.queue_family), max_queues_(tuning.queues) {}

VulkanBackend::~VulkanBackend() {
    if (dev_ == VK_NULL_HANDLE) return;
    vkDeviceWaitIdle(dev_);
    queues_.close();
    vkDestroyDevice(dev_, nullptr);
}

bool VulkanBackend::open(std::string& error) {
    if (!choose_memory_types(error)) return false;
    std::array<float, VulkanQueues::kQueues> priorities{};
    priorities.fill(1.0f);
    const auto families = copy_families(priorities.data());
    if (families.empty()) {
        error = "Vulkan device " + std::to_string(info_.index) + " has no queue that copies";
        return false;
    }
    if (!create_device(families, error)) return false;
    host_.open(dev_, pd_, mp_, host_type_, info_.index, host_import_);
    const std::uint32_t family = choose_family(families);
    std::uint32_t available = 1;
    for (const auto& f : families)
        if (f.queueFamilyIndex == family) available = f.queueCount;
    const std::uint32_t count = std::min(max_queues_ ? max_queues_ : VulkanQueues::kQueues, available);
    if (!queues_.open(dev_, queue_settings(), family, count, error)) return false;
    free_slots_.reserve(kSlots);
    for (std::size_t s = kSlots; s > 0; --s) free_slots_.push_back(s - 1);
    return true;
}

// Slabs: device-local, preferably not host-visible (on a discrete GPU that is plain VRAM, not
// the part behind the PCIe BAR). Staging and host buffers: host-visible and coherent, preferably
// cached and not device-local.
bool VulkanBackend::choose_memory_types(std::string& error) {
    vkGetPhysicalDeviceMemoryProperties(pd_, &mp_);
    heap_ = storage_heap(mp_);
    device_type_ = pick_type(mp_, heap_, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    // Where the whole device-local heap can be mapped coherently, slabs are mapped and the CPU
    // writes into them (the type must be on that same heap: a small BAR heap of 256 MiB beside
    // VRAM is not used for slabs).
    if (!transfer_writes_) {
        const int bar = pick_type(mp_, heap_, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                  VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                  0, 0);
        if (bar >= 0) {
            device_type_ = bar;
            mapped_writes_ = true;
        }
    }
    host_type_ = pick_type(mp_, -1, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                           VK_MEMORY_PROPERTY_HOST_CACHED_BIT, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (device_type_ < 0 || host_type_ < 0) {
        error = "Vulkan device " + std::to_string(info_.index) + " has no usable memory types";
        return false;
    }
    return true;
}

// Every family that copies, each with up to VulkanQueues::kQueues queues of `priorities`.
std::vector<VkDeviceQueueCreateInfo> VulkanBackend::copy_families(const float* priorities) {
    std::uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd_, &n, nullptr);
    std::vector<VkQueueFamilyProperties> fams(n);
    vkGetPhysicalDeviceQueueFamilyProperties(pd_, &n, fams.data());
    std::vector<VkDeviceQueueCreateInfo> out;
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!(fams[i].queueFlags & (VK_QUEUE_TRANSFER_BIT | VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) ||
            fams[i].queueCount == 0)
            continue;
        VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
        qci.queueFamilyIndex = i;
        qci.queueCount = std::min<std::uint32_t>(fams[i].queueCount, VulkanQueues::kQueues);
        qci.pQueuePriorities = priorities;
        out.push_back(qci);
    }
    return out;
}

// The logical device, with the extensions and features the backend uses where they exist:
// memory budgets, host memory import (Vulkan 1.1), timeline semaphores (1.2) for batching.
bool VulkanBackend::create_device(const std::vector<VkDeviceQueueCreateInfo>& families, std::string& error) {
    std::vector<const char*> ext;
    if (has_budget_) ext.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd_, &props);
    if (props.apiVersion < VK_API_VERSION_1_1) host_import_ = false; // it needs external memory
    if (host_import_) ext.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    VkPhysicalDeviceTimelineSemaphoreFeatures tsf{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_TIMELINE_SEMAPHORE_FEATURES};
    if (props.apiVersion >= VK_API_VERSION_1_2 && batch_) {
        VkPhysicalDeviceFeatures2 f2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
        f2.pNext = &tsf;
        vkGetPhysicalDeviceFeatures2(pd_, &f2);
    }
    batch_ = tsf.timelineSemaphore == VK_TRUE;
    tsf.pNext = nullptr;
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    if (batch_) dci.pNext = &tsf;
    dci.queueCreateInfoCount = static_cast<std::uint32_t>(families.size());
    dci.pQueueCreateInfos = families.data();
    dci.enabledExtensionCount = static_cast<std::uint32_t>(ext.size());
    dci.ppEnabledExtensionNames = ext.data();
    if (VkResult r = vkCreateDevice(pd_, &dci, nullptr, &dev_); r != VK_SUCCESS) {
        dev_ = VK_NULL_HANDLE;
        error = std::string("Vulkan device ") + std::to_string(info_.index) + ": vkCreateDevice: " + result_name(r);
        return false;
    }
    return true;
}

// The family copies go to: --vk-queue-family where that is one that copies (to compare
// families), else the one that answers a probe fastest.
std::uint32_t VulkanBackend::choose_family(const std::vector<VkDeviceQueueCreateInfo>& families) {
    if (forced_family_ != VulkanTuning::kAuto) {
        for (const auto& f : families)
            if (f.queueFamilyIndex == forced_family_) return forced_family_;
        log_warning("Vulkan device %d: --vk-queue-family %u is no family that copies; probing",
                    info_.index, forced_family_);
    }
    if (families.size() == 1) return families[0].queueFamilyIndex;
    std::vector<std::uint32_t> indices;
    for (const auto& f : families) indices.push_back(f.queueFamilyIndex);
    return indices[queues_.probe(dev_, queue_settings(), indices)];
}

VulkanQueues::Settings VulkanBackend::queue_settings() const noexcept {
    VulkanQueues::Settings s;
    s.device = info_.index;
    s.host_type = host_type_;
    s.device_type = device_type_;
    s.spin_us = spin_us_;
    s.batch = batch_;
    s.batch_barrier = batch_barrier_;
    s.in_flight = in_flight_;
    return s;
}

std::uint64_t VulkanBackend::do_query_free() noexcept {
    std::uint64_t budget = 0, usage = 0;
    if (heap_budget(pd_, has_budget_, heap_, budget, usage)) return budget > usage ? budget - usage : 0;
    const std::uint64_t held = held_.load(std::memory_order_relaxed);
    return info_.total_bytes > held ? info_.total_bytes - held : 0;
}

int VulkanBackend::do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept {
    // The budget first: past it a driver may place "device memory" in system RAM.
    if (bytes > do_query_free()) return ENOSPC;
    const auto t0 = std::chrono::steady_clock::now();
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    if (int err = make_buffer(dev_, info_.index, bytes, device_type_, buf, mem)) return err;
    const auto t1 = std::chrono::steady_clock::now();
    void* map = nullptr;
    std::unique_ptr<std::atomic<std::uint64_t>[]> touched;
    if (mapped_writes_) {
        if (VkResult r = vkMapMemory(dev_, mem, 0, VK_WHOLE_SIZE, 0, &map); r != VK_SUCCESS) {
            destroy_buffer(dev_, buf, mem);
            return failure(r, "vkMapMemory of a slab");
        }
        touched.reset(new (std::nothrow) std::atomic<std::uint64_t>[touch_words(bytes)]());
        if (!touched) {
            vkUnmapMemory(dev_, mem);
            destroy_buffer(dev_, buf, mem);
            return ENOMEM;
        }
    }
    std::size_t slot;
    {
        std::lock_guard lock(slot_mutex_);
        if (free_slots_.empty()) {
            destroy_buffer(dev_, buf, mem);
            log_error("Vulkan device %d: more than %zu slabs", info_.index, kSlots);
            return ENOSPC;
        }
        slot = free_slots_.back();
        free_slots_.pop_back();
    }
    slots_[slot].memory = mem;
    slots_[slot].bytes = bytes;
    slots_[slot].mapped = static_cast<char*>(map);
    slots_[slot].touched = std::move(touched);
    slots_[slot].buffer.store(buf, std::memory_order_release);
    held_.fetch_add(bytes, std::memory_order_relaxed);
    out = static_cast<DeviceAddr>(slot + 1) << kSlotShift;
    const auto t2 = std::chrono::steady_clock::now();
    log_debug("Vulkan device %d: a %llu MiB slab in %.2f ms (allocated and bound %.2f ms)", info_.index,
              static_cast<unsigned long long>(bytes >> 20),
              std::chrono::duration<double, std::milli>(t2 - t0).count(),
              std::chrono::duration<double, std::milli>(t1 - t0).count());
    return 0;
}

void VulkanBackend::do_release(DeviceAddr addr, std::uint64_t) noexcept {
    const std::size_t slot = (addr >> kSlotShift) - 1;
    if (slot >= kSlots) return;
    Slot& s = slots_[slot];
    VkBuffer buf = s.buffer.exchange(VK_NULL_HANDLE, std::memory_order_acq_rel);
    if (buf == VK_NULL_HANDLE) return;
    if (s.mapped) vkUnmapMemory(dev_, s.memory);
    s.mapped = nullptr;
    s.touched.reset();
    destroy_buffer(dev_, buf, s.memory);
    held_.fetch_sub(s.bytes, std::memory_order_relaxed);
    std::lock_guard lock(slot_mutex_);
    free_slots_.push_back(slot);
}

// A worker's first driver calls (recording, submitting, polling a fence) made before its first
// request: a driver may set up per-thread state in them, which under memory pressure would
// wait on swap that this daemon serves.
int VulkanBackend::do_prepare_thread() noexcept {
    Context& c = queues_.acquire();
    const int err = queues_.warm(c);
    queues_.release(c);
    return err;
}

int VulkanBackend::do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept {
    if (mapped_writes_) {
        Target t;
        if (!resolve(dst, len, t)) return EIO;
        // The CPU's first store to each page of a mapping costs a page fault, several times the
        // queue's copy of it: large writes where the mapping is not yet all touched go on the
        // queue, from our host buffer.
        const bool queue = len >= queue_write_min_ ||
                           (len >= kFreshQueueMin && fresh_on_queue_ && !touched(t, len));
        VkBuffer hb;
        VkDeviceSize ho;
        if (!queue || !host_.region(src, len, hb, ho)) {
            std::memcpy(t.mapped + t.offset, src, len);
            // Write-combined stores drained before write() returns.
            std::atomic_thread_fence(std::memory_order_seq_cst);
            mark_touched(t, len);
            return 0;
        }
    }
    return copy(dst, const_cast<void*>(src), len, true);
}

int VulkanBackend::do_read(DeviceAddr src, void* dst, std::size_t len) noexcept {
    if (mapped_writes_ && len <= mapped_read_max_) {
        Target t;
        if (!resolve(src, len, t)) return EIO;
        // Host-coherent, and every queue write into a slab ends with a barrier that makes it
        // visible to the host (copy): the bytes read are those last written.
        copy_from_write_combined(dst, t.mapped + t.offset, len);
        // A GPU gone from the bus answers reads of its BAR with all ones and no error: such
        // bytes are read again on the queue, which says VK_ERROR_DEVICE_LOST if it is gone.
        const auto* got = static_cast<const unsigned char*>(dst);
        if (!std::all_of(got, got + len, [](unsigned char b) { return b == 0xff; })) return 0;
    }
    return copy(src, dst, len, false);
}

int VulkanBackend::do_zero(DeviceAddr dst, std::size_t len) noexcept {
    Target t;
    if (!resolve(dst, len, t)) return EIO;
    if (mapped_writes_) {
        std::memset(t.mapped + t.offset, 0, len);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        mark_touched(t, len);
        return 0;
    }
    constexpr std::size_t kStaging = VulkanQueues::kStagingBytes;
    Context& c = queues_.acquire();
    int err = 0;
    if (t.offset % 4 == 0 && len % 4 == 0) {
        err = queues_.submit(c, [&](VkCommandBuffer cb) { vkCmdFillBuffer(cb, t.buffer, t.offset, len, 0); }, false);
    } else { // vkCmdFillBuffer needs 4-byte alignment: zeros from the staging buffer instead
        std::memset(c.mapped, 0, std::min(len, kStaging));
        for (std::size_t done = 0; done < len && !err;) {
            const std::size_t n = std::min(len - done, kStaging);
            err = queues_.submit(c, [&](VkCommandBuffer cb) {
                const VkBufferCopy r{0, t.offset + done, n};
                vkCmdCopyBuffer(cb, c.staging, t.buffer, 1, &r);
            }, false);
            done += n;
        }
    }
    queues_.release(c);
    return err;
}

std::size_t VulkanBackend::touch_words(std::uint64_t bytes) noexcept {
    return static_cast<std::size_t>((bytes + kTouchChunk * 64 - 1) / (kTouchChunk * 64));
}

// Whether every chunk [t.offset, t.offset + len) meets has been written whole by the CPU.
bool VulkanBackend::touched(const Target& t, std::size_t len) const noexcept {
    const auto* bits = slots_[t.slot].touched.get();
    for (std::uint64_t c = t.offset / kTouchChunk; c * kTouchChunk < t.offset + len; ++c)
        if (!(bits[c / 64].load(std::memory_order_relaxed) >> (c % 64) & 1)) return false;
    return true;
}

// Marks the chunks the CPU just wrote whole.
void VulkanBackend::mark_touched(const Target& t, std::size_t len) noexcept {
    auto* bits = slots_[t.slot].touched.get();
    const std::uint64_t end = (t.offset + len) / kTouchChunk;
    for (std::uint64_t c = (t.offset + kTouchChunk - 1) / kTouchChunk; c < end; ++c)
        bits[c / 64].fetch_or(std::uint64_t{1} << (c % 64), std::memory_order_relaxed);
}

bool VulkanBackend::resolve(DeviceAddr addr, std::size_t len, Target& t) noexcept {
    const std::size_t slot = (addr >> kSlotShift) - 1;
    const VkDeviceSize offset = addr & ((DeviceAddr{1} << kSlotShift) - 1);
    if (slot < kSlots) {
        t.buffer = slots_[slot].buffer.load(std::memory_order_acquire);
        t.offset = offset;
        t.mapped = slots_[slot].mapped;
        t.slot = slot;
        if (t.buffer != VK_NULL_HANDLE && offset + len <= slots_[slot].bytes) return true;
    }
    log_error("Vulkan device %d: a copy of %zu bytes at %#llx is outside every slab", info_.index, len,
              static_cast<unsigned long long>(addr));
    return false;
}

// A copy on the queue: straight from or into our host buffer where `host` is in one, else
// through a context's staging buffer, a MiB at a time.
int VulkanBackend::copy(DeviceAddr addr, void* host, std::size_t len, bool to_device) noexcept {
    if (len == 0) return 0;
    Target t;
    if (!resolve(addr, len, t)) return EIO;
    // The host reads what a copy leaves: a read's host buffer, or, with mapped slabs, the slab
    // itself (do_read).
    const bool host_reads = !to_device || mapped_writes_;
    constexpr std::size_t kStaging = VulkanQueues::kStagingBytes;
    Context& c = queues_.acquire();
    int err = 0;
    VkBuffer hb;
    VkDeviceSize ho;
    if (host_.region(host, len, hb, ho)) {
        err = queues_.submit(c, [&](VkCommandBuffer cb) {
            const VkBufferCopy r = to_device ? VkBufferCopy{ho, t.offset, len} : VkBufferCopy{t.offset, ho, len};
            vkCmdCopyBuffer(cb, to_device ? hb : t.buffer, to_device ? t.buffer : hb, 1, &r);
        }, host_reads);
    } else {
        char* h = static_cast<char*>(host);
        for (std::size_t done = 0; done < len && !err;) {
            const std::size_t n = std::min(len - done, kStaging);
            if (to_device) std::memcpy(c.mapped, h + done, n);
            err = queues_.submit(c, [&](VkCommandBuffer cb) {
                const VkBufferCopy r = to_device ? VkBufferCopy{0, t.offset + done, n} : VkBufferCopy{t.offset + done, 0, n};
                vkCmdCopyBuffer(cb, to_device ? c.staging : t.buffer, to_device ? t.buffer : c.staging, 1, &r);
            }, host_reads);
            if (!err && !to_device) std::memcpy(h + done, c.mapped, n);
            done += n;
        }
    }
    queues_.release(c);
    return err;
}

} // namespace vramfs::vk
