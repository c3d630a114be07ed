#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# vmig against QEMU 7.2's own migration, side by side on this host (issue 19).
#
#   bench/vs_qemu_bench.sh          (make bench-vs-qemu)
#
# QEMU migrates its own TCG guest (Debian's kernel + busybox + the inner test
# guest's guest_workload, build/qemu/guest-initrd.gz) between two QEMUs over
# loopback; vmig migrates `vmig guest` (uffd backend: no module) with
# `vmig migrate` / `vmig listen`, the same RAM size and access pattern.  The
# runs are interleaved (QEMU, vmig, QEMU, vmig, ...) so both see the same
# machine; medians over BENCH_RUNS, one markdown table per case with the
# ratio vmig / QEMU (below 1 is vmig's better for times, latencies and CPU,
# above 1 for throughput).
#
# Cases:
#   pre1 pre2 pre4  precopy of an idle guest whose pages are written
#                   (non-zero); QEMU: multifd on, multifd-channels N (also
#                   for N = 1); vmig: --multifd N
#   pc-preempt      postcopy from the start, a guest touching random pages;
#                   QEMU: postcopy-ram + postcopy-preempt, one main channel
#                   (7.2 cannot combine postcopy and multifd), then
#                   migrate-start-postcopy at once; vmig: --multifd 1
#                   --postcopy-after 0 (preempt is its default)
#   pc-vanilla      the same without preempt (vmig: --no-preempt)
#                   (vmig's postcopy destinations: `vmig listen --no-prefault`,
#                   as QEMU's destination allocates RAM as pages arrive)
#
# Guest RAM: QEMU's is anonymous memory in 2 MiB transparent huge pages
# (QEMU asks with madvise; a postcopy destination asks for 4 KiB).  vmig's
# precopy guests have theirs likewise in 2 MiB pages: `vmig guest
# --mem-path` on a tmpfs this script mounts huge=always (root; if it cannot,
# memfds, said in the output).  Its postcopy guests keep memfds (4 KiB here,
# as QEMU's postcopy destination).
#
# Figures, per run:
#   Gbit/s       page data / (total - setup): QEMU's ram normal-bytes, vmig's
#                bytes.normal (zero pages are not page data on either side)
#   total, setup, downtime (precopy) or switch (postcopy) in ms: QEMU's
#                query-migrate total-time, setup-time, downtime (in postcopy
#                its downtime is the switch: stop to the destination running);
#                vmig's total_ms, setup_ms, downtime_ms (in postcopy also the
#                stop to the destination's resume); vmig's postcopy phase:
#                postcopy.switch_ms (stop to the end of postcopy; QEMU has
#                no such figure)
#   CPU-s src/dst, per GiB of page data: QEMU: every thread of each QEMU
#                process but its vCPUs ("CPU n/TCG": they run the guest, and
#                under TCG also its dirty tracking), from before the migrate
#                command to the end (the process's /proc stat counts threads
#                that have exited, as the migration and multifd threads have
#                by then, less its live vCPU threads' own stat); the
#                destination loads precopy pages on its main thread, counted.
#                vmig: the whole helper processes (`vmig migrate`, `vmig
#                listen`: user + sys from wait4, via /usr/bin/time); the
#                `vmig guest` VMMs are not counted, as QEMU's vCPUs are not;
#                a second figure leaves out what `vmig listen` spent
#                allocating guest RAM before the source connected (its
#                report's prefault_cpu_s; QEMU allocates during the transfer)
#   slow         postcopy: the guest's page accesses >= 20 us on the
#                destination, count, avg, p50, p99.  QEMU: guest_workload's
#                WL-LAT line (accesses slow avg_us p50_us p99_us) for a window
#                from just before the migrate command to just after it
#                completed.  vmig: `vmig guest --incoming`'s "guest: N slow
#                page accesses (>= 20 us): avg X us, max Y us; log2-us
#                histogram: [B us: n] ..." line, from resuming to the end;
#                p50/p99 from "p50"/"p99" fields if the line has them, else
#                from the histogram (marked ~: the upper bound of the log2
#                bucket that holds it)
#   req          postcopy requests (QEMU's postcopy-requests, vmig's
#                postcopy.requests); vmig's helper-side request latency
#                (destination's postcopy.latency_us avg/p50/p99), and under
#                the table its ratio to the bare 4 KiB round trip over
#                loopback (bench/tcp_rr, 2000 of them right before each vmig
#                postcopy run, both ends on one CPU as vmig's two request
#                threads end up on one host: unpinned, the round trip is 15-19
#                or 50-70 us here depending on whether the scheduler keeps its
#                ends together; medians of the runs)
#
# Access pattern: the postcopy guests both touch BENCH_RATE random pages/s
# (default 4096) on one vCPU: guest_workload writes half of them and checks
# half (wl.write-rate, wl.check-rate), `vmig guest --pattern random` checks
# and writes each (--dirty-rate BENCH_RATE / 256 MiB/s, --vcpus 1).  QEMU's
# guest fills BENCH_FILL % (default 90) of its MemAvailable with pages, the
# rest of its RAM is its kernel's; `vmig guest` fills all of its RAM.
#
# Environment: BENCH_RUNS=3, BENCH_MEM=1G (both guests' RAM), BENCH_RATE=4096,
# BENCH_FILL=90, BENCH_CASES="pre1 pre2 pre4 pc-preempt pc-vanilla",
# BENCH_WARM (GiB, default twice BENCH_MEM; 0: off; see warm below),
# BENCH_KERNEL (default /boot/vmlinuz-$(uname -r), else the newest Debian
# kernel under /boot), QEMU_BIN.  QEMU runs with -accel tcg, max-bandwidth
# 10 GiB/s (its 128 MiB/s default would cap it) and the same 300 ms
# downtime limit as vmig's default; anonymous RAM on both QEMUs (THP as
# QEMU asks for it, madvise).  A benchmark: it prints figures, asserts none.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
here=$PWD
runs=${BENCH_RUNS:-3}
mem=${BENCH_MEM:-1G}
mem_gib=$(awk -v m="$mem" 'BEGIN { u = toupper(substr(m, length(m))); v = m + 0
	g = v / 1073741824
	if (u == "K") g = v / 1048576
	if (u == "M") g = v / 1024
	if (u == "G") g = v
	if (u == "T") g = v * 1024
	print g }')
warm_gib=${BENCH_WARM:-$(awk -v g="$mem_gib" 'BEGIN { print 2 * g }')}
rate=${BENCH_RATE:-4096}
fill=${BENCH_FILL:-90}
cases=${BENCH_CASES:-pre1 pre2 pre4 pc-preempt pc-vanilla}
vmig=$here/build/out/vmig
QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}

die() { echo "vs_qemu_bench: $*" >&2; exit 1; }

command -v "$QEMU_BIN" >/dev/null ||
	die "no $QEMU_BIN (scripts/deps.sh installs qemu-system-x86)"
[ -x /usr/bin/time ] || die "no /usr/bin/time (GNU time: the helpers' CPU time)"
kernel=${BENCH_KERNEL:-/boot/vmlinuz-$(uname -r)}
if [ ! -r "$kernel" ] && [ -z "${BENCH_KERNEL:-}" ]; then
	kernel=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' 2>/dev/null | sort -V | tail -n 1)
fi
[ -r "$kernel" ] ||
	die "no kernel for the QEMU guest (/boot/vmlinuz-$(uname -r) nor a Debian one; BENCH_KERNEL=...)"
[ $((rate % 256)) -eq 0 ] || die "BENCH_RATE must be a multiple of 256 pages/s (whole MiB/s)"
need_idle=0 need_rand=0
for c in $cases; do
	case $c in
	pre[0-9]*) need_idle=1 ;;
	pc-preempt | pc-vanilla) need_rand=1 ;;
	*) die "unknown case $c" ;;
	esac
done
nice make -s -j2 all qemu-guest build/bench/tcp_rr build/bench/warm_mem \
	build/out/bench/precopy_limits >/dev/null ||
	die "build failed"

# shellcheck source=scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vs-qemu	# $VMIG_TMP, $AUTH, every tracked process killed on exit
T=$VMIG_TMP
export QEMU_WORK=$T/qemu QEMU_DIR=$T/kernel QEMU_ACCEL=tcg QEMU_MEM=$mem QEMU_BIN
# shellcheck source=selftests/qemu/qemu_lib.sh
. selftests/qemu/qemu_lib.sh
mkdir -p "$QEMU_DIR" "$QEMU_WORK"
ln -s "$kernel" "$QEMU_DIR/vmlinuz"
ln -s "$here/build/qemu/guest-initrd.gz" "$QEMU_DIR/guest-initrd.gz"
results=$T/results.txt
: >"$results"
huge=$T/huge
huge_tmpfs "$huge" 50% || huge=

# The QEMUs first (vmig_cleanup waits for every child), and the helpers run
# behind /usr/bin/time: their children too.
# shellcheck disable=SC2317  # called by the trap
bench_cleanup() {
	local p
	qemu_stop_all
	for p in $VMIG_PIDS; do pkill -9 -P "$p" 2>/dev/null; done
	vmig_cleanup
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

tck=$(getconf CLK_TCK)
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# secs TICKS HZ | secs "USER SYS": CPU seconds
secs() { awk -v a="$1" -v h="${2:-}" 'BEGIN { split(a, t, " "); if (h) printf "%.2f", t[1] / h; else printf "%.2f", t[1] + t[2] }'; }
# ticks FILE: utime + stime of a /proc stat line (the name may hold spaces)
ticks() { sed 's/.*) //' "$1" | awk '{ print $12 + $13 }'; }

# qemu_cpu NAME: clock ticks of QEMU NAME's threads but its vCPUs, exited
# threads included.
qemu_cpu() {
	local pid all t v=0
	pid=$(cat "$QEMU_WORK/$1/pid")
	all=$(ticks "/proc/$pid/stat") || return 1
	for t in /proc/"$pid"/task/*; do
		case $(cat "$t/comm" 2>/dev/null) in
		CPU\ *) v=$((v + $(ticks "$t/stat"))) ;;
		esac
	done
	echo $((all - v))
}

# --- the QEMU side --------------------------------------------------------

qseq=0
# guest_window NAME: close guest_workload's latency window (and open the
# next); its WL-LAT line in LAT.  (Not in a subshell: qseq counts on.)
guest_window() {
	local from
	qseq=$((qseq + 1))
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "report $qseq"
	qemu_wait_console "$1" "^WL-REPORT $qseq " 120 "$from" >/dev/null || return 1
	LAT=$(grep -a "^WL-LAT $qseq " "$QEMU_WORK/$1/console.log" | tr -d '\r')
}

# qemu_boot NAME WRITE-RATE CHECK-RATE: a guest, its workload running, paused.
qemu_boot() {
	QEMU_APPEND="wl.percent=$fill wl.write-rate=$2 wl.check-rate=$3" qemu_start "$1" anon ||
		die "QEMU guest $1 did not start"
	if ! qemu_wait_console "$1" '^WL-READY' 600 >/dev/null; then
		tail -n 20 "$QEMU_WORK/$1/console.log" >&2
		die "QEMU guest $1: its workload did not start"
	fi
	echo "# QEMU guest $1: $(grep -a -m 1 '^WL-READY' "$QEMU_WORK/$1/console.log" | tr -d '\r')"
	qmp_ok "$1" stop || die "cannot pause QEMU guest $1"
}

mf_caps='[{"capability":"multifd","state":true},{"capability":"postcopy-ram","state":false},{"capability":"postcopy-preempt","state":false}]'
pc_caps() {
	echo "[{\"capability\":\"multifd\",\"state\":false},{\"capability\":\"postcopy-ram\",\"state\":true},{\"capability\":\"postcopy-preempt\",\"state\":$1}]"
}

# qemu_run FROM TO CAPS PARAMS POSTCOPY: one migration; its figures in RES
# ("key=value"s).  Not in a subshell: qemu_start keeps a list of its VMs.
qemu_run() {
	local from=$1 to=$2 caps=$3 params=$4 pc=$5 uri r ram s0 d0 s1 d1 v k
	uri=tcp:127.0.0.1:$(free_port)
	qemu_start "$to" anon -incoming defer || return 1
	qmp_ok "$from" cont || return 1
	sleep 2		# the workload catches up after the pause, then settles
	for v in "$from" "$to"; do
		qmp_ok "$v" migrate-set-capabilities "{\"capabilities\":$caps}" &&
		qmp_ok "$v" migrate-set-parameters "$params" || return 1
	done
	qmp_ok "$from" migrate-set-parameters \
		'{"max-bandwidth":10737418240,"downtime-limit":300}' || return 1
	qmp_ok "$to" migrate-incoming "{\"uri\":\"$uri\"}" || return 1
	guest_window "$from" || { echo "# QEMU guest $from does not answer"; return 1; }
	warm
	s0=$(qemu_cpu "$from") && d0=$(qemu_cpu "$to") || return 1
	qmp_ok "$from" migrate "{\"uri\":\"$uri\"}" || return 1
	[ "$pc" = 1 ] && { qmp_ok "$from" migrate-start-postcopy || return 1; }
	r=$(qemu_wait_migration "$from" 900) || { echo "# $r"; return 1; }
	qemu_wait_status "$to" running 120 || return 1
	s1=$(qemu_cpu "$from") && d1=$(qemu_cpu "$to") || return 1
	guest_window "$to" || { echo "# QEMU guest $to does not answer"; return 1; }
	ram=${r#*\"ram\": \{}
	f() { echo "$LAT" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
	k=down_ms
	[ "$pc" = 1 ] && k=switch_ms
	RES="total_ms=$(qmp_field "$r" total-time) setup_ms=$(qmp_field "$r" setup-time)"
	RES="$RES $k=$(qmp_field "$r" downtime) data_b=$(qmp_field "$ram" normal-bytes)"
	RES="$RES req=$(qmp_field "$ram" postcopy-requests)"
	RES="$RES cpu_src=$(secs $((s1 - s0)) "$tck") cpu_dst=$(secs $((d1 - d0)) "$tck")"
	RES="$RES slow_n=$(f slow) slow_avg=$(f avg_us) slow_p50=$(f p50_us) slow_p99=$(f p99_us)"
}

# qemu_case CASE: the next QEMU run of CASE on the guest it needs.
qemu_case() {
	local from to caps params pc=0
	case $1 in
	pre*) from=$q_idle caps=$mf_caps params="{\"multifd-channels\":${1#pre}}" ;;
	pc-preempt) from=$q_rand caps=$(pc_caps true) params='{}' pc=1 ;;
	pc-vanilla) from=$q_rand caps=$(pc_caps false) params='{}' pc=1 ;;
	esac
	qn=$((qn + 1))
	to=q$qn
	if ! qemu_run "$from" "$to" "$caps" "$params" $pc; then
		echo "# QEMU $1 run $2 FAILED"
		qemu_stop "$to"
		qmp_ok "$from" stop
		return 1
	fi
	qemu_stop "$from"
	qmp_ok "$to" stop
	case $1 in
	pre*) q_idle=$to ;;
	*) q_rand=$to ;;
	esac
	echo "case=$1 side=qemu run=$2 $RES" >>"$results"
}

# --- the vmig side --------------------------------------------------------

# vmig_figures MIGRATE-JSON LISTEN-JSON: the figures of the two reports
# (the last JSON object in each file) as key=value ("-" where none).
vmig_figures() {
	python3 - "$@" <<'EOF'
import json, sys

def last(path):
    obj = {}
    for line in open(path):
        if line.startswith("{"):
            obj = json.loads(line)
    return obj

def get(obj, path):
    for k in path.split("."):
        obj = obj.get(k) if isinstance(obj, dict) else None
    return "-" if obj is None else obj

mg, ls = last(sys.argv[1]), last(sys.argv[2])
out = {"ok": get(mg, "ok"), "total_ms": get(mg, "total_ms"), "setup_ms": get(mg, "setup_ms"),
       "data_b": get(mg, "bytes.normal"), "req": get(ls, "postcopy.requests"),
       "lat_avg": get(ls, "postcopy.latency_us.avg"),
       "lat_p50": get(ls, "postcopy.latency_us.p50"),
       "lat_p99": get(ls, "postcopy.latency_us.p99"),
       "cpu_pf": get(ls, "prefault_cpu_s")}
if "postcopy" in mg:
    # downtime_ms: stop to the destination's RESUMED; postcopy.switch_ms:
    # stop to the end of postcopy (helper/common/report.h)
    out["switch_ms"] = get(mg, "downtime_ms")
    out["pc_ms"] = get(mg, "postcopy.switch_ms")
else:
    out["down_ms"] = get(mg, "downtime_ms")
print(" ".join("%s=%s" % kv for kv in out.items()))
EOF
}

# slow_fields FILE: the vmig guest's slow-access line as slow_n= slow_avg=
# slow_p50= slow_p99= (p50/p99 its own if it prints them, else ~ the upper
# bound of the log2 bucket holding them).
slow_fields() {
	grep -m 1 'slow page accesses' "$1" | awk '
	{
		n = $2 + 0; avg = "-"; p50 = "-"; p99 = "-"; nb = 0
		if (match($0, /avg [0-9.]+/)) avg = substr($0, RSTART + 4, RLENGTH - 4)
		if (match($0, /p99[ =:]+[0-9.]+/)) { p99 = substr($0, RSTART, RLENGTH); sub(/^p99[ =:]+/, "", p99) }
		if (match($0, /p50[ =:]+[0-9.]+/)) { p50 = substr($0, RSTART, RLENGTH); sub(/^p50[ =:]+/, "", p50) }
		s = $0
		while (match(s, /\[[0-9]+ us: [0-9]+\]/)) {
			split(substr(s, RSTART + 1, RLENGTH - 2), kv, / us: /)
			nb++; ub[nb] = kv[1] * 2; cnt[nb] = kv[2]
			s = substr(s, RSTART + RLENGTH)
		}
		if (p50 == "-" && n) p50 = "~" q(0.5)
		if (p99 == "-" && n) p99 = "~" q(0.99)
		printf "slow_n=%d slow_avg=%s slow_p50=%s slow_p99=%s\n", n, avg, p50, p99
	}
	function q(f,   i, c) {
		for (i = 1; i <= nb; i++) { c += cnt[i]; if (c >= f * n) return ub[i] }
		return "-"
	}'
}

# bare_rtt: the bare 4 KiB request / response round trip over loopback now,
# as rtt_avg= rtt_p50= rtt_p99= (us): what no page request can beat.  (Run
# in a subshell: its server is not tracked but waited for, 10 s at most.)
bare_rtt() {
	local p j srv cpu
	p=$(free_port)
	cpu=$(python3 -c 'import os; print(min(os.sched_getaffinity(0)))')
	taskset -c "$cpu" "$here/build/bench/tcp_rr" server "127.0.0.1:$p" &
	srv=$!
	sleep 0.2
	j=$(taskset -c "$cpu" "$here/build/bench/tcp_rr" client "127.0.0.1:$p" 2000)
	wait_pid $srv 10 >/dev/null
	[ -n "$j" ] || return 0
	echo "$j" | python3 -c 'import json, sys; d = json.load(sys.stdin)
print("rtt_avg=%s rtt_p50=%s rtt_p99=%s" % (d["avg"], d["p50"], d["p99"]))'
}

# warm: right before each side's destination allocates (QEMU's and vmig's
# postcopy listener's during the migration, vmig's precopy listener at its
# start, its prefault), write BENCH_WARM GiB of
# anonymous memory in 2 MiB pages and free it (bench/warm_mem).  This VM
# hands freed memory back to its host (free page reporting), and memory the
# host took back costs a host fault at its first touch: 0.07-0.09 CPU-s to
# populate 1 GiB of 2 MiB pages just freed, 1.1-2.4 s otherwise (seen
# here, 2026-12-07).  Who pays it depended on the order of the runs: QEMU's
# destination (its source lives on) took what vmig's two guests had just
# freed, vmig's listener allocated after its source guest had taken what
# QEMU's one old source freed.  Warmed, both destinations allocate from
# memory the host backs, as on a host that does not take memory back.
warm() {
	[ "$warm_gib" = 0 ] || "$here/build/bench/warm_mem" "$warm_gib"
}

# vmig_run CASE: one migration; its figures in RES.  Not in a subshell:
# vmig_track keeps the list of processes to kill on exit.
vmig_run() {
	local ga margs largs= p rc rtt
	# The postcopy destinations run with --no-prefault, as QEMU's do: a
	# destination that knows postcopy starts at once has nothing to gain
	# from committing its RAM up front (every page arrives by placement),
	# and a prefaulted one must release that RAM at the handshake (~80 ms
	# per GiB here, in vmig's setup).  Precopy keeps the default prefault.
	case $1 in
	pre*) ga="--pattern idle${huge:+ --mem-path $huge}" margs="--multifd ${1#pre}" ;;
	pc-preempt) ga="--pattern random --dirty-rate $((rate / 256)) --vcpus 1"
		margs="--multifd 1 --postcopy-after 0" largs=--no-prefault ;;
	pc-vanilla) ga="--pattern random --dirty-rate $((rate / 256)) --vcpus 1"
		margs="--multifd 1 --postcopy-after 0 --no-preempt" largs=--no-prefault ;;
	esac
	rtt=
	case $1 in pc*) rtt=$(bare_rtt) ;; esac
	p=$(free_port)
	rm -f "$T"/*.cpu "$T/mg.json"
	bench_guests "$vmig" "$mem" "$ga" "$ga"
	# The source guest has written its RAM before the destination allocates:
	# the listener's prefault at its start (precopy), or the placing in
	# postcopy (--no-prefault), which comes with the migration.
	must_wait_for "$T/sg.out" "guest: ready" 120
	[ -n "$largs" ] || warm
	# shellcheck disable=SC2086  # $AUTH: two words; $largs: none or one
	bench_listen /usr/bin/time -f '%U %S' -o "$T/ls.cpu" \
		"$vmig" listen --vmm "$T/dst.sock" --port "127.0.0.1:$p" $AUTH $largs \
		--no-progress --json
	sleep 2		# as QEMU's guest: running, settled
	[ -z "$largs" ] || warm
	# shellcheck disable=SC2086  # $AUTH, $margs: lists of words
	timeout 900 /usr/bin/time -f '%U %S' -o "$T/mg.cpu" "$vmig" migrate --vmm "$T/src.sock" \
		--to "127.0.0.1:$p" $AUTH $margs --json --no-progress >"$T/mg.json" 2>"$T/mg.err"
	rc=$?
	wait_pid "$BENCH_LS" 120 || rc=1
	wait_pid "$BENCH_DG" 120 || rc=1
	if [ $rc -ne 0 ] || ! vmig_figures "$T/mg.json" "$T/ls.out" | grep -q '^ok=True '; then
		echo "# vmig $1 failed; its stderr, the listener's and the destination guest's:"
		tail -n 5 "$T/mg.err" "$T/ls.err" "$T/dg.err" | sed 's/^/#   /'
		return 1
	fi
	grep -q ' 0 wrong pages' "$T/dg.err" || echo "# vmig $1: $(grep 'wrong pages' "$T/dg.err")"
	RES="$(vmig_figures "$T/mg.json" "$T/ls.out")"
	RES="$RES cpu_src=$(secs "$(tail -n 1 "$T/mg.cpu")") cpu_dst=$(secs "$(tail -n 1 "$T/ls.cpu")")"
	RES="$RES $(slow_fields "$T/dg.err") $rtt"
}

# tcp_floor N: tcp_cpu_gib=, the CPU seconds per GiB that bare loopback TCP
# with N streams spends moving pages into the memory vmig's destination has
# (bench/precopy_limits: the helper's I/O shapes, both ends, the kernel's
# work for them included): what precopy over TCP cannot go below here.
tcp_floor() {
	local kind=prefaulted v
	[ -z "$huge" ] || kind=file
	v=$("$here/build/out/bench/precopy_limits" -w tcp -k $kind -s "$mem" -n "$1" -r 1 \
		${huge:+-H "$huge"} | awk -F' *[|] *' '$2 ~ /^tcp/ { print $6 }')
	echo "tcp_cpu_gib=${v:--}"
}

vmig_case() {
	if ! vmig_run "$1"; then
		echo "# vmig $1 run $2 FAILED"
		return 1
	fi
	case $1 in pre*) RES="$RES $(tcp_floor "${1#pre}")" ;; esac
	echo "case=$1 side=vmig run=$2 $RES" >>"$results"
}

# --- the tables -----------------------------------------------------------

# table CASE: medians of each figure, both sides, and their ratio.
table() {
	awk -v c="$1" -v gib=1073741824 '
	function med(s, k,   n, i, j, t, v, x) {
		n = 0
		for (i = 1; i <= nr[s]; i++) {
			x = val[s, i, k]
			if (x == "" || x == "-") continue
			v[++n] = x; approx[s, k] = approx[s, k] || x ~ /^~/
			sub(/^~/, "", v[n]); v[n] += 0
		}
		if (!n) return "-"
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
	}
	function row(label, k, fmt,   a, b, r) {
		a = med("vmig", k); b = med("qemu", k)
		if (a == "-" && b == "-") return
		r = (a != "-" && b != "-" && b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
		printf "| %s | %s%s | %s%s | %s |\n", label, approx["vmig", k] ? "~" : "", \
			a == "-" ? "-" : sprintf(fmt, a), approx["qemu", k] ? "~" : "", \
			b == "-" ? "-" : sprintf(fmt, b), r
	}
	$1 == "case=" c {
		split($2, sd, "="); s = sd[2]; i = ++nr[s]
		for (f = 3; f <= NF; f++) { split($f, kv, "="); val[s, i, kv[1]] = kv[2] }
		d = val[s, i, "data_b"] + 0; t = val[s, i, "total_ms"] - val[s, i, "setup_ms"]
		val[s, i, "gbps"] = t > 0 ? d * 8 / t / 1e6 : "-"
		val[s, i, "data_mib"] = d / 1048576
		val[s, i, "total_s"] = val[s, i, "total_ms"] / 1000
		cpu = val[s, i, "cpu_src"] + val[s, i, "cpu_dst"]
		val[s, i, "cpu"] = cpu
		val[s, i, "cpu_gib"] = d > 0 ? cpu / (d / gib) : "-"
		pf = val[s, i, "cpu_pf"] + 0	# the listener allocating guest RAM, before the source came
		val[s, i, "cpu_gib_npf"] = d > 0 ? (cpu - pf) / (d / gib) : "-"
	}
	END {
		printf "| %s (runs: vmig %d, QEMU %d) | vmig | QEMU | vmig / QEMU |\n| --- | --- | --- | --- |\n", \
			c, nr["vmig"], nr["qemu"]
		row("throughput, Gbit/s (page data / (total - setup))", "gbps", "%.2f")
		row("page data, MiB", "data_mib", "%.0f")
		row("total, s", "total_s", "%.2f")
		row("setup, ms", "setup_ms", "%.1f")
		row("downtime, ms", "down_ms", "%.1f")
		row("postcopy switch (stop to running on the destination), ms", "switch_ms", "%.1f")
		row("postcopy phase (stop to every page there), ms", "pc_ms", "%.1f")
		row("CPU-s, source", "cpu_src", "%.2f")
		row("CPU-s, destination", "cpu_dst", "%.2f")
		row("CPU-s per GiB of page data, both ends", "cpu_gib", "%.2f")
		row("of the destination CPU: its prefault, before the source came, CPU-s", "cpu_pf", "%.2f")
		row("CPU-s per GiB, both ends, without that prefault", "cpu_gib_npf", "%.2f")
		f = med("vmig", "tcp_cpu_gib")
		if (c ~ /^pre/ && f != "-" && f > 0 && med("qemu", "cpu_gib") != "-")
			printf "\nbare loopback TCP, %s stream%s into the same memory (bench/precopy_limits, " \
				"once a round): %.2f CPU-s per GiB, both ends; vmig %.2fx that, QEMU %.2fx; " \
				"half of QEMU'"'"'s is %.2fx\n", substr(c, 4), substr(c, 4) == 1 ? "" : "s", f, \
				med("vmig", "cpu_gib") / f, med("qemu", "cpu_gib") / f, med("qemu", "cpu_gib") / f / 2
		if (c ~ /^pc/) {
			row("postcopy requests", "req", "%.0f")
			row("guest: slow accesses (>= 20 us)", "slow_n", "%.0f")
			row("guest: slow access avg, us", "slow_avg", "%.1f")
			row("guest: slow access p50, us", "slow_p50", "%.1f")
			row("guest: slow access p99, us", "slow_p99", "%.1f")
			row("helper: request latency avg, us", "lat_avg", "%.1f")
			row("helper: request latency p50, us", "lat_p50", "%.1f")
			row("helper: request latency p99, us", "lat_p99", "%.1f")
			a = med("vmig", "rtt_avg"); p = med("vmig", "rtt_p99")
			if (a != "-" && p != "-" && med("vmig", "lat_avg") != "-")
				printf "\nvmig helper-side request latency against the bare 4 KiB loopback " \
					"round trip (tcp_rr, both ends on one CPU, %.1f us avg, %.1f us p99): %.2fx on average, " \
					"%.2fx at p99\n", a, p, med("vmig", "lat_avg") / a, med("vmig", "lat_p99") / p
		}
	}' "$results"
}

# --- the run --------------------------------------------------------------

echo "# vmig vs QEMU, $(date -u '+%F %H:%M') UTC, $(nproc) CPUs, host kernel $(uname -r)"
echo "# $("$QEMU_BIN" --version | head -n 1), -accel tcg; guest kernel $kernel"
echo "# BENCH_MEM=$mem BENCH_RUNS=$runs BENCH_RATE=$rate BENCH_FILL=$fill cases: $cases"
if [ -n "$huge" ]; then
	echo "# vmig precopy guests' RAM: a file on a huge=always tmpfs (vmig guest --mem-path)"
else
	echo "# vmig precopy guests' RAM: memfds ($HUGE_WHY)"
fi
if [ "$warm_gib" = 0 ]; then
	echo "# memory not warmed before the runs (BENCH_WARM=0)"
else
	echo "# before each side's migration: $warm_gib GiB of 2 MiB pages written and freed (bench/warm_mem)"
fi
echo "# load average at start: $(loadavg)"
qn=0 q_idle='' q_rand=
[ $need_idle = 1 ] && { q_idle=qidle; qemu_boot $q_idle 0 0; }
[ $need_rand = 1 ] && { q_rand=qrand; qemu_boot $q_rand $((rate / 2)) $((rate / 2)); }
fail=0
for r in $(seq 1 "$runs"); do
	for c in $cases; do
		qemu_case "$c" "$r" || fail=1
		vmig_case "$c" "$r" || fail=1
	done
	echo "# run $r done, load average $(loadavg)"
done
for g in $q_idle $q_rand; do
	qmp_ok "$g" cont || fail=1
	if qemu_verify "$g" 999999 600 >"$T/verify.txt"; then
		echo "# QEMU guest $g: every page verified after its migrations"
	else
		grep -E 'WL-VERIFY|WL-BAD|KERNEL LOG' "$T/verify.txt" | head -n 5
		grep -q ' bad=0 ' "$T/verify.txt" || fail=1
	fi
done
echo
for c in $cases; do
	table "$c"
	echo
done
echo "# load average at end: $(loadavg)"
echo "# every run (for the record):"
sed 's/^/#   /' "$results"
exit $fail
