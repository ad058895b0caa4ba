// VulkanHostMemory: imported or driver host memory for the backend's host buffers.
#include "vk_host.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"

#include <algorithm>
#include <mutex>
#include <unistd.h>

namespace vramfs::vk {

void VulkanHostMemory::open(VkDevice dev, VkPhysicalDevice pd, const VkPhysicalDeviceMemoryProperties& mp,
                            int host_type, int device, bool import) noexcept {
    dev_ = dev;
    mp_ = mp;
    host_type_ = host_type;
    device_ = device;
    if (import) {
        host_pointer_properties_ = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
            vkGetDeviceProcAddr(dev_, "vkGetMemoryHostPointerPropertiesEXT"));
        VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp{
            VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
        VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
        p2.pNext = &hp;
        vkGetPhysicalDeviceProperties2(pd, &p2);
        import_align_ = std::max<std::size_t>(hp.minImportedHostPointerAlignment,
                                              static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
    }
    import_ = import && host_pointer_properties_ != nullptr;
    regions_.reserve(kBuffers);
    log_debug("Vulkan device %d: host buffers %s", device_,
              import_ ? "are our own memory, imported (VK_EXT_external_memory_host)"
                      : "come from the driver");
}

void* VulkanHostMemory::allocate(std::size_t bytes) noexcept {
    Region r{};
    if (!(import_ && import(bytes, r)) && !driver_memory(bytes, r)) return nullptr;
    std::unique_lock lock(mutex_);
    if (regions_.size() == kBuffers) {
        lock.unlock();
        free(r);
        return nullptr;
    }
    regions_.push_back(r);
    return r.base;
}

void VulkanHostMemory::release(void* p) noexcept {
    Region r{};
    {
        std::unique_lock lock(mutex_);
        auto it = std::find_if(regions_.begin(), regions_.end(), [&](const Region& h) { return h.base == p; });
        if (it == regions_.end()) return;
        r = *it;
        regions_.erase(it);
    }
    free(r);
}

bool VulkanHostMemory::region(const void* p, std::size_t len, VkBuffer& buf, VkDeviceSize& offset) noexcept {
    const char* q = static_cast<const char*>(p);
    std::shared_lock lock(mutex_);
    for (const Region& h : regions_)
        if (q >= h.base && q + len <= h.base + h.bytes) {
            buf = h.buffer;
            offset = static_cast<VkDeviceSize>(q - h.base);
            return true;
        }
    return false;
}

// Host-visible memory from the driver, mapped.
bool VulkanHostMemory::driver_memory(std::size_t bytes, Region& r) noexcept {
    if (make_buffer(dev_, device_, bytes, host_type_, r.buffer, r.memory) != 0) return false;
    void* p = nullptr;
    if (vkMapMemory(dev_, r.memory, 0, VK_WHOLE_SIZE, 0, &p) != VK_SUCCESS) {
        destroy_buffer(dev_, r.buffer, r.memory);
        return false;
    }
    r.base = static_cast<char*>(p);
    r.bytes = bytes;
    r.imported = 0;
    return true;
}

// Anonymous memory of ours, aligned as the driver asks, imported as a buffer's memory; false,
// with nothing left behind, where the driver will not.
bool VulkanHostMemory::import(std::size_t bytes, Region& r) noexcept {
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
        log_warning("Vulkan device %d: the driver would not import host memory; using its own", device_);
    return false;
}

bool VulkanHostMemory::import_memory(char* p, std::size_t len, Region& r) noexcept {
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
        destroy_buffer(dev_, r.buffer, r.memory);
        return false;
    }
    return true;
}

void VulkanHostMemory::free(const Region& r) noexcept {
    if (!r.imported) vkUnmapMemory(dev_, r.memory);
    destroy_buffer(dev_, r.buffer, r.memory); // before the memory it imported goes
    if (r.imported) unmap_host_memory(r.base, r.imported, import_align_);
}

} // namespace vramfs::vk
