#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Dirty logging of a KVM guest, vmig.ko's modes against KVM's own logs, in
# one boot on the same guest and workload (vmig guest --kvm --dirty-bench):
# harvest cost per dirty page at 1, 10 and 100 % of the pages written, and
# the longest vCPU stall (page write) while harvests run back to back.
# Runs in the vmcheck guest (make bench-kvm-dirty): nested SVM under TCG,
# so absolute times mean little; the ratios to kvm-clear (KVM's
# manual-protect log, what QEMU uses) are printed at the end.
# Then (MIGRATE_RUNS, default 3; 0: none) migrations of a dirtying KVM guest
# (MIG_MEM, default 128M, 2 vCPUs writing random pages at MIG_RATE MiB/s,
# default 8; vmig migrate MIG_ARGS; BASE=/usr/bin/FILE: that build's vmig
# migrate too, as a third, interleaved, for before/after; VMCHECK_EXTRA puts
# the file there) by vmig.ko's default tracking against the VMM's own KVM log
# (vmig migrate --track vmm: KVM_CLEAR_DIRTY_LOG, the VMM harvesting on the
# helper's request), interleaved: total, downtime, dirty rounds, harvests and
# their time, pages sent, per migration; medians and ratios at the end.
# Environment: MEM (default 32M), ROUNDS (default 5), VCPUS (default 1),
# PASSES (default 2; 0: migrations only).
vmig=/usr/bin/vmig
. /usr/bin/tap.sh 2>/dev/null || true
MEM=${MEM:-32M}
ROUNDS=${ROUNDS:-5}
VCPUS=${VCPUS:-1}
out=/tmp/kvm_dirty_bench.txt
if [ ! -e /dev/kvm ] || [ ! -e /dev/vmig ]; then
	echo "kvm_dirty_bench: needs /dev/kvm and /dev/vmig (make bench-kvm-dirty)"
	exit 1
fi
: >$out
# Interleaved: each pass runs every source once, in the same boot.
for pass in $(seq 1 ${PASSES:-2}); do
	for s in manual-init manual protect kvm-clear kvm-get kvm-ring; do
		$vmig guest --socket /tmp/kb.sock --kvm --mem $MEM --vcpus $VCPUS --backend kmod \
			--pattern sequential --dirty-rate 0 --lifetime 600 --dirty-bench $ROUNDS \
			--dirty-source $s >/tmp/kb.out 2>/tmp/kb.err || {
			echo "kvm_dirty_bench: $s failed:"; cat /tmp/kb.err; exit 1; }
		[ $pass = 1 ] && [ $s = manual-init ] && sed -n 1p /tmp/kb.out
		[ $pass = 1 ] && [ $s = manual-init ] && sed -n 2p /tmp/kb.out
		sed -n '3,$p' /tmp/kb.out | sed "s/^/pass$pass /" | tee -a $out | cut -d' ' -f2-
	done
done
echo
echo "ratios to kvm-clear (mean of the passes; < 1: cheaper / shorter than KVM's manual-protect log)"
printf "%-12s %6s %14s %14s\n" source dirty harvest_ratio stall_ratio
awk '{ key = $2 " " $3; h[key] += $6; st[key] += $7; n[key]++; src[$2] = 1; pct[$3] = 1 }
END {
	split("manual-init manual protect kvm-get kvm-ring", S, " ")
	split("1% 10% 100%", P, " ")
	for (i = 1; i <= 5; i++) for (j = 1; j <= 3; j++) {
		a = S[i] " " P[j]; b = "kvm-clear " P[j]
		if (!n[a] || !n[b] || !h[b] || !st[b]) continue
		printf "%-12s %6s %14.2f %14.2f\n", S[i], P[j], (h[a] / n[a]) / (h[b] / n[b]),
			(st[a] / n[a]) / (st[b] / n[b])
	}
}' $out

# --- migrations: vmig.ko's tracking against the VMM's KVM log -------------
MIGRATE_RUNS=${MIGRATE_RUNS:-3}
[ "$MIGRATE_RUNS" -gt 0 ] || exit 0
. /usr/bin/vm_lib.sh
T=/tmp/kdm
mkdir -p $T
vm_auth $T
MIG_MEM=${MIG_MEM:-128M}
MIG_RATE=${MIG_RATE:-8}
# A limit below what the device state alone takes: dirty rounds go on to
# --max-rounds, so every migration harvests the same number of times.
MIG_ARGS=${MIG_ARGS:---multifd 2 --downtime-limit 1 --max-rounds 8}
port=5700
mig=/tmp/kvm_dirty_mig.txt
: >$mig
# jget KEY FILE: the first number KEY has in a JSON report.
jget() { grep -o "\"$1\":[0-9.]*" "$2" | head -n 1 | cut -d: -f2; }
# mig_run LABEL MIGRATE_ARGS [VMIG]: one migration (vmig migrate of VMIG: another
# build, BASE below); a line of figures in $mig.
mig_run() {
	port=$((port + 1))
	p=$T/$port
	$vmig guest --socket $p.dst --kvm --mem $MIG_MEM --incoming --verify-all --run 1 \
		--lifetime 300 --backend kmod >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --no-progress \
		--json --backend kmod >$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --kvm --mem $MIG_MEM --vcpus 2 --lifetime 300 --backend kmod \
		--pattern random --dirty-rate $MIG_RATE >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	sleep 2
	${3:-$vmig} migrate $AUTH --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 \
		--no-progress --backend kmod $2 >$p.json 2>$p.merr
	rc=$?
	wait_pid $ls 60; wait_pid $dg 90; wait_pid $sg 60
	if [ $rc -ne 0 ] || ! grep -q "verify-all after resume: .* 0 errors" $p.dg.err; then
		echo "kvm_dirty_bench: migration $1 failed (rc $rc):"
		tail -n 12 $p.merr $p.dg.err $p.sg.err $p.ls.err
		kill $sg $dg $ls 2>/dev/null	# nothing left running to skew the next
		wait_pid $sg 10; wait_pid $dg 10; wait_pid $ls 10
		return 1
	fi
	h=$(jget harvests $p.json) hm=$(jget harvest_ms $p.json)
	echo "$1 total_ms=$(jget total_ms $p.json) downtime_ms=$(jget downtime_ms $p.json)" \
		"stop_ms=$(jget stop $p.json) final_pages_ms=$(jget final_pages $p.json)" \
		"resume_ms=$(jget resume $p.json)" \
		"rounds=$(jget rounds $p.json) harvests=$h harvest_ms=$hm" \
		"per_harvest_ms=$(awk -v a="$hm" -v b="$h" 'BEGIN { printf "%.3f", b ? a / b : 0 }')" \
		"sent_mib=$(awk -v a="$(jget normal $p.json)" 'BEGIN { printf "%.1f", a / 1048576 }')" \
		"tracking=$(sed -n 's/.*"tracking":"\([a-z-]*\)".*/\1/p' $p.json)" >>$mig
	tail -n 1 $mig
}
echo
echo "migrations of a KVM guest ($MIG_MEM, 2 vCPUs, random writes at $MIG_RATE MiB/s), kmod backend, interleaved: $MIG_ARGS"
for r in $(seq 1 $MIGRATE_RUNS); do
	mig_run vmig.ko "$MIG_ARGS"
	mig_run kvm-log "$MIG_ARGS --track vmm"
	[ -z "${BASE:-}" ] || mig_run base "$MIG_ARGS" "$BASE"
done
echo
echo "medians (ratios: kvm-log / vmig.ko, base / vmig.ko)"
# Medians per label (busybox awk: sort by hand).
awk '{ s = $1; n[s]++; for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] != "tracking") { v[s, kv[1], n[s]] = kv[2]; keys[kv[1]] = i } } }
function med(s, k,   m, i, j, t, a) {
	m = n[s]; for (i = 1; i <= m; i++) a[i] = v[s, k, i] + 0
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
	printf "%-16s %12s %12s %8s %12s %8s\n", "figure", "vmig.ko", "kvm-log", "ratio", "base", "ratio"
	split("total_ms downtime_ms stop_ms final_pages_ms resume_ms rounds harvests harvest_ms per_harvest_ms sent_mib", K, " ")
	for (i = 1; i <= 10; i++) {
		a = med("vmig.ko", K[i]); b = med("kvm-log", K[i]); c = n["base"] ? med("base", K[i]) : 0
		printf "%-16s %12.3f %12.3f %8s %12s %8s\n", K[i], a, b, a ? sprintf("%.2f", b / a) : "-",
			n["base"] ? sprintf("%.3f", c) : "-", n["base"] && a ? sprintf("%.2f", c / a) : "-"
	}
}' $mig
