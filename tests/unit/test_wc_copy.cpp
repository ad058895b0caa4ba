// copy_from_write_combined: the bytes of memcpy for every alignment and length around a line,
// and nothing written past the end. (On ordinary memory; the speed on a GPU's BAR is for
// vramfs-vk-copy-bench --mapped-reads.)
#include "vramfs/util/wc_copy.hpp"

#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <sys/mman.h>
#include <vector>

using namespace vramfs;

TEST_CASE("copy_from_write_combined copies what memcpy does, at any alignment and length") {
    // The source starts on a line, as a mapping does: the whole lines around every byte copied
    // lie inside it.
    alignas(64) static unsigned char src[1024];
    for (std::size_t i = 0; i < sizeof src; ++i) src[i] = static_cast<unsigned char>(i * 7 + 3);
    int mismatches = 0;
    for (std::size_t skew = 0; skew < 130; ++skew)
        for (std::size_t len = 0; len < 300; ++len) {
            std::vector<unsigned char> got(len + 16, 0xee);
            copy_from_write_combined(got.data(), src + skew, len);
            if (std::memcmp(got.data(), src + skew, len) != 0) ++mismatches;
            for (std::size_t i = len; i < got.size(); ++i)
                if (got[i] != 0xee) ++mismatches;
        }
    CHECK(mismatches == 0);
}

TEST_CASE("copy_from_write_combined reads no line outside the one a byte asked for lies in") {
    // Three pages, the outer two inaccessible: copies of the whole middle page, of its last
    // five bytes and of all but its first and last byte must not fault.
    const std::size_t page = 4096;
    auto* base = static_cast<unsigned char*>(
        mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base != MAP_FAILED);
    unsigned char* mid = base + page;
    for (std::size_t i = 0; i < page; ++i) mid[i] = static_cast<unsigned char>(i);
    REQUIRE(mprotect(base, page, PROT_NONE) == 0);
    REQUIRE(mprotect(mid + page, page, PROT_NONE) == 0);
    std::vector<unsigned char> out(page);
    copy_from_write_combined(out.data(), mid, page);
    CHECK(std::memcmp(out.data(), mid, page) == 0);
    copy_from_write_combined(out.data(), mid + page - 5, 5);
    CHECK(std::memcmp(out.data(), mid + page - 5, 5) == 0);
    copy_from_write_combined(out.data(), mid + 1, page - 2);
    CHECK(std::memcmp(out.data(), mid + 1, page - 2) == 0);
    munmap(base, 3 * page);
}
