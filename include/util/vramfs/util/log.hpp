// Logging: stderr in the foreground, syslog once detached; formats on the stack, never the heap.
#pragma once

namespace vramfs {

enum class LogLevel { error = 0, warning = 1, info = 2, debug = 3 };

// Sends log lines to syslog (the daemon, once detached) instead of stderr.
void log_to_syslog(bool on) noexcept;
void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
// Parses "error|warning|info|debug"; false for anything else.
bool parse_log_level(const char* text, LogLevel& out) noexcept;

void log_message(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

#define log_error(...) ::vramfs::log_message(::vramfs::LogLevel::error, __VA_ARGS__)
#define log_warning(...) ::vramfs::log_message(::vramfs::LogLevel::warning, __VA_ARGS__)
#define log_info(...) ::vramfs::log_message(::vramfs::LogLevel::info, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (::vramfs::log_level() >= ::vramfs::LogLevel::debug)                                    \
            ::vramfs::log_message(::vramfs::LogLevel::debug, __VA_ARGS__);                         \
    } while (0)

} // namespace vramfs
