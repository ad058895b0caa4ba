// Size parsing: units, fractions, and rejection of malformed input.
#include "vramfs/util/size.hpp"

#include <doctest/doctest.h>

using vramfs::parse_size;

TEST_CASE("sizes with binary and decimal units") {
    CHECK(parse_size("4096") == 4096u);
    CHECK(parse_size("1K") == 1024u);
    CHECK(parse_size("6G") == 6ull << 30);
    CHECK(parse_size("6g") == 6ull << 30);
    CHECK(parse_size("6GiB") == 6ull << 30);
    CHECK(parse_size("512MiB") == 512ull << 20);
    CHECK(parse_size("2T") == 2ull << 40);
    CHECK(parse_size("1GB") == 1000000000u);
    CHECK(parse_size("1.5G") == (3ull << 30) / 2);
    CHECK(parse_size("100B") == 100u);
}

TEST_CASE("malformed sizes are rejected with a reason") {
    for (const char* bad : {"", "G", "-1G", "1.5", "1X", "1GiBB", "1 G", "abc", ".5G", "1.G",
                            "99999999999999999999", "20000000P"}) {
        std::string why;
        CAPTURE(bad);
        CHECK_FALSE(parse_size(bad, &why).has_value());
        CHECK_FALSE(why.empty());
    }
}

TEST_CASE("format_size") {
    CHECK(vramfs::format_size(6ull << 30) == "6.0 GiB");
    CHECK(vramfs::format_size(100) == "100 B");
    CHECK(vramfs::format_size(1536ull << 20) == "1.5 GiB");
}
