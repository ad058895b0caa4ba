// The kernel's FUSE-over-io_uring interface (include/uapi/linux/fuse.h, protocol 7.42, Linux
// 6.14 and later). Debian 12's linux/fuse.h predates it, so the definitions vramfs needs are
// written out here; they are ABI and must match the kernel's byte for byte.
#pragma once

#include <cstdint>

namespace vramfs::uring_abi {

// FUSE_INIT flag (in flags2, the upper 32 bits): the kernel offers it when enable_uring is on,
// the server answers with it to carry requests over io_uring.
inline constexpr std::uint64_t kOverIoUring = 1ull << 41;

inline constexpr std::size_t kInOutHeaderSize = 128; // fuse_in_header / fuse_out_header
inline constexpr std::size_t kOpInOutSize = 128;     // the opcode's own header (fuse_read_in...)

struct EntInOut {
    std::uint64_t flags;
    std::uint64_t commit_id; // the request's unique; a reply names it
    std::uint32_t payload_sz; // bytes of the payload buffer in use (request in, reply out)
    std::uint32_t padding;
    std::uint64_t reserved;
};

// What the kernel writes each request's headers into (the first of an entry's two buffers).
struct ReqHeader {
    char in_out[kInOutHeaderSize];
    char op_in[kOpInOutSize];
    EntInOut ring_ent_in_out;
};

enum Cmd : std::uint32_t {
    kCmdRegister = 1,       // hand the kernel an entry (header and payload buffers), fetch a request
    kCmdCommitAndFetch = 2, // reply to the entry's request, fetch the next
};

// In the SQE's 80-byte command area (the ring is set up with 128-byte SQEs).
struct CmdReq {
    std::uint64_t flags;
    std::uint64_t commit_id;
    std::uint16_t qid; // the queue: one per possible CPU, requests go to their CPU's queue
    std::uint8_t padding[6];
};

static_assert(sizeof(EntInOut) == 32 && sizeof(ReqHeader) == 288 && sizeof(CmdReq) == 24);

} // namespace vramfs::uring_abi
