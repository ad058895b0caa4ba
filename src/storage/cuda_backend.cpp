// CudaBackend: storage in VRAM through the CUDA runtime; with cuda_check.hpp, the only code that
// includes CUDA headers.
#include "vramfs/storage/backend.hpp"

#include <cerrno>
#include <string>

#ifdef VRAMFS_HAVE_CUDA
// Each host thread copies on its own default stream (cuda_check.hpp sets
// CUDA_API_PER_THREAD_DEFAULT_STREAM), so FUSE workers do not serialise on the legacy stream.
#include "cuda_check.hpp"

#include <mutex>

namespace vramfs {
namespace {

using cuda::cuda_reason;

class CudaBackend final : public StorageBackend {
public:
    explicit CudaBackend(DeviceInfo info) : info_(std::move(info)) {}
    const char* kind() const noexcept override { return "cuda"; }
    const DeviceInfo& device() const noexcept override { return info_; }

    std::uint64_t do_query_free() noexcept override {
        std::size_t free = 0, total = 0;
        if (bind() != 0 || !VRAMFS_CUDA_LOG(cudaMemGetInfo(&free, &total), "cudaMemGetInfo")) return 0;
        return free;
    }
    int do_allocate(std::uint64_t bytes, DeviceAddr& out) noexcept override {
        if (int err = bind()) return err;
        void* p = nullptr;
        VRAMFS_CUDA_TRY(cudaMalloc(&p, bytes), "cudaMalloc");
        out = reinterpret_cast<DeviceAddr>(p);
        return 0;
    }
    void do_release(DeviceAddr addr, std::uint64_t) noexcept override {
        if (bind() != 0) return;
        VRAMFS_CUDA_LOG(cudaFree(reinterpret_cast<void*>(addr)), "cudaFree");
    }
    int do_write(DeviceAddr dst, const void* src, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemcpy(reinterpret_cast<void*>(dst), src, len, cudaMemcpyHostToDevice),
                        "cudaMemcpy host to device");
        // A copy from pageable memory may return before its DMA lands; another thread's read
        // on another stream must see the data, so wait for it.
        VRAMFS_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
        return 0;
    }
    int do_read(DeviceAddr src, void* dst, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemcpy(dst, reinterpret_cast<const void*>(src), len,
                                   cudaMemcpyDeviceToHost),
                        "cudaMemcpy device to host");
        return 0;
    }
    int do_zero(DeviceAddr dst, std::size_t len) noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaMemset(reinterpret_cast<void*>(dst), 0, len), "cudaMemset");
        VRAMFS_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
        return 0;
    }
    void* do_allocate_host(std::size_t bytes) noexcept override {
        void* p = nullptr;
        if (bind() != 0 ||
            !VRAMFS_CUDA_LOG(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc"))
            return nullptr;
        return p;
    }
    void do_release_host(void* p, std::size_t) noexcept override {
        if (p) VRAMFS_CUDA_LOG(cudaFreeHost(p), "cudaFreeHost");
    }
    ~CudaBackend() override {
        if (warm_device_ && bind() == 0) VRAMFS_CUDA_LOG(cudaFree(warm_device_), "cudaFree");
        if (warm_host_) VRAMFS_CUDA_LOG(cudaFreeHost(warm_host_), "cudaFreeHost");
    }
    // Before a worker's first request: its default stream (made at first use), and one copy
    // each way and a fill as the I/O path makes them, so that whatever the runtime and the
    // driver set up per thread for those exists before memory can be short (with Vulkan, a
    // worker's first copy under pressure in the daemon's own cgroup hung; over io_uring there
    // are a few such threads per CPU, most of which see their first request late).
    int do_prepare_thread() noexcept override {
        if (int err = bind()) return err;
        VRAMFS_CUDA_TRY(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
        {
            std::lock_guard lock(warm_mutex_);
            if (!warm_device_) {
                VRAMFS_CUDA_TRY(cudaMalloc(&warm_device_, kWarmBytes), "cudaMalloc");
                if (cudaError_t e = cudaHostAlloc(&warm_host_, kWarmBytes, cudaHostAllocPortable); e != cudaSuccess) {
                    VRAMFS_CUDA_LOG(cudaFree(warm_device_), "cudaFree");
                    warm_device_ = nullptr;
                    VRAMFS_CUDA_TRY(e, "cudaHostAlloc");
                }
            }
        }
        if (int err = do_write(reinterpret_cast<DeviceAddr>(warm_device_), warm_host_, kWarmBytes)) return err;
        if (int err = do_read(reinterpret_cast<DeviceAddr>(warm_device_), warm_host_, kWarmBytes)) return err;
        return do_zero(reinterpret_cast<DeviceAddr>(warm_device_), kWarmBytes);
    }

private:
    static constexpr std::size_t kWarmBytes = 64 << 10;
    // The CUDA runtime keeps the current device per host thread; FUSE workers start unbound.
    int bind() noexcept {
        thread_local int bound = -1;
        if (bound == info_.index) return 0;
        VRAMFS_CUDA_TRY(cudaSetDevice(info_.index), "cudaSetDevice");
        bound = info_.index;
        return 0;
    }
    DeviceInfo info_;
    std::mutex warm_mutex_;
    void* warm_device_ = nullptr; // scratch for do_prepare_thread's copies, made by the first
    void* warm_host_ = nullptr;
};

bool query_device(int index, DeviceInfo& info, std::string& error) {
    cudaDeviceProp prop{};
    cudaError_t err = cudaGetDeviceProperties(&prop, index);
    if (err != cudaSuccess) {
        error = "CUDA device " + std::to_string(index) + ": " + cuda_reason(err);
        return false;
    }
    std::size_t free = 0, total = 0;
    if ((err = cudaSetDevice(index)) != cudaSuccess ||
        (err = cudaMemGetInfo(&free, &total)) != cudaSuccess) {
        error = "CUDA device " + std::to_string(index) + ": " + cuda_reason(err);
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
    // A missing driver is an answer here (--check reports it), not an error to log.
    driver = runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
    (void)cudaGetLastError();
}

bool list_cuda_devices(std::vector<DeviceInfo>& out, std::string& error) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        error = "no usable CUDA device: " + cuda_reason(err);
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
        error = "no usable CUDA device: " + cuda_reason(err);
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
