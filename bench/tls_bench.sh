#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Precopy throughput over loopback: plain TCP vs TLS 1.3 (x509 and PSK).
#
#   bench/tls_bench.sh
#
# An idle guest of BENCH_SIZE (default 1G, every page non-zero) migrated
# with BENCH_CHANNELS (default "1 2") multifd channels, BENCH_REPS (default
# 3) times per mode, the modes interleaved so that load on the machine hits
# them alike.  Throughput is page data / (total time - setup), from the
# source's report; the table gives the median of the runs and TLS / plain,
# and the median CPU time (user + system) of vmig listen + vmig migrate over
# the whole run (setup, RAM prefault and TLS handshakes included): on a
# shared machine that is steadier than the wall clock.
# Test credentials are made in a temporary directory.
# BENCH_BASE=PATH (another vmig binary, e.g. a build of an earlier commit)
# adds its PSK runs, interleaved with the others: before/after in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
size=${BENCH_SIZE:-1G}
reps=${BENCH_REPS:-3}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-tlsbench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP

c=$tmp/creds
vmig_x509 "$c"
vmig_psk "$tmp/key.psk"

# run CHANNELS "tls args" TAG [BINARY]: prints the source's JSON report.
run() {
	local p vmig=${4:-$vmig}
	p=$(free_port)
	bench_guests "$vmig" "$size" "--pattern idle" ""
	bench_listen /usr/bin/time -o "$tmp/ls.cpu" -f "%U %S" \
		$vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" --no-progress $2
	sleep 0.3
	/usr/bin/time -o "$tmp/mg.cpu" -f "%U %S" \
		$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" --multifd "$1" --json --no-progress $2
	wait "$BENCH_LS" || true
	wait "$BENCH_DG" || { echo "bench: destination guest failed" >&2; cat "$tmp/dg.err" "$tmp/ls.err" >&2; exit 1; }
	# CPU seconds of both helpers (user + system), whole run, appended to the runs file
	cat "$tmp/ls.cpu" "$tmp/mg.cpu" | awk '{s += $1 + $2} END {printf "%.2f ", s}' >>"$tmp/cpu.$3"
}

# A failed run counts as 0 (and says so on stderr).
gbps() {
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.2f" % (d["throughput_bps"] * 8 / 1e9 if d["ok"] else 0))' "$1"
}
median() { tr ' ' '\n' | sort -n | awk 'NF {a[++n] = $1} END {print a[int((n + 1) / 2)]}'; }

echo "# vmig TLS benchmark, $(date -u +%F), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
echo "# $(openssl version); kernel TLS ULP available: $(grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && echo yes || echo no)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $size idle guest, $reps runs per mode"
echo
echo "| channels | plain Gbit/s | TLS x509 Gbit/s | TLS PSK Gbit/s | x509 / plain | PSK / plain | runs (plain; x509; PSK) | CPU s, both helpers (plain; x509; PSK) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
base=${BENCH_BASE:-}
for n in ${BENCH_CHANNELS:-1 2}; do
	pl="" x5="" ps="" pb=""
	rm -f "$tmp"/cpu.*
	for _ in $(seq "$reps"); do
		pl+="$(gbps "$(run "$n" "--insecure" pl)") "
		x5+="$(gbps "$(run "$n" "--tls-creds $c" x5)") "
		ps+="$(gbps "$(run "$n" "--tls-psk $tmp/key.psk" ps)") "
		[ -z "$base" ] || pb+="$(gbps "$(run "$n" "--tls-psk $tmp/key.psk" pb "$base")") "
	done
	mp=$(median <<<"$pl") mx=$(median <<<"$x5") mk=$(median <<<"$ps")
	echo "| $n | $mp | $mx | $mk | $(awk "BEGIN {printf \"%.0f %%\", 100 * $mx / $mp}") |" \
		"$(awk "BEGIN {printf \"%.0f %%\", 100 * $mk / $mp}") | ${pl% }; ${x5% }; ${ps% } |" \
		"$(median <"$tmp/cpu.pl"); $(median <"$tmp/cpu.x5"); $(median <"$tmp/cpu.ps") |"
	if [ -n "$base" ]; then
		mb=$(median <<<"$pb")
		echo "| $n, PSK with BENCH_BASE | | | $mb | | $(awk "BEGIN {printf \"%.0f %%\", 100 * $mb / $mp}") | ${pb% } | $(median <"$tmp/cpu.pb") |"
	fi
done
echo
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
