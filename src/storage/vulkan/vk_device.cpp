// Vulkan device discovery (the instance, the devices vramfs counts, what --list-devices says of
// them), the helpers every part of the backend shares (vk_common.hpp), and the backend's
// factory.
#include "vk_backend.hpp"
#include "vk_common.hpp"

#include "vramfs/util/log.hpp"

#include <cstdio>
#include <cstring>
#include <mutex>

namespace vramfs::vk {

const char* result_name(VkResult r) noexcept {
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

int failure(VkResult r, const char* what) noexcept {
    if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ||
        r == VK_ERROR_TOO_MANY_OBJECTS)
        return ENOSPC;
    log_error("Vulkan %s failed: %s (%d)", what, result_name(r), static_cast<int>(r));
    return r == VK_ERROR_DEVICE_LOST ? kDeviceLost : EIO;
}

int storage_heap(const VkPhysicalDeviceMemoryProperties& mp) {
    int best = -1;
    for (std::uint32_t h = 0; h < mp.memoryHeapCount; ++h)
        if ((mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
            (best < 0 || mp.memoryHeaps[h].size > mp.memoryHeaps[best].size))
            best = static_cast<int>(h);
    return best;
}

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

int make_buffer(VkDevice dev, int device, std::uint64_t bytes, int type, VkBuffer& buf,
                VkDeviceMemory& mem) noexcept {
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = bytes;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VRAMFS_VK_TRY(vkCreateBuffer(dev, &bci, nullptr, &buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev, buf, &req);
    if (!(req.memoryTypeBits & (1u << type))) {
        vkDestroyBuffer(dev, buf, nullptr);
        log_error("Vulkan device %d: buffers cannot use memory type %d", device, type);
        return EIO;
    }
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
    if (VkResult r = vkAllocateMemory(dev, &mai, nullptr, &mem); r != VK_SUCCESS) {
        vkDestroyBuffer(dev, buf, nullptr);
        return failure(r, "vkAllocateMemory");
    }
    if (VkResult r = vkBindBufferMemory(dev, buf, mem, 0); r != VK_SUCCESS) {
        destroy_buffer(dev, buf, mem);
        return failure(r, "vkBindBufferMemory");
    }
    return 0;
}

void destroy_buffer(VkDevice dev, VkBuffer buf, VkDeviceMemory mem) noexcept {
    vkDestroyBuffer(dev, buf, nullptr);
    vkFreeMemory(dev, mem, nullptr);
}

namespace {

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
            failed = std::string("cannot start Vulkan (vkCreateInstance: ") + result_name(r) +
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

} // namespace

} // namespace vramfs::vk

namespace vramfs {

bool list_vulkan_devices(std::vector<VulkanDeviceReport>& out, std::string& error) {
    VkInstance inst = vk::instance(error);
    if (inst == VK_NULL_HANDLE) return false;
    const auto devices = vk::storage_devices(inst);
    if (devices.empty()) {
        error = "no Vulkan device with device-local memory found";
        return false;
    }
    for (std::size_t i = 0; i < devices.size(); ++i) out.push_back(vk::describe(devices[i], static_cast<int>(i)));
    return true;
}

std::unique_ptr<StorageBackend> make_vulkan_backend(int device, const VulkanTuning& tuning,
                                                    std::string& error, bool* bad_index) {
    VkInstance inst = vk::instance(error);
    if (inst == VK_NULL_HANDLE) return nullptr;
    const auto devices = vk::storage_devices(inst);
    if (device < 0 || static_cast<std::size_t>(device) >= devices.size()) {
        if (bad_index) *bad_index = true;
        error = "Vulkan device " + std::to_string(device) + " does not exist (" +
                std::to_string(devices.size()) + " with device-local memory found)";
        return nullptr;
    }
    VulkanDeviceReport r = vk::describe(devices[static_cast<std::size_t>(device)], device);
    // A CPU driver (lavapipe) says so wherever the device is named: its memory is system RAM.
    r.info.name += " (" + r.vendor + (r.type == "CPU" ? " CPU driver, system RAM" : "") + ", Vulkan " +
                   r.api_version + ")";
    auto backend = std::make_unique<vk::VulkanBackend>(devices[static_cast<std::size_t>(device)], r, tuning);
    if (!backend->open(error)) return nullptr;
    return backend;
}

} // namespace vramfs
