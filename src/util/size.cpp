// Byte-size parsing and formatting.
#include "vramfs/util/size.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace vramfs {

std::optional<std::uint64_t> parse_size(std::string_view text, std::string* why) {
    auto fail = [&](const char* reason) -> std::optional<std::uint64_t> {
        if (why) *why = reason;
        return std::nullopt;
    };
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool digits = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        const unsigned d = static_cast<unsigned>(text[i] - '0');
        if (whole > (UINT64_MAX - d) / 10) return fail("number too large");
        whole = whole * 10 + d;
        digits = true;
        ++i;
    }
    double fraction = 0;
    bool has_fraction = false;
    if (i < text.size() && text[i] == '.') {
        ++i;
        double scale = 0.1;
        bool fdigits = false;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            fraction += (text[i] - '0') * scale;
            scale /= 10;
            fdigits = true;
            ++i;
        }
        if (!fdigits) return fail("expected digits after '.'");
        has_fraction = true;
    }
    if (!digits) return fail("expected a number such as 6G, 512M or 1073741824");

    std::string_view suffix = text.substr(i);
    std::uint64_t unit = 1;
    if (!suffix.empty()) {
        static const char kLetters[] = "KMGTP";
        const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(suffix[0])));
        int power = -1;
        for (int p = 0; kLetters[p]; ++p)
            if (kLetters[p] == c) power = p + 1;
        std::string_view rest = suffix.substr(1);
        std::uint64_t base = 1024;
        if (power < 0) {
            if (suffix == "B" || suffix == "b") {
                power = 0;
                rest = {};
            } else {
                return fail("unknown unit (use K, M, G, T or P, optionally followed by iB)");
            }
        } else if (rest == "iB" || rest == "ib" || rest.empty()) {
            base = 1024;
        } else if (rest == "B" || rest == "b") {
            base = 1000;
        } else {
            return fail("unknown unit (use K, M, G, T or P, optionally followed by iB)");
        }
        for (int p = 0; p < power; ++p) unit *= base;
    } else if (has_fraction) {
        return fail("a fraction needs a unit, as in 1.5G");
    }
    if (whole > UINT64_MAX / unit) return fail("size too large");
    std::uint64_t bytes = whole * unit;
    const double extra = std::floor(fraction * static_cast<double>(unit));
    if (extra >= static_cast<double>(UINT64_MAX - bytes)) return fail("size too large");
    bytes += static_cast<std::uint64_t>(extra);
    return bytes;
}

std::optional<int> parse_device_index(const std::string& text) {
    try {
        std::size_t used = 0;
        const int v = std::stoi(text, &used);
        if (used != text.size() || v < 0) return std::nullopt;
        return v;
    } catch (...) {
        return std::nullopt;
    }
}

std::string format_size(std::uint64_t bytes) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) return std::to_string(bytes) + " B";
    double v = static_cast<double>(bytes);
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
    return buf;
}

} // namespace vramfs
