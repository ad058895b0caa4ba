// Integration fixtures: mount and unmount the real binary; a tmpfs to compare with.
#include "mount_fixture.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <stdexcept>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace vramfs::test {

std::string vramfs_binary() {
    const char* b = std::getenv("VRAMFS_BIN");
    return b ? b : "vramfs";
}

std::string test_backend() {
    const char* b = std::getenv("VRAMFS_TEST_BACKEND");
    return b && *b ? b : "host";
}

std::string test_transport() {
    const char* t = std::getenv("VRAMFS_TEST_TRANSPORT");
    return t ? t : "";
}

std::vector<std::string> backend_args() {
    std::vector<std::string> a{"--backend", test_backend()};
    if (!test_transport().empty()) a.insert(a.end(), {"--transport", test_transport()});
    return a;
}

std::string status_xattr(const std::string& mnt, bool json) {
    const char* name = json ? "user.vramfs.status.json" : "user.vramfs.status";
    std::string v(65536, '\0');
    const ssize_t n = ::getxattr(mnt.c_str(), name, v.data(), v.size());
    return n < 0 ? "" : v.substr(0, static_cast<std::size_t>(n));
}

int run_program(const std::vector<std::string>& argv, std::string* output) {
    int pipefd[2];
    if (::pipe(pipefd) != 0) return -1;
    const pid_t pid = ::fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        ::dup2(pipefd[1], STDOUT_FILENO);
        ::dup2(pipefd[1], STDERR_FILENO);
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::_Exit(127);
    }
    ::close(pipefd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int shell(const std::string& command) {
    return run_program({"/bin/sh", "-c", command});
}

std::string unavailable_reason(const char** required_by) {
    *required_by = nullptr;
    if (::access("/dev/fuse", R_OK | W_OK) != 0) return "no usable /dev/fuse";
    if (::access(vramfs_binary().c_str(), X_OK) != 0) return "VRAMFS_BIN is not set to the binary";
    if (test_transport() == "uring") {
        // enable_uring is N by default; CI turns it on and requires these suites.
        *required_by = "VRAMFS_REQUIRE_URING";
        const char* param = "/sys/module/fuse/parameters/enable_uring";
        std::ifstream in(param);
        char on = 0;
        if (!(in >> on)) return "this kernel has no FUSE over io_uring (Linux 6.14+)";
        if (on != 'Y' && on != '1')
            return std::string("FUSE over io_uring is off in this kernel (as root: echo 1 > ") +
                   param + ")";
    }
    if (test_backend() == "cuda" || test_backend() == "vulkan") {
        // CI has lavapipe, so there a missing Vulkan device is a failure, not a skip.
        *required_by = test_backend() == "vulkan" ? "VRAMFS_REQUIRE_VULKAN" : nullptr;
        std::string out;
        if (run_program({vramfs_binary(), "--list-devices", "--backend", test_backend()}, &out) != 0)
            return "no " + test_backend() + " device: " + out.substr(0, out.find('\n'));
    }
    *required_by = nullptr;
    return "";
}

std::string make_temp_dir(const char* tag) {
    std::string templ = std::string("/tmp/vramfs-") + tag + "-XXXXXX";
    if (!::mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
    return templ;
}

void unmount(const std::string& path) {
    if (shell("command -v fusermount3 >/dev/null && fusermount3 -u '" + path + "'") == 0) return;
    if (::umount2(path.c_str(), 0) != 0) ::umount2(path.c_str(), MNT_DETACH);
}

VramfsMount::VramfsMount(const std::string& size, const std::vector<std::string>& extra)
    : path_(make_temp_dir("mnt")) {
    std::vector<std::string> argv{vramfs_binary(), path_, size};
    const std::vector<std::string> common = backend_args();
    argv.insert(argv.end(), common.begin(), common.end());
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (run_program(argv, &output_) != 0) {
        ::rmdir(path_.c_str());
        throw std::runtime_error("vramfs failed to mount: " + output_);
    }
}

VramfsMount::~VramfsMount() {
    unmount(path_);
    ::rmdir(path_.c_str());
}

TmpfsDir::TmpfsDir(const std::string& size) : path_(make_temp_dir("tmpfs")) {
    // As root, a tmpfs of our own; otherwise a directory on /tmp (tmpfs on most systems).
    if (::geteuid() == 0)
        mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
}

TmpfsDir::~TmpfsDir() {
    if (mounted_)
        ::umount2(path_.c_str(), MNT_DETACH);
    else
        shell("rm -rf '" + path_ + "'");
    ::rmdir(path_.c_str());
}

} // namespace vramfs::test
