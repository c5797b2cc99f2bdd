#!/usr/bin/env python3
"""bench/rss_breakdown.py — where the resident memory of running processes goes.

    python3 bench/rss_breakdown.py PID [PID...]

Prints one line per process, "PID rss code own files" in kB, from /proc/PID/smaps:
  code   pages of the executable and its shared libraries (the same physical pages in every
         process that maps them; includes the pages the dynamic linker relocated)
  own    anonymous memory: malloc's heap and arenas, thread stacks
  files  other mapped files (SQLite's -shm wal-index: each connection maps it again)
then a last line "together KB": the pages of all the processes, each physical page counted
once (from /proc/PID/pagemap; "-" when not allowed to read page frame numbers, i.e. not root).
"""
import os
import re
import struct
import sys

MAPPING = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$")
PAGE = os.sysconf("SC_PAGE_SIZE")


def mappings(pid):
    """(start, end, name, Rss kB) per mapping."""
    out = []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = MAPPING.match(line)
            if m:
                out.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip(), 0])
            elif line.startswith("Rss:"):
                out[-1][3] = int(line.split()[1])
    return out


def kind(name, exe):
    if name == "" or name.startswith("[heap]") or name.startswith("[stack"):
        return "own"
    if name.startswith("["):  # [vdso], [vvar], [vsyscall]
        return "code"
    if ".so" in os.path.basename(name) or name == exe:
        return "code"
    return "files"


def frames(pid, maps):
    """The physical page frames present in the process, or None when they cannot be read."""
    found = set()
    try:
        with open(f"/proc/{pid}/pagemap", "rb") as f:
            for start, end, name, rss in maps:
                if rss == 0 or name == "[vsyscall]":
                    continue
                f.seek(start // PAGE * 8)
                data = f.read((end - start) // PAGE * 8)
                for (entry,) in struct.iter_unpack("<Q", data):
                    if entry >> 63 & 1:
                        found.add(entry & ((1 << 55) - 1))
    except OSError:
        return None
    if found == {0}:  # present pages but frame numbers hidden: not privileged
        return None
    return found


def main():
    union = set()
    readable = True
    for pid in sys.argv[1:]:
        maps = mappings(pid)
        exe = os.readlink(f"/proc/{pid}/exe")
        sums = {"code": 0, "own": 0, "files": 0}
        for _, _, name, rss in maps:
            sums[kind(name, exe)] += rss
        print(pid, sum(sums.values()), sums["code"], sums["own"], sums["files"])
        f = frames(pid, maps)
        if f is None:
            readable = False
        else:
            union |= f
    print("together", len(union) * PAGE // 1024 if readable else "-")


if __name__ == "__main__":
    main()
