#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# vmig migrates a real QEMU guest: two unmodified QEMUs in this VM, their
# guest RAM on vmigfs region files, driven by 'vmig qemu' (QMP) on both
# ends, 'vmig migrate' / 'vmig listen' between them.  The inner guest is a
# Linux kernel running guest_workload (self-checking pages, written and
# checked all the time; selftests/qemu/), started through qemu_lib.sh.
#
# Cases: precopy; postcopy from the start with preempt; the destination
# QEMU killed mid-precopy (the source runs on); a QMP step refused (the
# destination QEMU cannot load the source's devices: the source runs on);
# a running QEMU offered as a destination (refused before anything).
# After a migration: the guest verifies every page on the destination, its
# kernel log has no error, and query-status says running only there.
#
# QVM_CASES picks cases: "precopy postcopy" by default; the failure cases
# "kill refuse notincoming" run from qemu_vmig_fail_test.sh (a test of
# their own, so each half has the VM's per-test timeout).
. tap.sh

QEMU_WORK=/tmp/qemu
QEMU_QMP_SOCK=1
QEMU_MEM=${QVM_MEM:-256M}
# A quarter of the guest's memory in checked pages, written at 2000 pages/s.
QEMU_APPEND=${QVM_APPEND:-"wl.mib=96 wl.write-rate=2000"}
export QEMU_WORK QEMU_QMP_SOCK QEMU_MEM QEMU_APPEND
cases=${QVM_CASES:-"precopy postcopy"}
vmig=$(command -v vmig)
lib=
for d in /usr/bin /tests /usr/share/vmig; do
	[ -f "$d/qemu_lib.sh" ] && lib=$d/qemu_lib.sh && break
done
if [ -z "$lib" ] || ! command -v qemu-system-x86_64 >/dev/null ||
	[ ! -r "${QEMU_DIR:-/qemu}/guest-initrd.gz" ]; then
	skip "vmig qemu: migrations of a real QEMU guest" \
		"no QEMU, qemu_lib.sh or inner guest in this VM"
	tap_done
	exit 0
fi
. "$lib"

regions=/run/vmig
mkdir -p $regions
mount -t vmigfs vmigfs $regions || { echo "# mount -t vmigfs failed"; exit 1; }
port=4600
logs=/tmp/qvm
mkdir -p $logs
# Who may connect (vmig requires a choice): a token both sides hold.
(umask 077 && echo "vm-test-token-$$-0123456789abcdef" >$logs/token)
AUTH="--token-file $logs/token"

cleanup() {
	qemu_stop_all
	for p in $spid $dpid $lpid; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -f $regions/*
}
trap 'cleanup; umount $regions' EXIT

dump() { # file...: the tail of each, as TAP comments
	for f in "$@"; do
		echo "# --- $f"
		tail -n 15 "$f" | sed 's/^/#   /'
	done
}

# expect NAME "FILES" COMMAND...: a check; on failure the FILES' tails too.
expect() {
	local name=$1 files=$2
	shift 2
	if "$@"; then
		check "$name" true
	else
		check "$name" false
		# shellcheck disable=SC2086
		dump $files
	fi
}

status_of() {
	qmp_field "$(qmp "$1" query-status)" status
}

# verify_guest NAME SEQ: the workload's full pass; sets vbad (pages wrong)
# and verr (error lines in the guest's whole kernel log).  1 if no report.
verify_guest() {
	local con=$QEMU_WORK/$1/console.log from
	vbad= verr=
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "verify $2"
	if ! qemu_wait_console "$1" "^WL-VERIFY $2 " 240 "$from" >/dev/null; then
		echo "# $1: no verification report $2; console tail:"
		tail -n 10 "$con" | sed 's/^/#   /'
		qemu_diag "$1"
		return 1
	fi
	sleep 1	# the marker line may have been caught half written
	tail -n +$((from + 1)) "$con" | grep -E "^WL-(BAD|KLOG|STATS|LAT|DMESG|VERIFY) " |
		sed "s/^/# $1: /"
	vbad=$(tail -n +$((from + 1)) "$con" | sed -n "s/^WL-STATS $2 .* bad=\([0-9]*\).*/\1/p")
	verr=$(tail -n +$((from + 1)) "$con" | sed -n "s/^WL-DMESG $2 errors=\([0-9]*\).*/\1/p")
	grep -q "^WL-DMESG $2 clean" "$con" && verr=0
	[ -n "$vbad" ] && [ -n "$verr" ]
}

# check_guest NAME SEQ BASE WHAT: every page right, and no kernel-log error
# beyond the BASE ones the guest had before the migration (its boot's).
check_guest() {
	verify_guest "$1" "$2"
	check "$4: every page verifies (the workload's full pass)" test "${vbad:-x}" = 0
	check "$4: no new error in the guest's kernel log ($verr lines, $3 before)" \
		test "${verr:-x}" = "$3"
}

# region NAME: a fresh region file of the guest's size.
region() {
	rm -f "$regions/$1"
	"$vmig" region create "$regions/$1" --size "$QEMU_MEM"
}

# start_pair [SRC-QEMU-ARGS]: source guest running its workload, an
# incoming destination, a 'vmig qemu' on each; sets spid dpid.
start_pair() {
	region src
	region dst
	qemu_boot src $regions/src 300 "$@" || return 1
	verify_guest src 0 || return 1
	base=$verr
	[ "$base" = 0 ] || echo "# the source guest's kernel log has $base error lines before any migration"
	qemu_start dst $regions/dst -incoming defer || return 1
	"$vmig" qemu --qmp $QEMU_WORK/src/qmp.sock --ram $regions/src \
		--socket /tmp/src.vmm >$logs/qemu-src.log 2>&1 &
	spid=$!
	"$vmig" qemu --incoming --qmp $QEMU_WORK/dst/qmp.sock --ram $regions/dst \
		--socket /tmp/dst.vmm >$logs/qemu-dst.log 2>&1 &
	dpid=$!
	return 0
}

# wait_listen LOG PID: until that vmig listen listens (or is gone).
wait_listen() {
	local i=0
	while [ $i -lt 1200 ] && ! grep -qs 'waiting for a source' "$1" && kill -0 "$2" 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
}

# migrate NAME [vmig migrate options]: listen + migrate; rc in mrc, lrc.
migrate() {
	local name=$1
	shift
	port=$((port + 1))
	# Emptied first: the job's own > truncates only once it runs, and the
	# last case's "waiting for a source" would do.
	: >$logs/listen.log
	"$vmig" listen $AUTH --vmm /tmp/dst.vmm --port 127.0.0.1:$port --timeout 300 \
		>$logs/listen.log 2>&1 &
	lpid=$!
	wait_listen $logs/listen.log $lpid
	"$vmig" migrate $AUTH --vmm /tmp/src.vmm --to 127.0.0.1:$port --timeout 300 "$@" \
		>$logs/migrate.log 2>&1
	mrc=$?
	wait $lpid
	lrc=$?
	lpid=
}

# Every check of a migration that should have worked.
check_migrated() {
	local name=$1 src dst
	expect "$name: vmig migrate and vmig listen succeed" \
		"$logs/migrate.log $logs/listen.log $logs/qemu-src.log $logs/qemu-dst.log" \
		test "$mrc$lrc" = 00
	wait $spid
	expect "$name: the source's vmig qemu exits 0 (migrated away)" $logs/qemu-src.log \
		test $? = 0
	wait $dpid
	expect "$name: the destination's vmig qemu exits 0 (resumed there)" \
		"$logs/qemu-dst.log $QEMU_WORK/dst/qemu.err" test $? = 0
	spid= dpid=
	src=$(status_of src)
	dst=$(status_of dst)
	echo "# $name: query-status: source $src, destination $dst"
	check "$name: query-status says running only on the destination" \
		test "$src/$dst" = postmigrate/running
	if [ "$dst" != running ]; then	# nothing to verify: do not wait for it
		check "$name: on the destination: every page verifies (not run: no guest there)" false
		return
	fi
	check_guest dst 1 "$base" "$name: on the destination"
	grep -E 'total|downtime|parts|prepared|device|request|postcopy' $logs/migrate.log \
		$logs/listen.log | head -n 16 | sed "s/^/# $name: /"
	grep -hE 'vmig qemu: (stopped|device state)' $logs/qemu-src.log $logs/qemu-dst.log |
		sed "s/^/# $name: /"
}

case_precopy() {
	start_pair || { check "precopy: guests start" false; return; }
	echo "# precopy: the guests run on $(qemu_accel src)"
	migrate precopy
	check_migrated precopy
	grep -q 'device state saved' $logs/qemu-src.log
	check "precopy: QEMU's own stream went as the vmig device" test $? = 0
	expect "precopy: QEMU's migration stopped the guest (pre-switchover), set up first" \
		$logs/qemu-src.log grep -q 'stopped by QEMU.s migration in pre-switchover' \
		$logs/qemu-src.log
}

case_postcopy() {
	start_pair || { check "postcopy: guests start" false; return; }
	echo "# postcopy: the guests run on $(qemu_accel src)"
	migrate postcopy --postcopy --postcopy-after 0
	check_migrated postcopy
	expect "postcopy: the destination ran in postcopy (pages on demand)" $logs/listen.log \
		grep -q 'postcopy: the guest runs here' $logs/listen.log
}

# The destination QEMU dies while precopy is under way: the source runs on.
case_kill() {
	start_pair || { check "kill: guests start" false; return; }
	port=$((port + 1))
	: >$logs/listen.log	# as in migrate
	"$vmig" listen $AUTH --vmm /tmp/dst.vmm --port 127.0.0.1:$port --timeout 300 \
		>$logs/listen.log 2>&1 &
	lpid=$!
	wait_listen $logs/listen.log $lpid
	"$vmig" migrate $AUTH --vmm /tmp/src.vmm --to 127.0.0.1:$port --timeout 300 \
		--max-bandwidth 16 >$logs/migrate.log 2>&1 &
	local mpid=$! i=0 on=
	# Mid-precopy: the source region's dirty logging is on (the bulk stage
	# began; at 16 MiB/s it lasts 6 s), then one more second.
	while [ $i -lt 600 ] && [ "$on" != true ] && kill -0 $mpid 2>/dev/null; do
		sleep 0.5
		on=$("$vmig" region list --json |
			sed -n 's|.*"path":"'$regions'/src"[^}]*"dirty_logging":\([a-z]*\).*|\1|p')
		i=$((i + 1))
	done
	sleep 1
	echo "# kill: source region dirty logging ${on:-?}; killing the destination QEMU"
	kill -9 "$(cat $QEMU_WORK/dst/pid)"
	wait $mpid
	mrc=$?
	wait $lpid
	lpid=
	wait $dpid
	local drc=$?
	wait $spid
	local src=$?
	spid= dpid=
	expect "kill: vmig migrate fails" $logs/migrate.log test $mrc != 0
	expect "kill: the destination's vmig qemu says QEMU exited" $logs/qemu-dst.log \
		grep -q 'QEMU exited' $logs/qemu-dst.log
	test $drc = 1 || echo "# kill: destination vmig qemu exited $drc"
	expect "kill: the source's vmig qemu exits 3 (the guest runs on there)" \
		"$logs/qemu-src.log $logs/migrate.log" test $src = 3
	check "kill: the source QEMU is running" test "$(status_of src)" = running
	check_guest src 1 "$base" "kill: on the source"
}

# The destination QEMU refuses the state (a device the source has and it
# lacks): the load fails naming the step, and the source runs on.
case_refuse() {
	start_pair -device virtio-rng-pci || { check "refuse: guests start" false; return; }
	migrate refuse
	wait $dpid
	local drc=$?
	wait $spid
	local src=$?
	spid= dpid=
	check "refuse: the migration fails" test "$mrc" != 0
	expect "refuse: the destination's vmig qemu names the step" $logs/qemu-dst.log \
		grep -q "device state load: QEMU exited during migrate-incoming" $logs/qemu-dst.log
	expect "refuse: ... and QEMU says why (it exits on a failed load)" \
		$QEMU_WORK/dst/qemu.err grep -q "load of migration failed" $QEMU_WORK/dst/qemu.err
	test $drc = 3 || echo "# refuse: destination vmig qemu exited $drc"
	expect "refuse: the source's vmig qemu exits 3, the guest continued there" \
		$logs/qemu-src.log test $src = 3
	check "refuse: the source QEMU is running" test "$(status_of src)" = running
	check_guest src 1 "$base" "refuse: on the source"
}

# A QEMU that is not waiting for a migration is refused as a destination.
case_notincoming() {
	region src
	qemu_start src $regions/src || { check "notincoming: guest starts" false; return; }
	"$vmig" qemu --incoming --qmp $QEMU_WORK/src/qmp.sock --ram $regions/src \
		--socket /tmp/dst.vmm >$logs/qemu-dst.log 2>&1
	check "notincoming: vmig qemu --incoming on a running QEMU exits 1" test $? = 1
	expect "notincoming: ... saying it needs -incoming defer" $logs/qemu-dst.log \
		grep -q -- '-incoming defer' $logs/qemu-dst.log
	check "notincoming: the QEMU still runs" test "$(status_of src)" = running
}

for c in $cases; do
	case_$c
	cleanup
done
tap_done
