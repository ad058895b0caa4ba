// The one way CUDA calls are checked in vramfs (private to the storage layer). Every failed
// call clears the runtime's (non-sticky) last error and keeps its reason: a log line names
// the call, the place, the error's name and its text.
//   VRAMFS_CUDA_TRY(call, what)  in a function returning an errno: out of memory returns
//                                ENOSPC (not logged: the caller reports it), a lost device
//                                kDeviceLost, anything else EIO;
//   VRAMFS_CUDA_LOG(call, what)  for paths with nothing to return (a release, a destructor):
//                                never throws, logs a failure, yields true on success;
//   cuda_reason(err)             the reason as text, for messages that go to the user.
#pragma once

#include "vramfs/storage/backend.hpp"
#include "vramfs/util/log.hpp"

#include <cerrno>
#include <string>

#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda_runtime_api.h>

namespace vramfs::cuda {

inline std::string cuda_reason(cudaError_t err) {
    (void)cudaGetLastError();
    return std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ")";
}

// Errors after which the context is unusable for good (sticky, or the device gone): an Xid, a
// GPU fallen off the bus, an uncorrectable ECC error, a context that did not survive a reset.
inline bool device_lost(cudaError_t err) noexcept {
    switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorNoDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorContextIsDestroyed:
    case cudaErrorDeviceUninitialized:
    case cudaErrorSystemNotReady:
    case cudaErrorCudartUnloading:
    case cudaErrorUnknown: return true;
    default: return false;
    }
}

// Clears the error, logs it unless it is out of memory, and maps it to an errno: ENOSPC for
// out of memory, kDeviceLost when the device is gone (the backend then stays lost), else EIO.
inline int failure(cudaError_t err, const char* what, const char* file, int line) noexcept {
    (void)cudaGetLastError();
    if (err == cudaErrorMemoryAllocation) return ENOSPC;
    log_error("CUDA %s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorName(err),
              cudaGetErrorString(err));
    return device_lost(err) ? kDeviceLost : EIO;
}

inline bool logged(cudaError_t err, const char* what, const char* file, int line) noexcept {
    if (err == cudaSuccess) return true;
    (void)cudaGetLastError();
    log_error("CUDA %s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorName(err),
              cudaGetErrorString(err));
    return false;
}

} // namespace vramfs::cuda

#define VRAMFS_CUDA_TRY(call, what)                                                                \
    do {                                                                                           \
        const cudaError_t vramfs_err_ = (call);                                                    \
        if (vramfs_err_ != cudaSuccess)                                                            \
            return ::vramfs::cuda::failure(vramfs_err_, what, __FILE__, __LINE__);                 \
    } while (0)

#define VRAMFS_CUDA_LOG(call, what) ::vramfs::cuda::logged((call), what, __FILE__, __LINE__)
