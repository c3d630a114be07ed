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
# Per run: total time, downtime, bytes on the wire and their rate; the
# throughput ratio is of guest RAM moved per second (the same guest on
# both sides, so the inverse ratio of total times); postcopy also the guest-felt latency (the workload's
# accesses >= 20 us on the destination from the migration's start to its
# end: count, avg, p99) and, for vmig, the helper's request latency.
# Under TCG or nested KVM most accesses >= 20 us are the machine, not a
# fetched page (thousands of them against a few hundred page requests), so
# their average is mostly noise: each run also takes the same guest's window
# right before the migration as a baseline and reports excess_ms, the stall
# the migration added (slow x avg in the migration's window, less the
# baseline's stall per access times the window's accesses).  vmig's helper
# figures, every request of the destination (QEMU's own accesses included):
# req_avg_us/req_p99_us from the helper reading the request to the page
# placed; fault_avg_us from the fault itself (the module's time stamp) to
# placed, what the faulting thread waited.
# Both sides run with no bandwidth cap and a 300 ms downtime limit.
# Then medians per case and the ratios (vmig against QEMU).
#
# Environment: RUNS (default 3) interleaved rounds; CHANNELS ("1 2 4");
# MODES ("precopy postcopy"); QVM_MEM (256M); QVM_APPEND (workload options).
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

# start_src RAM [QEMU args]: the source guest with its workload ready.
start_src() {
	qemu_start src "$@" || return 1
	qemu_wait_console src '^WL-READY' 900 >/dev/null || return 1
	sleep 3	# the workload's writing loop settles
}

# excess "SLOW AVG P99 ACC" (migration window) "SLOW AVG P99 ACC" (baseline):
# the stall the migration added, ms (see the header).
excess() {
	echo "$1 $2" | awk '{ if ($4 > 0 && $8 > 0) printf "%.1f", ($1 * $2 - $4 * ($5 * $6 / $8)) / 1000; else print "-" }'
}

# result KIND MODE CH TOTAL_MS DOWNTIME_MS BYTES [SLOW AVG P99 ACC [EXCESS [REQ_AVG REQ_P99 FAULT_AVG]]]
result() {
	local thr
	thr=$(awk -v b="$6" -v t="$4" 'BEGIN { if (t > 0) printf "%.1f", b / 1048576 / (t / 1000); else print "-" }')
	echo "RESULT $1 $2 ch=$3 total_ms=$4 downtime_ms=$5 bytes=$6 MiB/s=$thr slow=${7:--} avg_us=${8:--} p99_us=${9:--} acc=${10:--} excess_ms=${11:--} req_avg_us=${12:--} req_p99_us=${13:--} fault_avg_us=${14:--}" |
		tee -a $out/results
}

run_qemu() { # MODE CH
	local mode=$1 ch=$2 r lat base caps
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
	base=$(lat_window src $seq)
	qmp src migrate "{\"uri\":\"tcp:127.0.0.1:$port\"}" >/dev/null || return
	[ "$mode" = postcopy ] && qmp src migrate-start-postcopy >/dev/null
	r=$(qemu_wait_migration src 1800) || { echo "# qemu $mode ch=$ch: $r"; return; }
	echo "$r" >$out/qemu-$mode-$ch.json
	qemu_wait_status dst running 120 >/dev/null
	lat=$(lat_window dst $((seq + 1)))
	# shellcheck disable=SC2086
	result qemu "$mode" "$ch" "$(jnum $out/qemu-$mode-$ch.json total-time)" \
		"$(jnum $out/qemu-$mode-$ch.json downtime)" \
		"$(jnum $out/qemu-$mode-$ch.json transferred)" $lat "$(excess "$lat" "$base")"
}

run_vmig() { # MODE CH
	local mode=$1 ch=$2 lat base extra= pids i
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
	"$vmig" listen $AUTH --vmm /tmp/qb-dst.vmm --port 127.0.0.1:$port --json --no-progress \
		>$out/listen.json 2>$out/listen.err &
	pids="$pids $!"
	i=0
	while [ $i -lt 1200 ] && ! grep -q 'waiting for a source' $out/listen.err; do
		sleep 0.1
		i=$((i + 1))
	done
	[ "$mode" = postcopy ] && extra="--postcopy --postcopy-after 0"
	seq=$((seq + 2))
	base=$(lat_window src $seq)
	# shellcheck disable=SC2086
	if ! "$vmig" migrate $AUTH --vmm /tmp/qb-src.vmm --to 127.0.0.1:$port --multifd "$ch" \
		--json --no-progress $extra >$out/migrate.json 2>$out/migrate.err; then
		echo "# vmig $mode ch=$ch failed:"
		tail -n 5 $out/migrate.err $out/listen.err $out/vq-src.log $out/vq-dst.log | sed 's/^/#   /'
		kill $pids 2>/dev/null
		wait $pids
		return
	fi
	wait $pids
	qemu_wait_status dst running 120 >/dev/null
	lat=$(lat_window dst $((seq + 1)))
	# shellcheck disable=SC2086
	result vmig "$mode" "$ch" "$(jnum $out/migrate.json total_ms)" \
		"$(jnum $out/migrate.json downtime_ms)" "$(jnum $out/migrate.json wire)" $lat "$(excess "$lat" "$base")" \
		"$(grep -o '"latency_us":{[^}]*' $out/listen.json | grep -o '"avg":[0-9.]*' | cut -d: -f2)" \
		"$(grep -o '"latency_us":{[^}]*' $out/listen.json | grep -o '"p99":[0-9.]*' | cut -d: -f2)" \
		"$(grep -o '"fault_latency_us":{[^}]*' $out/listen.json | grep -o '"avg":[0-9.]*' | cut -d: -f2)"
}

echo "# qemu_bench: $RUNS rounds, channels $CHANNELS, modes $MODES, guest $QEMU_MEM ($QEMU_APPEND)"
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
		done
	done
	echo "# round $i done; load: $(cat /proc/loadavg)"
	i=$((i + 1))
done
qemu_stop_all
echo "# accelerator of the inner guests: $(cat $QEMU_WORK/.accel 2>/dev/null)"

# Medians per case, then the ratios.
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2); else print "-" }'; }
field() { # KIND MODE CH KEY
	grep "^RESULT $1 $2 ch=$3 " $out/results | grep -o " $4=[0-9.]*" | cut -d= -f2 | median
}
echo "SUMMARY medians of $RUNS interleaved rounds"
for m in $MODES; do
	chs=$CHANNELS
	[ "$m" = postcopy ] && chs=1
	for ch in $chs; do
		for k in qemu vmig; do
			echo "SUMMARY $k $m ch=$ch total_ms=$(field $k $m $ch total_ms)" \
				"downtime_ms=$(field $k $m $ch downtime_ms) MiB/s=$(field $k $m $ch MiB/s)" \
				"bytes=$(field $k $m $ch bytes) slow=$(field $k $m $ch slow)" \
				"avg_us=$(field $k $m $ch avg_us) p99_us=$(field $k $m $ch p99_us)" \
				"excess_ms=$(field $k $m $ch excess_ms)" \
				"req_avg_us=$(field $k $m $ch req_avg_us) fault_avg_us=$(field $k $m $ch fault_avg_us)"
		done
		if [ "$m" = precopy ]; then
			# The same guest either way: guest RAM per second is total time's inverse
			# (wire bytes differ: each side skips zero pages its own way).
			echo "RATIO precopy ch=$ch throughput (guest RAM / total time) vmig/qemu = $(awk -v a="$(field qemu $m $ch total_ms)" -v b="$(field vmig $m $ch total_ms)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') (goal >= 1.5)"
		else
			echo "RATIO postcopy guest-felt avg latency qemu/vmig = $(awk -v a="$(field qemu $m $ch avg_us)" -v b="$(field vmig $m $ch avg_us)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }') (goal >= 10; mostly the machine's noise under TCG/nested)"
			echo "RATIO postcopy stall added by the migration (excess_ms) qemu/vmig = $(awk -v a="$(field qemu $m $ch excess_ms)" -v b="$(field vmig $m $ch excess_ms)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
		fi
	done
done
