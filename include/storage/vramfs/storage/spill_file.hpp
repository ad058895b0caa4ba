// SpillFile: the disk tier under VRAM, one preallocated file on a local filesystem that slabs
// move to when the card's memory is wanted (see SpillTier in the data layer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vramfs {

// Opened with O_DIRECT, so spill I/O goes between the daemon's locked buffers and the disk with
// no page cache: it needs no memory while serving (util/memory.hpp). For that the whole file is
// written once when it is made or grown (zeros): later writes only overwrite written extents,
// so none converts an extent or allocates a block while a request waits on it, and a move can
// never fail for space. Every offset, length and buffer given to read and write is a multiple
// of kAlign.
class SpillFile {
public:
    static constexpr std::size_t kAlign = 4096;

    // The spill of the mount at `mountpoint`, `bytes` long, at `path`: an existing directory
    // gets an unnamed file (gone with the daemon; written at every mount); any other path is a
    // file made if missing and kept after unmount (written once, reused by later mounts). Null,
    // with one line in `why`, where the place will not do: not writable, on tmpfs or ramfs (RAM
    // again), on a FUSE filesystem (such as the vramfs mount itself), without O_DIRECT or
    // fallocate, or without room for `bytes`.
    static std::unique_ptr<SpillFile> open(const std::string& path, const std::string& mountpoint,
                                           std::uint64_t bytes, std::string& why);
    ~SpillFile();
    SpillFile(const SpillFile&) = delete;
    SpillFile& operator=(const SpillFile&) = delete;

    // 0 or an errno (EIO where the file ended early).
    int read(std::uint64_t off, void* dst, std::size_t n) const noexcept;
    int write(std::uint64_t off, const void* src, std::size_t n) const noexcept;

    const std::string& path() const noexcept { return path_; } // "DIR/(unnamed)" for a directory's
    std::uint64_t size() const noexcept { return bytes_; }

private:
    SpillFile(int fd, std::string path, std::uint64_t bytes) : fd_(fd), path_(std::move(path)), bytes_(bytes) {}
    int fd_;
    std::string path_;
    std::uint64_t bytes_;
};

} // namespace vramfs
