// Mounts for integration tests: the real vramfs binary on a temporary directory, and a tmpfs
// directory to compare against.
#pragma once

#include <string>
#include <vector>

namespace vramfs::test {

std::string vramfs_binary();  // $VRAMFS_BIN
std::string test_backend();   // $VRAMFS_TEST_BACKEND: host (default), cuda or vulkan
std::string test_transport(); // $VRAMFS_TEST_TRANSPORT: dev, uring, or "" (vramfs's default)
// What every mount of the suite is given: --backend, and --transport where one is set.
std::vector<std::string> backend_args();
// Why this machine cannot run the suite ("" when it can): no /dev/fuse, no CUDA device, FUSE
// over io_uring off for a uring suite, ... `required_by` is set to the environment variable
// that makes that reason a failure instead of a skip (CI sets them), or null.
std::string unavailable_reason(const char** required_by);

// The mount's status as its root's user.vramfs.status[.json] gives it, or "" if it cannot.
std::string status_xattr(const std::string& mnt, bool json);

// Runs a command line through /bin/sh; returns its exit status (or -1).
int shell(const std::string& command);
// Runs argv directly, capturing stdout+stderr into `output`; returns the exit status.
int run_program(const std::vector<std::string>& argv, std::string* output = nullptr);

std::string make_temp_dir(const char* tag);

class VramfsMount {
public:
    explicit VramfsMount(const std::string& size, const std::vector<std::string>& extra = {});
    ~VramfsMount();
    VramfsMount(const VramfsMount&) = delete;
    VramfsMount& operator=(const VramfsMount&) = delete;
    const std::string& path() const { return path_; }
    const std::string& mount_output() const { return output_; }

private:
    std::string path_;
    std::string output_;
};

class TmpfsDir {
public:
    explicit TmpfsDir(const std::string& size);
    ~TmpfsDir();
    TmpfsDir(const TmpfsDir&) = delete;
    TmpfsDir& operator=(const TmpfsDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    bool mounted_ = false;
};

// Unmounts a FUSE mount point: fusermount3 -u where it exists, else umount.
void unmount(const std::string& path);

} // namespace vramfs::test
