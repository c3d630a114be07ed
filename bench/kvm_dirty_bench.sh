#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Dirty logging of a KVM guest, vmig.ko's modes against KVM's own logs, in
# one boot on the same guest and workload (vmig guest --kvm --dirty-bench):
# harvest cost per dirty page at 1, 10 and 100 % of the pages written, and
# the longest vCPU stall (page write) while harvests run back to back.
# Runs in the vmcheck guest (make bench-kvm-dirty): nested SVM under TCG,
# so absolute times mean little; the ratios to kvm-clear (KVM's
# manual-protect log, what QEMU uses) are printed at the end.
# Environment: MEM (default 32M), ROUNDS (default 5), VCPUS (default 1).
vmig=/usr/bin/vmig
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
for pass in 1 2; do
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
