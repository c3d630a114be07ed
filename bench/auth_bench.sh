#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What authentication costs: the source's setup time (VMM reached, every
# channel connected and authenticated, handshake done) and total time of
# the same small migration with --insecure, --token-file and --tls-psk,
# runs interleaved so that load from other jobs hits every mode alike.
#
#   bench/auth_bench.sh        BENCH_REPS (default 7) runs per mode,
#                              BENCH_SIZE (default 64M), BENCH_CHANNELS (4)
# Prints a markdown table: median (min-max) setup and total ms per mode.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
reps=${BENCH_REPS:-7} size=${BENCH_SIZE:-64M} chans=${BENCH_CHANNELS:-4}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-authbench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP
vmig_psk "$tmp/key.psk"

# run MODE_ARGS NAME: one migration; appends "setup total" to $tmp/res.NAME.
run() {
	local p
	p=$(free_port)
	bench_guests "$vmig" "$size" "--pattern idle" ""
	bench_listen $vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" $1 --no-progress
	$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" $1 --multifd "$chans" --json --no-progress \
		2>"$tmp/m.err" | tail -n 1 >"$tmp/m.json"
	wait "$BENCH_DG" || { echo "bench: $2: destination guest failed" >&2; cat "$tmp/m.err" "$tmp/ls.err" >&2; exit 1; }
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"]; print(d["setup_ms"], d["total_ms"])' \
		"$tmp/m.json" >>"$tmp/res.$2"
}

echo "# vmig authentication cost, $(date -u +%F), $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $size idle guest, $chans multifd channels, $reps interleaved runs per mode"
for _ in $(seq "$reps"); do
	run "--insecure" insecure
	run "--token-file $tmp/token" token
	run "--tls-psk $tmp/key.psk" tls-psk
done
echo
echo "| mode | setup ms: median (min-max) | total ms: median (min-max) |"
echo "| --- | --- | --- |"
for m in insecure token tls-psk; do
	python3 - "$m" "$tmp/res.$m" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[2])]
s = sorted(r[0] for r in rows); t = sorted(r[1] for r in rows)
print("| %s | %.1f (%.1f-%.1f) | %.1f (%.1f-%.1f) |" % (sys.argv[1], statistics.median(s), s[0], s[-1],
      statistics.median(t), t[0], t[-1]))
PY
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
