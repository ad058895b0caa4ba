// VulkanBackend: storage in a GPU's device-local memory through Vulkan, for AMD, Intel and
// NVIDIA GPUs alike (and Mesa's lavapipe, a CPU driver, so CI runs this data path). The only
// code that includes Vulkan's headers.
//
// What must stay true:
//   - Nothing is allocated on the I/O path: command buffers, fences and staging buffers are
//     made when the backend is opened (a fixed set of copy contexts, each used once then, and
//     once more by each worker before its first request, so the driver's own memory for them
//     exists before memory can be short), slabs by BlockPool's background thread. A copy
//     borrows a context and gives it back.
//   - No silent spill and no overcommit: a slab is only allocated while the device-local heap's
//     budget (VK_EXT_memory_budget, else the heap's size less what we hold) has room for it;
//     otherwise ENOSPC. A driver that would back "device memory" with system RAM past the
//     budget is never asked to.
//   - A copy has landed when it returns, as with CUDA: a write is in device memory when write()
//     returns, and a later read on any queue, or by the CPU through a mapping, sees it (every
//     queue write into a mapped slab ends with a barrier to host reads). Reads go through a
//     queue, except reads of a page or less from a mapped slab, which the CPU makes with
//     streaming loads (plain loads read a GPU's BAR at a few tens of MB/s, streaming loads at
//     some 0.5 GB/s a thread: a page in less time than a submission). Writes go through the
//     queue, or, where the device-local heap is host-visible as a whole (resizable BAR;
//     lavapipe), by the CPU straight into the slab's mapping: a submission on a queue costs
//     15-60 us, a CPU copy of a page well under one (docs/performance.md#vulkan), except the
//     first store to each page of a mapping, a page fault: large writes into chunks of a slab
//     the CPU has not yet written whole still go on the queue. Mapped writes are to
//     host-coherent memory and fenced before returning; Vulkan makes host writes visible to
//     every later submission.
//   - Copies go to the queue family that answered fastest when the backend was opened (a probe
//     of each family's 4 KiB and 1 MiB copies: NVIDIA has several transfer-only families whose
//     latencies differ by 2.5x), and a fence is polled for a while before the thread sleeps on
//     it (a sleeping wait adds some 30 us to every copy on NVIDIA). Not on a CPU driver, where
//     the spinning thread would take the CPU from the one doing the copy.
//   - Host buffers (receive and read buffers, cache windows) are the daemon's own anonymous
//     memory imported into Vulkan (VK_EXT_external_memory_host) where the driver can, else the
//     driver's host-visible memory: the kernel copies every request's data into them and every
//     reply's out of them, and NVIDIA's own host-visible memory made those copies slower.
//     Imported memory must outlive its VkDeviceMemory, and is kept out of fork() children.
//   - Copies asked for at once share one submission where the device has timeline semaphores
//     (Vulkan 1.2): a queue works through submissions one at a time, each costing about as
//     much as a small copy. At most two submissions are on a queue at once; what arrives
//     meanwhile gathers into the next. One barrier ends each submission, so its copies are
//     not ordered among themselves. Every copy still returns only once its own bytes have
//     landed.
//   - VK_ERROR_DEVICE_LOST becomes kDeviceLost, so the backend is marked lost once.
#include "vramfs/storage/backend.hpp"

#include <cerrno>
#include <string>

#ifdef VRAMFS_HAVE_VULKAN
#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"
#include "vramfs/util/wc_copy.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <thread>
#include <unistd.h>
#include <vulkan/vulkan.h>

namespace vramfs {
namespace {

const char* vk_result_name(VkResult r) noexcept {
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    default: return "VkResult error";
    }
}

// A failed call as an errno: out of memory ENOSPC (not logged: the caller reports it), a lost
// device kDeviceLost, anything else EIO; all but ENOSPC with a log line naming the call.
int vk_failure(VkResult r, const char* what) noexcept {
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ||
        r == VK_ERROR_TOO_MANY_OBJECTS)
        return ENOSPC;
    log_error("Vulkan %s failed: %s (%d)", what, vk_result_name(r), static_cast<int>(r));
    return r == VK_ERROR_DEVICE_LOST ? kDeviceLost : EIO;
}

#define VRAMFS_VK_TRY(call, what)                                                                  \
    do {                                                                                           \
        const VkResult vramfs_vk_ = (call);                                                        \
        if (vramfs_vk_ != VK_SUCCESS) return vk_failure(vramfs_vk_, what);                         \
    } while (0)

std::string vendor_name(std::uint32_t id) {
    switch (id) {
    case 0x1002: return "AMD";
    case 0x10de: return "NVIDIA";
    case 0x8086: return "Intel";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x10005: return "Mesa";
    default: {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%04x", id);
        return buf;
    }
    }
}

const char* type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

// One instance for the process, made on first use and kept to the end (backends and listings
// share it; destroying it while a backend lives would be wrong, and at exit it does not matter).
VkInstance instance(std::string& error) {
    static std::mutex m;
    static VkInstance inst = VK_NULL_HANDLE;
    static std::string failed;
    std::lock_guard lock(m);
    if (inst == VK_NULL_HANDLE && failed.empty()) {
        VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
        app.pApplicationName = "vramfs";
        app.apiVersion = VK_API_VERSION_1_2; // timeline semaphores, where the device has 1.2
        VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
        ci.pApplicationInfo = &app;
        const VkResult r = vkCreateInstance(&ci, nullptr, &inst);
        if (r != VK_SUCCESS) {
            inst = VK_NULL_HANDLE;
            failed = std::string("cannot start Vulkan (vkCreateInstance: ") + vk_result_name(r) +
                     "): is a Vulkan driver installed (mesa-vulkan-drivers, or the GPU vendor's)?";
        }
    }
    if (inst == VK_NULL_HANDLE) error = failed;
    return inst;
}

bool has_extension(VkPhysicalDevice pd, const char* name) {
    std::uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> ext(n);
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, ext.data());
    for (const auto& e : ext)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

// The device-local heap vramfs uses on a physical device: the largest one; -1 if none.
int storage_heap(const VkPhysicalDeviceMemoryProperties& mp) {
    int best = -1;
    for (std::uint32_t h = 0; h < mp.memoryHeapCount; ++h)
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (best < 0 || mp.memoryHeaps[h].size > mp.memoryHeaps[best].size))
            best = static_cast<int>(h);
    return best;
}

// Budget and usage of a heap (VK_EXT_memory_budget); false without the extension.
bool heap_budget(VkPhysicalDevice pd, bool has_budget, int heap, std::uint64_t& budget,
                 std::uint64_t& usage) {
    if (!has_budget) return false;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT b{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    mp2.pNext = &b;
    vkGetPhysicalDeviceMemoryProperties2(pd, &mp2);
    budget = b.heapBudget[heap];
    usage = b.heapUsage[heap];
    return true;
}

// The physical devices vramfs counts with --device: those with a device-local heap.
std::vector<VkPhysicalDevice> storage_devices(VkInstance inst) {
    std::uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, nullptr);
    std::vector<VkPhysicalDevice> all(n), out;
    vkEnumeratePhysicalDevices(inst, &n, all.data());
    for (VkPhysicalDevice pd : all) {
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(pd, &mp);
        if (storage_heap(mp) >= 0) out.push_back(pd);
    }
    return out;
}

VulkanDeviceReport describe(VkPhysicalDevice pd, int index) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    VulkanDeviceReport r;
    r.info.index = index;
    r.info.name = p.deviceName;
    r.vendor = vendor_name(p.vendorID);
    r.type = type_name(p.deviceType);
    r.api_version = std::to_string(VK_API_VERSION_MAJOR(p.apiVersion)) + "." +
                    std::to_string(VK_API_VERSION_MINOR(p.apiVersion));
    r.memory_budget = has_extension(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    r.external_memory_host = has_extension(pd, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    const int heap = storage_heap(mp);
    r.info.total_bytes = mp.memoryHeaps[heap].size;
    std::uint64_t budget = 0, usage = 0;
    if (heap_budget(pd, r.memory_budget, heap, budget, usage))
        r.info.free_bytes = budget > usage ? budget - usage : 0;
    else
        r.info.free_bytes = r.info.total_bytes;
    return r;
}

// A memory type on `heap` with all of `want`, scoring `prefer` bits up and `avoid` bits down.
int pick_type(const VkPhysicalDeviceMemoryProperties& mp, int heap, VkMemoryPropertyFlags want,
              VkMemoryPropertyFlags prefer, VkMemoryPropertyFlags avoid) {
    int best = -1, best_score = -1000;
    for (std::uint32_t t = 0; t < mp.memoryTypeCount; ++t) {
        const VkMemoryType& mt = mp.memoryTypes[t];
        if ((mt.propertyFlags & want) != want) continue;
        if (heap >= 0 && mt.heapIndex != static_cast<std::uint32_t>(heap)) continue;
        const int score = ((mt.propertyFlags & prefer) ? 1 : 0) - ((mt.propertyFlags & avoid) ? 2 : 0);
        if (score > best_score) {
            best = static_cast<int>(t);
            best_score = score;
        }
    }
    return best;
}

// How long a copy's fence is polled before the thread sleeps on it: on a GPU longer than a
// 1 MiB copy takes, since a sleeping wait adds a wakeup to every copy; none on a CPU driver.
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

class VulkanBackend final : public StorageBackend {
public:
    // Copies in flight at once (each with its own command buffer, fence and staging buffer).
    static constexpr int kContexts = 16;
    static constexpr std::size_t kStagingBytes = 1 << 20;
    // A DeviceAddr is (slot + 1) << kSlotShift | offset: slabs are buffers, not pointers.
    static constexpr int kSlotShift = 40;
    static constexpr std::size_t kSlots = 1 << 16;
    static constexpr std::size_t kHostBuffers = 1024;
    // With mapped writes, what the touched bitmap tracks, and the least write that goes on the
    // queue where the mapping is not all touched yet (below it a queue submission costs more
    // than the page faults).
    static constexpr std::uint64_t kTouchChunk = 64 << 10;
    static constexpr std::size_t kFreshQueueMin = 256 << 10;
    // With slabs mapped, the CPU reads up to tuning.mapped_read_kib (a page) out of the mapping
    // itself (streaming loads, copy_from_write_combined) instead of a copy on the queue: it reads
    // a GPU's BAR a 64-byte line at a time, so a page costs less than a submission, and a few
    // pages more (docs/performance.md#vulkan).
    VulkanBackend(VkPhysicalDevice pd, const VulkanDeviceReport& report, const VulkanTuning& tuning)
        : pd_(pd), info_(report.info), has_budget_(report.memory_budget),
          transfer_writes_(tuning.transfer_writes), spin_us_(fence_spin_us(report, tuning)),
          queue_write_min_(queue_write_min(tuning)),
          mapped_read_max_(std::size_t{tuning.mapped_read_kib} << 10),
          fresh_on_queue_(tuning.fresh_on_queue),
          host_import_(report.external_memory_host && tuning.host_import),
          batch_(tuning.batch), batch_barrier_(tuning.batch_barrier), in_flight_(tuning.in_flight),
          forced_family_(tuning.queue_family), max_queues_(tuning.queues) {}
    ~VulkanBackend() override {
        if (dev_ == VK_NULL_HANDLE) return;
        vkDeviceWaitIdle(dev_);
        if (warm_) destroy_buffer(warm_, warm_mem_);
        for (auto& c : contexts_) destroy_context(c);
        for (auto& q : queues_)
            if (q.timeline) vkDestroySemaphore(dev_, q.timeline, nullptr);
        vkDestroyDevice(dev_, nullptr);
    }

    // Opens the logical device and everything a copy needs; false with `error` if it cannot.
    bool open(std::string& error) {
        vkGetPhysicalDeviceMemoryProperties(pd_, &mp_);
        heap_ = storage_heap(mp_);
        // Slabs: device-local, preferably not host-visible (on a discrete GPU that is plain VRAM,
        // not the part behind the PCIe BAR). Staging and host buffers: host-visible and coherent,
        // preferably cached and not device-local.
        device_type_ = pick_type(mp_, heap_, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0,
                                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
        // Where the whole device-local heap can be mapped coherently, slabs are mapped and the
        // CPU writes into them (the type must be on that same heap: a small BAR heap of 256 MiB
        // beside VRAM is not used for slabs).
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
        // Every family that copies gets up to kQueues queues; the contexts use the one that
        // answers fastest (probe_families), or --vk-queue-family where that is set (to
        // compare families).
        std::uint32_t n = 0;
        vkGetPhysicalDeviceQueueFamilyProperties(pd_, &n, nullptr);
        std::vector<VkQueueFamilyProperties> fams(n);
        vkGetPhysicalDeviceQueueFamilyProperties(pd_, &n, fams.data());
        std::array<float, kQueues> prio{};
        prio.fill(1.0f);
        std::vector<VkDeviceQueueCreateInfo> qcis;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (!(fams[i].queueFlags & (VK_QUEUE_TRANSFER_BIT | VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) ||
                fams[i].queueCount == 0)
                continue;
            VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
            qci.queueFamilyIndex = i;
            qci.queueCount = std::min<std::uint32_t>(fams[i].queueCount, kQueues);
            qci.pQueuePriorities = prio.data();
            qcis.push_back(qci);
        }
        if (qcis.empty()) {
            error = "Vulkan device " + std::to_string(info_.index) + " has no queue that copies";
            return false;
        }
        std::vector<const char*> ext;
        if (has_budget_) ext.push_back(VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
        VkPhysicalDeviceProperties props;
        vkGetPhysicalDeviceProperties(pd_, &props);
        if (props.apiVersion < VK_API_VERSION_1_1) host_import_ = false; // it needs external memory
        if (host_import_) ext.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
        // Timeline semaphores (Vulkan 1.2) let copies asked for at once share a submission.
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
        dci.queueCreateInfoCount = static_cast<std::uint32_t>(qcis.size());
        dci.pQueueCreateInfos = qcis.data();
        dci.enabledExtensionCount = static_cast<std::uint32_t>(ext.size());
        dci.ppEnabledExtensionNames = ext.data();
        if (VkResult r = vkCreateDevice(pd_, &dci, nullptr, &dev_); r != VK_SUCCESS) {
            dev_ = VK_NULL_HANDLE;
            error = std::string("Vulkan device ") + std::to_string(info_.index) +
                    ": vkCreateDevice: " + vk_result_name(r);
            return false;
        }
        if (host_import_) {
            host_pointer_properties_ = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
                vkGetDeviceProcAddr(dev_, "vkGetMemoryHostPointerPropertiesEXT"));
            VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp{
                VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
            VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
            p2.pNext = &hp;
            vkGetPhysicalDeviceProperties2(pd_, &p2);
            import_align_ = std::max<std::size_t>(hp.minImportedHostPointerAlignment,
                                                  static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
            host_import_ = host_pointer_properties_ != nullptr;
        }
        log_debug("Vulkan device %d: host buffers %s", info_.index,
                  host_import_ ? "are our own memory, imported (VK_EXT_external_memory_host)"
                               : "come from the driver");
        const VkDeviceQueueCreateInfo* chosen = nullptr;
        if (forced_family_ != VulkanTuning::kAuto) {
            const auto it = std::find_if(qcis.begin(), qcis.end(), [&](const VkDeviceQueueCreateInfo& q) {
                return q.queueFamilyIndex == forced_family_;
            });
            if (it != qcis.end())
                chosen = &*it;
            else
                log_warning("Vulkan device %d: --vk-queue-family %u is no family that copies; probing",
                            info_.index, forced_family_);
        }
        if (!chosen) chosen = &qcis[qcis.size() > 1 ? probe_families(qcis) : 0];
        family_ = chosen->queueFamilyIndex;
        queue_count_ = std::clamp<std::uint32_t>(max_queues_ ? max_queues_ : kQueues, 1,
                                                 std::min(kQueues, chosen->queueCount));
        log_debug("Vulkan device %d: copies on queue family %u (%u queues), their completion polled %u us",
                  info_.index, family_, queue_count_, spin_us_);
        for (std::uint32_t q = 0; q < queue_count_; ++q) {
            Queue& queue = queues_[q];
            vkGetDeviceQueue(dev_, family_, q, &queue.queue);
            if (!batch_) continue;
            VkSemaphoreTypeCreateInfo tci{VK_STRUCTURE_TYPE_SEMAPHORE_TYPE_CREATE_INFO};
            tci.semaphoreType = VK_SEMAPHORE_TYPE_TIMELINE;
            VkSemaphoreCreateInfo sci{VK_STRUCTURE_TYPE_SEMAPHORE_CREATE_INFO};
            sci.pNext = &tci;
            if (VkResult r = vkCreateSemaphore(dev_, &sci, nullptr, &queue.timeline); r != VK_SUCCESS) {
                queue.timeline = VK_NULL_HANDLE;
                error = "Vulkan device " + std::to_string(info_.index) + ": vkCreateSemaphore: " + vk_result_name(r);
                return false;
            }
            queue.waiting.reserve(kContexts);
            queue.taken.reserve(kContexts);
        }
        log_debug("Vulkan device %d: copies asked for at once %s%s, at most %u submissions on a queue (0: no limit)",
                  info_.index, batch_ ? "share a submission (timeline semaphores)" : "are submitted one by one",
                  batch_ && batch_barrier_ ? ", one barrier a submission" : "", in_flight_);
        free_contexts_.reserve(kContexts);
        for (int i = 0; i < kContexts; ++i) {
            if (int err = make_context(contexts_[i], static_cast<std::uint32_t>(i) % queue_count_)) {
                error = "Vulkan device " + std::to_string(info_.index) +
                        ": cannot make its copy buffers (" + std::strerror(err) + ")";
                return false;
            }
            free_contexts_.push_back(&contexts_[i]);
        }
        if (int err = make_buffer(kWarmBytes, device_type_, warm_, warm_mem_)) {
            error = "Vulkan device " + std::to_string(info_.index) + ": cannot make a buffer (" +
                    std::strerror(err) + ")";
            return false;
        }
        for (Context& c : contexts_)
            if (int err = warm(c)) {
                error = "Vulkan device " + std::to_string(info_.index) + ": a first copy failed (" +
                        std::strerror(err) + ")";
                return false;
            }
        host_.reserve(kHostBuffers);
        free_slots_.reserve(kSlots);
        for (std::size_t s = kSlots; s > 0; --s) free_slots_.push_back(s - 1);
        return true;
    }

    const char* kind() const noexcept override { return "vulkan"; }
    const DeviceInfo& device() const noexcept override { return info_; }

    std::uint64_t do_query_free() noexcept override {
        std::uint64_t budget = 0, usage = 0;
        if (heap_budget(pd_, has_budget_, heap_, budget, usage)) return budget > usage ? budget - usage : 0;
        const std::uint64_t held = held_.load(std::memory_order_relaxed);
        return info_.total_bytes > held ? info_.total_bytes - held : 0;
    }

    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        // The budget first: past it a driver may place "device memory" in system RAM.
        if (bytes > do_query_free()) return ENOSPC;
        const auto t0 = std::chrono::steady_clock::now();
        VkBuffer buf = VK_NULL_HANDLE;
        VkDeviceMemory mem = VK_NULL_HANDLE;
        if (int err = make_buffer(bytes, device_type_, buf, mem)) return err;
        const auto t1 = std::chrono::steady_clock::now();
        void* map = nullptr;
        if (mapped_writes_) {
            if (VkResult r = vkMapMemory(dev_, mem, 0, VK_WHOLE_SIZE, 0, &map); r != VK_SUCCESS) {
                destroy_buffer(buf, mem);
                return vk_failure(r, "vkMapMemory of a slab");
            }
        }
        std::unique_ptr<std::atomic<std::uint64_t>[]> touched;
        if (mapped_writes_) {
            touched.reset(new (std::nothrow) std::atomic<std::uint64_t>[touch_words(bytes)]());
            if (!touched) {
                if (map) vkUnmapMemory(dev_, mem);
                destroy_buffer(buf, mem);
                return ENOMEM;
            }
        }
        std::size_t slot;
        {
            std::lock_guard lock(slot_mutex_);
            if (free_slots_.empty()) {
                destroy_buffer(buf, mem);
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
    void do_release(DeviceAddr addr, std::uint64_t) noexcept override {
        const std::size_t slot = (addr >> kSlotShift) - 1;
        if (slot >= kSlots) return;
        Slot& s = slots_[slot];
        VkBuffer buf = s.buffer.exchange(VK_NULL_HANDLE, std::memory_order_acq_rel);
        if (buf == VK_NULL_HANDLE) return;
        if (s.mapped) vkUnmapMemory(dev_, s.memory);
        s.mapped = nullptr;
        s.touched.reset();
        destroy_buffer(buf, s.memory);
        held_.fetch_sub(s.bytes, std::memory_order_relaxed);
        std::lock_guard lock(slot_mutex_);
        free_slots_.push_back(slot);
    }

    // A worker's first driver calls (recording, submitting, polling a fence) made before its
    // first request: a driver may set up per-thread state in them, which under memory pressure
    // would wait on swap that this daemon serves.
    int do_prepare_thread() noexcept override {
        Context& c = acquire();
        const int err = warm(c);
        release(c);
        return err;
    }

    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        if (mapped_writes_) {
            Target t;
            if (!resolve(dst, len, t)) return EIO;
            // The CPU's first store to each page of a mapping costs a page fault, several times
            // the queue's copy of it: large writes where the mapping is not yet all touched go
            // on the queue, from our host buffer.
            const bool queue = len >= queue_write_min_ ||
                               (len >= kFreshQueueMin && fresh_on_queue_ && !touched(t, len));
            VkBuffer hb;
            VkDeviceSize ho;
            if (!queue || !host_region(src, len, hb, ho)) {
                std::memcpy(t.mapped + t.offset, src, len);
                // Write-combined stores drained before write() returns.
                std::atomic_thread_fence(std::memory_order_seq_cst);
                mark_touched(t, len);
                return 0;
            }
        }
        return copy(dst, const_cast<void*>(src), len, true);
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        if (mapped_writes_ && len <= mapped_read_max_) {
            Target t;
            if (!resolve(src, len, t)) return EIO;
            // Host-coherent, and every queue write into a slab ends with a barrier that makes
            // it visible to the host (copy): the bytes read are those last written.
            copy_from_write_combined(dst, t.mapped + t.offset, len);
            // A GPU gone from the bus answers reads of its BAR with all ones and no error: such
            // bytes are read again on the queue, which says VK_ERROR_DEVICE_LOST if it is gone.
            const auto* got = static_cast<const unsigned char*>(dst);
            if (!std::all_of(got, got + len, [](unsigned char b) { return b == 0xff; })) return 0;
        }
        return copy(src, dst, len, false);
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        Target t;
        if (!resolve(dst, len, t)) return EIO;
        if (mapped_writes_) {
            std::memset(t.mapped + t.offset, 0, len);
            std::atomic_thread_fence(std::memory_order_seq_cst);
            mark_touched(t, len);
            return 0;
        }
        Context& c = acquire();
        int err = 0;
        if (t.offset % 4 == 0 && len % 4 == 0) {
            err = submit(c, [&](VkCommandBuffer cb) { vkCmdFillBuffer(cb, t.buffer, t.offset, len, 0); }, false);
        } else { // vkCmdFillBuffer needs 4-byte alignment: zeros from the staging buffer instead
            std::memset(c.mapped, 0, std::min(len, kStagingBytes));
            for (std::size_t done = 0; done < len && !err;) {
                const std::size_t n = std::min(len - done, kStagingBytes);
                err = submit(c, [&](VkCommandBuffer cb) {
                    const VkBufferCopy r{0, t.offset + done, n};
                    vkCmdCopyBuffer(cb, c.staging, t.buffer, 1, &r);
                }, false);
                done += n;
            }
        }
        release(c);
        return err;
    }

    void* do_allocate_host(std::size_t bytes) noexcept override {
        // Memory the device copies from and to directly: a FUSE receive buffer allocated here
        // needs no staging copy. Where the driver can import host memory, it is our own
        // anonymous memory, which the kernel copies requests into and replies out of as fast as
        // any; the driver's own host-visible memory was slower to the CPU on NVIDIA
        // (docs/performance.md#vulkan).
        HostRegion r{};
        if (!(host_import_ && import_host(bytes, r)) && !driver_host(bytes, r)) return nullptr;
        std::unique_lock lock(host_mutex_);
        if (host_.size() == kHostBuffers) {
            lock.unlock();
            free_host(r);
            return nullptr;
        }
        host_.push_back(r);
        return r.base;
    }
    void do_release_host(void* p, std::size_t) noexcept override {
        HostRegion r{};
        {
            std::unique_lock lock(host_mutex_);
            auto it = std::find_if(host_.begin(), host_.end(), [&](const HostRegion& h) { return h.base == p; });
            if (it == host_.end()) return;
            r = *it;
            host_.erase(it);
        }
        free_host(r);
    }

private:
    static constexpr std::uint32_t kQueues = 4;

    struct Slot {
        std::atomic<VkBuffer> buffer{VK_NULL_HANDLE};
        VkDeviceMemory memory = VK_NULL_HANDLE;
        std::uint64_t bytes = 0;
        char* mapped = nullptr; // with mapped writes
        // With mapped writes: one bit per kTouchChunk of the mapping the CPU has written whole,
        // so every page of it is mapped in. A hint only: a bit never set costs a queue copy.
        std::unique_ptr<std::atomic<std::uint64_t>[]> touched;
    };
    struct HostRegion {
        char* base;
        std::size_t bytes;
        VkBuffer buffer;
        VkDeviceMemory memory;
        std::size_t imported; // bytes of our own mapping imported into `memory`; 0: the driver's
    };
    struct Context;
    // With a timeline, copies asked for at once share a submission (submit): one thread, the
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
    struct Context {
        VkCommandPool pool = VK_NULL_HANDLE;
        VkCommandBuffer cb = VK_NULL_HANDLE;
        VkFence fence = VK_NULL_HANDLE;
        VkBuffer staging = VK_NULL_HANDLE;
        VkDeviceMemory staging_mem = VK_NULL_HANDLE;
        void* mapped = nullptr;
        std::uint32_t queue = 0;
        std::atomic<int> batch_error{0}; // set by the submitter when its submission failed
    };
    struct Target {
        VkBuffer buffer;
        VkDeviceSize offset;
        char* mapped;
        std::size_t slot;
    };

    int make_buffer(std::uint64_t bytes, int type, VkBuffer& buf, VkDeviceMemory& mem) noexcept {
        VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bci.size = bytes;
        bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
        bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
        VRAMFS_VK_TRY(vkCreateBuffer(dev_, &bci, nullptr, &buf), "vkCreateBuffer");
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(dev_, buf, &req);
        if (!(req.memoryTypeBits & (1u << type))) {
            vkDestroyBuffer(dev_, buf, nullptr);
            log_error("Vulkan device %d: buffers cannot use memory type %d", info_.index, type);
            return EIO;
        }
        VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        mai.allocationSize = req.size;
        mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
        if (VkResult r = vkAllocateMemory(dev_, &mai, nullptr, &mem); r != VK_SUCCESS) {
            vkDestroyBuffer(dev_, buf, nullptr);
            return vk_failure(r, "vkAllocateMemory");
        }
        if (VkResult r = vkBindBufferMemory(dev_, buf, mem, 0); r != VK_SUCCESS) {
            destroy_buffer(buf, mem);
            return vk_failure(r, "vkBindBufferMemory");
        }
        return 0;
    }
    void destroy_buffer(VkBuffer buf, VkDeviceMemory mem) noexcept {
        vkDestroyBuffer(dev_, buf, nullptr);
        vkFreeMemory(dev_, mem, nullptr);
    }

    // Host-visible memory from the driver, mapped.
    bool driver_host(std::size_t bytes, HostRegion& r) noexcept {
        if (make_buffer(bytes, host_type_, r.buffer, r.memory) != 0) return false;
        void* p = nullptr;
        if (vkMapMemory(dev_, r.memory, 0, VK_WHOLE_SIZE, 0, &p) != VK_SUCCESS) {
            destroy_buffer(r.buffer, r.memory);
            return false;
        }
        r.base = static_cast<char*>(p);
        r.bytes = bytes;
        r.imported = 0;
        return true;
    }

    // Anonymous memory of ours, aligned as the driver asks, imported as a buffer's memory
    // (VK_EXT_external_memory_host); false, with nothing left behind, where the driver will not.
    bool import_host(std::size_t bytes, HostRegion& r) noexcept {
        const std::size_t len = host_memory_bytes(bytes, import_align_);
        char* p = static_cast<char*>(map_host_memory(len, import_align_));
        if (!p) return false;
        if (import_memory(p, len, r)) {
            r.base = p;
            r.bytes = bytes;
            r.imported = len;
            return true;
        }
        unmap_host_memory(p, len, import_align_);
        if (!import_failed_.exchange(true))
            log_warning("Vulkan device %d: the driver would not import host memory; using its own",
                        info_.index);
        return false;
    }
    bool import_memory(char* p, std::size_t len, HostRegion& r) noexcept {
        constexpr auto kHandle = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
        VkMemoryHostPointerPropertiesEXT hpp{VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
        if (host_pointer_properties_(dev_, kHandle, p, &hpp) != VK_SUCCESS) return false;
        VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
        ext.handleTypes = kHandle;
        VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
        bci.pNext = &ext;
        bci.size = len;
        bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
        bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
        if (vkCreateBuffer(dev_, &bci, nullptr, &r.buffer) != VK_SUCCESS) return false;
        VkMemoryRequirements req;
        vkGetBufferMemoryRequirements(dev_, r.buffer, &req);
        // The CPU uses the pointer as it is, never a mapping, so the type must be coherent.
        VkPhysicalDeviceMemoryProperties usable = mp_;
        for (std::uint32_t t = 0; t < usable.memoryTypeCount; ++t)
            if (!(req.memoryTypeBits & hpp.memoryTypeBits & (1u << t))) usable.memoryTypes[t].propertyFlags = 0;
        const int type = pick_type(usable, -1, VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                   VK_MEMORY_PROPERTY_HOST_CACHED_BIT, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        VkImportMemoryHostPointerInfoEXT imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
        imp.handleType = kHandle;
        imp.pHostPointer = p;
        VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        mai.pNext = &imp;
        mai.allocationSize = len;
        mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
        if (type < 0 || req.size > len || vkAllocateMemory(dev_, &mai, nullptr, &r.memory) != VK_SUCCESS) {
            vkDestroyBuffer(dev_, r.buffer, nullptr);
            return false;
        }
        if (vkBindBufferMemory(dev_, r.buffer, r.memory, 0) != VK_SUCCESS) {
            destroy_buffer(r.buffer, r.memory);
            return false;
        }
        return true;
    }

    void free_host(const HostRegion& r) noexcept {
        if (!r.imported) vkUnmapMemory(dev_, r.memory);
        destroy_buffer(r.buffer, r.memory); // before the memory it imported goes
        if (r.imported) unmap_host_memory(r.base, r.imported, import_align_);
    }

    int make_context(Context& c, std::uint32_t queue) noexcept {
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
        if (int err = make_buffer(kStagingBytes, host_type_, c.staging, c.staging_mem)) return err;
        VRAMFS_VK_TRY(vkMapMemory(dev_, c.staging_mem, 0, VK_WHOLE_SIZE, 0, &c.mapped), "vkMapMemory");
        std::memset(c.mapped, 0, kStagingBytes); // faulted in now, not on the first request
        return 0;
    }

    // Every kind of command the I/O path records, run once on `c` against the scratch buffer:
    // the driver takes the host memory a context's commands need now, at mount (where it is
    // then locked), not at the context's first request, which may come under memory pressure.
    int warm(Context& c) noexcept {
        const VkBufferCopy r{0, 0, kWarmBytes};
        if (int err = submit(c, [&](VkCommandBuffer cb) { vkCmdCopyBuffer(cb, c.staging, warm_, 1, &r); }, false))
            return err;
        if (int err = submit(c, [&](VkCommandBuffer cb) { vkCmdCopyBuffer(cb, warm_, c.staging, 1, &r); }, true))
            return err;
        return submit(c, [&](VkCommandBuffer cb) { vkCmdFillBuffer(cb, warm_, 0, kWarmBytes, 0); }, false);
    }

    void destroy_context(Context& c) noexcept {
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

    Context& acquire() noexcept {
        std::unique_lock lock(ctx_mutex_);
        ctx_free_.wait(lock, [&] { return !free_contexts_.empty(); });
        Context* c = free_contexts_.back();
        free_contexts_.pop_back();
        return *c;
    }
    void release(Context& c) noexcept {
        {
            std::lock_guard lock(ctx_mutex_);
            free_contexts_.push_back(&c);
        }
        ctx_free_.notify_one();
    }

    static std::size_t touch_words(std::uint64_t bytes) noexcept {
        return static_cast<std::size_t>((bytes + kTouchChunk * 64 - 1) / (kTouchChunk * 64));
    }
    // Whether every chunk [t.offset, t.offset + len) meets has been written whole by the CPU.
    bool touched(const Target& t, std::size_t len) const noexcept {
        const auto* bits = slots_[t.slot].touched.get();
        for (std::uint64_t c = t.offset / kTouchChunk; c * kTouchChunk < t.offset + len; ++c)
            if (!(bits[c / 64].load(std::memory_order_relaxed) >> (c % 64) & 1)) return false;
        return true;
    }
    // Marks the chunks the CPU just wrote whole.
    void mark_touched(const Target& t, std::size_t len) noexcept {
        auto* bits = slots_[t.slot].touched.get();
        const std::uint64_t end = (t.offset + len) / kTouchChunk;
        for (std::uint64_t c = (t.offset + kTouchChunk - 1) / kTouchChunk; c < end; ++c)
            bits[c / 64].fetch_or(std::uint64_t{1} << (c % 64), std::memory_order_relaxed);
    }

    bool resolve(DeviceAddr addr, std::size_t len, Target& t) noexcept {
        const std::size_t slot = (addr >> kSlotShift) - 1;
        const VkDeviceSize offset = addr & ((DeviceAddr{1} << kSlotShift) - 1);
        if (slot < kSlots) {
            t.buffer = slots_[slot].buffer.load(std::memory_order_acquire);
            t.offset = offset;
            t.mapped = slots_[slot].mapped;
            t.slot = slot;
            if (t.buffer != VK_NULL_HANDLE && offset + len <= slots_[slot].bytes) return true;
        }
        log_error("Vulkan device %d: a copy of %zu bytes at %#llx is outside every slab", info_.index,
                  len, static_cast<unsigned long long>(addr));
        return false;
    }

    // Records one command buffer with `record`, submits it, and waits until it has run.
    template <class Record>
    int submit(Context& c, Record&& record, bool host_reads) noexcept {
        VRAMFS_VK_TRY(vkResetCommandBuffer(c.cb, 0), "vkResetCommandBuffer");
        VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
        bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
        VRAMFS_VK_TRY(vkBeginCommandBuffer(c.cb, &bi), "vkBeginCommandBuffer");
        record(c.cb);
        Queue& q = queues_[c.queue];
        // Sharing a submission, c.cb is left open: the submitter ends it, and records the
        // barrier in the last of the submission's command buffers only.
        if (q.timeline != VK_NULL_HANDLE && batch_barrier_) return submit_together(q, c);
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

    // The copies' writes made available to the host (where it reads them) and to later copies:
    // a barrier's first scope is every command submitted to the queue before it, so one at the
    // end of a submission covers all of its copies, which may then run side by side as cuda's
    // streams do (copies asked for at once are never ordered among themselves). A barrier after
    // every copy of a submission made eight 16 KiB reads take 40-75% longer on the H200.
    static void record_barrier(VkCommandBuffer cb, bool host_reads) noexcept {
        VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
        mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
        mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT |
                           (host_reads ? VK_ACCESS_HOST_READ_BIT : 0);
        vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
                             VK_PIPELINE_STAGE_TRANSFER_BIT | (host_reads ? VK_PIPELINE_STAGE_HOST_BIT : 0), 0,
                             1, &mb, 0, nullptr, 0, nullptr);
    }
    // Submits c's recorded command buffer with whatever others are waiting for the queue, and
    // waits until it has run. A queue runs one submission at a time (the queues of a family do
    // not copy side by side either), and on NVIDIA each costs some 10-16 us of the queue's time
    // however small the copy; several together cost little more than one
    // (docs/performance.md#vulkan). With in_flight_ set, no more than that many submissions are
    // on the queue at once: what arrives meanwhile waits and goes in one submission when one of
    // them has run. Nothing here allocates: both lists hold kContexts from the start, and no
    // more contexts exist.
    int submit_together(Queue& q, Context& c) noexcept {
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
            const std::uint64_t oldest = q.next_value - std::max<std::uint64_t>(in_flight_, 1);
            const bool other = q.submitting;
            if (other && in_flight_ == 0) break; // with no limit the submitter takes c
            lock.unlock();
            if (other) {
                std::this_thread::yield();
            } else if (VkResult r = wait_value(q.timeline, oldest); r != VK_SUCCESS) {
                forget(q, c);
                return vk_failure(r, "waiting for a copy's turn on its queue");
            } else {
                reached(q, oldest); // so may_submit need not read the timeline again
            }
            lock.lock();
        }
        lock.unlock();
        if (VkResult r = wait_value(q.timeline, mine); r != VK_SUCCESS) {
            forget(q, c); // the caller gives c back: no submission may still hold it
            return vk_failure(r, "waiting for a copy's submission");
        }
        reached(q, mine);
        return c.batch_error.load(std::memory_order_acquire);
    }
    // Whether a submission may go on q now (q.mutex held): with in_flight_ set, only while fewer
    // than that are on the queue. Where the timeline cannot be read, yes: the waits will fail.
    // What the waiters have seen is asked first: reading the timeline is a driver call.
    bool may_submit(Queue& q) noexcept {
        if (in_flight_ == 0 || q.next_value - 1 - q.done.load(std::memory_order_relaxed) < in_flight_) return true;
        std::uint64_t done = 0;
        if (vkGetSemaphoreCounterValue(dev_, q.timeline, &done) != VK_SUCCESS) return true;
        reached(q, done);
        return q.next_value - 1 - done < in_flight_;
    }
    static void reached(Queue& q, std::uint64_t value) noexcept {
        std::uint64_t seen = q.done.load(std::memory_order_relaxed);
        while (seen < value && !q.done.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
        }
    }
    // After a failed wait (a lost device): takes c off the waiting list, or waits until the
    // submission that took it has been made.
    void forget(Queue& q, Context& c) noexcept {
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
    // One vkQueueSubmit of q.taken, signalling `value`. Where it fails, each of them is told,
    // and the timeline is moved on from the host so that none waits for ever. With
    // batch_barrier_ their command buffers come open: ended here, the last after the barrier
    // (their threads wait meanwhile, so nothing else touches them or their pools).
    void submit_taken(Queue& q, std::uint64_t value) noexcept {
        std::array<VkCommandBuffer, kContexts> cbs;
        std::uint32_t n = 0;
        VkResult r = VK_SUCCESS;
        for (Context* t : q.taken) {
            cbs[n++] = t->cb;
            if (!batch_barrier_) continue;
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
        const int err = vk_failure(r, "vkQueueSubmit");
        for (Context* t : q.taken) t->batch_error.store(err, std::memory_order_release);
        // The value may only be signalled from here once the submissions before it have run.
        if (value > 1) (void)wait_value(q.timeline, value - 1);
        VkSemaphoreSignalInfo sig{VK_STRUCTURE_TYPE_SEMAPHORE_SIGNAL_INFO};
        sig.semaphore = q.timeline;
        sig.value = value;
        if (VkResult sr = vkSignalSemaphore(dev_, &sig); sr != VK_SUCCESS)
            (void)vk_failure(sr, "vkSignalSemaphore after a failed submission");
    }
    // Calls `poll` (VK_NOT_READY: not yet) for up to spin_us_, then `sleep`, which waits in the
    // driver: how every copy's completion is waited for.
    template <class Poll, class Sleep>
    VkResult poll_then_sleep(Poll&& poll, Sleep&& sleep) noexcept {
        if (spin_us_ > 0) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_us_);
            do {
                const VkResult st = poll();
                if (st != VK_NOT_READY) return st;
            } while (std::chrono::steady_clock::now() < until);
        }
        return sleep();
    }
    // Waits until `timeline` reaches `value`.
    VkResult wait_value(VkSemaphore timeline, std::uint64_t value) noexcept {
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
    // Waits until `fence` is signalled.
    VkResult wait_fence(VkFence fence) noexcept {
        return poll_then_sleep([&] { return vkGetFenceStatus(dev_, fence); },
                               [&] { return vkWaitForFences(dev_, 1, &fence, VK_TRUE, UINT64_MAX); });
    }

    // The index in `qcis` of the family that copies fastest: the sum over a 4 KiB and a 1 MiB
    // copy, each way, of the best of five (after three unmeasured, as an idle GPU answers the
    // first ones slowly) on the family's first queue. 0 if it cannot tell. Leaves family_ and
    // queues_[0] for open() to set.
    std::size_t probe_families(const std::vector<VkDeviceQueueCreateInfo>& qcis) noexcept {
        VkBuffer db;
        VkDeviceMemory dm;
        if (make_buffer(kStagingBytes, device_type_, db, dm)) return 0;
        std::size_t best = 0;
        double best_us = 0;
        for (std::size_t i = 0; i < qcis.size(); ++i) {
            const double us = probe_family(qcis[i].queueFamilyIndex, db);
            log_debug("Vulkan device %d: queue family %u copies in %.1f us", info_.index,
                      qcis[i].queueFamilyIndex, us);
            if (us > 0 && (best_us == 0 || us < best_us)) {
                best = i;
                best_us = us;
            }
        }
        destroy_buffer(db, dm);
        return best;
    }
    // Microseconds for probe_families' copies on `family`, between a copy context's staging
    // buffer and `device` and as the I/O path submits them; 0 if one failed.
    double probe_family(std::uint32_t family, VkBuffer device) noexcept {
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

    // The host buffer of ours that holds [p, p + len), if any.
    bool host_region(const void* p, std::size_t len, VkBuffer& buf, VkDeviceSize& offset) noexcept {
        const char* q = static_cast<const char*>(p);
        std::shared_lock lock(host_mutex_);
        for (const HostRegion& h : host_)
            if (q >= h.base && q + len <= h.base + h.bytes) {
                buf = h.buffer;
                offset = static_cast<VkDeviceSize>(q - h.base);
                return true;
            }
        return false;
    }

    int copy(DeviceAddr addr, void* host, std::size_t len, bool to_device) noexcept {
        if (len == 0) return 0;
        Target t;
        if (!resolve(addr, len, t)) return EIO;
        // The host reads what a copy leaves: a read's host buffer, or, with mapped slabs, the
        // slab itself (do_read).
        const bool host_reads = !to_device || mapped_writes_;
        Context& c = acquire();
        int err = 0;
        VkBuffer hb;
        VkDeviceSize ho;
        if (host_region(host, len, hb, ho)) { // straight from or into our host buffer
            err = submit(c, [&](VkCommandBuffer cb) {
                if (to_device) {
                    const VkBufferCopy r{ho, t.offset, len};
                    vkCmdCopyBuffer(cb, hb, t.buffer, 1, &r);
                } else {
                    const VkBufferCopy r{t.offset, ho, len};
                    vkCmdCopyBuffer(cb, t.buffer, hb, 1, &r);
                }
            }, host_reads);
        } else { // through the context's staging buffer, 1 MiB at a time
            char* h = static_cast<char*>(host);
            for (std::size_t done = 0; done < len && !err;) {
                const std::size_t n = std::min(len - done, kStagingBytes);
                if (to_device) std::memcpy(c.mapped, h + done, n);
                err = submit(c, [&](VkCommandBuffer cb) {
                    if (to_device) {
                        const VkBufferCopy r{0, t.offset + done, n};
                        vkCmdCopyBuffer(cb, c.staging, t.buffer, 1, &r);
                    } else {
                        const VkBufferCopy r{t.offset + done, 0, n};
                        vkCmdCopyBuffer(cb, t.buffer, c.staging, 1, &r);
                    }
                }, host_reads);
                if (!err && !to_device) std::memcpy(h + done, c.mapped, n);
                done += n;
            }
        }
        release(c);
        return err;
    }

    VkPhysicalDevice pd_;
    DeviceInfo info_;
    VkDevice dev_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties mp_{};
    int heap_ = -1, device_type_ = -1, host_type_ = -1;
    const bool has_budget_; // VK_EXT_memory_budget: budgets come from the driver
    const bool transfer_writes_;  // asked for: writes on the transfer queue even where mapping works
    bool mapped_writes_ = false; // slabs are mapped and the CPU writes into them
    const unsigned spin_us_;     // how long a copy's fence is polled before sleeping on it
    const std::size_t queue_write_min_;  // with mapped writes: from this size on, on the queue
    const std::size_t mapped_read_max_;  // with mapped writes: reads up to this by the CPU
    const bool fresh_on_queue_;          // with mapped writes: large writes to untouched pages too
    bool host_import_;       // host buffers are our memory, imported (VK_EXT_external_memory_host)
    bool batch_;             // copies asked for at once share a submission (submit_together)
    const bool batch_barrier_; // with batch_: one barrier ends each submission, not each copy
    const unsigned in_flight_; // with batch_: most submissions on a queue at once; 0: no limit
    const unsigned forced_family_; // VulkanTuning::kAuto: probe
    const unsigned max_queues_;
    PFN_vkGetMemoryHostPointerPropertiesEXT host_pointer_properties_ = nullptr;
    std::size_t import_align_ = 4096;
    std::atomic<bool> import_failed_{false};
    std::uint32_t family_ = 0, queue_count_ = 1;
    static constexpr VkDeviceSize kWarmBytes = 64 << 10;
    VkBuffer warm_ = VK_NULL_HANDLE; // device memory the warm-up copies use
    VkDeviceMemory warm_mem_ = VK_NULL_HANDLE;
    std::array<Queue, kQueues> queues_;
    std::array<Context, kContexts> contexts_;
    std::mutex ctx_mutex_;
    std::condition_variable ctx_free_;
    std::vector<Context*> free_contexts_;
    std::array<Slot, kSlots> slots_;
    std::mutex slot_mutex_;
    std::vector<std::size_t> free_slots_;
    std::atomic<std::uint64_t> held_{0};
    std::shared_mutex host_mutex_;
    std::vector<HostRegion> host_;
};

} // namespace

bool list_vulkan_devices(std::vector<VulkanDeviceReport>& out, std::string& error) {
    VkInstance inst = instance(error);
    if (inst == VK_NULL_HANDLE) return false;
    const auto devices = storage_devices(inst);
    if (devices.empty()) {
        error = "no Vulkan device with device-local memory found";
        return false;
    }
    for (std::size_t i = 0; i < devices.size(); ++i) out.push_back(describe(devices[i], static_cast<int>(i)));
    return true;
}

std::unique_ptr<StorageBackend> make_vulkan_backend(int device, const VulkanTuning& tuning,
                                                    std::string& error, bool* bad_index) {
    VkInstance inst = instance(error);
    if (inst == VK_NULL_HANDLE) return nullptr;
    const auto devices = storage_devices(inst);
    if (device < 0 || static_cast<std::size_t>(device) >= devices.size()) {
        if (bad_index) *bad_index = true;
        error = "Vulkan device " + std::to_string(device) + " does not exist (" +
                std::to_string(devices.size()) + " with device-local memory found)";
        return nullptr;
    }
    VulkanDeviceReport r = describe(devices[static_cast<std::size_t>(device)], device);
    // A CPU driver (lavapipe) says so wherever the device is named: its memory is system RAM.
    r.info.name += " (" + r.vendor + (r.type == "CPU" ? " CPU driver, system RAM" : "") + ", Vulkan " +
                   r.api_version + ")";
    auto backend = std::make_unique<VulkanBackend>(devices[static_cast<std::size_t>(device)], r, tuning);
    if (!backend->open(error)) return nullptr;
    return backend;
}

} // namespace vramfs

#else // built without Vulkan

namespace vramfs {
bool list_vulkan_devices(std::vector<VulkanDeviceReport>&, std::string& error) {
    error = "this vramfs was built without Vulkan support";
    return false;
}
std::unique_ptr<StorageBackend> make_vulkan_backend(int, const VulkanTuning&, std::string& error, bool*) {
    error = "this vramfs was built without Vulkan support";
    return nullptr;
}
} // namespace vramfs

#endif
