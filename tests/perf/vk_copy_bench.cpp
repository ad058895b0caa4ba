// vramfs-vk-copy-bench: which way of moving bytes to and from a GPU's memory through Vulkan is
// fastest, the question the Vulkan backend's design rests on:
//   transfer: vkCmdCopyBuffer on a transfer queue between host-visible memory (what the
//             backend's host buffers are) and device-local memory, waited on with a fence;
//   mapped:   the CPU's memcpy into and out of device-local memory that is also host-visible
//             (a GPU's BAR; all of it on NVIDIA with resizable BAR), where the driver has it.
// One line per path, direction and copy size, in GB/s; then, per queue family, eight small reads
// at once: a submission each, one submission for all, and eight threads; then a 1 MiB copy split
// over several families' queues at once, or shared between the CPU (through the mapping) and a
// queue. Not run by ctest.
#include "vramfs/util/wc_copy.hpp"

#include <CLI/CLI.hpp>
#include <vulkan/vulkan.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <immintrin.h>

namespace {

void check(VkResult r, const char* what) {
    if (r != VK_SUCCESS) {
        std::fprintf(stderr, "vramfs-vk-copy-bench: %s failed (%d)\n", what, static_cast<int>(r));
        std::exit(1);
    }
}

struct Buffer {
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    void* mapped = nullptr;
};

int find_type(const VkPhysicalDeviceMemoryProperties& mp, VkMemoryPropertyFlags want,
              VkMemoryPropertyFlags avoid) {
    for (std::uint32_t t = 0; t < mp.memoryTypeCount; ++t)
        if ((mp.memoryTypes[t].propertyFlags & want) == want && !(mp.memoryTypes[t].propertyFlags & avoid))
            return static_cast<int>(t);
    return -1;
}

Buffer make(VkDevice dev, std::uint64_t bytes, int type, bool map) {
    Buffer b;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = bytes;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    check(vkCreateBuffer(dev, &bci, nullptr, &b.buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev, b.buf, &req);
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
    check(vkAllocateMemory(dev, &mai, nullptr, &b.mem), "vkAllocateMemory");
    check(vkBindBufferMemory(dev, b.buf, b.mem, 0), "vkBindBufferMemory");
    if (map) check(vkMapMemory(dev, b.mem, 0, VK_WHOLE_SIZE, 0, &b.mapped), "vkMapMemory");
    return b;
}

void destroy(VkDevice dev, Buffer& b) {
    vkDestroyBuffer(dev, b.buf, nullptr);
    vkFreeMemory(dev, b.mem, nullptr);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

VkCommandBuffer new_command_buffer(VkDevice dev, VkCommandPool pool) {
    VkCommandBufferAllocateInfo cai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = pool;
    cai.commandBufferCount = 1;
    VkCommandBuffer cb;
    check(vkAllocateCommandBuffers(dev, &cai, &cb), "vkAllocateCommandBuffers");
    return cb;
}

// A barrier that makes every earlier copy's writes visible to the host and to later copies, as
// the backend records.
void record_barrier(VkCommandBuffer cb) {
    VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT | VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, nullptr, 0, nullptr);
}

// Records `cb` afresh with one copy, and that barrier after it if `barrier`.
void record_copy(VkCommandBuffer cb, VkBuffer from, VkBuffer to, const VkBufferCopy& r, bool barrier = false) {
    check(vkResetCommandBuffer(cb, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer");
    vkCmdCopyBuffer(cb, from, to, 1, &r);
    if (barrier) record_barrier(cb);
    check(vkEndCommandBuffer(cb), "vkEndCommandBuffer");
}

void submit(VkQueue queue, const VkCommandBuffer* cbs, std::uint32_t n, VkFence fence) {
    VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = n;
    si.pCommandBuffers = cbs;
    check(vkQueueSubmit(queue, 1, &si, fence), "vkQueueSubmit");
}

// Spins until `fence` is signalled.
void poll_fence(VkDevice dev, VkFence fence) {
    VkResult st;
    while ((st = vkGetFenceStatus(dev, fence)) == VK_NOT_READY) {
    }
    check(st, "vkGetFenceStatus");
}

bool has_extension(VkPhysicalDevice pd, const char* name) {
    std::uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateDeviceExtensionProperties(pd, nullptr, &n, exts.data());
    for (const auto& e : exts)
        if (std::strcmp(e.extensionName, name) == 0) return true;
    return false;
}

// `bytes` of our own memory (aligned as the driver asks) imported as a buffer's memory
// (VK_EXT_external_memory_host). The memory itself is left to the process's end.
Buffer import_host(VkDevice dev, VkPhysicalDevice pd, const VkPhysicalDeviceMemoryProperties& mp,
                   std::uint64_t bytes) {
    VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
    VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    p2.pNext = &hp;
    vkGetPhysicalDeviceProperties2(pd, &p2);
    const std::uint64_t align = std::max<std::uint64_t>(hp.minImportedHostPointerAlignment, 4096);
    bytes = (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, bytes);
    if (!p) check(VK_ERROR_OUT_OF_HOST_MEMORY, "aligned_alloc");
    std::memset(p, 5, bytes);
    auto props = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
        vkGetDeviceProcAddr(dev, "vkGetMemoryHostPointerPropertiesEXT"));
    constexpr auto kHandle = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
    VkMemoryHostPointerPropertiesEXT hpp{VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    check(props(dev, kHandle, p, &hpp), "vkGetMemoryHostPointerPropertiesEXT");
    Buffer b;
    VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
    ext.handleTypes = kHandle;
    VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.pNext = &ext;
    bci.size = bytes;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    check(vkCreateBuffer(dev, &bci, nullptr, &b.buf), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(dev, b.buf, &req);
    int type = -1;
    for (std::uint32_t t = 0; t < mp.memoryTypeCount && type < 0; ++t)
        if ((req.memoryTypeBits & hpp.memoryTypeBits & (1u << t)) &&
            (mp.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT))
            type = static_cast<int>(t);
    if (type < 0) check(VK_ERROR_FEATURE_NOT_PRESENT, "a coherent type to import host memory as");
    VkImportMemoryHostPointerInfoEXT imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
    imp.handleType = kHandle;
    imp.pHostPointer = p;
    VkMemoryAllocateInfo mai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.pNext = &imp;
    mai.allocationSize = bytes;
    mai.memoryTypeIndex = static_cast<std::uint32_t>(type);
    check(vkAllocateMemory(dev, &mai, nullptr, &b.mem), "vkAllocateMemory (import)");
    check(vkBindBufferMemory(dev, b.buf, b.mem, 0), "vkBindBufferMemory");
    b.mapped = p;
    return b;
}

// A 1 MiB copy, one thread, fences polled: on each family's first queue alone; split into equal
// pieces over the fastest 2, 3, ... families at once (a submission on each); split into pieces
// in one submission on the fastest; and, for writes into host-visible device memory, a share
// copied by the CPU through the mapping while the fastest queue copies the rest. Whether a
// GPU's copy engines move one large copy faster together than one alone, and whether the host
// memory's kind (the driver's, or ours imported) matters.
void split_copies(VkDevice dev, VkPhysicalDevice pd, const VkPhysicalDeviceMemoryProperties& mp,
                  const std::vector<VkDeviceQueueCreateInfo>& qcis, int local, int host, int bar,
                  bool can_import) {
    constexpr std::uint64_t kBytes = 1 << 20;
    constexpr int kRounds = 1000;
    struct Fam {
        std::uint32_t index;
        VkQueue queue;
        VkCommandPool pool;
        std::vector<VkCommandBuffer> cbs;
        VkFence fence;
        double us = 0;
    };
    std::vector<Fam> fams;
    for (const auto& q : qcis) {
        Fam f{q.queueFamilyIndex, VK_NULL_HANDLE, VK_NULL_HANDLE, {}, VK_NULL_HANDLE};
        vkGetDeviceQueue(dev, f.index, 0, &f.queue);
        VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
        pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
        pci.queueFamilyIndex = f.index;
        check(vkCreateCommandPool(dev, &pci, nullptr, &f.pool), "vkCreateCommandPool");
        for (int i = 0; i < 4; ++i) f.cbs.push_back(new_command_buffer(dev, f.pool));
        VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
        check(vkCreateFence(dev, &fci, nullptr, &f.fence), "vkCreateFence");
        fams.push_back(f);
    }
    Buffer d = make(dev, kBytes, bar >= 0 ? bar : local, bar >= 0);
    std::vector<char> plain(kBytes, 7); // what the CPU writes from: ordinary cached memory
    std::vector<std::pair<const char*, Buffer>> hosts{{"driver's host memory", make(dev, kBytes, host, true)}};
    if (can_import) hosts.emplace_back("imported host memory", import_host(dev, pd, mp, kBytes));
    // Microseconds per 1 MiB copy (dir 0: host to device), in `pieces` equal parts: part i on
    // fams[order[i % nq]], the parts of one family in one submission.
    auto per_copy_us = [&](VkBuffer h, int dir, const std::vector<std::size_t>& order, std::size_t nq, int pieces,
                    std::uint64_t cpu_bytes, void* cpu_from) {
        const std::uint64_t queued = kBytes - cpu_bytes;
        const std::uint64_t piece = pieces ? queued / static_cast<std::uint64_t>(pieces) : 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (int round = 0; round < kRounds; ++round) {
            std::vector<std::uint32_t> used(nq, 0);
            for (int i = 0; i < pieces; ++i) {
                Fam& f = fams[order[static_cast<std::size_t>(i) % nq]];
                const std::uint64_t off = cpu_bytes + piece * static_cast<std::uint64_t>(i);
                const std::uint64_t len = i + 1 == pieces ? kBytes - off : piece;
                const VkBuffer from = dir == 0 ? h : d.buf, to = dir == 0 ? d.buf : h;
                record_copy(f.cbs[used[static_cast<std::size_t>(i) % nq]++], from, to, VkBufferCopy{off, off, len}, true);
            }
            for (std::size_t k = 0; k < nq; ++k) {
                const Fam& f = fams[order[k]];
                submit(f.queue, f.cbs.data(), used[k], f.fence);
            }
            if (cpu_bytes) std::memcpy(d.mapped, cpu_from, cpu_bytes);
            for (std::size_t k = 0; k < nq; ++k) {
                poll_fence(dev, fams[order[k]].fence);
                check(vkResetFences(dev, 1, &fams[order[k]].fence), "vkResetFences");
            }
        }
        return seconds_since(t0) * 1e6 / kRounds;
    };
    for (auto& [what, h] : hosts) {
        for (int dir = 0; dir < 2; ++dir) {
            const char* dname = dir == 0 ? "write" : "read";
            for (std::size_t i = 0; i < fams.size(); ++i) {
                per_copy_us(h.buf, dir, {i}, 1, 1, 0, nullptr); // unmeasured: an idle GPU answers the first slowly
                fams[i].us = per_copy_us(h.buf, dir, {i}, 1, 1, 0, nullptr);
                std::printf("split %s, %s: family %u alone: %6.1f us\n", what, dname, fams[i].index, fams[i].us);
            }
            std::vector<std::size_t> order(fams.size());
            for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::sort(order.begin(), order.end(),
                      [&](std::size_t a, std::size_t b) { return fams[a].us < fams[b].us; });
            for (std::size_t nq = 2; nq <= fams.size(); ++nq) {
                std::string names;
                for (std::size_t k = 0; k < nq; ++k) names += (k ? "," : "") + std::to_string(fams[order[k]].index);
                std::printf("split %s, %s: over families %s: %6.1f us\n", what, dname, names.c_str(),
                            per_copy_us(h.buf, dir, order, nq, static_cast<int>(nq), 0, nullptr));
            }
            for (int pieces : {2, 4})
                std::printf("split %s, %s: %d pieces in one submission on family %u: %6.1f us\n", what, dname, pieces,
                            fams[order[0]].index, per_copy_us(h.buf, dir, order, 1, pieces, 0, nullptr));
            if (dir == 0 && bar >= 0)
                for (std::uint64_t cpu : {kBytes / 4, kBytes / 2, kBytes})
                    std::printf("split %s, write: %llu KiB by the CPU, the rest on family %u: %6.1f us\n", what,
                                static_cast<unsigned long long>(cpu >> 10), fams[order[0]].index,
                                per_copy_us(h.buf, dir, order, cpu == kBytes ? 0 : 1, cpu == kBytes ? 0 : 1, cpu,
                                     plain.data()));
        }
    }
    vkDeviceWaitIdle(dev);
    for (auto& f : fams) {
        vkDestroyFence(dev, f.fence, nullptr);
        vkDestroyCommandPool(dev, f.pool, nullptr);
    }
    for (auto& [what, h] : hosts) destroy(dev, h);
    destroy(dev, d);
}

// Reads out of write-combined memory (a GPU's BAR) with wider streaming loads than
// copy_from_write_combined's: whether width matters. Both assume 64-byte aligned `from` and
// `bytes` a multiple of 64.
__attribute__((target("avx2"))) void stream_read_avx2(void* to, const void* from, std::size_t bytes) {
    auto* s = static_cast<__m256i*>(const_cast<void*>(from));
    auto* d = static_cast<__m256i*>(to);
    for (std::size_t i = 0; i < bytes / 32; i += 4) {
        const __m256i a = _mm256_stream_load_si256(s + i), b = _mm256_stream_load_si256(s + i + 1),
                      c = _mm256_stream_load_si256(s + i + 2), e = _mm256_stream_load_si256(s + i + 3);
        _mm256_storeu_si256(d + i, a);
        _mm256_storeu_si256(d + i + 1, b);
        _mm256_storeu_si256(d + i + 2, c);
        _mm256_storeu_si256(d + i + 3, e);
    }
}

__attribute__((target("avx512f"))) void stream_read_avx512(void* to, const void* from, std::size_t bytes) {
    auto* s = static_cast<__m512i*>(const_cast<void*>(from));
    auto* d = static_cast<__m512i*>(to);
    for (std::size_t i = 0; i < bytes / 64; i += 4) {
        const __m512i a = _mm512_stream_load_si512(s + i), b = _mm512_stream_load_si512(s + i + 1),
                      c = _mm512_stream_load_si512(s + i + 2), e = _mm512_stream_load_si512(s + i + 3);
        _mm512_storeu_si512(d + i, a);
        _mm512_storeu_si512(d + i + 1, b);
        _mm512_storeu_si512(d + i + 2, c);
        _mm512_storeu_si512(d + i + 3, e);
    }
}

// The CPU's reads out of mapped device-local memory of each size, with plain memcpy and with
// streaming loads of each width the CPU has, by one thread and by `threads` at once (each its
// own part of the buffer), in us per read: whether a small read through the mapping would beat
// a submission on a queue.
void mapped_reads(VkDevice dev, int bar, unsigned threads) {
    using Reader = void (*)(void*, const void*, std::size_t);
    struct Way { const char* name; Reader read; bool ok; };
    const Way ways[] = {
        {"memcpy", [](void* t, const void* f, std::size_t n) { std::memcpy(t, f, n); }, true},
        {"vramfs", vramfs::copy_from_write_combined, true},
        {"avx2 stream", stream_read_avx2, static_cast<bool>(__builtin_cpu_supports("avx2"))},
        {"avx512 stream", stream_read_avx512, static_cast<bool>(__builtin_cpu_supports("avx512f"))},
    };
    constexpr std::uint64_t kPart = 8 << 20; // each thread's part of the buffer
    // The first read of each page of a fresh mapping faults it in: what that costs.
    for (std::uint64_t chunk : {std::uint64_t{4} << 10, std::uint64_t{32} << 10}) {
        Buffer fresh = make(dev, kPart, bar, true);
        std::vector<char> to(chunk);
        const auto t0 = std::chrono::steady_clock::now();
        for (std::uint64_t off = 0; off < kPart; off += chunk)
            vramfs::copy_from_write_combined(to.data(), static_cast<const char*>(fresh.mapped) + off, chunk);
        std::printf("mapped read %5llu KiB, vramfs, pages not yet mapped: %8.1f us per read\n",
                    static_cast<unsigned long long>(chunk >> 10), seconds_since(t0) * 1e6 * chunk / kPart);
        destroy(dev, fresh);
    }
    Buffer b = make(dev, kPart * threads, bar, true);
    std::memset(b.mapped, 7, kPart * threads);
    for (std::uint64_t chunk : {std::uint64_t{4} << 10, std::uint64_t{32} << 10, std::uint64_t{128} << 10,
                                std::uint64_t{1} << 20}) {
        for (const Way& w : ways) {
            if (!w.ok) continue;
            for (unsigned nt : {1u, threads}) {
                // 2 MiB per thread per size, at least 16 reads: plain loads run at tens of MB/s.
                const std::uint64_t reads = std::max<std::uint64_t>(16, (std::uint64_t{2} << 20) / chunk);
                std::vector<std::thread> ts;
                std::vector<double> per(nt);
                bool bad = false;
                std::mutex mu;
                for (unsigned t = 0; t < nt; ++t)
                    ts.emplace_back([&, t] {
                        std::vector<char> to(chunk);
                        const char* base = static_cast<const char*>(b.mapped) + kPart * t;
                        const auto t0 = std::chrono::steady_clock::now();
                        for (std::uint64_t r = 0; r < reads; ++r)
                            w.read(to.data(), base + (r * chunk) % kPart, chunk);
                        per[t] = seconds_since(t0) * 1e6 / static_cast<double>(reads);
                        if (to[chunk - 1] != 7) {
                            std::lock_guard lock(mu);
                            bad = true;
                        }
                    });
                for (auto& t : ts) t.join();
                const double us = *std::max_element(per.begin(), per.end());
                std::printf("mapped read %5llu KiB, %-13s x%u: %8.1f us per read, %6.2f GB/s in all%s\n",
                            static_cast<unsigned long long>(chunk >> 10), w.name, nt, us,
                            static_cast<double>(chunk) * nt / us / 1e3, bad ? " (WRONG BYTES)" : "");
                if (nt == threads) break;
            }
        }
    }
    destroy(dev, b);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"vramfs-vk-copy-bench: Vulkan copy paths to and from device memory, in GB/s"};
    int device = 0;
    std::uint64_t total_mib = 1024;
    app.add_option("--device", device, "Vulkan physical device index (as vulkaninfo counts them)")
        ->default_val(0);
    app.add_option("--total-mib", total_mib, "MiB moved per measurement")->default_val(1024);
    bool split_only = false;
    app.add_flag("--split-only", split_only, "only the 1 MiB copies split over families, or the CPU and a queue");
    bool mapped_only = false;
    app.add_flag("--mapped-reads", mapped_only, "only the CPU's reads out of mapped device-local memory");
    unsigned reader_threads = 8;
    app.add_option("--threads", reader_threads, "threads reading at once in --mapped-reads")->default_val(8);
    CLI11_PARSE(app, argc, argv);
    std::setvbuf(stdout, nullptr, _IOLBF, 0); // lines survive a crash in a driver

    VkApplicationInfo ai{VK_STRUCTURE_TYPE_APPLICATION_INFO};
    ai.apiVersion = VK_API_VERSION_1_1;
    VkInstanceCreateInfo ici{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.pApplicationInfo = &ai;
    VkInstance inst;
    check(vkCreateInstance(&ici, nullptr, &inst), "vkCreateInstance");
    std::uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, nullptr);
    std::vector<VkPhysicalDevice> pds(n);
    vkEnumeratePhysicalDevices(inst, &n, pds.data());
    if (device < 0 || static_cast<std::uint32_t>(device) >= n) {
        std::fprintf(stderr, "vramfs-vk-copy-bench: no Vulkan device %d (%u found)\n", device, n);
        return 2;
    }
    VkPhysicalDevice pd = pds[static_cast<std::size_t>(device)];
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(pd, &props);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);

    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
    std::vector<VkQueueFamilyProperties> fams(n);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, fams.data());
    // Up to eight queues of every family that copies: a GPU's copy engines (transfer only) and
    // its general queues may differ in latency, and a family's queues may or may not copy side
    // by side.
    constexpr std::uint32_t kMaxQueues = 8;
    std::vector<VkDeviceQueueCreateInfo> qcis;
    std::vector<float> prio(kMaxQueues, 1.0f);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (!(fams[i].queueFlags & (VK_QUEUE_TRANSFER_BIT | VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT))) continue;
        VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
        qci.queueFamilyIndex = i;
        qci.queueCount = std::min(fams[i].queueCount, kMaxQueues);
        qci.pQueuePriorities = prio.data();
        qcis.push_back(qci);
    }
    VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.queueCreateInfoCount = static_cast<std::uint32_t>(qcis.size());
    dci.pQueueCreateInfos = qcis.data();
    // Host memory of our own imported as a buffer's memory, as the backend's host buffers are.
    const char* import_ext = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
    const bool can_import = has_extension(pd, import_ext);
    if (can_import) {
        dci.enabledExtensionCount = 1;
        dci.ppEnabledExtensionNames = &import_ext;
    }
    VkDevice dev;
    check(vkCreateDevice(pd, &dci, nullptr, &dev), "vkCreateDevice");
    std::printf("device %d: %s\n", device, props.deviceName);

    // Device-local memory the CPU cannot see and host memory that is not device-local, or
    // where there are none (lavapipe: all of its memory is both) any of each.
    int local = find_type(mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT);
    if (local < 0) local = find_type(mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    int host = find_type(mp, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                         VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (host < 0) host = find_type(mp, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
    const int bar = find_type(mp, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT, 0);
    const std::uint64_t total = total_mib << 20;
    std::vector<char> plain(64 << 20, 1);
    if (mapped_only) {
        if (bar < 0) {
            std::printf("mapped: no DEVICE_LOCAL|HOST_VISIBLE memory type on this device\n");
            return 0;
        }
        std::printf("mapped memory type %d, flags 0x%x\n", bar, mp.memoryTypes[bar].propertyFlags);
        mapped_reads(dev, bar, std::max(1u, reader_threads));
        vkDeviceWaitIdle(dev);
        return 0;
    }

  for (std::size_t qi = 0; qi < (split_only ? 0 : qcis.size()); ++qi) {
    const std::uint32_t fam = qcis[qi].queueFamilyIndex;
    const VkQueueFlags flags = fams[fam].queueFlags;
    VkQueue queue;
    vkGetDeviceQueue(dev, fam, 0, &queue);
    std::printf("queue family %u (%s, %u queues)\n", fam,
                (flags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT)) ? "general" : "transfer only",
                fams[fam].queueCount);
    VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pci.queueFamilyIndex = fam;
    VkCommandPool pool;
    check(vkCreateCommandPool(dev, &pci, nullptr, &pool), "vkCreateCommandPool");
    VkCommandBuffer cb = new_command_buffer(dev, pool);
    VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VkFence fence;
    check(vkCreateFence(dev, &fci, nullptr, &fence), "vkCreateFence");

    for (std::uint64_t chunk : {std::uint64_t{4} << 10, std::uint64_t{128} << 10, std::uint64_t{1} << 20, std::uint64_t{16} << 20}) {
        if (local >= 0 && host >= 0) {
            Buffer h = make(dev, chunk, host, true), d = make(dev, chunk, local, false);
            std::memset(h.mapped, 3, chunk);
            for (int run = 0; run < 4; ++run) {
                const int dir = run % 2;
                const bool spin = run >= 2; // poll the fence instead of sleeping on it
                const std::uint64_t amount = std::min<std::uint64_t>(total, chunk * 4096);
                const auto t0 = std::chrono::steady_clock::now();
                for (std::uint64_t done = 0; done < amount; done += chunk) {
                    record_copy(cb, dir == 0 ? h.buf : d.buf, dir == 0 ? d.buf : h.buf, VkBufferCopy{0, 0, chunk});
                    submit(queue, &cb, 1, fence);
                    if (spin) {
                        poll_fence(dev, fence);
                    } else {
                        check(vkWaitForFences(dev, 1, &fence, VK_TRUE, UINT64_MAX), "vkWaitForFences");
                    }
                    check(vkResetFences(dev, 1, &fence), "vkResetFences");
                }
                const double secs = seconds_since(t0);
                std::printf("transfer %-5s %8llu KiB copies, fence %s: %6.2f GB/s, %7.1f us per copy\n",
                            dir == 0 ? "write" : "read", static_cast<unsigned long long>(chunk >> 10),
                            spin ? "polled" : "waited", amount / secs / 1e9, secs * 1e6 * chunk / amount);
            }
            destroy(dev, h);
            destroy(dev, d);
        }
        if (bar >= 0 && qi == 0) {
            Buffer b = make(dev, chunk, bar, true);
            for (int dir = 0; dir < 2; ++dir) {
                // Reads through the BAR are uncached: measure less, or this takes minutes.
                const std::uint64_t amount = std::min<std::uint64_t>(
                    dir == 0 ? total : std::max<std::uint64_t>(total / 16, chunk), chunk * 4096);
                const auto t0 = std::chrono::steady_clock::now();
                for (std::uint64_t done = 0; done < amount; done += chunk) {
                    if (dir == 0)
                        std::memcpy(b.mapped, plain.data(), chunk);
                    else
                        std::memcpy(plain.data(), b.mapped, chunk);
                }
                std::printf("mapped   %-5s %8llu KiB copies: %6.2f GB/s\n", dir == 0 ? "write" : "read",
                            static_cast<unsigned long long>(chunk >> 10), amount / seconds_since(t0) / 1e9);
            }
            destroy(dev, b);
        }
    }
    // Several small reads at once, as eight faulting threads' swap-ins ask for them: each in a
    // submission of its own with its own fence, against all in one submission with one fence
    // (with no barrier, a barrier after each copy, or one barrier ending the submission).
    if (local >= 0 && host >= 0) {
        constexpr int kMany = 8;
        constexpr std::uint64_t kSmall = 16 << 10;
        Buffer h = make(dev, kSmall * kMany, host, true), d = make(dev, kSmall * kMany, local, false);
        std::vector<VkCommandBuffer> cbs(kMany + 1);
        for (auto& c : cbs) c = new_command_buffer(dev, pool);
        std::vector<VkFence> fences(kMany);
        for (auto& f : fences) check(vkCreateFence(dev, &fci, nullptr, &f), "vkCreateFence");
        const char* const kHow[] = {"a submission each", "one submission", "one submission, a barrier after each",
                                    "one submission, one barrier at its end"};
        for (int run = 0; run < 5; ++run) {
            const int at_once = run == 0 ? 1 : kMany;
            const int how = run == 0 ? 0 : run - 1; // index into kHow
            const bool together = how > 0;
            constexpr int kRounds = 2000;
            const auto t0 = std::chrono::steady_clock::now();
            for (int round = 0; round < kRounds; ++round) {
                for (int i = 0; i < at_once; ++i) {
                    record_copy(cbs[i], d.buf, h.buf, VkBufferCopy{kSmall * i, kSmall * i, kSmall}, how == 2);
                    if (!together) submit(queue, &cbs[i], 1, fences[i]);
                }
                if (how == 3) {
                    check(vkResetCommandBuffer(cbs[kMany], 0), "vkResetCommandBuffer");
                    VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
                    check(vkBeginCommandBuffer(cbs[kMany], &bi), "vkBeginCommandBuffer");
                    record_barrier(cbs[kMany]);
                    check(vkEndCommandBuffer(cbs[kMany]), "vkEndCommandBuffer");
                }
                if (together) submit(queue, cbs.data(), kMany + (how == 3 ? 1 : 0), fences[0]);
                const int waits = together ? 1 : at_once;
                for (int i = 0; i < waits; ++i) poll_fence(dev, fences[i]);
                check(vkResetFences(dev, static_cast<std::uint32_t>(waits), fences.data()), "vkResetFences");
            }
            const double us = seconds_since(t0) * 1e6 / kRounds;
            std::printf("transfer read %d x 16 KiB, %s, fences polled: %6.1f us for all, %5.1f us per copy\n",
                        at_once, kHow[how], us, us / at_once);
        }
        // Over several queues of the family, one thread submitting a share of the eight to each:
        // whether the family's queues copy side by side.
        for (std::uint32_t nq = 2; nq <= qcis[qi].queueCount && nq <= kMany; nq *= 2) {
            std::vector<VkQueue> qs(nq);
            for (std::uint32_t k = 0; k < nq; ++k) vkGetDeviceQueue(dev, fam, k, &qs[k]);
            const int per = kMany / static_cast<int>(nq);
            constexpr int kRounds = 2000;
            const auto t0 = std::chrono::steady_clock::now();
            for (int round = 0; round < kRounds; ++round) {
                for (int i = 0; i < kMany; ++i)
                    record_copy(cbs[i], d.buf, h.buf, VkBufferCopy{kSmall * i, kSmall * i, kSmall});
                for (std::uint32_t k = 0; k < nq; ++k) submit(qs[k], &cbs[k * per], per, fences[k]);
                for (std::uint32_t k = 0; k < nq; ++k) poll_fence(dev, fences[k]);
                check(vkResetFences(dev, nq, fences.data()), "vkResetFences");
            }
            const double us = seconds_since(t0) * 1e6 / kRounds;
            std::printf("transfer read %d x 16 KiB over %u queues, a submission each: %6.1f us for all\n", kMany,
                        nq, us);
        }
        // As the backend's workers do: eight threads, each recording, submitting (the queue
        // under a lock) and polling its own fence, one copy after another.
        // Not on a CPU driver: spinning threads would take the CPUs that run the copies.
        if (props.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU) {
            constexpr int kRounds = 2000;
            std::mutex queue_mu;
            std::vector<std::thread> threads;
            const auto t0 = std::chrono::steady_clock::now();
            for (int i = 0; i < kMany; ++i)
                threads.emplace_back([&, i] {
                    // A command pool of its own: a pool's buffers are used by one thread at a time.
                    VkCommandPool own;
                    check(vkCreateCommandPool(dev, &pci, nullptr, &own), "vkCreateCommandPool");
                    const VkCommandBuffer cb1 = new_command_buffer(dev, own);
                    for (int round = 0; round < kRounds; ++round) {
                        record_copy(cb1, d.buf, h.buf, VkBufferCopy{kSmall * i, kSmall * i, kSmall});
                        {
                            std::lock_guard lock(queue_mu);
                            submit(queue, &cb1, 1, fences[i]);
                        }
                        poll_fence(dev, fences[i]);
                        check(vkResetFences(dev, 1, &fences[i]), "vkResetFences");
                    }
                    vkDestroyCommandPool(dev, own, nullptr);
                });
            for (auto& t : threads) t.join();
            const double us = seconds_since(t0) * 1e6 / kRounds;
            std::printf("transfer read %d threads x 16 KiB, a submission each, fences polled: %6.1f us "
                        "per round, %5.1f us per copy\n", kMany, us, us / kMany);
        }
        for (auto f : fences) vkDestroyFence(dev, f, nullptr);
        destroy(dev, h);
        destroy(dev, d);
    }
    vkDeviceWaitIdle(dev);
    vkDestroyFence(dev, fence, nullptr);
    vkDestroyCommandPool(dev, pool, nullptr);
  }
    if (local >= 0 && host >= 0) split_copies(dev, pd, mp, qcis, local, host, bar, can_import);
    if (bar < 0) std::printf("mapped: no DEVICE_LOCAL|HOST_VISIBLE memory type on this device\n");
    vkDeviceWaitIdle(dev);
    return 0;
}
