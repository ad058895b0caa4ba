// The command line: parsed into a plain Config, validated, then turned into FUSE arguments.
#pragma once

#include "vramfs/storage/backend.hpp"
#include "vramfs/storage/fault_backend.hpp"
#include "vramfs/util/log.hpp"
#include "vramfs/util/transport.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace vramfs {

enum class BackendKind { cuda, host, vulkan };
const char* backend_name(BackendKind k) noexcept; // "cuda", "host", "vulkan"

struct DeviceBudget {
    int index = 0;
    std::uint64_t size = 0; // bytes of this device the mount may use
};

struct Config {
    std::string mountpoint; // absolute where it resolves
    std::string source;     // mount(8)'s SOURCE label, or "" on the vramfs command line
    std::vector<DeviceBudget> devices; // every device of the mount, with its budget
    BackendKind backend = BackendKind::cuda;
    bool backend_given = false; // --list-devices shows every API's devices unless one is named
    bool foreground = false;
    bool fuse_debug = false;
    std::vector<std::string> fuse_options; // each -o split at commas
    // /dev/fuse by default: over io_uring the CUDA rows and swap are not faster yet
    // (docs/performance.md#transports).
    TransportKind transport = TransportKind::dev;
    unsigned threads = 8;
    unsigned poll_us = 0; // busy-poll /dev/fuse this long after each request (0: sleep at once)
    std::uint64_t block_size = 1 << 20;
    std::uint64_t max_io = kDefaultMaxIo; // the largest read or write request the kernel sends
    bool null_io = false;
    bool direct_io = false;
    bool buffered_writes = false; // write-only opens keep the page cache (by default they bypass it)
    bool writeback_cache = false;
    unsigned read_cache = 8; // ReadCache windows (0: off)
    std::uint64_t readahead = 2 << 20; // the mount's page-cache readahead (0: the kernel's)
    bool nonempty = false; // -o nonempty: mount over a directory that holds files (hiding them)
    bool list_devices = false;
    bool check = false;
    FaultPlan faults; // test only: --inject-faults
    double release_delay = 5; // seconds an empty slab waits before going back to the GPU
    std::string spill;        // the disk tier under VRAM (a file or a directory); "" for none
    std::uint64_t keep_free = 1ull << 30; // with a spill: free VRAM the mount leaves other programs
    std::string host_card_file; // tests: the host backend plays a card of the size in this file
    LogLevel log_level = LogLevel::info;

    // Tuning knobs, to compare with: hidden from --help, in docs/options.md. Each default is
    // the one the code it feeds declares (VulkanTuning, TransportTuning); vulkan_tuning() and the
    // daemon pass them on.
    unsigned max_background = 0; // requests the kernel may have waiting (0: 64 over dev, its own 12 over uring)
    unsigned killpriv_v2 = TransportTuning{}.killpriv_v2;
    unsigned ring_pin_cpu = TransportTuning{}.ring_pin_cpu;
    unsigned ring_poll_us = TransportTuning{}.ring_poll_us;
    unsigned ring_queue_threads = TransportTuning{}.ring_queue_threads;
    unsigned vk_fence_spin_us = VulkanTuning{}.fence_spin_us;
    unsigned vk_queue_write_kib = VulkanTuning{}.queue_write_kib;
    unsigned vk_mapped_read_kib = VulkanTuning{}.mapped_read_kib;
    unsigned vk_fresh_queue = VulkanTuning{}.fresh_on_queue;
    unsigned vk_host_import = VulkanTuning{}.host_import;
    unsigned vk_batch = VulkanTuning{}.batch;
    unsigned vk_batch_barrier = VulkanTuning{}.batch_barrier;
    unsigned vk_in_flight = VulkanTuning{}.in_flight;
    unsigned vk_queues = VulkanTuning{}.queues;
    unsigned vk_queue_family = VulkanTuning{}.queue_family;
};

// The Vulkan backend's knobs from a Config.
VulkanTuning vulkan_tuning(const Config& c);
// The transports' knobs from a Config.
TransportTuning transport_tuning(const Config& c);

// Exit codes: 0 success, 1 a failure of the system (no GPU, mount refused), 2 bad input.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct ParseResult {
    Config config;
    bool done = false;    // --help or --version was answered, or parsing failed: just exit
    int exit_code = 0;
    std::string output;   // for stdout (help, version)
    std::string error;    // one line for stderr
};

ParseResult parse_command_line(int argc, const char* const* argv);

// --poll-us when not given: 200 on a machine with 8 or more CPUs (two spinning workers are a
// small share of it), 0 on smaller ones, where spinning takes the CPU the I/O needs.
unsigned default_poll_us();

// Checks that the mount point is an existing, unmounted directory, and empty unless
// `nonempty`; returns "" or the reason.
std::string check_mountpoint(const std::string& path, bool nonempty = false);

// Whether a directory holds anything (false where it cannot be read).
bool directory_has_entries(const std::string& path);

// `path` made absolute where it resolves, else as given: so that a mount point names one mount
// wherever it is read (the mount's source, the status label) and the daemon, which changes to
// /, unmounts by it.
std::string absolute_path(const std::string& path);

// The argument vector for fuse_session_new.
std::vector<std::string> fuse_arguments(const Config& config);

} // namespace vramfs
