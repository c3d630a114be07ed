#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# QEMU's own migration of a real Linux guest, inside the module's test VM:
# the baseline vmig's QEMU driver is measured against, and the proof that
# the plumbing works (QEMU in the VM, the inner guest, QMP from shell).
#
# The inner guest (Debian's kernel, a busybox initramfs running
# guest_workload: self-checking pages, written and checked all the time)
# runs on a memory-backend-file RAM file (share=on, in tmpfs), as it will
# under vmig.  Two QEMUs in this VM, the destination started with
# -incoming defer.  The guest boots once and moves on twice:
#   precopy              vm-a -> vm-b, QEMU's migrate, default settings
#   postcopy + preempt   vm-b -> vm-c, postcopy-ram and postcopy-preempt on
#                        both ends, migrate-start-postcopy at once
# After each: the migration completed; the destination runs and the source
# does not (query-status); the guest verifies every page and its kernel log
# is clean (guest_workload's WL-VERIFY); it keeps writing on the
# destination.  Last, a page overwritten in the RAM file must fail the
# full pass (the check is not blind).  KVM (nested) where it works, TCG
# otherwise: the first line says which.  Runs in the QEMU boot (make vmcheck-qemu), which puts QEMU,
# the inner guest (/qemu) and qemu_lib.sh in the VM.
. /usr/bin/tap.sh
. /usr/bin/qemu_lib.sh

QEMU_WORK=${QEMU_WORK:-/tmp/qemu-native}
# No vmig here: a guest that resets silently is this stack's (qemu_gone).
QEMU_RESET_IS_ENV=1
export QEMU_MEM=${QEMU_MEM:-256M}
export QEMU_APPEND=${QEMU_APPEND:-wl.percent=60 wl.write-rate=2000 wl.check-rate=4000}
port=4610
verify_seq=0

if ! command -v "$QEMU_BIN" >/dev/null || [ ! -r "$QEMU_DIR/vmlinuz" ]; then
	skip "QEMU's own migration of a Linux guest" "no $QEMU_BIN or $QEMU_DIR/vmlinuz (run it with make vmcheck-qemu)"
	tap_done
	exit 0
fi
trap 'qemu_stop_all' EXIT
mkdir -p "$QEMU_WORK"

now() { cut -d' ' -f1 /proc/uptime; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# guest_writes NAME SEQ: the total writes in report SEQ.
guest_writes() {
	grep "^WL-STATS $2 " "$QEMU_WORK/$1/console.log" | sed 's/.* writes=\([0-9]*\).*/\1/'
}

# start_source NAME: boot the guest and wait for its workload.
start_source() {
	local t0
	t0=$(now)
	rm -f "$QEMU_WORK/$1.ram"
	qemu_boot "$1" "$QEMU_WORK/$1.ram" 300 || return 1
	echo "# $1: booted on $(qemu_accel "$1") in $(secs "$t0" "$(now)") s:" \
		"$(grep -m 1 '^WL-READY' "$QEMU_WORK/$1/console.log")"
}

# migrate SRC DST CAPS-JSON POSTCOPY(0|1): QEMU's migrate SRC -> DST.
migrate() {
	local src=$1 dst=$2 caps=$3 pc=$4 uri t0 r st
	port=$((port + 1))
	uri="tcp:127.0.0.1:$port"
	rm -f "$QEMU_WORK/$dst.ram"
	qemu_start "$dst" "$QEMU_WORK/$dst.ram" -incoming defer || return 1
	if [ -n "$caps" ]; then
		qmp_ok "$src" migrate-set-capabilities "{\"capabilities\":$caps}" || return 1
		qmp_ok "$dst" migrate-set-capabilities "{\"capabilities\":$caps}" || return 1
	fi
	qmp_ok "$dst" migrate-incoming "{\"uri\":\"$uri\"}" || return 1
	t0=$(now)
	qmp_ok "$src" migrate "{\"uri\":\"$uri\"}" || return 1
	if [ "$pc" = 1 ]; then
		qmp_ok "$src" migrate-start-postcopy || return 1
	fi
	r=$(qemu_wait_migration "$src" 300)
	st=$?
	echo "# $src -> $dst in $(secs "$t0" "$(now)") s: total-time $(qmp_field "$r" total-time) ms," \
		"downtime $(qmp_field "$r" downtime) ms, transferred $(qmp_field "$r" transferred) B"
	if [ $st -ne 0 ]; then
		echo "$r" | sed 's/^/# /'
		return 1
	fi
	# The MIGRATION events (the events capability) say postcopy really ran.
	if [ "$pc" = 1 ] && ! grep -q '"status": "postcopy-active"' "$QEMU_WORK/$src/qmp.log"; then
		echo "# $src: no MIGRATION event with status postcopy-active"
		return 1
	fi
	return 0
}

# only_destination_runs SRC DST
only_destination_runs() {
	local rs rd s d
	rs=$(qmp "$1" query-status "" 20)
	rd=$(qmp "$2" query-status "" 20)
	s=$(qmp_field "$rs" status)
	d=$(qmp_field "$rd" status)
	echo "# query-status: $1 ${s:-?}, $2 ${d:-?}"
	[ "$d" = running ] && [ "$s" != running ] && return 0
	# What QEMU said, or why it said nothing.
	printf '%s\n%s\n' "$rs" "$rd" | sed '/^#/!s/^/# /'
	return 1
}

# verifies NAME: a full pass over every page, kernel log clean.
verifies() {
	verify_seq=$((verify_seq + 1))
	qemu_verify "$1" $verify_seq 240
}

# keeps_writing NAME: the writes counter moves on after the last verify.
keeps_writing() {
	local a b seq=$((verify_seq + 500)) from
	a=$(guest_writes "$1" $verify_seq)
	sleep 2
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "report $seq"
	qemu_wait_console "$1" "^WL-REPORT $seq " 300 "$from" >/dev/null || { qemu_diag "$1"; return 1; }
	b=$(guest_writes "$1" $seq)
	echo "# $1: writes $a -> $b"
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]
}

# after_migration CASE SRC DST: the checks every migration must pass.
after_migration() {
	check "$1: query-status running only on the destination" only_destination_runs "$2" "$3"
	if check "$1: every page verifies on the destination, kernel log clean" verifies "$3"; then
		check "$1: the destination guest keeps writing" keeps_writing "$3"
	else
		# Do not wait on a guest that did not answer: the per-test
		# limit would end the script before its cleanup and report.
		skip "$1: the destination guest keeps writing" "it did not answer the verification"
	fi
}

# catches_corruption NAME: a page changed in the RAM file behind the guest's
# back fails the next full pass (the check really sees guest memory).
catches_corruption() {
	local pfn rc
	pfn=$(qemu_where "$1" 9000 300) || { echo "# $1: no page frame from the workload"; return 1; }
	echo "# $1: overwriting guest frame $pfn in $1.ram"
	dd if=/dev/urandom of="$QEMU_WORK/$1.ram" bs=4096 seek="$pfn" count=1 conv=notrunc 2>/dev/null ||
		return 1
	qemu_verify "$1" 9001 240
	rc=$?
	# Exactly that page is bad (the random checker may have met it first).
	[ $rc -eq 1 ] && grep -q '^WL-VERIFY 9001 FAIL .* bad=1 ' "$QEMU_WORK/$1/console.log"
}

pc_caps='[{"capability":"events","state":true},{"capability":"postcopy-ram","state":true},{"capability":"postcopy-preempt","state":true}]'

# One boot (the inner boot is the slow part), then the guest moves on:
# vm-a -> vm-b by precopy, vm-b -> vm-c by postcopy with preempt.
t_all=$(now)
if check "the guest boots and runs its workload" start_source vm-a; then
	if check "precopy: QEMU's migrate completes" migrate vm-a vm-b "" 0; then
		after_migration precopy vm-a vm-b
		qemu_stop vm-a
		rm -f "$QEMU_WORK/vm-a.ram"
		if check "postcopy-preempt: QEMU's migrate completes, postcopy ran" \
			migrate vm-b vm-c "$pc_caps" 1; then
			after_migration postcopy-preempt vm-b vm-c
			check "the full pass catches a page changed behind the guest's back" \
				catches_corruption vm-c
		fi
	else
		skip "postcopy-preempt: QEMU's migrate" "the precopy migration before it failed"
	fi
fi
qemu_stop_all
echo "# QEMU's own migrations: $(secs "$t_all" "$(now)") s in all, boot included"
tap_done
