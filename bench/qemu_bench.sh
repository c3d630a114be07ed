#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Migrating a real Linux guest under QEMU, inside the module's test VM
# (make bench-qemu): QEMU's own migration, the baseline of issue 14.
#
# One guest (the inner test guest: guest_workload writing and checking
# self-checking pages, timing every access) is booted once and then
# migrated back and forth between QEMUs in this VM, one migration per case,
# the cases interleaved round by round so that every case sees the same
# machine load.  For each migration it prints one line
#   BENCH case=C round=R total_ms= downtime_ms= bytes= mbps= requests=
#         slow= slow_p50_us= slow_p99_us= slow_max_us=
# (total time, downtime and bytes from the source's query-migrate; the
# postcopy page requests it served; and the page accesses the guest found
# slow, >= 20 us, in a window that opens just before the migration starts
# and closes once it completed), then the medians per case.  A last full
# verification pass checks every page after all the migrations.
#
# Cases (BENCH_CASES, in this order each round):
#   qemu-mf1 qemu-mf2 qemu-mf4   precopy, multifd with 1, 2, 4 channels
#   qemu-pc-preempt              postcopy-ram + postcopy-preempt, switched
#                                to postcopy at once
# More cases: a file of shell functions case_NAME FROM TO PORT, sourced
# from BENCH_CASES_FILE (default /usr/bin/qemu_bench_cases.sh if present).
# A case starts the destination VM TO (bench_start_dst), moves the running
# guest from FROM to TO and sets R_TOTAL R_DOWN R_BYTES R_MBPS R_REQ (ms,
# ms, bytes, Mbit/s, count; "-" where it has none); it returns non-zero on
# failure.  The runner measures the guest's side and stops FROM.
#
# Environment: BENCH_ROUNDS=3, QEMU_MEM=512M (guest RAM), QEMU_SMP=1,
# BENCH_BW=10240 (max-bandwidth, MiB/s: QEMU's 128 MiB/s default would
# cap every case alike), BENCH_WRITE_RATE=4000 (guest pages/s).
. /usr/bin/qemu_lib.sh

QEMU_WORK=${QEMU_WORK:-/tmp/qemu-bench}
export QEMU_MEM=${QEMU_MEM:-512M}
export QEMU_APPEND=${QEMU_APPEND:-wl.percent=70 wl.write-rate=${BENCH_WRITE_RATE:-4000} wl.check-rate=4000}
rounds=${BENCH_ROUNDS:-3}
cases=${BENCH_CASES:-qemu-mf1 qemu-mf2 qemu-mf4 qemu-pc-preempt}
bw=$((${BENCH_BW:-10240} * 1048576))
results=$QEMU_WORK/results
port=4700
seq=0

if ! command -v "$QEMU_BIN" >/dev/null || [ ! -r "$QEMU_DIR/vmlinuz" ]; then
	echo "qemu_bench: no $QEMU_BIN or $QEMU_DIR/vmlinuz here (run it with make bench-qemu)"
	exit 1
fi
trap 'qemu_stop_all' EXIT
mkdir -p "$QEMU_WORK"
: >"$results"

now() { cut -d' ' -f1 /proc/uptime; }

# bench_start_dst TO [QEMU-ARGS...]: a destination VM on its own RAM file.
bench_start_dst() {
	local to=$1
	shift
	rm -f "$QEMU_WORK/$to.ram"
	qemu_start "$to" "$QEMU_WORK/$to.ram" -incoming defer "$@"
}

# qemu_caps VM JSON-LIST / qemu_params VM JSON-OBJECT
qemu_caps() { qmp_ok "$1" migrate-set-capabilities "{\"capabilities\":$2}"; }
qemu_params() { qmp_ok "$1" migrate-set-parameters "$2"; }

# qemu_native FROM TO PORT CAPS PARAMS POSTCOPY: one QEMU migration, results in R_*.
qemu_native() {
	local from=$1 to=$2 uri=tcp:127.0.0.1:$3 caps=$4 params=$5 pc=$6 r ram
	bench_start_dst "$to" || return 1
	qemu_caps "$from" "$caps" && qemu_caps "$to" "$caps" || return 1
	qemu_params "$from" "$params" && qemu_params "$to" "$params" || return 1
	qemu_params "$from" "{\"max-bandwidth\":$bw}" || return 1
	qmp_ok "$to" migrate-incoming "{\"uri\":\"$uri\"}" || return 1
	qmp_ok "$from" migrate "{\"uri\":\"$uri\"}" || return 1
	[ "$pc" = 1 ] && { qmp_ok "$from" migrate-start-postcopy || return 1; }
	r=$(qemu_wait_migration "$from" 1200) || { echo "$r" | sed 's/^/# /'; return 1; }
	qemu_wait_status "$to" running 120 || return 1
	R_TOTAL=$(qmp_field "$r" total-time)
	R_DOWN=$(qmp_field "$r" downtime)
	ram=$(echo "$r" | sed 's/.*"ram": {//')
	R_BYTES=$(qmp_field "$ram" transferred)
	R_MBPS=$(qmp_field "$ram" mbps | cut -d. -f1)
	R_REQ=$(qmp_field "$ram" postcopy-requests)
}

# Multifd with 1, 2, 4 channels: "multifd" on, "multifd-channels" N.
mf_caps='[{"capability":"multifd","state":true},{"capability":"postcopy-ram","state":false},{"capability":"postcopy-preempt","state":false}]'
pc_caps='[{"capability":"multifd","state":false},{"capability":"postcopy-ram","state":true},{"capability":"postcopy-preempt","state":true}]'
case_qemu_mf1() { qemu_native "$1" "$2" "$3" "$mf_caps" '{"multifd-channels":1}' 0; }
case_qemu_mf2() { qemu_native "$1" "$2" "$3" "$mf_caps" '{"multifd-channels":2}' 0; }
case_qemu_mf4() { qemu_native "$1" "$2" "$3" "$mf_caps" '{"multifd-channels":4}' 0; }
case_qemu_pc_preempt() { qemu_native "$1" "$2" "$3" "$pc_caps" '{}' 1; }

cases_file=${BENCH_CASES_FILE:-/usr/bin/qemu_bench_cases.sh}
# shellcheck disable=SC1090
[ -r "$cases_file" ] && . "$cases_file"

# guest_window VM: close the guest's latency window; prints its WL-LAT line.
guest_window() {
	local from line
	seq=$((seq + 1))
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "report $seq"
	qemu_wait_console "$1" "^WL-REPORT $seq " 300 "$from" >/dev/null || return 1
	line=$(grep "^WL-LAT $seq " "$QEMU_WORK/$1/console.log")
	echo "$line"
}

# One guest, booted once; vm$N names the QEMU it runs in now.
t0=$(now)
cur=vm0
if ! qemu_boot $cur "$QEMU_WORK/$cur.ram" 900; then
	echo "qemu_bench: the guest's workload did not start"
	exit 1
fi
echo "# guest: $QEMU_MEM, ${QEMU_SMP:-1} vCPU, on $(qemu_accel $cur), ready in" \
	"$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s:" \
	"$(grep -m 1 '^WL-READY' "$QEMU_WORK/$cur/console.log")"
echo "# rounds $rounds, cases: $cases"
n=0
fail=0
r=1
while [ $r -le "$rounds" ]; do
	for c in $cases; do
		n=$((n + 1))
		next=vm$n
		port=$((port + 1))
		fn=case_$(echo "$c" | tr '-' '_')
		R_TOTAL=- R_DOWN=- R_BYTES=- R_MBPS=- R_REQ=-
		guest_window $cur >/dev/null || { echo "# $c: the guest does not answer"; fail=1; break 2; }
		if ! $fn $cur $next $port; then
			echo "BENCH case=$c round=$r FAILED"
			fail=1
			qemu_stop $next
			continue
		fi
		qemu_stop $cur
		rm -f "$QEMU_WORK/$cur.ram"
		cur=$next
		lat=$(guest_window $cur) || { echo "# $c: the guest does not answer after it"; fail=1; break 2; }
		f() { echo "$lat" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
		echo "BENCH case=$c round=$r total_ms=$R_TOTAL downtime_ms=$R_DOWN bytes=$R_BYTES" \
			"mbps=$R_MBPS requests=$R_REQ slow=$(f slow) slow_p50_us=$(f p50_us)" \
			"slow_p99_us=$(f p99_us) slow_max_us=$(f max_us)" | tee -a "$results"
	done
	r=$((r + 1))
done

if qemu_verify $cur 999999 900; then
	echo "# every page verified after $n migrations, guest kernel log clean"
else
	echo "# VERIFICATION FAILED after $n migrations"
	fail=1
fi

echo "# medians per case ($rounds rounds, interleaved; measured in a TCG VM, under load):"
printf '# %-18s %10s %10s %12s %8s %8s %8s %10s %10s %10s\n' case total_ms down_ms bytes Mbit/s reqs slow p50_us p99_us max_us
for c in $cases; do
	grep "^BENCH case=$c " "$results" | awk -v c="$c" '
	function med(k, fmt,   n, i, j, t, v) {
		n = 0
		for (i = 1; i <= NR; i++) if (vals[k, i] != "" && vals[k, i] != "-") v[++n] = vals[k, i] + 0
		if (!n) return "-"
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return sprintf(fmt, n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2)
	}
	{ for (i = 1; i <= NF; i++) { split($i, kv, "="); vals[kv[1], NR] = kv[2] } }
	END {
		if (!NR) exit
		printf "# %-18s %10s %10s %12s %8s %8s %8s %10s %10s %10s\n", c, med("total_ms", "%.0f"),
			med("downtime_ms", "%.0f"), med("bytes", "%.0f"), med("mbps", "%.0f"),
			med("requests", "%.0f"), med("slow", "%.0f"), med("slow_p50_us", "%.1f"),
			med("slow_p99_us", "%.1f"), med("slow_max_us", "%.1f")
	}'
done
exit $fail
