// StorageBackend: the one place a lost device is recorded.
#include "vramfs/storage/backend.hpp"

#include "vramfs/util/log.hpp"

namespace vramfs {

void StorageBackend::mark_lost() noexcept {
    if (lost_.exchange(true)) return;
    log_error("%s device %d (%s) is lost: every request on its files now fails with EIO at once; "
              "files on other devices keep working. Unmount, and mount again once the device is back.",
              kind(), device().index, device().name.c_str());
}

} // namespace vramfs
