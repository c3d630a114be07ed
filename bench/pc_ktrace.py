#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The module's missing-page events of one traced postcopy run (the "KT"
lines of bench/qemu_vmig_bench.sh PCTRACE=1, split by
bench/pc_trace_split.sh): who faulted (task, fault flags), how long each
faulting thread waited (vmig_missing_wake), and the page's first fault to
its placing (vmig_place woke=1), per task of that first fault.

    bench/pc_ktrace.py DIR/SEQ.kt
"""
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+):\s+(\w+):\s+(.*)$")
# include/linux/mm_types.h (6.1)
FLAGS = [(0x1, "WRITE"), (0x4, "ALLOW_RETRY"), (0x8, "RETRY_NOWAIT"), (0x10, "KILLABLE"),
         (0x20, "TRIED"), (0x40, "USER"), (0x80, "REMOTE"), (0x200, "INTERRUPTIBLE")]


def flag_names(v):
    return "|".join(n for b, n in FLAGS if v & b) or "0"


def stats(v):
    if not v:
        return "-"
    v = sorted(v)
    return (f"n {len(v)} avg {sum(v) / len(v):.0f} p50 {v[len(v) // 2]:.0f} "
            f"p90 {v[int(len(v) * .9)]:.0f} p99 {v[min(len(v) - 1, int(len(v) * .99))]:.0f} "
            f"max {v[-1]:.0f}")


def main():
    first, placed = {}, set()
    kinds = defaultdict(int)
    waits, lat = defaultdict(list), defaultdict(list)
    for line in open(sys.argv[1]):
        m = LINE.match(line)
        if not m:
            continue
        comm, t, ev, rest = re.sub(r"\d+", "N", m.group(1)), float(m.group(3)), m.group(4), m.group(5)
        f = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        pg = (f.get("region"), f.get("page"))
        if ev == "vmig_missing_fault":
            kinds[(comm, flag_names(int(f["fault_flags"], 16)), f["new_request"])] += 1
            if f["new_request"] == "1" and pg not in first:
                first[pg] = (t, comm)
        elif ev == "vmig_missing_wake":
            waits[comm].append(int(f["wait_ns"]) / 1e3)
        elif ev == "vmig_place" and pg in first and pg not in placed:
            placed.add(pg)
            lat[first[pg][1]].append((t - first[pg][0]) * 1e6)
    print("faults by task, flags, new request:")
    for k, n in sorted(kinds.items(), key=lambda x: -x[1]):
        print(f"  {n:6} {k[0]:24} {k[1]:40} new={k[2]}")
    print("a faulting thread's wait (us), by task:")
    for k, v in waits.items():
        print(f"  {k:24} {stats(v)}")
    print("first fault -> page placed (us), by the first fault's task:")
    for k, v in lat.items():
        print(f"  {k:24} {stats(v)}")
    print(f"  {'all':24} {stats([x for v in lat.values() for x in v])}")


main()
