#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The destination's stream parser, the other peer-facing parsers (device
# state, preempt and return-path packets, RESUME/RECEIVED, REQ, a
# connection's opening, the control socket's requests: peer_fuzz.c) and the
# VMM's side of the control protocol (vmm_fuzz.c) under libFuzzer
# (ASan+UBSan) for a bounded time each, from valid seeds: no crash, leak or
# sanitizer report.
set -u
. "$(dirname "$0")/tap.sh"
cd "$(dirname "$0")/../.."
secs=${VMIG_FUZZ_SECONDS:-15}

need_cmd "${FUZZ_CC:-clang}" "stream parser fuzz run"
log=$(mktemp)
trap 'rm -rf "$log" "$corpus"' EXIT
if ! make -s fuzz >"$log" 2>&1; then
	if grep -q "libclang_rt.fuzzer\|fsanitize=fuzzer" "$log"; then
		skip "stream parser fuzz run" "libFuzzer unavailable: $(head -c 200 "$log")"
		tap_done
		exit
	fi
	cat "$log"
	check "the fuzz target builds" false
	tap_done
	exit
fi
corpus=$(mktemp -d)
python3 - "$corpus" <<'PY'
import struct, sys
d = sys.argv[1]
def pkt(t, p): return struct.pack("<HHI", t, 0, len(p)) + p
hdr = lambda kind, idx=0: struct.pack("<IHHQIIQ", 0x47494D56, 1, kind, 7, idx, 0, 0)
hello = pkt(1, struct.pack("<IIQIIII", 1, 1, 3, 4096, 2, 2, 0) + struct.pack("<QQ", 64, 32))
main = hdr(1) + hello + pkt(5, struct.pack("<IIQ", 1, 0, 10)) + pkt(9, b"") + pkt(6, struct.pack("<QII", 12, 2, 0))
pages = pkt(3, struct.pack("<IIQQ", 0, 2, 3, (1 << 63) | 4) + b"\x5a" * 4096)
mfd = hdr(2, 1) + pages + pkt(9, b"") + pkt(4, struct.pack("<QQ", 2, 1))
open(d + "/main", "wb").write(b"\x01" + main)
open(d + "/multifd", "wb").write(b"\x07" + mfd)
open(d + "/multifd-nohdr", "wb").write(b"\x06" + pages)
PY
out=$(build/fuzz/stream_fuzz -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 "$corpus" 2>&1); rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' <<<"$out")
echo "# $runs inputs in $secs s"
check "stream parser survives ${secs}s of libFuzzer (ASan+UBSan)" test $rc -eq 0
[ $rc -eq 0 ] || tail -n 40 <<<"$out"

# The peer-facing parsers outside the page stream, and the VMM's side of the
# control protocol: a few seconds each, from valid seeds.
psecs=${VMIG_FUZZ_PEER_SECONDS:-8}
pc=$(mktemp -d) vc=$(mktemp -d)
trap 'rm -rf "$log" "$corpus" "$pc" "$vc"' EXIT
python3 - "$pc" "$vc" <<'PY'
import struct, sys
pc, vc = sys.argv[1:]
def pkt(t, p): return struct.pack("<HHI", t, 0, len(p)) + p
hdr = lambda kind, idx=0: struct.pack("<IHHQIIQ", 0x47494D56, 1, kind, 7, idx, 0, 0)
dev = lambda name, inst: name.ljust(32, b"\0") + struct.pack("<IIQ", inst, 0, 1 << 20)
devices = pkt(10, struct.pack("<IIII", 2, 4096, 1, 0) + dev(b"nic0", 0) + dev(b"disk", 1))
chunk = lambda d, seq, data, last=0: pkt(11, struct.pack("<IIII", d, seq, last, len(data)) + data)
seeds = {
    "devstate": b"\x00" + devices + chunk(0, 1, b"b" * 64) + chunk(0, 0, b"a" * 64) +
                chunk(1, 0, b"", 1) + chunk(0, 2, b"", 1),
    "preempt": b"\x01" + pkt(3, struct.pack("<IIQ", 0, 1, 1) + b"\x5a" * 4096) +
               pkt(3, struct.pack("<IIQ", 0, 1, (1 << 63) | 3)) + pkt(9, b"") + pkt(4, b""),
    "req": b"\x02" + pkt(14, struct.pack("<IIQ", 0, 0, 5)) + pkt(14, struct.pack("<IIQ", 1, 0, 31)) +
           pkt(4, b""),
    "received": b"\x03" + pkt(17, struct.pack("<IIQ", 0, 1, 0) + struct.pack("<Q", 0xF0F0)) +
                pkt(17, struct.pack("<IIQ", 1, 1, 0) + struct.pack("<Q", 1)) + pkt(7, b"\x33" * 32),
    "done": b"\x03" + pkt(15, b"\x44" * 32),
    "notswitched": b"\x03" + pkt(18, b"\x55" * 32) +
                   pkt(8, struct.pack("<iI", 0x10000, 0) + b"never ran"),
    "hello": b"\x04" + hdr(1) + pkt(1, struct.pack("<IIQIIII", 1, 1, 3, 4096, 2, 2, 0) +
                                        struct.pack("<QQ", 64, 32)),
    "resume": b"\x04" + hdr(1) + pkt(16, struct.pack("<II", 2, 0) + b"\x11" * 32),
    "multifd": b"\x04" + hdr(2, 1) + b"\x22" * 32,
    "ctl": b"\x05resume 127.0.0.1:4444",
}
for n, d in seeds.items():
    open(pc + "/" + n, "wb").write(d)
def msg(t, p=b"", nfds=0): m = struct.pack("<IHHII", 0x564D4D31, t, nfds, len(p), 0) + p; return struct.pack("<H", len(m)) + m
vseeds = {
    "src": b"\x00" + msg(2, struct.pack("<II", 0, 0)) + msg(16, struct.pack("<II", 20, 0)) +
           msg(4) + msg(6) + msg(10) + msg(14) + msg(8),
    "dst": b"\x01" + msg(10) + msg(6) + msg(9, b"migration failed"),
    "log": b"\x00" + msg(2, struct.pack("<II", 4, 0)) + msg(24) + msg(24) + msg(4) + msg(24) +
           msg(8),
}
for n, d in vseeds.items():
    open(vc + "/" + n, "wb").write(d)
PY
for t in peer vmm; do
	c=$pc
	[ $t = vmm ] && c=$vc
	out=$(build/fuzz/${t}_fuzz -max_total_time="$psecs" -timeout=10 -rss_limit_mb=1024 \
		-print_final_stats=1 "$c" 2>&1); rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' <<<"$out")
	echo "# $t: $runs inputs in $psecs s"
	check "$t parsers survive ${psecs}s of libFuzzer (ASan+UBSan)" test $rc -eq 0
	[ $rc -eq 0 ] || tail -n 40 <<<"$out"
done
tap_done
