// A memory cgroup of a test's own (v2 or v1) and the small file helpers it needs, shared by the
// pressure tool and the unit tests that need a real memory limit. Root only.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace vramfs::test_support {

inline bool write_file(const std::string& path, const std::string& value) {
    std::ofstream f(path);
    f << value;
    f.flush();
    return static_cast<bool>(f);
}

inline std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// A memory cgroup of our own, v2 or v1, removed on destruction.
class MemoryCgroup {
public:
    // Named PREFIX-PID, under the cgroup this process is in where that works.
    bool create(std::uint64_t limit, std::string& error, const std::string& prefix = "vramfs-pressure") {
        const std::string name = prefix + "-" + std::to_string(::getpid());
        struct stat st{};
        if (::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0 &&
            read_file("/sys/fs/cgroup/cgroup.controllers").find("memory") != std::string::npos) {
            v2_ = true;
            // Nested under our own cgroup where that works, else at the root.
            std::string self = own_path("0::");
            std::vector<std::string> parents;
            if (!self.empty() && self != "/") parents.push_back("/sys/fs/cgroup" + self);
            parents.push_back("/sys/fs/cgroup");
            for (const auto& parent : parents) {
                write_file(parent + "/cgroup.subtree_control", "+memory");
                if (read_file(parent + "/cgroup.subtree_control").find("memory") == std::string::npos)
                    continue;
                dir_ = parent + "/" + name;
                if (::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) continue;
                if (write_file(dir_ + "/memory.max", std::to_string(limit))) {
                    write_file(dir_ + "/memory.swap.max", "max");
                    return true;
                }
                ::rmdir(dir_.c_str());
            }
            error = "cannot create a cgroup v2 with the memory controller";
            return false;
        }
        if (::stat("/sys/fs/cgroup/memory/memory.limit_in_bytes", &st) == 0) {
            std::string self = own_path("memory:");
            dir_ = "/sys/fs/cgroup/memory" + (self == "/" ? std::string() : self) + "/" + name;
            if (::mkdir(dir_.c_str(), 0755) != 0) {
                error = "mkdir " + dir_ + ": " + std::strerror(errno);
                return false;
            }
            if (!write_file(dir_ + "/memory.limit_in_bytes", std::to_string(limit))) {
                error = "cannot set " + dir_ + "/memory.limit_in_bytes";
                ::rmdir(dir_.c_str());
                return false;
            }
            write_file(dir_ + "/memory.swappiness", "100");
            return true;
        }
        error = "no memory cgroup controller (v1 or v2) is mounted under /sys/fs/cgroup";
        return false;
    }
    bool add(pid_t pid) { return write_file(dir_ + "/cgroup.procs", std::to_string(pid)); }
    const std::string& path() const { return dir_; }
    bool v2() const { return v2_; }
    ~MemoryCgroup() {
        if (!dir_.empty()) ::rmdir(dir_.c_str());
    }

    // The cgroup directory a process is in now (for moving it back later).
    static std::string dir_of(pid_t pid, bool v2) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/cgroup");
        std::string line;
        const std::string key = v2 ? "0::" : ":memory:";
        while (std::getline(f, line)) {
            auto p = line.find(key);
            if (p == std::string::npos || (v2 && p != 0)) continue;
            std::string rel = line.substr(p + key.size());
            return (v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory") + (rel == "/" ? "" : rel);
        }
        return v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
    }

private:
    static std::string own_path(const std::string& key) {
        std::ifstream f("/proc/self/cgroup");
        std::string line;
        while (std::getline(f, line)) {
            auto p = line.find(key);
            if (p != std::string::npos && (key != "0::" || p == 0)) return line.substr(p + key.size());
        }
        return "";
    }
    std::string dir_;
    bool v2_ = false;
};

} // namespace vramfs::test_support
