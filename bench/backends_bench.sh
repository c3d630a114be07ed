#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# The same precopy migration on the kmod backend (guest RAM in vmig.ko
# regions, dirty logging in the module) and on the uffd backend (memfds,
# userfaultfd write-protect), in one boot, runs interleaved: total time,
# downtime, dirty rounds, harvest time, write faults, and g_writes: the page
# writes the source guest got done while it was being migrated (a write
# that faults to the helper stalls the guest until it is resolved) and
# their rate (w/s: g_writes over the total time), and in postcopy the
# destination's page-request latency, measured alike on both backends:
# req_read: from the helper reading the fault to the page placed (avg /
# p99 in us); vcpu_slow: the destination guest's own timing of the
# accesses its workload made in postcopy that took >= 20 us (pages fetched
# on demand; count:avg/max us; docs/guide.md says what the guest reports);
# and on kmod only, fault: from the fault itself (the module's time stamp,
# which also counts waking the helper).  Prints figures, not TAP.  Runs in the qemu guest (make
# bench-backends); busybox sh.  Run as backends_postcopy_bench.sh (a
# symlink; make bench-backends-postcopy) it runs the postcopy cases only,
# as backends_converge_bench.sh (make bench-backends-converge) the
# dirty-heavy case with and without --auto-converge.
#
# Each case ends with a summary line per figure: the median over the runs
# on each backend, and in how many of the interleaved pairs kmod was at
# least as fast (lower or equal), so "kmod >= uffd" can be judged without
# eyeballing the runs.  RUNS pairs per case (default 3); the postcopy cases
# run RUNS_PC pairs (default 11: their request latency is noisy; after the
# bulk stage a run has only 5-180 requests, so its p99 is nearly its max),
# the dirty-logging heavy case at equal guest work RUNS_HEAVY (default 5),
# the idle guest 9 (its runs are short and differ by noise alone).
# vcpu_slow_sum_ms is count x avg, the vCPUs' whole slow time: on kmod a
# placed page is not mapped into the VMM yet, so the guest's first touch
# of it is a (short, >= 20 us in TCG) fault that uffd's UFFDIO_COPY does
# not cause, and those lower kmod's per-access average.
#
# The guest kernel is the module's (make bench-backends KVER=...).  Debian's
# 6.1 has no UFFD_FEATURE_WP_ASYNC/PAGEMAP_SCAN: uffd runs sync
# write-protect there (every first write to a protected page faults to the
# helper, which marks it and un-protects it).  On the 6.12 LTS uffd runs
# async (the kernel marks written pages, the helper harvests with
# PAGEMAP_SCAN): its best mode.  The tracking column says which ran.
vmig=/usr/bin/vmig
RUNS=${RUNS:-3}
RUNS_PC=${RUNS_PC:-11}
RUNS_HEAVY=${RUNS_HEAVY:-5}
T=/tmp/bb
mkdir -p $T
# wait_for, and a token both sides hold (vmig requires a choice of who may
# connect): scripts/lib/vmig.sh, in the guest's /usr/bin (VMCHECK_EXTRA).
. /usr/bin/vmig.sh
vmig_token $T
port=5300

# field NAME FILE: a number from the JSON report
field() {
	sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2"
}

# one BACKEND MEM GUEST_ARGS MIGRATE_ARGS: one migration; prints a line of figures.
one() {
	be=$1 mem=$2 gargs=$3 margs=$4 p=$T/run
	port=$((port + 1))
	rm -f $p.*
	$vmig guest --socket $p.dst --mem $mem --incoming --verify-all --run 0 --lifetime 300 \
		--backend $be >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --no-progress --json $AUTH \
		>$p.ls.out 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --mem $mem --lifetime 300 --backend $be $gargs \
		>$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	sleep 1		# let the dirtying settle
	$vmig migrate --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 --no-progress $AUTH \
		$margs >$p.json 2>$p.merr
	rc=$?
	wait $ls $dg $sg
	ok=bad
	[ $rc -eq 0 ] && grep -q "verify-all after resume: .* 0 errors" $p.dg.err && ok=ok
	gw=$(sed -n 's/.*migrated away (\([0-9]*\) page writes.*/\1/p' $p.sg.err)
	lat=$(sed -n 's/.*"latency_us":{"count":\([0-9]*\),"avg":\([0-9.]*\),"p50":[0-9.]*,"p99":\([0-9.]*\),.*/\1:\2\/\3/p' \
		$p.ls.out)
	flat=$(sed -n 's/.*"fault_latency_us":{"count":\([0-9]*\),"avg":\([0-9.]*\),"p99":\([0-9.]*\)}.*/\1:\2\/\3/p' \
		$p.ls.out)
	slow=$(sed -n 's/^guest: \([0-9]*\) slow page accesses[^:]*: avg \([0-9.]*\) us, max \([0-9.]*\) us.*/\1:\2\/\3/p' \
		$p.dg.err)
	tot=$(field total_ms $p.json)
	wps=$(awk -v w="${gw:-0}" -v t="${tot:-0}" 'BEGIN { if (t > 0) printf "%d", w * 1000 / t; else print "-" }')
	printf "%-5s %-17s %9s %9s %6s %8s %9s %5s %8s %6s %-4s %4s %s %s %s\n" "$be" \
		"$(sed -n 's/.*"tracking":"\([^"]*\)".*/\1/p' $p.json)" \
		"$(field total_ms $p.json)" "$(field downtime_ms $p.json)" \
		"$(field rounds $p.json)" "$(field harvest_ms $p.json)" \
		"$(field wp_faults $p.json)" "$(sed -n 's/.*"wire":\([0-9]*\).*/\1/p' $p.json |
		awk '{printf "%d", $1 / 1048576}')" "$gw" "$wps" "$ok" "$(field throttle_pct $p.json)" \
		"${lat:--}" "${slow:--}" "${flat:--}"
	# the throttle timeline (auto-converge)
	sed -n 's/^vmig migrate: auto-converge/    &/p' $p.merr
	# for the summary: backend total downtime req_avg req_p99 slow_avg
	# slow_total_ms g_writes ("-": none)
	echo "$be ${tot:--} $(field downtime_ms $p.json | grep . || echo -)" \
		"$(echo "${lat:--}" | sed 's/^[0-9]*:\([0-9.]*\)\/\([0-9.]*\)$/\1 \2/;s/^-$/- -/')" \
		"$(echo "${slow:--}" | awk -F '[:/]' '{ if (NF == 3) print $2, $1 * $2 / 1000; else print "- -" }')" \
		"${gw:--}" >>$T/figs
}

# summary: per figure, the median over the runs of each backend, and the
# pairs (run i of kmod against run i of uffd) where kmod was lower or equal
# (for guest_writes, the work the source guest got done: higher or equal).
summary() {
	awk '
	function median(a, n,    i, j, t, b) {
		for (i = 1; i <= n; i++)
			b[i] = a[i]
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && b[j - 1] > b[j]; j--) {
				t = b[j]; b[j] = b[j - 1]; b[j - 1] = t
			}
		return n % 2 ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
	}
	{
		r = ++n[$1]
		for (f = 2; f <= 8; f++)
			v[$1, f, r] = $f
	}
	END {
		split("total_ms downtime_ms req_read_avg_us req_read_p99_us vcpu_slow_avg_us " \
		      "vcpu_slow_sum_ms guest_writes", name)
		for (f = 2; f <= 8; f++) {
			nk = nu = np = win = 0
			delete k; delete u
			for (r = 1; r <= n["kmod"]; r++)
				if (v["kmod", f, r] != "-" && v["kmod", f, r] != "")
					k[++nk] = v["kmod", f, r] + 0
			for (r = 1; r <= n["uffd"]; r++)
				if (v["uffd", f, r] != "-" && v["uffd", f, r] != "")
					u[++nu] = v["uffd", f, r] + 0
			if (!nk || !nu)
				continue
			for (r = 1; r <= n["kmod"] && r <= n["uffd"]; r++) {
				a = v["kmod", f, r]; b = v["uffd", f, r]
				if (a == "-" || a == "" || b == "-" || b == "")
					continue
				np++
				win += f == 8 ? a + 0 >= b + 0 : a + 0 <= b + 0
			}
			printf "median %-17s kmod %9.1f  uffd %9.1f  (%d / %d runs)  kmod %s uffd in %d of %d pairs\n", \
				name[f - 1], median(k, nk), median(u, nu), nk, nu, \
				f == 8 ? ">=" : "<=", win, np
		}
	}' $T/figs
}

# case NAME MEM GUEST_ARGS MIGRATE_ARGS [PAIRS]
bench_case() {
	n=${5:-$RUNS}
	echo "== $1 ($2 guest; vmig guest $3; vmig migrate $4; $n pairs)"
	printf "%-5s %-17s %9s %9s %6s %8s %9s %5s %8s %6s %-4s %4s %s %s %s\n" backend tracking \
		total_ms downtime_ms rounds harv_ms wp_faults MiB g_writes w/s verified thr% \
		"req_read:n:avg/p99_us" "vcpu_slow:n:avg/max_us" "fault(kmod):n:avg/p99_us"
	rm -f $T/figs
	r=0
	while [ $r -lt $n ]; do
		one kmod "$2" "$3" "$4"
		one uffd "$2" "$3" "$4"
		r=$((r + 1))
	done
	summary
	echo "# load: $(cat /proc/loadavg)"
}

echo "backends_bench: $(uname -r), $(nproc) vCPUs, $(sed -n 's/MemTotal: *//p' /proc/meminfo)"
case $(basename "$0") in
*postcopy*) BENCH_CASES=postcopy ;;
*converge*) BENCH_CASES=converge ;;
esac
echo "# load: $(cat /proc/loadavg)"
# Dirty-logging heavy with the same guest work on both backends: a rate the
# uffd guest still reaches in this guest (every first write to a protected
# page costs it a round trip to the helper, ~190 us under TCG; at 16 MiB/s
# and more its guest falls behind the rate and so dirties less than kmod's).
heavy_equal() {
	bench_case "dirty-logging heavy at a rate both backends sustain: random writes, 4 vCPU threads at 8 MiB/s" \
		64M "--pattern random --dirty-rate 8 --vcpus 4" "--multifd 2 --max-rounds 4" $RUNS_HEAVY
}

if [ "${BENCH_CASES:-all}" = converge ]; then
	heavy_equal
	bench_case "dirty-logging heavy: random writes, 4 vCPU threads at 32 MiB/s" 64M \
		"--pattern random --dirty-rate 32 --vcpus 4" "--multifd 2 --max-rounds 4"
	bench_case "the same with --auto-converge (and --max-rounds 12)" 64M \
		"--pattern random --dirty-rate 32 --vcpus 4" "--multifd 2 --max-rounds 12 --auto-converge"
	rm -rf $T
	exit 0
fi
if [ "${BENCH_CASES:-all}" = postcopy ]; then
	bench_case "postcopy from the start, preempt, random writes at 4 MiB/s" 64M \
		"--pattern random --dirty-rate 4 --vcpus 2" "--multifd 2 --postcopy-after 0" $RUNS_PC
	bench_case "postcopy after the bulk stage, preempt, random writes at 4 MiB/s" 64M \
		"--pattern random --dirty-rate 4 --vcpus 2" "--multifd 2 --postcopy" $RUNS_PC
	rm -rf $T
	exit 0
fi
bench_case "idle guest" 64M "--pattern idle" "--multifd 2" 9
bench_case "random writes at 4 MiB/s (both backends sustain it)" 64M \
	"--pattern random --dirty-rate 4 --vcpus 2" "--multifd 2 --max-rounds 6"
heavy_equal
bench_case "dirty-logging heavy: random writes, 4 vCPU threads at 32 MiB/s" 64M \
	"--pattern random --dirty-rate 32 --vcpus 4" "--multifd 2 --max-rounds 4"
bench_case "dirty-logging heavy: sequential writes at 16 MiB/s" 64M \
	"--pattern sequential --dirty-rate 16 --vcpus 2" "--multifd 2 --max-rounds 6"
bench_case "dirty-logging heavy, random, with --auto-converge" 64M \
	"--pattern random --dirty-rate 32 --vcpus 4" "--multifd 2 --max-rounds 12 --auto-converge"
rm -rf $T
