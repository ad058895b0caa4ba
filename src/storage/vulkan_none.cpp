// The Vulkan backend's entry points in a build without Vulkan (-DVRAMFS_WITH_VULKAN=OFF, or no
// libvulkan-dev): each says so.
#include "vramfs/storage/backend.hpp"

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
