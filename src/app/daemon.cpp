// Mount and serve. CUDA is started only in the process that serves, after the fork: a CUDA
// context does not survive fork(). The parent waits for the child's verdict on a pipe, so the
// user sees one line and a meaningful exit code whether or not the mount worked.
#include "vramfs/app/daemon.hpp"

#include "vramfs/data/block_pool.hpp"
#include "vramfs/fs/filesystem.hpp"
#include "vramfs/fuse/fuse_ops.hpp"
#include "vramfs/fuse/transport.hpp"
#include "vramfs/storage/backend.hpp"
#include "vramfs/storage/spill_file.hpp"
#include "vramfs/util/memory.hpp"
#include "vramfs/util/size.hpp"

#include <fuse_lowlevel.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vramfs {
namespace {

// Asynchronous requests the kernel may have waiting on the daemon (0: the kernel's 12). Over
// /dev/fuse, more than 12 let the workers take readahead and a loop device's reads side by side
// (docs/performance.md#levers-measured); over io_uring it made no clear difference.
// --max-background sets it on either transport, for comparisons.
unsigned max_background_for(const Config& cfg, TransportKind transport) {
    if (cfg.max_background > 0) return cfg.max_background;
    return transport == TransportKind::dev ? 64 : 0;
}

// Where the serving process reports its start-up verdict: the parent's pipe, or the terminal.
class Reporter {
public:
    explicit Reporter(int fd) : fd_(fd) {}
    void report(int code, const std::string& line) {
        if (fd_ < 0) {
            std::fprintf(code == 0 ? stdout : stderr, "%s\n", line.c_str());
            std::fflush(nullptr);
            return;
        }
        const std::string msg = std::to_string(code) + " " + line;
        ssize_t ignored = ::write(fd_, msg.data(), msg.size());
        (void)ignored;
        ::close(fd_);
        fd_ = -1;
        reported_ = true;
    }
    bool detached() const noexcept { return reported_; }

private:
    int fd_;
    bool reported_ = false;
};

// The devices of one backend, or of every GPU API when none was named.
int list_devices(const Config& cfg) {
    if (cfg.backend_given && cfg.backend == BackendKind::host) {
        // Every host device draws on this machine's RAM; there are several to test mounts over several.
        const auto ram = make_host_backend(0)->device();
        std::printf("%-6s %-32s %12s %12s\n", "INDEX", "NAME", "FREE", "TOTAL");
        for (int i = 0; i < kHostDevices; ++i)
            std::printf("%-6d %-32s %12s %12s\n", i, "host RAM (locked, for tests)",
                        format_size(ram.free_bytes).c_str(), format_size(ram.total_bytes).c_str());
        return 0;
    }
    const bool cuda = !cfg.backend_given || cfg.backend == BackendKind::cuda;
    const bool vulkan = !cfg.backend_given || cfg.backend == BackendKind::vulkan;
    int found = 0;
    if (cuda) {
        std::vector<DeviceInfo> devices;
        std::string error;
        if (!list_cuda_devices(devices, error)) {
            std::fprintf(stderr, "vramfs: %s\n", error.c_str());
        } else {
            if (vulkan) std::printf("CUDA (--backend cuda)\n");
            std::printf("%-6s %-32s %12s %12s\n", "INDEX", "NAME", "FREE", "TOTAL");
            for (const auto& d : devices)
                std::printf("%-6d %-32s %12s %12s\n", d.index, d.name.c_str(),
                            format_size(d.free_bytes).c_str(), format_size(d.total_bytes).c_str());
            ++found;
        }
    }
    if (vulkan) {
        std::vector<VulkanDeviceReport> devices;
        std::string error;
        if (!list_vulkan_devices(devices, error)) {
            std::fprintf(stderr, "vramfs: %s\n", error.c_str());
        } else {
            if (cuda) std::printf("%sVulkan (--backend vulkan)\n", found ? "\n" : "");
            // FREE is the heap's budget less its usage where the driver reports them.
            std::printf("%-6s %-32s %-8s %-15s %12s %12s\n", "INDEX", "NAME", "VENDOR", "TYPE",
                        "FREE", "HEAP");
            for (const auto& d : devices)
                std::printf("%-6d %-32s %-8s %-15s %12s %12s%s\n", d.info.index, d.info.name.c_str(),
                            d.vendor.c_str(), d.type.c_str(),
                            d.memory_budget ? format_size(d.info.free_bytes).c_str() : "?",
                            format_size(d.info.total_bytes).c_str(),
                            d.type == "CPU" ? "  (a CPU driver: system RAM, for tests)" : "");
            ++found;
        }
    }
    return found ? 0 : kExitFailure;
}

bool on_path(const char* tool) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin:/usr/sbin:/sbin";
    std::size_t start = 0;
    while (start <= dirs.size()) {
        const std::size_t end = dirs.find(':', start);
        const std::string dir = dirs.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return false;
}

std::string version_text(int v) {
    return v ? std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10) : "none";
}

// vramfs --check: one line per requirement, OK or what is missing and how to fix it.
int check_requirements() {
    int missing = 0;
    auto line = [&](bool ok, const std::string& what, const std::string& fix, bool required = true) {
        std::printf("%-8s %s%s\n", ok ? "OK" : required ? "MISSING" : "WARN", what.c_str(),
                    ok ? "" : (": " + fix).c_str());
        if (!ok && required) ++missing;
    };
    line(::access("/dev/fuse", R_OK | W_OK) == 0, "/dev/fuse",
         "load the fuse module (modprobe fuse) and install fuse3");
    line(on_path("fusermount3"), "fusermount3", "install fuse3 (needed to mount as a user and to unmount)",
         ::geteuid() != 0);
    // mount(8) looks for its helper in /sbin only (not in PATH): mount.fuse.vramfs or mount.fuse.
    line(::access("/sbin/mount.fuse", X_OK) == 0 || ::access("/sbin/mount.fuse.vramfs", X_OK) == 0,
         "/sbin/mount.fuse", "install fuse3 (needed for mount -t fuse.vramfs and /etc/fstab)",
         false);
    line(::access("/dev/loop-control", R_OK | W_OK) == 0, "loop devices (/dev/loop-control)",
         "load the loop module (modprobe loop); needed for swap", false);
    line(::geteuid() == 0, "permission for losetup and swapon", "run vramfs-swap as root", false);
    line(on_path("losetup") && on_path("mkswap") && on_path("swapon"), "losetup, mkswap, swapon",
         "install util-linux", false);
    std::string not_uring;
    line(kernel_offers_fuse_uring(not_uring), "FUSE over io_uring (--transport uring)", not_uring, false);
    // The GPU APIs: CUDA (NVIDIA) and Vulkan (any vendor). One usable GPU is what is required;
    // what the other API lacks is then a warning.
    int driver = 0, runtime = 0;
    cuda_versions(driver, runtime);
    std::vector<DeviceInfo> cuda_devices;
    std::string cuda_error;
    const bool cuda_ok = list_cuda_devices(cuda_devices, cuda_error);
    std::vector<VulkanDeviceReport> vk_devices;
    std::string vk_error;
    const bool vk_ok = list_vulkan_devices(vk_devices, vk_error);
    bool vk_gpu = false; // a Vulkan device that is a GPU, not a CPU driver such as lavapipe
    for (const auto& d : vk_devices) vk_gpu = vk_gpu || d.type != "CPU";
    const bool gpu = cuda_ok || vk_gpu;
    line(driver != 0, "CUDA driver " + version_text(driver),
         "install the NVIDIA driver (nvidia-smi should work)", !gpu);
    line(runtime != 0, "CUDA runtime " + version_text(runtime) + " (built in)",
         "this vramfs was built without CUDA", !gpu);
    if (driver != 0 && runtime != 0)
        line(driver >= runtime, "driver supports the runtime",
             "the driver (" + version_text(driver) + ") is older than the runtime (" +
                 version_text(runtime) + "): update the driver", !vk_gpu);
    for (const auto& d : cuda_devices)
        line(true, "CUDA GPU " + std::to_string(d.index) + ": " + d.name + ", " +
                       format_size(d.free_bytes) + " free of " + format_size(d.total_bytes), "");
    line(vk_ok, "Vulkan loader and a device with device-local memory",
         vk_error + " (install libvulkan1 and the GPU's Vulkan driver)", !gpu);
    for (const auto& d : vk_devices) {
        const std::string what = "Vulkan device " + std::to_string(d.info.index) + ": " + d.info.name;
        line(true, what + " (" + d.vendor + ", " + d.type + ", Vulkan " + d.api_version + "), heap " +
                       format_size(d.info.total_bytes) +
                       (d.memory_budget ? ", " + format_size(d.info.free_bytes) + " free" : ""), "");
        line(d.memory_budget, what + ": VK_EXT_memory_budget",
             "budgets are checked against the heap's size and our own use only", false);
        line(d.external_memory_host, what + ": VK_EXT_external_memory_host",
             "request and reply buffers are the driver's memory, not the daemon's own (slower "
             "copies on NVIDIA)", false);
        line(d.type != "CPU", what + ": a GPU",
             "a CPU driver: its memory is system RAM, for tests only", false);
    }
    if (!gpu)
        line(false, "a usable GPU",
             (cuda_error.empty() ? "" : cuda_error + "; ") + (vk_error.empty() ? "no Vulkan GPU" : vk_error));
    std::printf("%s\n", missing ? "some requirements are missing (--backend host still works "
                                  "without a GPU)"
                                : "all requirements met");
    return missing ? kExitFailure : 0;
}

void detach_stdio() {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDOUT_FILENO);
        ::dup2(null, STDERR_FILENO);
        if (null > STDERR_FILENO) ::close(null);
    }
    if (::chdir("/") != 0) { /* nothing to do: the daemon keeps no relative paths */
    }
}

// The file that holds a mount's readahead (its bdi's read_ahead_kb), or "" if not found. From
// /proc/self/mountinfo: a stat of the mount point would be a request to this daemon, which
// does not serve yet.
std::string readahead_file(const std::string& mountpoint) {
    std::string escaped; // mountinfo writes a space as \040 (and tab, newline, backslash alike)
    for (char ch : mountpoint) {
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\\') {
            char oct[5];
            std::snprintf(oct, sizeof oct, "\\%03o", static_cast<unsigned char>(ch));
            escaped += oct;
        } else {
            escaped += ch;
        }
    }
    std::FILE* f = std::fopen("/proc/self/mountinfo", "r");
    if (!f) return "";
    char line[4096], dev[64] = "", point[4096];
    while (std::fgets(line, sizeof line, f)) {
        char d[64];
        if (std::sscanf(line, "%*s %*s %63s %*s %4095s", d, point) == 2 && escaped == point)
            std::snprintf(dev, sizeof dev, "%s", d); // the last such line is the mount on top
    }
    std::fclose(f);
    return *dev ? std::string("/sys/class/bdi/") + dev + "/read_ahead_kb" : "";
}

std::uint64_t backend_limit_host() { return make_host_backend(0)->device().total_bytes; }

// Opens one device's backend and checks that its budget fits; reports and returns nullptr if not.
std::unique_ptr<StorageBackend> open_device(const Config& cfg, const DeviceBudget& d,
                                            Reporter& reporter, int& rc) {
    std::unique_ptr<StorageBackend> backend;
    if (cfg.backend == BackendKind::host) {
        if (d.index >= kHostDevices) {
            rc = kExitUsage;
            reporter.report(rc, "vramfs: host device " + std::to_string(d.index) +
                                    " does not exist: the host backend has devices 0 to " +
                                    std::to_string(kHostDevices - 1) + " (see --list-devices)");
            return nullptr;
        }
        if (d.size > backend_limit_host()) {
            rc = kExitUsage;
            reporter.report(rc, "vramfs: SIZE " + format_size(d.size) +
                                    " is more than the RAM of this machine");
            return nullptr;
        }
        try {
            backend = make_host_backend(d.index, cfg.null_io ? 0 : d.size, cfg.host_card_file);
        } catch (const std::exception& ex) {
            rc = kExitFailure;
            reporter.report(rc, std::string("vramfs: host backend: ") + ex.what());
            return nullptr;
        }
    } else {
        std::string error;
        bool bad_index = false;
        const bool vulkan = cfg.backend == BackendKind::vulkan;
        backend = vulkan ? make_vulkan_backend(d.index, vulkan_tuning(cfg), error, &bad_index)
                         : make_cuda_backend(d.index, error, &bad_index);
        if (!backend) {
            rc = bad_index ? kExitUsage : kExitFailure;
            reporter.report(rc, "vramfs: " + error);
            return nullptr;
        }
        const std::uint64_t free = backend->query_free();
        if (d.size > free) {
            rc = kExitUsage;
            reporter.report(rc, "vramfs: SIZE " + format_size(d.size) + " is more than the " +
                                    (vulkan ? "memory budget" : "free VRAM") + " of " +
                                    backend->kind() + " device " + std::to_string(d.index) + " (" +
                                    format_size(free) + ")");
            return nullptr;
        }
    }
    if (cfg.faults.any()) backend = make_fault_injecting_backend(std::move(backend), cfg.faults);
    return backend;
}

// The block pools, one per device, and the filesystem over them; throws where they cannot be
// made (std::bad_alloc, a locked-memory failure).
std::unique_ptr<Filesystem> make_filesystem(const Config& cfg,
                                            const std::vector<std::unique_ptr<StorageBackend>>& backends,
                                            std::vector<std::unique_ptr<BlockPool>>& pools) {
    std::vector<BlockPool*> raw;
    for (std::size_t i = 0; i < backends.size(); ++i) {
        pools.push_back(std::make_unique<BlockPool>(
            *backends[i], cfg.devices[i].size, cfg.block_size, kSlabBytes,
            std::chrono::milliseconds(static_cast<long long>(cfg.release_delay * 1000)), &memory_is_short));
        raw.push_back(pools.back().get());
    }
    FsOptions fo;
    fo.direct_io = cfg.direct_io;
    // The writeback cache exists to gather buffered writes: it keeps them all.
    fo.direct_write_only = !cfg.buffered_writes && !cfg.writeback_cache;
    fo.writeback_cache = cfg.writeback_cache;
    fo.read_cache_slots = cfg.read_cache;
    fo.io_buffers = cfg.threads + 2;
    fo.max_io = cfg.max_io;
    return std::make_unique<Filesystem>(raw, fo, Caller{::getuid(), ::getgid(), 0});
}

// The spill file, its regions given to the pools one after another; null with why not.
std::unique_ptr<SpillFile> attach_spill(const Config& cfg, const std::vector<std::unique_ptr<BlockPool>>& pools,
                                        std::string& why) {
    std::uint64_t bytes = 0;
    for (const auto& p : pools) bytes += p->spill_bytes_needed();
    auto file = SpillFile::open(cfg.spill, cfg.mountpoint, bytes, why);
    if (!file) return nullptr;
    try {
        std::uint64_t offset = 0;
        for (const auto& p : pools) {
            p->attach_spill(*file, offset, cfg.keep_free);
            offset += p->spill_bytes_needed();
        }
    } catch (const std::exception& ex) {
        why = std::string("--spill: ") + ex.what();
        return nullptr;
    }
    return file;
}

// A FUSE session with the mount's options, mounted; null after reporting why not.
fuse_session* mount_session(const Config& cfg, FuseContext& context, Reporter& reporter, int& rc) {
    std::vector<std::string> args = fuse_arguments(cfg);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    fuse_session* se = fuse_session_new(&fargs, &fuse_operations(cfg.null_io), sizeof(fuse_lowlevel_ops),
                                        &context);
    fuse_opt_free_args(&fargs);
    if (!se) {
        rc = kExitUsage;
        reporter.report(rc, "vramfs: FUSE rejected the options: " + args.back() + " (see the line above)");
        return nullptr;
    }
    context.session = se;
    // cfg.mountpoint is absolute (parse_command_line): the daemon changes to / once detached,
    // and unmounts by this path.
    if (fuse_session_mount(se, cfg.mountpoint.c_str()) != 0) {
        fuse_session_destroy(se);
        rc = kExitFailure;
        reporter.report(rc, "vramfs: mounting on " + cfg.mountpoint + " failed (see the line above)");
        return nullptr;
    }
    if (cfg.readahead > 0) { // applied after INIT, which the workers have not read yet
        context.readahead_path = readahead_file(cfg.mountpoint);
        context.readahead_kib = std::to_string(cfg.readahead / 1024);
    }
    return se;
}

ServeOptions serve_options(const Config& cfg, TransportKind transport,
                           const std::vector<std::unique_ptr<StorageBackend>>& backends) {
    ServeOptions so;
    so.mountpoint = cfg.mountpoint;
    so.transport = transport;
    so.uring_asked = cfg.transport == TransportKind::uring;
    so.max_io = cfg.max_io;
    so.threads = cfg.threads;
    so.poll_us = cfg.poll_us;
    so.tuning = transport_tuning(cfg);
    so.prepare_thread = [&backends] {
        for (auto& b : backends)
            if (int err = b->prepare_thread())
                log_warning("%s device %d: cannot prepare a serving thread (%s)", b->kind(),
                            b->device().index, std::strerror(err));
    };
    return so;
}

int serve(const Config& cfg, Reporter& reporter) {
    TransportKind transport = TransportKind::dev;
    std::string not_uring; // why not, where the kernel does not offer FUSE over io_uring
    if (!resolve_transport(cfg.transport, transport, not_uring)) {
        reporter.report(kExitFailure, "vramfs: --transport uring: " + not_uring);
        return kExitFailure;
    }
    std::vector<std::unique_ptr<StorageBackend>> backends;
    std::vector<std::unique_ptr<BlockPool>> pools;
    std::unique_ptr<Filesystem> fs;
    std::string devices_text;
    prepare_heap();
    // Before the drivers and the pool start threads of their own: those made later inherit it.
    const SwapHardening hardening = harden_for_swap();
    block_stop_signals();
    for (const DeviceBudget& d : cfg.devices) {
        int rc = 0;
        auto backend = open_device(cfg, d, reporter, rc);
        if (!backend) return rc;
        devices_text += std::string(devices_text.empty() ? "" : ", ") + backend->kind() +
                        " device " + std::to_string(d.index) + " (" + backend->device().name + ")";
        backends.push_back(std::move(backend));
    }
    try {
        fs = make_filesystem(cfg, backends, pools);
    } catch (const std::exception& ex) {
        reporter.report(kExitFailure, std::string("vramfs: cannot start: ") + ex.what());
        return kExitFailure;
    }
    std::unique_ptr<SpillFile> spill;
    if (!cfg.spill.empty()) {
        std::string why;
        if (!(spill = attach_spill(cfg, pools, why))) {
            reporter.report(kExitUsage, "vramfs: " + why);
            return kExitUsage;
        }
    }
    std::uint64_t total = 0;
    for (const auto& p : pools) total += p->budget_blocks() * cfg.block_size;

    FuseContext context(*fs, ::getuid());
    int rc = 0;
    fuse_session* se = mount_session(cfg, context, reporter, rc);
    if (!se) return rc;
    ServeOptions so = serve_options(cfg, transport, backends);
    std::string why;
    // The transports' buffers are host memory of the first device's backend.
    auto server = make_transport(se, so, *backends.front(), context.stats, why);
    if (!server && so.uring_asked) {
        fuse_session_unmount(se);
        fuse_session_destroy(se);
        reporter.report(kExitFailure, "vramfs: FUSE over io_uring: " + why);
        return kExitFailure;
    }
    if (!server) {
        not_uring = why;
        so.transport = TransportKind::dev;
        server = make_transport(se, so, *backends.front(), context.stats, why);
    }
    context.max_background = max_background_for(cfg, so.transport); // sent at INIT, served below
    if (so.transport == TransportKind::dev && cfg.transport == TransportKind::automatic)
        log_info("serving over /dev/fuse: %s", not_uring.c_str());
    reporter.report(0, "vramfs: mounted " + cfg.mountpoint + ": " + format_size(total) + " on " +
                           devices_text + (so.transport == TransportKind::uring ? ", FUSE over io_uring"
                                                                                : ", /dev/fuse"));
    if (reporter.detached()) {
        detach_stdio();
        log_to_syslog(true);
    }
    report_hardening(hardening);

    rc = server->serve();
    fuse_session_destroy(se);
    log_info("unmounted %s", cfg.mountpoint.c_str());
    return rc == 0 ? 0 : kExitFailure;
}

} // namespace

int run(const Config& cfg) {
    set_log_level(cfg.log_level);
    if (cfg.list_devices) return list_devices(cfg);
    if (cfg.check) return check_requirements();

    if (std::string why = check_mountpoint(cfg.mountpoint, cfg.nonempty); !why.empty()) {
        std::fprintf(stderr, "vramfs: %s\n", why.c_str());
        return kExitUsage;
    }
    if (cfg.nonempty && directory_has_entries(cfg.mountpoint))
        std::fprintf(stderr, "vramfs: %s is not empty: its files are hidden until unmounted\n",
                     cfg.mountpoint.c_str());
    if (::access("/dev/fuse", R_OK | W_OK) != 0) {
        std::fprintf(stderr, "vramfs: cannot use /dev/fuse: %s (is FUSE installed and loaded?)\n",
                     std::strerror(errno));
        return kExitFailure;
    }

    if (cfg.foreground) {
        Reporter to_terminal(-1);
        return serve(cfg, to_terminal);
    }

    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        std::perror("vramfs: pipe");
        return kExitFailure;
    }
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        std::perror("vramfs: fork");
        return kExitFailure;
    }
    if (pid == 0) {
        ::close(fds[0]);
        ::setsid();
        Reporter to_parent(fds[1]);
        const int rc = serve(cfg, to_parent);
        if (!to_parent.detached()) to_parent.report(rc ? rc : kExitFailure, "vramfs: exited");
        std::_Exit(rc);
    }
    ::close(fds[1]);
    std::string msg;
    char buf[512];
    for (;;) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
            msg.append(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fds[0]);
    if (msg.empty()) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        std::fprintf(stderr, "vramfs: the daemon died while mounting\n");
        return kExitFailure;
    }
    const auto space = msg.find(' ');
    const int code = std::atoi(msg.substr(0, space).c_str());
    const std::string line = space == std::string::npos ? "" : msg.substr(space + 1);
    if (code != 0) ::waitpid(pid, nullptr, 0);
    std::fprintf(code == 0 ? stdout : stderr, "%s\n", line.c_str());
    return code;
}

} // namespace vramfs
