#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmig guest --kvm inside the test VM (nested SVM under TCG): KVM vCPUs run
# guest code that vmig generates and write self-checking pages.
#  - Exactness: over random intervals with the vCPUs stopped at both ends,
#    every vmig.ko dirty mode harvests exactly the pages the guest code
#    wrote, and so does KVM's own log (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG
#    with manual protect + initially set, the dirty ring), both logs on at
#    once on the same guest.
#  - No lost write: harvests while the vCPUs write, a shadow copy refreshed
#    from each harvest equals guest RAM at the end, every source.
#  - hwdirty is refused for a KVM guest, saying why: by the guest's own
#    check, and by vmig migrate (the VMM's HELLO says a secondary MMU
#    writes its RAM).
#  - Migrations of a KVM guest (precopy; postcopy with preempt; kmod and
#    uffd backends): the vCPUs' registers go as device state, the
#    destination's guest code goes on from them, every page verified.
#    Also on the VMM's own KVM log (--track vmm: KVM_CLEAR_DIRTY_LOG with
#    manual protect, and the dirty ring with precopy rounds then postcopy).
# Every wait is bounded: a step that hangs prints the kernel stacks of the
# vmig processes before they are killed, and the test goes on.
# Needs /dev/kvm (VMCHECK_MODULES="irqbypass ccp kvm kvm-amd"), /dev/vmig
# and /usr/bin/vmig.  KVM_TEST_MIGRATIONS=N (VMCHECK_ENV) runs the
# migrations N times (default 1), to chase a rare failure.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
if [ ! -x "$vmig" ] || [ ! -e /dev/vmig ] || [ ! -e /dev/kvm ]; then
	skip "KVM guests" "no /usr/bin/vmig, /dev/vmig or /dev/kvm in the guest"
	tap_done
	exit 0
fi
T=/tmp/kvmg
mkdir -p $T
vm_auth $T	# who may connect: vmig listen/migrate need a choice
port=5600

ROUNDS=40

# stacks: what each vmig process's threads wait on, as TAP comments.
stacks() {
	for p in $(pidof vmig); do
		echo "# pid $p: $(tr '\0' ' ' </proc/$p/cmdline | cut -c1-100)"
		for t in /proc/$p/task/*; do
			echo "#  task ${t##*/} $(cat $t/comm) $(cut -d' ' -f3 $t/stat)" \
				"wchan $(cat $t/wchan 2>/dev/null)"
			sed 's/^/#    /' $t/stack 2>/dev/null | head -n 12
		done
	done
}

# wait_or_dump PID SECONDS WHAT: wait_pid, but a process still running
# after SECONDS has every vmig process's stacks printed before it is killed.
wait_or_dump() {
	i=0
	while [ $i -lt $(($2 * 10)) ] && kill -0 $1 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 $1 2>/dev/null; then
		echo "# $3 still running after $2 s: stacks"
		stacks
	fi
	wait_pid $1 1
}

# dirty_check SOURCES [GUEST_ARGS]: the check passes for each source.
dirty_check() {
	n=$((n + 1))
	o=$T/check$n
	$vmig guest --socket $o.sock --kvm --mem 16M --vcpus 2 --dirty-rate 0 \
		--lifetime 280 --backend kmod --dirty-check $ROUNDS --dirty-source "$1" $2 \
		>$o.out 2>$o.err &
	wait_or_dump $! 300 "dirty check $1"
	rc=$?
	check "dirty check $1 $2: exits 0" [ $rc -eq 0 ]
	for s in $(echo "$1" | tr , ' '); do
		check "... $s harvests exactly the written pages in $ROUNDS stopped intervals" \
			grep -q "dirty-check: $s: $ROUNDS stopped intervals, \([1-9][0-9]*\) pages written, \1 harvested, equal in every round" $o.err
		check "... $s loses no write in $ROUNDS harvests racing the vCPUs" \
			grep -q "dirty-check: $s: $ROUNDS harvests while the vCPUs wrote, [1-9][0-9]* pages copied, 0 lost writes" $o.err
	done
	check "... guest RAM verified, no wrong page" \
		grep -q "verify-all after the dirty check: .* 0 errors" $o.err
	[ $rc -eq 0 ] || dump $o.out $o.err
}

n=0
t0=$(date +%s)
dirty_check protect,kvm-get
dirty_check manual,kvm-clear
dirty_check manual-init,kvm-ring
dirty_check manual-init,kvm-clear "--pattern sequential --vcpus 1"
echo "# dirty checks: $(($(date +%s) - t0)) s"

$vmig guest --socket $T/hw.sock --kvm --mem 16M --backend kmod --dirty-check 1 \
	--dirty-source hwdirty --lifetime 30 >$T/hw.out 2>$T/hw.err
rc=$?
check "hwdirty is refused for a KVM guest, saying why" \
	sh -c "[ $rc -eq 2 ] && grep -q 'hwdirty cannot see a KVM guest.s writes' $T/hw.err"

# A KVM VMM says so in its HELLO: the helper refuses hwdirty for it.
p=$T/hwm
$vmig guest --socket $p.src --kvm --mem 16M --lifetime 120 --backend kmod --dirty-rate 1 \
	>$p.sg.out 2>$p.sg.err &
sg=$!
wait_for $p.sg.out "guest: ready" 60
timeout 60 $vmig migrate $AUTH --vmm $p.src --to 127.0.0.1:5599 --timeout 10 --no-progress \
	--dirty-mode hwdirty >$p.json 2>$p.merr
rc=$?
check "vmig migrate --dirty-mode hwdirty of a KVM guest is refused, saying why" \
	sh -c "[ $rc -eq 1 ] && grep -q 'hwdirty cannot see this VMM.s guest writes' $p.merr"
[ $rc -eq 1 ] || dump $p.merr $p.sg.err
check "... and the source guest runs on, memory intact" \
	wait_for $p.sg.err "memory intact after the failed migration: .* 0 errors" 30
kill $sg 2>/dev/null
wait_pid $sg 10

# migrate NAME BACKEND MIGRATE_ARGS [SOURCE_GUEST_ARGS]: a KVM guest to a KVM guest.
migrate() {
	name=$1 be=$2 margs=$3 sargs=${4:-}
	port=$((port + 1))
	p=$T/m$port
	t0=$(date +%s)
	$vmig guest --socket $p.dst --kvm --mem 32M --incoming --verify-all --run 2 \
		--lifetime 250 --backend $be >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	$vmig listen $AUTH --vmm $p.dst --port 127.0.0.1:$port --timeout 60 --accept-timeout 250 \
		--no-progress --json --backend $be >$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --kvm --mem 32M --lifetime 250 --backend $be \
		--pattern random --dirty-rate 4 $sargs >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	sleep 1
	$vmig migrate $AUTH --vmm $p.src --to 127.0.0.1:$port --json --timeout 60 \
		--no-progress --backend $be $margs >$p.json 2>$p.merr &
	wait_or_dump $! 250 "$name: vmig migrate"
	rc=$?
	wait_or_dump $ls 60 "$name: vmig listen"; lrc=$?
	wait_or_dump $dg 90 "$name: the destination guest"; drc=$?
	wait_or_dump $sg 60 "$name: the source guest"; src=$?
	check "$name: migrated, all four processes exit 0" \
		[ $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	if [ $rc -ne 0 -o $lrc -ne 0 -o $drc -ne 0 -o $src -ne 0 ]; then
		dump $p.json $p.merr $p.ls.err
		# A vCPU that stopped prints its state: show all of it.
		for f in $p.dg.err $p.sg.err; do
			tail -n 30 $f | sed "s|^|# $f: |"
		done
	fi
	check "$name: the vCPUs' registers arrived as device state and were loaded" \
		grep -q "kvm-vcpus: 2 vCPUs loaded, their guest code goes on (vCPU 0 wrote [1-9][0-9]* pages before)" $p.dg.err
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	check "$name: the guest code ran on at the destination, checking every page it wrote" \
		grep -q "pages checked on touch, [1-9][0-9]* page writes, 0 wrong pages" $p.dg.err
	# r15 counts the guest's writes: it went on from the source's count.
	before=$(sed -n 's/.*vCPU 0 wrote \([0-9]*\) pages before.*/\1/p' $p.dg.err)
	after=$(sed -n "s/.*vCPU 0's guest code has written \([0-9]*\) pages in all.*/\1/p" $p.dg.err)
	check "$name: vCPU 0's own page count went on from where the source stopped it" \
		sh -c "[ -n '$before' ] && [ -n '$after' ] && [ '${after:-0}' -gt '${before:-0}' ]"
	echo "# $name: $(($(date +%s) - t0)) s"
}

r=0
while [ $r -lt ${KVM_TEST_MIGRATIONS:-1} ]; do
	r=$((r + 1))
	migrate "precopy of a KVM guest, kmod" kmod "--multifd 2"
	migrate "postcopy with preempt of a KVM guest, kmod" kmod "--postcopy-after 0 --multifd 2"
	migrate "precopy of a KVM guest, uffd" uffd "--multifd 2"
	migrate "postcopy with preempt of a KVM guest, uffd" uffd "--postcopy-after 0 --multifd 2"
	check "postcopy under KVM: the destination requested pages" \
		grep -q '"postcopy":{"preempt":true,.*"requests":[1-9]' $T/m$((port - 2)).ls.json
	# KVM's own dirty log, handed over by the VMM (--track vmm): KVM
	# write-protects its page tables, the helper harvests what the VMM says.
	migrate "precopy of a KVM guest on the VMM's KVM log (--track vmm), kmod" kmod \
		"--multifd 2 --track vmm"
	check "... the source harvested the VMM's log, more than once" \
		grep -q '"tracking":"vmm".*"harvests":\([2-9]\|[1-9][0-9]\)' $T/m$port.json
	migrate "precopy rounds, then postcopy, on the VMM's KVM ring (--track vmm), uffd" uffd \
		"--multifd 2 --track vmm --postcopy-after 3 --downtime-limit 1" "--vmm-log kvm-ring"
	check "... the source harvested the VMM's log, more than once" \
		grep -q '"tracking":"vmm".*"harvests":\([2-9]\|[1-9][0-9]\)' $T/m$port.json
	check "... and switched to postcopy after its precopy passes" \
		grep -q '"switchover":"postcopy after 3 passes"' $T/m$port.json
done

tap_done
