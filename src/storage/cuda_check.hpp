// The one way CUDA calls are checked in vramfs (private to the storage layer). Every failed
// call clears the runtime's (non-sticky) last error and keeps its reason: a log line names
// the call, the place, the error's name and its text.
//   VRAMFS_CUDA_TRY(call, what)  in a function returning an errno: out of memory returns
//                                ENOSPC (not logged: the caller reports it), anything else EIO;
//   VRAMFS_CUDA_LOG(call, what)  for paths with nothing to return (a release, a destructor):
//                                never throws, logs a failure, yields true on success;
//   cuda_reason(err)             the reason as text, for messages that go to the user.
#pragma once

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

// Clears the error, logs it unless it is out of memory, and maps it to an errno.
inline int failure(cudaError_t err, const char* what, const char* file, int line) noexcept {
    (void)cudaGetLastError();
    if (err == cudaErrorMemoryAllocation) return ENOSPC;
    log_error("CUDA %s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorName(err),
              cudaGetErrorString(err));
    return EIO;
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
