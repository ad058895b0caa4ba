// What the Vulkan backend's parts share: Vulkan's headers, its results as errnos, memory types
// and plain buffers. Private to the storage layer; only src/storage/vulkan includes Vulkan.
#pragma once

#include "vramfs/storage/backend.hpp"

#include <cstdint>
#include <string>
#include <vector>
#include <vulkan/vulkan.h>

namespace vramfs::vk {

const char* result_name(VkResult r) noexcept;

// A failed call as an errno: out of memory ENOSPC (not logged: the caller reports it), a lost
// device kDeviceLost, anything else EIO; all but ENOSPC with a log line naming the call.
int failure(VkResult r, const char* what) noexcept;

#define VRAMFS_VK_TRY(call, what)                                                                  \
    do {                                                                                           \
        const VkResult vramfs_vk_ = (call);                                                        \
        if (vramfs_vk_ != VK_SUCCESS) return ::vramfs::vk::failure(vramfs_vk_, what);              \
    } while (0)

// The device-local heap vramfs uses on a physical device: the largest one; -1 if none.
int storage_heap(const VkPhysicalDeviceMemoryProperties& mp);

// Budget and usage of a heap (VK_EXT_memory_budget); false without the extension.
bool heap_budget(VkPhysicalDevice pd, bool has_budget, int heap, std::uint64_t& budget,
                 std::uint64_t& usage);

// A memory type on `heap` (-1: any) with all of `want`, scoring `prefer` bits up and `avoid`
// bits down; -1 if none has `want`.
int pick_type(const VkPhysicalDeviceMemoryProperties& mp, int heap, VkMemoryPropertyFlags want,
              VkMemoryPropertyFlags prefer, VkMemoryPropertyFlags avoid);

// A transfer source and destination buffer of `bytes` bound to new memory of `type`: 0 or an
// errno (see failure). `device` names the device in log lines.
int make_buffer(VkDevice dev, int device, std::uint64_t bytes, int type, VkBuffer& buf,
                VkDeviceMemory& mem) noexcept;
void destroy_buffer(VkDevice dev, VkBuffer buf, VkDeviceMemory mem) noexcept;

} // namespace vramfs::vk
