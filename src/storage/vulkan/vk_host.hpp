// Host buffers of the Vulkan backend: memory the device copies from and to directly, so that a
// FUSE receive buffer allocated here needs no staging copy.
#pragma once

#include "vk_common.hpp"

#include <atomic>
#include <cstddef>
#include <shared_mutex>
#include <vector>

namespace vramfs::vk {

// Where the driver can import host memory (VK_EXT_external_memory_host), a buffer is the
// daemon's own anonymous memory: the kernel copies requests into it and replies out of it as
// fast as into any, and NVIDIA's own host-visible memory made those copies slower. Otherwise
// it is the driver's host-visible memory, mapped. Imported memory must outlive the
// VkDeviceMemory made of it, and is kept out of fork() children (util/memory.hpp).
// Allocation takes a lock and may call the driver: buffers are made at mount, not per request.
class VulkanHostMemory {
public:
    static constexpr std::size_t kBuffers = 1024; // at most, over the device's life

    // Once the device exists: whether to import (false leaves the driver's memory) and how.
    // Logs which it is. `device` names the device in log lines.
    void open(VkDevice dev, VkPhysicalDevice pd, const VkPhysicalDeviceMemoryProperties& mp,
              int host_type, int device, bool import) noexcept;
    bool importing() const noexcept { return import_; }

    void* allocate(std::size_t bytes) noexcept; // nullptr when none can be had
    void release(void* p) noexcept;             // what allocate gave
    // The buffer of ours that holds [p, p + len), if any, and where in it p is.
    bool region(const void* p, std::size_t len, VkBuffer& buf, VkDeviceSize& offset) noexcept;

private:
    struct Region {
        char* base;
        std::size_t bytes;
        VkBuffer buffer;
        VkDeviceMemory memory;
        std::size_t imported; // bytes of our own mapping imported into `memory`; 0: the driver's
    };
    bool driver_memory(std::size_t bytes, Region& r) noexcept;
    bool import(std::size_t bytes, Region& r) noexcept;
    bool import_memory(char* p, std::size_t len, Region& r) noexcept;
    void free(const Region& r) noexcept;

    VkDevice dev_ = VK_NULL_HANDLE;
    VkPhysicalDeviceMemoryProperties mp_{};
    int host_type_ = -1;
    int device_ = 0;
    bool import_ = false;
    PFN_vkGetMemoryHostPointerPropertiesEXT host_pointer_properties_ = nullptr;
    std::size_t import_align_ = 4096;
    std::atomic<bool> import_failed_{false};
    std::shared_mutex mutex_;
    std::vector<Region> regions_; // capacity kBuffers from open()
};

} // namespace vramfs::vk
