#include "vramfs/util/wc_copy.hpp"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vramfs {

#if defined(__x86_64__)
namespace {

constexpr std::size_t kLine = 64;

// One 64-byte line at `line` (64-byte aligned) into `out`, by four streaming loads issued
// before any store, so the line is fetched once.
__attribute__((target("sse4.1"))) inline void load_line(const char* line, char* out) noexcept {
    auto* s = reinterpret_cast<__m128i*>(const_cast<char*>(line));
    const __m128i a = _mm_stream_load_si128(s), b = _mm_stream_load_si128(s + 1),
                  c = _mm_stream_load_si128(s + 2), d = _mm_stream_load_si128(s + 3);
    auto* o = reinterpret_cast<__m128i*>(out);
    _mm_storeu_si128(o, a);
    _mm_storeu_si128(o + 1, b);
    _mm_storeu_si128(o + 2, c);
    _mm_storeu_si128(o + 3, d);
}

__attribute__((target("sse4.1"))) void stream_copy(char* dst, const char* src, std::size_t len) noexcept {
    alignas(kLine) char part[kLine];
    // A partial first line: the whole line, then the part asked for.
    if (const std::size_t skew = reinterpret_cast<std::uintptr_t>(src) % kLine) {
        load_line(src - skew, part);
        const std::size_t n = len < kLine - skew ? len : kLine - skew;
        std::memcpy(dst, part + skew, n);
        src += n;
        dst += n;
        len -= n;
    }
    for (; len >= kLine; src += kLine, dst += kLine, len -= kLine) load_line(src, dst);
    if (len) {
        load_line(src, part);
        std::memcpy(dst, part, len);
    }
}

bool have_sse41() noexcept {
    static const bool yes = (__builtin_cpu_init(), __builtin_cpu_supports("sse4.1") != 0);
    return yes;
}

} // namespace

void copy_from_write_combined(void* dst, const void* src, std::size_t len) noexcept {
    if (have_sse41()) {
        stream_copy(static_cast<char*>(dst), static_cast<const char*>(src), len);
    } else {
        std::memcpy(dst, src, len);
    }
}

#else

void copy_from_write_combined(void* dst, const void* src, std::size_t len) noexcept { std::memcpy(dst, src, len); }

#endif

} // namespace vramfs
