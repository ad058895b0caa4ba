// Parsing and printing byte sizes ("6G", "512MiB", "1.5T", "4096"), and device indices.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vramfs {

// K, M, G, T, P (with or without "iB") are powers of 1024; KB, MB, GB, TB, PB are powers of 1000,
// as in util-linux. A bare number is bytes. Fractions are allowed with a suffix ("1.5G").
// Returns nullopt on malformed input or overflow, with `why` saying what is wrong.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why = nullptr);

// A device index ("0", "1", ...): the whole text a non-negative int, else nullopt.
std::optional<int> parse_device_index(const std::string& text);

// "6.0 GiB", "512.0 MiB", "4096 B".
std::string format_size(std::uint64_t bytes);

} // namespace vramfs
