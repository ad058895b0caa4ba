#!/usr/bin/env python3
"""Where a blocked thread is in user space, for a hang's thread dump: its program counter, and
the words on its stack that point into executable mappings (likely return addresses, innermost
first), each as the mapping's file and offset, which addr2line or nm turn into a function.

usage: user_frames.py PID TID [COUNT]   (root; reads /proc/PID/task/TID/syscall and /proc/PID/mem)
"""
import struct
import sys


def main():
    pid, tid = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    try:
        fields = open(f"/proc/{pid}/task/{tid}/syscall").read().split()
    except OSError as e:
        print(f"  (no user state: {e.strerror})")
        return
    if len(fields) < 3 or not fields[-1].startswith("0x"):
        print(f"  (no user state: syscall says {' '.join(fields) or 'nothing'})")
        return
    sp, pc = int(fields[-2], 16), int(fields[-1], 16)
    maps = []
    for line in open(f"/proc/{pid}/maps"):
        parts = line.split()
        start, end = (int(x, 16) for x in parts[0].split("-"))
        maps.append((start, end, parts[1], int(parts[2], 16), parts[5] if len(parts) > 5 else "[anon]"))

    def where(addr):
        for start, end, perms, off, path in maps:
            if start <= addr < end:
                return perms, f"{path}+{addr - start + off:#x}"
        return None, None

    print(f"  user pc {pc:#x} in {where(pc)[1]}, sp {sp:#x} in {where(sp)[1]}")
    stack_end = next((end for start, end, *_ in maps if start <= sp < end), sp)
    try:
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mem.seek(sp)
            data = mem.read(min(64 * 1024, stack_end - sp))
    except OSError as e:
        print(f"  (stack unreadable: {e.strerror})")
        return
    shown = 0
    for i in range(0, len(data) - 7, 8):
        (word,) = struct.unpack_from("<Q", data, i)
        perms, at = where(word)
        if perms and "x" in perms:
            print(f"  sp+{i:#x}: {at}")
            shown += 1
            if shown == count:
                break


if __name__ == "__main__":
    main()
