#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Where postcopy page-request latency goes: join the VMIG_PC_TRACE records
of both helpers (helper/common/pctrace.h) and print each stage's distribution, and
the stages of the slowest 1 % of requests, for the requests the preempt
reply answered; those the background stream answered first ("B") apart.

    bench/pc_stages.py PREFIX [LABEL]     (reads PREFIX.src and PREFIX.dst)
"""
import sys

# A chain: stages 2-6 sum to "fault read -> placed", 1-6 to "fault -> placed".
# A receive stamp is taken when the packet enters the receiving side's
# backlog, which on a veth pair is inside the sender's write: the
# write+wire stages include the write call.
STAGES = [
    ("dst: fault -> read (kmod)", lambda r, s, p: r[0] - fault(r)),
    ("dst: fault read -> req at src", lambda r, s, p: s[0] - r[0]),
    ("src: rp thread wake + read", lambda r, s, p: s[1] - s[0]),
    ("src: page write -> at dst", lambda r, s, p: p[0] - s[1]),
    ("dst: thread wake + read", lambda r, s, p: p[1] - p[0]),
    ("dst: place (COPY / VMIG_PLACE)", lambda r, s, p: p[2] - p[1]),
    ("total: fault read -> placed", lambda r, s, p: p[2] - r[0]),
    ("total: fault -> placed", lambda r, s, p: p[2] - fault(r)),
    ("(dst request write call)", lambda r, s, p: r[1] - r[0]),
    ("(src page write call)", lambda r, s, p: s[2] - s[1]),
]


def fault(r):
    """The fault's own stamp (kmod: the module's), else the helper's read."""
    return r[2] if r[2] else r[0]


def load(path):
    recs = {}
    with open(path) as f:
        for line in f:
            tag, reg, page, *t = line.split()
            recs.setdefault(tag, {})[(int(reg), int(page))] = [int(x) for x in t]
    return recs


def pct(v, q):
    return v[min(len(v) - 1, int(len(v) * q))]


def main():
    prefix = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else prefix
    d, s = load(prefix + ".dst"), load(prefix + ".src")
    rows, bg = [], []
    for k, r in d.get("R", {}).items():
        b = d.get("B", {}).get(k)
        pv = d.get("P", {}).get(k)
        # answered by the background stream before any reply was placed
        if b and (not pv or b[1] < pv[2]):
            bg.append(((b[1] - r[0]) / 1e3, (b[1] - b[0]) / 1e3, (r[0] - fault(r)) / 1e3))
            continue
        if k in s.get("S", {}) and pv:
            sv = s["S"][k]
            if sv[0] and pv[0]:
                rows.append([f(r, sv, pv) / 1e3 for _, f in STAGES])
    if not rows and not bg:
        print(f"{label}: no joined requests")
        return
    print(f"{label}: {len(rows) + len(bg)} requests joined; µs")
    if bg:
        v = sorted(x[0] for x in bg)
        c = sorted(x[1] for x in bg)
        print(f"  {len(bg)} answered by the background stream first: fault read -> placed "
              f"avg {sum(v) / len(v):.0f} p50 {pct(v, .5):.0f} p99 {pct(v, .99):.0f}; "
              f"the placing call avg {sum(c) / len(c):.0f} p99 {pct(c, .99):.0f}; "
              f"fault -> read avg {sum(x[2] for x in bg) / len(bg):.0f}")
    if not rows:
        return
    rows.sort(key=lambda x: x[6])
    tail = rows[int(len(rows) * 0.99):]
    print(f"  {len(rows)} answered by the preempt reply, by stage:")
    print(f"  {'stage':32} {'avg':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>8}"
          f" | slowest 1 % avg")
    for i, (name, _) in enumerate(STAGES):
        v = sorted(x[i] for x in rows)
        print(f"  {name:32} {sum(v) / len(v):7.0f} {pct(v, .5):7.0f} {pct(v, .9):7.0f} "
              f"{pct(v, .99):7.0f} {v[-1]:8.0f} | {sum(x[i] for x in tail) / len(tail):7.0f}")


main()
