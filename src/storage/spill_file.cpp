// SpillFile: checking the place, making and writing the file once, and O_DIRECT I/O.
#include "vramfs/storage/spill_file.hpp"

#include "vramfs/util/log.hpp"
#include "vramfs/util/memory.hpp"
#include "vramfs/util/size.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

namespace vramfs {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;

// Why the filesystem holding `dir` cannot take a spill, or "".
std::string unfit_filesystem(const std::string& dir) {
    struct statfs fs {};
    if (::statfs(dir.c_str(), &fs) != 0) return dir + ": " + std::strerror(errno);
    switch (static_cast<long>(fs.f_type)) {
    case TMPFS_MAGIC:
    case RAMFS_MAGIC: return dir + " is on tmpfs or ramfs: a spill there would be RAM again; use a local disk";
    case kFuseSuperMagic: return dir + " is on a FUSE filesystem (a vramfs mount would be VRAM again); use a local disk";
    default: return "";
    }
}

std::string parent_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes zeros over [from, to) in large O_DIRECT writes, so that every extent is written.
int write_zeros(int fd, std::uint64_t from, std::uint64_t to) {
    constexpr std::size_t kPiece = 4 << 20;
    void* zeros = map_host_memory(kPiece, SpillFile::kAlign);
    if (!zeros) return ENOMEM;
    int err = 0;
    for (std::uint64_t off = from; off < to && !err;) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kPiece, to - off));
        const ssize_t w = ::pwrite(fd, zeros, n, static_cast<off_t>(off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = w < 0 ? errno : EIO;
        else off += static_cast<std::uint64_t>(w);
    }
    unmap_host_memory(zeros, kPiece, SpillFile::kAlign);
    return err ? err : (::fdatasync(fd) == 0 ? 0 : errno);
}

} // namespace

std::unique_ptr<SpillFile> SpillFile::open(const std::string& path, const std::string& mountpoint,
                                           std::uint64_t bytes, std::string& why) {
    bytes = (bytes + kAlign - 1) / kAlign * kAlign;
    struct stat st {};
    const bool is_dir = ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    const std::string dir = is_dir ? path : parent_of(path);
    // The directory must exist; the file is checked against the mount point by its real path.
    char real[PATH_MAX];
    if (!::realpath(dir.c_str(), real)) {
        why = "--spill " + path + ": " + dir + ": " + std::strerror(errno);
        return nullptr;
    }
    const std::string real_dir = real;
    if (real_dir == mountpoint || real_dir.rfind(mountpoint + "/", 0) == 0) {
        why = "--spill " + path + " is inside the mount point " + mountpoint + " itself; use a local disk";
        return nullptr;
    }
    if (std::string unfit = unfit_filesystem(real_dir); !unfit.empty()) {
        why = "--spill " + path + ": " + unfit;
        return nullptr;
    }
    const int fd = is_dir ? ::open(real_dir.c_str(), O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600)
                          : ::open(path.c_str(), O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
    if (fd < 0) {
        why = "--spill " + path + ": " + std::strerror(errno) +
              (errno == EINVAL ? " (the filesystem does not take O_DIRECT)" : "");
        return nullptr;
    }
    auto file = std::unique_ptr<SpillFile>(new SpillFile(fd, is_dir ? real_dir + "/(unnamed)" : path, bytes));
    struct stat fst {};
    if (::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) {
        why = "--spill " + path + " is not a regular file or a directory";
        return nullptr;
    }
    const std::uint64_t had = static_cast<std::uint64_t>(fst.st_size);
    if (int err = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)); err != 0) {
        struct statfs fs {};
        const std::uint64_t avail = ::fstatfs(fd, &fs) == 0 ? std::uint64_t{fs.f_bavail} * fs.f_bsize : 0;
        why = "--spill " + path + ": " +
              (err == ENOSPC ? "no room for " + format_size(bytes) + " (" + format_size(avail) + " free there)"
                             : std::string(std::strerror(err)));
        if (!is_dir && had == 0) ::unlink(path.c_str());
        return nullptr;
    }
    if (had < bytes) {
        log_info("writing the spill file %s once (%s)", file->path().c_str(), format_size(bytes - had).c_str());
        if (int err = write_zeros(fd, had / kAlign * kAlign, bytes); err != 0) {
            why = "--spill " + path + ": writing it failed: " + std::strerror(err);
            return nullptr;
        }
    }
    return file;
}

SpillFile::~SpillFile() { ::close(fd_); }

namespace {
// pread or pwrite until all n bytes are done: 0, or an errno (EIO where the file ended early).
template <class Buffer, class Io>
int whole(Io io, int fd, std::uint64_t off, Buffer* p, std::size_t n) noexcept {
    while (n > 0) {
        const ssize_t done = io(fd, p, n, static_cast<off_t>(off));
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) return done < 0 ? errno : EIO;
        p += done;
        off += static_cast<std::uint64_t>(done);
        n -= static_cast<std::size_t>(done);
    }
    return 0;
}
} // namespace

int SpillFile::read(std::uint64_t off, void* dst, std::size_t n) const noexcept {
    return whole(::pread, fd_, off, static_cast<char*>(dst), n);
}

int SpillFile::write(std::uint64_t off, const void* src, std::size_t n) const noexcept {
    return whole(::pwrite, fd_, off, static_cast<const char*>(src), n);
}

} // namespace vramfs
