// Logging to stderr or syslog.
#include "vramfs/util/log.hpp"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <syslog.h>
#include <unistd.h>

namespace vramfs {
namespace {
std::atomic<bool> g_syslog{false};
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
const char* const kNames[] = {"error", "warning", "info", "debug"};
const int kPriorities[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
} // namespace

void log_to_syslog(bool on) noexcept {
    if (on) openlog("vramfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    g_syslog.store(on);
}
void set_log_level(LogLevel level) noexcept { g_level.store(static_cast<int>(level)); }
LogLevel log_level() noexcept { return static_cast<LogLevel>(g_level.load()); }

bool parse_log_level(const char* text, LogLevel& out) noexcept {
    for (int i = 0; i < 4; ++i)
        if (std::strcmp(text, kNames[i]) == 0) {
            out = static_cast<LogLevel>(i);
            return true;
        }
    return false;
}

void log_message(LogLevel level, const char* fmt, ...) noexcept {
    if (static_cast<int>(level) > g_level.load()) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    const int lvl = static_cast<int>(level);
    if (g_syslog.load()) {
        syslog(kPriorities[lvl], "%s", line);
    } else {
        char out[1100];
        int n = std::snprintf(out, sizeof out, "vramfs: %s: %s\n", kNames[lvl], line);
        if (n > 0) {
            ssize_t ignored = ::write(STDERR_FILENO, out, std::min<std::size_t>(n, sizeof out - 1));
            (void)ignored;
        }
    }
}

} // namespace vramfs
