#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The destination's stream parser under libFuzzer (ASan+UBSan) for a bounded
# time, from seeds that are valid streams: no crash, leak or sanitizer report.
set -u
. "$(dirname "$0")/tap.sh"
cd "$(dirname "$0")/../.."
secs=${VMIG_FUZZ_SECONDS:-15}

if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
	skip "stream parser fuzz run" "clang not installed (scripts/deps.sh installs it)"
	tap_done
	exit
fi
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
tap_done
