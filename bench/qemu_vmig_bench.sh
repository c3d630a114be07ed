#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# QEMU's own migration against vmig's, side by side: the same inner guest
# (Debian's kernel + guest_workload filling and writing self-checking
# pages), the same QEMU 7.2, in one boot of the module's VM, interleaved.
#
#   qemu precopy  migrate with multifd (1/2/4 channels), anonymous RAM
#   vmig precopy  vmig qemu + vmig migrate --multifd N, RAM on vmigfs
#   qemu postcopy postcopy-ram + postcopy-preempt, migrate-start-postcopy at
#                 once (QEMU 7.2 cannot combine postcopy with multifd)
#   vmig postcopy vmig migrate --postcopy --postcopy-after 0 (preempt), 1 channel
#
# Per run: total time, downtime (each side's own figure, and vm_down_ms:
# the guest's, from the source QEMU's STOP event to the destination's
# RESUME, alike for both), bytes on the wire and their rate; the
# throughput ratio is of guest RAM moved per second (the same guest on
# both sides, so the inverse ratio of total times).  Postcopy also:
# - reqs: the pages the destination asked for (QEMU's postcopy-requests,
#   vmig's requests); rtt_us: the bare 4 KiB TCP round trip over loopback
#   in the VM right before the migration (bench/tcp_rr), the floor of any
#   request;
# - the guest-felt figures: the workload's accesses >= 20 us on the
#   destination from the migration's start to its end (slow, avg_us,
#   p99_us, out of acc accesses).  Under TCG or nested KVM most of them are
#   the machine, not a fetched page (thousands against a few hundred
#   requests), so their average says little about fetching.  Each run also
#   takes the same guest's window right before the migration as a baseline:
#   excess_ms is the stall the migration added (slow x avg in the
#   migration's window, less the baseline's stall per access times the
#   window's accesses), and stall_per_req_us that stall per requested page,
#   the guest-felt cost of a fetch measured alike on both sides;
# - vmig's request latency, every request of the destination (QEMU's own
#   accesses included): req_avg_us/req_p99_us from the fault (the module's
#   time stamp) to the page placed, what the first faulting thread waited;
#   read_avg_us from the helper reading the request to the page placed.
# Both sides run with no bandwidth cap and a 300 ms downtime limit.
# Then medians per case and the ratios (vmig against QEMU).
#
# Environment: RUNS (default 3) interleaved rounds; CHANNELS ("1 2 4");
# MODES ("precopy postcopy"); QVM_MEM (256M); QVM_APPEND (workload options);
# VARIANTS (none): more vmig runs per round and case, comma-separated
# NAME=MIGRATE_ARGS[/LISTEN_ARGS[/PROGRAM[/KPARAMS]]] with "+" for a space, each shown
# as kind vmig-NAME (e.g. "spin=--postcopy-spin+500/--postcopy-spin+500";
# PROGRAM: another vmig build in the VM's PATH, e.g. "base=//vmig-base";
# a fourth field sets vmig.ko parameters for that run only, NAME:VALUE with
# "+" between, e.g. "nw=///nowait_wait_us:3000");
# GUEST_VARIANTS (none): postcopy again, QEMU's and vmig's, with more
# kernel options for the inner guest, comma-separated NAME=OPTIONS ("+" for
# a space), shown as kinds qemu-NAME and vmig-NAME (e.g. "noapf=no-kvmapf":
# the guest takes no async page-fault notices from KVM, which then halts the
# vCPU itself while its worker fetches the page);
# PCTRACE=1: vmig's postcopy runs with VMIG_PC_TRACE on both helpers and the
# module's missing-page tracepoints, printed as "PCT SEQ src|dst RECORD" and
# "KT SEQ LINE" lines (on the host: bench/pc_trace_split.sh LOG DIR, then
# bench/pc_stages.py DIR/SEQ and bench/pc_ktrace.py DIR/SEQ.kt).
# Runs in the VM: make bench-qemu-vmig.
. tap.sh 2>/dev/null || true
lib=
for d in /usr/bin /tests /usr/share/vmig; do
	[ -f "$d/qemu_lib.sh" ] && lib=$d/qemu_lib.sh && break
done
[ -n "$lib" ] || { echo "qemu_bench: no qemu_lib.sh in this VM"; exit 1; }
. "$lib"

QEMU_WORK=/tmp/qemu
QEMU_MEM=${QVM_MEM:-256M}
QEMU_APPEND=${QVM_APPEND:-"wl.mib=96 wl.write-rate=2000"}
export QEMU_WORK QEMU_MEM QEMU_APPEND
RUNS=${RUNS:-3}
CHANNELS=${CHANNELS:-"1 2 4"}
MODES=${MODES:-"precopy postcopy"}
VARIANTS=$(echo "${VARIANTS:-}" | tr , ' ')
GUEST_VARIANTS=$(echo "${GUEST_VARIANTS:-}" | tr , ' ')
append0=$QEMU_APPEND
KSUF=
vmig=$(command -v vmig)
regions=/run/vmig
out=/tmp/qbench
mkdir -p $regions $out
# Who may connect (vmig requires a choice): a token both sides hold.
(umask 077 && echo "vm-test-token-$$-0123456789abcdef" >$out/token)
AUTH="--token-file $out/token"
mount -t vmigfs vmigfs $regions || { echo "qemu_bench: mount -t vmigfs failed"; exit 1; }
trap 'qemu_stop_all; rm -f $regions/*; umount $regions' EXIT
port=4700
seq=100

# jnum FILE KEY: the first number after "KEY": in FILE.
jnum() {
	grep -o "\"$2\": *[0-9.]*" "$1" | head -n 1 | sed 's/.*: *//'
}

# lat_window NAME SEQ: ask the workload for a report; prints "slow avg p99 accesses".
lat_window() {
	local from line
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "report $2"
	line=$(qemu_wait_console "$1" "^WL-LAT $2 .*max_us=" 120 "$from") || { echo "- - - -"; return; }
	sleep 1
	line=$(grep "^WL-LAT $2 " "$QEMU_WORK/$1/console.log" | tail -n 1)
	echo "$(echo "$line" | sed -n 's/.* slow=\([0-9]*\).*/\1/p') \
$(echo "$line" | sed -n 's/.* avg_us=\([0-9.]*\).*/\1/p') \
$(echo "$line" | sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p') \
$(echo "$line" | sed -n 's/.* accesses=\([0-9]*\).*/\1/p')"
}

# ktrace on|off|dump SEQ: the module's missing-page events (a fault, its
# wake, the placing of a page someone waited for) in the kernel's trace.
ktrace() {
	local t=/sys/kernel/tracing e
	[ -d $t/events/vmig ] || return 0
	case $1 in
	on)
		echo 0 >$t/tracing_on
		echo mono >$t/trace_clock
		# Task names for bench/pc_ktrace.py (vm-init.sh turns them off:
		# recording them patches __schedule, which a PCTRACE run accepts).
		echo 1 >$t/options/record-cmd
		echo 8192 >$t/buffer_size_kb
		: >$t/trace
		echo 'woke == 1' >$t/events/vmig/vmig_place/filter
		for e in vmig_missing_fault vmig_missing_wake vmig_place; do
			echo 1 >$t/events/vmig/$e/enable
		done
		echo 1 >$t/tracing_on ;;
	off)
		echo 0 >$t/tracing_on
		for e in vmig_missing_fault vmig_missing_wake vmig_place; do
			echo 0 >$t/events/vmig/$e/enable
		done ;;
	dump)
		grep -v '^#' $t/trace | sed "s/^/KT $2 /"
		: >$t/trace ;;
	esac
}

# rtt: the bare 4 KiB TCP request/response round trip over loopback right
# now (bench/tcp_rr, 2000 of them), avg us: what a page request cannot beat
# in this VM, whatever serves it.
rtt() {
	local p=$((port + 500)) r
	command -v tcp_rr >/dev/null || { echo -; return; }
	tcp_rr server 127.0.0.1:$p &
	r=$(tcp_rr client 127.0.0.1:$p 2000)
	wait $!
	echo "$r" | grep -o '"avg":[0-9.]*' | cut -d: -f2
}

# start_src RAM [QEMU args]: the source guest with its workload ready.
start_src() {
	local ram=$1
	shift
	qemu_boot src "$ram" 900 "$@" || return 1
	sleep 3	# the workload's writing loop settles
}

# excess "SLOW AVG P99 ACC" (migration window) "SLOW AVG P99 ACC" (baseline):
# the stall the migration added, ms (see the header).
excess() {
	echo "$1 $2" | awk '{ if ($4 > 0 && $8 > 0) printf "%.1f", ($1 * $2 - $4 * ($5 * $6 / $8)) / 1000; else print "-" }'
}

# ev_us NAME EVENT: the time of NAME's last EVENT on QMP, "SECONDS MICROSECONDS".
ev_us() {
	grep "\"event\": \"$2\"" "$QEMU_WORK/$1/qmp.log" 2>/dev/null | tail -n 1 |
		sed -n 's/.*"seconds": *\([0-9]*\), *"microseconds": *\([0-9]*\).*/\1 \2/p'
}

# vm_down: the downtime the guest had, ms: from the source QEMU's STOP event
# to the destination QEMU's RESUME, as QEMU stamped them (both run in this
# VM: one clock), measured alike for both kinds.  QEMU's own "downtime" ends
# when its source is done, before the destination has loaded the state and
# started the vCPUs; vmig's downtime_ms runs from its STOP request.
vm_down() {
	echo "$(ev_us src STOP) $(ev_us dst RESUME)" |
		awk 'NF == 4 { printf "%.1f", (($3 - $1) * 1e6 + $4 - $2) / 1000; exit } { print "-" }'
}

# result KIND MODE CH TOTAL_MS DOWNTIME_MS BYTES REQS RTT [SLOW AVG P99 ACC [EXCESS [REQ_AVG REQ_P99 READ_AVG]]]
# (and vm_down's figure as vm_down_ms)
result() {
	local thr per
	thr=$(awk -v b="$6" -v t="$4" 'BEGIN { if (t > 0) printf "%.1f", b / 1048576 / (t / 1000); else print "-" }')
	per=$(awk -v e="${13:--}" -v n="${7:--}" 'BEGIN { if (n > 0 && e != "-") printf "%.0f", e * 1000 / n; else print "-" }')
	echo "RESULT $1${KSUF:-} $2 ch=$3 total_ms=$4 downtime_ms=$5 vm_down_ms=$(vm_down) bytes=$6 MiB/s=$thr reqs=${7:--} rtt_us=${8:--} slow=${9:--} avg_us=${10:--} p99_us=${11:--} acc=${12:--} excess_ms=${13:--} stall_per_req_us=$per req_avg_us=${14:--} req_p99_us=${15:--} read_avg_us=${16:--}" |
		tee -a $out/results
}

run_qemu() { # MODE CH
	local mode=$1 ch=$2 r lat base caps rt
	qemu_stop_all
	QEMU_QMP_SOCK=0
	start_src anon || { echo "# qemu $mode ch=$ch: source did not start"; return; }
	qemu_start dst anon -incoming defer || return
	if [ "$mode" = precopy ]; then
		caps='[{"capability":"multifd","state":true}]'
	else
		caps='[{"capability":"postcopy-ram","state":true},{"capability":"postcopy-preempt","state":true}]'
	fi
	for n in src dst; do
		qmp $n migrate-set-capabilities "{\"capabilities\":$caps}" >/dev/null || return
		qmp $n migrate-set-parameters "{\"multifd-channels\":$ch,\"max-bandwidth\":1099511627776,\"downtime-limit\":300}" >/dev/null || return
	done
	port=$((port + 1))
	qmp dst migrate-incoming "{\"uri\":\"tcp:127.0.0.1:$port\"}" >/dev/null || return
	seq=$((seq + 2))
	rt=$(rtt)
	base=$(lat_window src $seq)
	qmp src migrate "{\"uri\":\"tcp:127.0.0.1:$port\"}" >/dev/null || return
	[ "$mode" = postcopy ] && qmp src migrate-start-postcopy >/dev/null
	r=$(qemu_wait_migration src 1800) || { echo "# qemu $mode ch=$ch: $r"; return; }
	echo "$r" >$out/qemu-$mode-$ch.json
	# A completed migration without its times is QEMU's reply, not a 0 ms run.
	case $(jnum $out/qemu-$mode-$ch.json total-time) in
	"" | 0) echo "# qemu $mode ch=$ch: completed, but query-migrate gave no total-time:" \
		"$(tr -d '\n' <$out/qemu-$mode-$ch.json | cut -c1-600)" ;;
	esac
	# How much went before the switch (precopy-bytes) and after it.
	[ "$mode" = postcopy ] && echo "# qemu${KSUF:-} postcopy: precopy-bytes=$(jnum $out/qemu-$mode-$ch.json precopy-bytes)" \
		"downtime-bytes=$(jnum $out/qemu-$mode-$ch.json downtime-bytes)" \
		"postcopy-bytes=$(jnum $out/qemu-$mode-$ch.json postcopy-bytes)"
	qemu_wait_status dst running 120 >/dev/null
	lat=$(lat_window dst $((seq + 1)))
	# shellcheck disable=SC2086
	result qemu "$mode" "$ch" "$(jnum $out/qemu-$mode-$ch.json total-time)" \
		"$(jnum $out/qemu-$mode-$ch.json downtime)" \
		"$(jnum $out/qemu-$mode-$ch.json transferred)" \
		"$(jnum $out/qemu-$mode-$ch.json postcopy-requests)" "$rt" $lat "$(excess "$lat" "$base")"
}

# Set vmig.ko's parameters NAME:VALUE for this run; the defaults come back
# before the next (kparams_restore).
kparams_saved=
kparams() {
	local kv n
	for kv in "$@"; do
		n=/sys/module/vmig/parameters/${kv%%:*}
		[ -w "$n" ] || { echo "# no module parameter ${kv%%:*}"; continue; }
		kparams_saved="$kparams_saved ${kv%%:*}:$(cat "$n")"
		echo "${kv#*:}" >"$n"
	done
}
kparams_restore() {
	local kv
	for kv in $kparams_saved; do
		echo "${kv#*:}" >/sys/module/vmig/parameters/${kv%%:*}
	done
	kparams_saved=
}

run_vmig() { # MODE CH [VARIANT]
	local mode=$1 ch=$2 kind=vmig lat base extra= pids i pct rt ma= la= vmig=$vmig
	if [ -n "${3:-}" ]; then
		kind=vmig-${3%%=*}
		ma=$(echo "${3#*=}" | cut -d/ -f1 | tr + ' ')
		la=$(echo "${3#*=}/" | cut -d/ -f2 | tr + ' ')
		i=$(echo "${3#*=}//" | cut -d/ -f3)
		[ -n "$i" ] && vmig=$(command -v "$i")
		kparams $(echo "${3#*=}///" | cut -d/ -f4 | tr + ' ')
	fi
	qemu_stop_all
	QEMU_QMP_SOCK=1
	rm -f $regions/src $regions/dst
	truncate -s "$QEMU_MEM" $regions/src $regions/dst
	start_src $regions/src || { echo "# vmig $mode ch=$ch: source did not start"; return; }
	qemu_start dst $regions/dst -incoming defer || return
	"$vmig" qemu --qmp $QEMU_WORK/src/qmp.sock --ram $regions/src --socket /tmp/qb-src.vmm \
		>$out/vq-src.log 2>&1 &
	pids=$!
	"$vmig" qemu --incoming --qmp $QEMU_WORK/dst/qmp.sock --ram $regions/dst \
		--socket /tmp/qb-dst.vmm >$out/vq-dst.log 2>&1 &
	pids="$pids $!"
	port=$((port + 1))
	pct=
	[ "$mode" = postcopy ] && [ -n "${PCTRACE:-}" ] && pct=$out/pct
	# The background job truncates its files only once it runs: a grep
	# before then would find the last run's "waiting for a source".
	: >$out/listen.err
	# shellcheck disable=SC2086
	VMIG_PC_TRACE=$pct "$vmig" listen $AUTH $la --vmm /tmp/qb-dst.vmm --port 127.0.0.1:$port --json --no-progress \
		>$out/listen.json 2>$out/listen.err &
	pids="$pids $!"
	i=0
	while [ $i -lt 1200 ] && ! grep -qs 'waiting for a source' $out/listen.err; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$mode" = postcopy ] && extra="--postcopy --postcopy-after 0"
	seq=$((seq + 2))
	rt=$(rtt)
	base=$(lat_window src $seq)
	if [ -n "$pct" ]; then
		rm -f $out/pct.*
		ktrace on
	fi
	# shellcheck disable=SC2086
	if ! VMIG_PC_TRACE=$pct "$vmig" migrate $AUTH $ma --vmm /tmp/qb-src.vmm --to 127.0.0.1:$port --multifd "$ch" \
		--json --no-progress $extra >$out/migrate.json 2>$out/migrate.err; then
		echo "# $kind $mode ch=$ch failed:"
		tail -n 5 $out/migrate.err $out/listen.err $out/vq-src.log $out/vq-dst.log \
			$QEMU_WORK/src/qemu.err $QEMU_WORK/dst/qemu.err $QEMU_WORK/src/console.log \
			$QEMU_WORK/dst/console.log \
			2>/dev/null | sed 's/^/#   /'
		kill $pids 2>/dev/null
		wait $pids
		[ -n "$pct" ] && ktrace off
		return
	fi
	wait $pids
	echo "# $kind${KSUF:-} $mode: $(grep -o '"downtime_parts_ms":{[^}]*}' $out/migrate.json)"
	# How KVM's first tries at missing pages ended (vmig.ko's nowait_wait_us).
	[ "$mode" = postcopy ] && echo "# $kind${KSUF:-} postcopy: KVM's first tries:" \
		"$("$vmig" stats --json 2>/dev/null | grep -o '"nowait_[a-z]*":[0-9]*' | tr -d '"' |
			awk -F: '{ n[$1] += $2 } END { for (k in n) printf "%s=%d ", k, n[k] }')"
	# Requests vmig.ko wrote to the return path itself (its request sink).
	[ "$mode" = postcopy ] && echo "# $kind${KSUF:-} postcopy: requests" \
		"$(grep -o '"requests":[0-9]*,"kernel_requests":[0-9]*' $out/listen.json | tr -d '"')"
	qemu_wait_status dst running 120 >/dev/null
	lat=$(lat_window dst $((seq + 1)))
	if [ -n "$pct" ]; then
		ktrace off
		ktrace dump $seq
		for f in src dst; do
			[ -f $out/pct.$f ] && sed "s/^/PCT $seq $f /" $out/pct.$f
		done
		grep -o '"postcopy":{.*' $out/listen.json | sed "s/^/PCT $seq json /"
	fi
	# shellcheck disable=SC2086
	result $kind "$mode" "$ch" "$(jnum $out/migrate.json total_ms)" \
		"$(jnum $out/migrate.json downtime_ms)" "$(jnum $out/migrate.json wire)" \
		"$(grep -o '"postcopy":{.*' $out/listen.json | grep -o '"requests":[0-9]*' | cut -d: -f2)" \
		"$rt" $lat "$(excess "$lat" "$base")" \
		"$(grep -o '"fault_latency_us":{[^}]*' $out/listen.json | grep -o '"avg":[0-9.]*' | cut -d: -f2)" \
		"$(grep -o '"fault_latency_us":{[^}]*' $out/listen.json | grep -o '"p99":[0-9.]*' | cut -d: -f2)" \
		"$(grep -o '"latency_us":{[^}]*' $out/listen.json | grep -o '"avg":[0-9.]*' | cut -d: -f2)"
}

echo "# qemu_bench: $RUNS rounds, channels $CHANNELS, modes $MODES, guest $QEMU_MEM ($QEMU_APPEND), variants: ${VARIANTS:-none}"
echo "# load: $(cat /proc/loadavg)"
: >$out/results
i=1
while [ $i -le "$RUNS" ]; do
	for m in $MODES; do
		chs=$CHANNELS
		[ "$m" = postcopy ] && chs=1
		for ch in $chs; do
			run_qemu "$m" "$ch"
			run_vmig "$m" "$ch"
			for v in $VARIANTS; do
				run_vmig "$m" "$ch" "$v"
				kparams_restore
			done
			if [ "$m" = postcopy ]; then
				for g in $GUEST_VARIANTS; do
					KSUF=-${g%%=*}
					QEMU_APPEND="$append0 $(echo "${g#*=}" | tr + ' ')"
					run_qemu "$m" "$ch"
					run_vmig "$m" "$ch"
					KSUF=
					QEMU_APPEND=$append0
				done
			fi
		done
	done
	echo "# round $i done; load: $(cat /proc/loadavg)"
	i=$((i + 1))
done
qemu_stop_all
echo "# accelerator of the inner guests: $(cat $QEMU_WORK/.accel 2>/dev/null)"

# Medians per case, then the ratios.
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%.10g\n", (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "-" }'; }
field() { # KIND MODE CH KEY
	grep "^RESULT $1 $2 ch=$3 " $out/results | grep -o " $4=[0-9][0-9.]*" | cut -d= -f2 | median
}
echo "SUMMARY medians of $RUNS interleaved rounds"
for m in $MODES; do
	chs=$CHANNELS
	[ "$m" = postcopy ] && chs=1
	for ch in $chs; do
		kinds="qemu vmig"
		for v in $VARIANTS; do
			kinds="$kinds vmig-${v%%=*}"
		done
		if [ "$m" = postcopy ]; then
			for g in $GUEST_VARIANTS; do
				kinds="$kinds qemu-${g%%=*} vmig-${g%%=*}"
			done
		fi
		for k in $kinds; do
			echo "SUMMARY $k $m ch=$ch total_ms=$(field $k $m $ch total_ms)" \
				"downtime_ms=$(field $k $m $ch downtime_ms) vm_down_ms=$(field $k $m $ch vm_down_ms)" \
				"MiB/s=$(field $k $m $ch MiB/s)" \
				"bytes=$(field $k $m $ch bytes) reqs=$(field $k $m $ch reqs)" \
				"rtt_us=$(field $k $m $ch rtt_us) slow=$(field $k $m $ch slow)" \
				"avg_us=$(field $k $m $ch avg_us) p99_us=$(field $k $m $ch p99_us)" \
				"excess_ms=$(field $k $m $ch excess_ms)" \
				"stall_per_req_us=$(field $k $m $ch stall_per_req_us)" \
				"req_avg_us=$(field $k $m $ch req_avg_us) req_p99_us=$(field $k $m $ch req_p99_us)" \
				"read_avg_us=$(field $k $m $ch read_avg_us)"
		done
		for k in $kinds; do
			[ "$k" = qemu ] || echo "RATIO $m ch=$ch guest's downtime (vm_down_ms, STOP to RESUME event) $k/qemu = $(awk -v a="$(field $k $m $ch vm_down_ms)" -v b="$(field qemu $m $ch vm_down_ms)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
		done
		if [ "$m" = precopy ]; then
			# The same guest either way: guest RAM per second is total time's inverse
			# (wire bytes differ: each side skips zero pages its own way).
			echo "RATIO precopy ch=$ch throughput (guest RAM / total time) vmig/qemu = $(awk -v a="$(field qemu $m $ch total_ms)" -v b="$(field vmig $m $ch total_ms)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') (goal >= 1.5)"
		else
			echo "RATIO postcopy guest-felt avg latency qemu/vmig = $(awk -v a="$(field qemu $m $ch avg_us)" -v b="$(field vmig $m $ch avg_us)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') (every access over 20 us, fetch or not: mostly the machine's noise under TCG/nested; the goal is on the stall per fetched page)"
			for k in $kinds; do
				# Against QEMU on the same guest: qemu-NAME for a guest variant.
				q=qemu
				for g in $GUEST_VARIANTS; do
					[ "$k" = "vmig-${g%%=*}" ] && q=qemu-${g%%=*}
				done
				case $k in qemu*) continue ;; esac
				echo "RATIO postcopy $k stall added by the migration (excess_ms) $q/$k = $(awk -v a="$(field $q $m $ch excess_ms)" -v b="$(field $k $m $ch excess_ms)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
				echo "RATIO postcopy $k stall per fetched page (stall_per_req_us) $q/$k = $(awk -v a="$(field $q $m $ch stall_per_req_us)" -v b="$(field $k $m $ch stall_per_req_us)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') (goal >= 10)"
			done
		fi
	done
done
