// CudaBackend: storage in VRAM through the CUDA runtime; the only file that includes CUDA headers.
#include "vramfs/util/log.hpp"
#include "vramfs/storage/backend.hpp"

#include <cerrno>
#include <string>

#ifdef VRAMFS_HAVE_CUDA
// Each host thread copies on its own default stream, so FUSE workers do not serialise on the
// legacy stream.
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda_runtime_api.h>

namespace vramfs {
namespace {

// Logs a failed CUDA call with its place, clears the (non-sticky) error and maps it to errno:
// out of memory becomes ENOSPC, anything else EIO.
int cuda_failure(cudaError_t err, const char* what, const char* file, int line) noexcept {
    (void)cudaGetLastError();
    if (err == cudaErrorMemoryAllocation) return ENOSPC;
    log_error("CUDA %s failed at %s:%d: %s (%s)", what, file, line, cudaGetErrorName(err),
              cudaGetErrorString(err));
    return EIO;
}
#define VRAMFS_CUDA_TRY(call, what)                                                                \
    do {                                                                                           \
        cudaError_t vramfs_err_ = (call);                                                          \
        if (vramfs_err_ != cudaSuccess) return cuda_failure(vramfs_err_, what, __FILE__, __LINE__); \
    } while (0)

class CudaBackend final : public StorageBackend {
public:
    explicit CudaBackend(DeviceInfo info) : info_(std::move(info)) {}
    const char* kind() const noexcept override { return "cuda"; }
    const DeviceInfo& device() const noexcept override { return info_; }

    std::uint64_t query_free() noexcept override {
        std::size_t free = 0, total = 0;
        if (bind() != 0 || cudaMemGetInfo(&free, &total) != cudaSuccess) {
            (void)cudaGetLastError();
            return 0;
        }
        return free;
    }
    int allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        if (int err = bind()) return err;
        void* p = nullptr;
        VRAMFS_CUDA_TRY(cudaMalloc(&p, bytes), "cudaMalloc");
        out = reinterpret_cast<DeviceAddr>(p);
        return 0;
    }
    void release(DeviceAddr addr, std::uint64_t) noexcept override {
        if (bind() != 0) return;
        cudaError_t err = cudaFree(reinterpret_cast<void*>(addr));
        if (err != cudaSuccess) cuda_failure(err, "cudaFree", __FILE__, __LINE__);
    }
    int write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemcpy(reinterpret_cast<void*>(dst), src, len, cudaMemcpyHostToDevice),
                        "cudaMemcpy host to device");
        // A copy from pageable memory may return before its DMA lands; another thread's read
        // on another stream must see the data, so wait for it.
        VRAMFS_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
        return 0;
    }
    int read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemcpy(dst, reinterpret_cast<const void*>(src), len,
                                   cudaMemcpyDeviceToHost),
                        "cudaMemcpy device to host");
        return 0;
    }
    int zero(DeviceAddr dst, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemset(reinterpret_cast<void*>(dst), 0, len), "cudaMemset");
        VRAMFS_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
        return 0;
    }
    void* allocate_host_buffer(std::size_t bytes) noexcept override {
        if (bind() != 0) return nullptr;
        void* p = nullptr;
        if (cudaHostAlloc(&p, bytes, cudaHostAllocPortable) != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
        }
        return p;
    }
    void release_host_buffer(void* p, std::size_t) noexcept override {
        if (p && cudaFreeHost(p) != cudaSuccess) (void)cudaGetLastError();
    }

private:
    // The CUDA runtime keeps the current device per host thread; FUSE workers start unbound.
    int bind() noexcept {
        thread_local int bound = -1;
        if (bound == info_.index) return 0;
        VRAMFS_CUDA_TRY(cudaSetDevice(info_.index), "cudaSetDevice");
        bound = info_.index;
        return 0;
    }
    DeviceInfo info_;
};

std::string describe(cudaError_t err) {
    (void)cudaGetLastError();
    return std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ")";
}

bool query_device(int index, DeviceInfo& info, std::string& error) {
    cudaDeviceProp prop{};
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        error = "CUDA device " + std::to_string(index) + ": " + describe(err);
        return false;
    }
    std::size_t free = 0, total = 0;
    if ((err = cudaSetDevice(index)) != cudaSuccess ||
        (err = cudaMemGetInfo(&free, &total)) != cudaSuccess) {
        error = "CUDA device " + std::to_string(index) + ": " + describe(err);
        return false;
    }
    info.index = index;
    info.name = prop.name;
    info.free_bytes = free;
    info.total_bytes = total;
    return true;
}

} // namespace

void cuda_versions(int& driver, int& runtime) noexcept {
    driver = runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
    (void)cudaGetLastError();
}

bool list_cuda_devices(std::vector<DeviceInfo>& out, std::string& error) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        error = "no usable CUDA device: " + describe(err);
        return false;
    }
    for (int i = 0; i < count; ++i) {
        DeviceInfo info;
        if (!query_device(i, info, error)) return false;
        out.push_back(std::move(info));
    }
    if (count == 0) {
        error = "no CUDA device found";
        return false;
    }
    return true;
}

std::unique_ptr<StorageBackend> make_cuda_backend(int device, std::string& error,
                                                  bool* bad_index) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        error = "no usable CUDA device: " + describe(err);
        return nullptr;
    }
    if (device < 0 || device >= count) {
        if (bad_index) *bad_index = true;
        error = "CUDA device " + std::to_string(device) + " does not exist (" +
                std::to_string(count) + " device" + (count == 1 ? "" : "s") + " found)";
        return nullptr;
    }
    DeviceInfo info;
    if (!query_device(device, info, error)) return nullptr;
    return std::make_unique<CudaBackend>(std::move(info));
}

} // namespace vramfs

#else // built without CUDA

namespace vramfs {
void cuda_versions(int& driver, int& runtime) noexcept { driver = runtime = 0; }
bool list_cuda_devices(std::vector<DeviceInfo>&, std::string& error) {
    error = "this vramfs was built without CUDA support";
    return false;
}
std::unique_ptr<StorageBackend> make_cuda_backend(int, std::string& error, bool*) {
    error = "this vramfs was built without CUDA support";
    return nullptr;
}
} // namespace vramfs

#endif
