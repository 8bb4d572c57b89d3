#!/usr/bin/python3
# bench/stacks.py PID: which pages of each thread stack of a live process
# are resident, grouped by thread name.
#
# Not a test: a measuring aid for bench/media.sh (BENCH_STACKS=1) and for
# looking at a live plexusd by hand. A thread's stack is found from the
# stack pointer in /proc/PID/task/TID/syscall (the thread must be blocked
# in a system call, as parked session threads are); the resident pages of
# its mapping come from /proc/PID/pagemap (bit 63, present; bit 62,
# swapped). For each thread name it prints how many threads, the resident
# pages per stack (min/median/max) and how deep below the top of the stack
# the lowest resident page lies (the deepest the thread has ever been).
import collections
import os
import struct
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def mappings(pid):
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            out.append((lo, hi, fields[1], fields[5] if len(fields) > 5 else ""))
    return out


def resident(pid, lo, hi):
    """Addresses of the resident (or swapped) pages in [lo, hi)."""
    pages = []
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(lo // PAGE * 8)
        data = f.read((hi - lo) // PAGE * 8)
    for i, (entry,) in enumerate(struct.iter_unpack("<Q", data)):
        if entry & (3 << 62):
            pages.append(lo + i * PAGE)
    return pages


def main():
    pid = int(sys.argv[1])
    maps = mappings(pid)
    groups = collections.defaultdict(list)
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/syscall") as f:
                fields = f.read().split()
        except OSError:
            continue
        if len(fields) < 3 or fields[0] == "running":
            continue
        sp = int(fields[-2], 16)
        for lo, hi, perms, path in maps:
            if lo <= sp < hi:
                break
        else:
            continue
        if path == "[stack]":
            name += " (main)"
        pages = resident(pid, lo, hi)
        depth = (hi - min(pages)) // 1024 if pages else 0
        groups[name].append((len(pages), depth, (hi - lo) // 1024))
    for name in sorted(groups):
        g = groups[name]
        counts = sorted(p for p, _, _ in g)
        depths = sorted(d for _, d, _ in g)
        print(f"{name:16} threads {len(g):4}  stack {g[0][2]} KiB  resident pages "
              f"min {counts[0]} median {counts[len(counts) // 2]} max {counts[-1]} "
              f"(total {sum(counts) * PAGE // 1024} KiB)  deepest "
              f"{depths[len(depths) // 2]}/{depths[-1]} KiB (median/max)")


if __name__ == "__main__":
    main()
