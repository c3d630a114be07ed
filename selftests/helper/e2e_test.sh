#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# End-to-end precopy over loopback: a source guest, vmig migrate, vmig listen
# and a destination guest that checks every page after resuming.  Idle and
# dirtying guests, 1/2/8 multifd channels, async and sync write-protect, a
# stall, and the sanitizer build.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# case NAME GUEST_ARGS MIGRATE_ARGS [JSON_EXPR]: migrate, expect success and
# a destination that verified every page with no error.
case_ok() {
	local name=$1 gargs=$2 margs=$3 expr=${4:-True} p=c$tap_n
	local mem
	mem=$(sed -n 's/.*--mem \([^ ]*\).*/\1/p' <<<"$gargs")
	mig_start "$p" "--mem ${mem:-64M} --verify-all --run 1 ${E2E_GUEST_BACKEND:-}" "" \
		"$gargs" "$margs"
	mig_wait "$p" 20 20 20
	mig_all_ok "$name" "$p"
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"
	check "$name: report says so" json "$MIG_TMP/$p.json" "d['ok'] and $expr"
}

case_ok "idle guest, 1 channel" "--mem 64M --pattern idle" "--multifd 1" \
	"d['channels'] == 1 and d['bytes']['normal'] >= 63 << 20 and d['downtime_ms'] > 0"
case_ok "random dirtying guest, 2 channels, async write-protect" \
	"--mem 128M --pattern random --dirty-rate 100" "--multifd 2 --track async" \
	"d['tracking'] == 'async'"
case_ok "sequential dirtying guest, 8 channels" \
	"--mem 128M --pattern sequential --dirty-rate 100 --vcpus 3" "--multifd 8"
case_ok "random dirtying guest, sync write-protect" \
	"--mem 128M --pattern random --dirty-rate 100" "--multifd 2 --track sync" \
	"d['tracking'] == 'sync' and d['wp_faults'] > 0"
case_ok "never-written pages are skipped, not sent" \
	"--mem 128M --pattern idle --no-fill" "--multifd 2" \
	"d['bytes']['skipped'] >= 120 << 20 and d['bytes']['normal'] < 8 << 20"
case_ok "pages first written during the migration are caught (async)" \
	"--mem 64M --pattern random --no-fill --dirty-rate 100" "--multifd 2 --track async"
case_ok "pages first written during the migration are caught (sync)" \
	"--mem 64M --pattern random --no-fill --dirty-rate 100" "--multifd 2 --track sync"
case_ok "dirty rounds run until the downtime fits" \
	"--mem 128M --pattern random --dirty-rate 30" "--multifd 2 --max-bandwidth 100 --downtime-limit 20" \
	"d['rounds'] >= 1 and not d['stalled']"
case_ok "a stall is reported and switched over" \
	"--mem 64M --pattern random --dirty-rate 200" "--multifd 2 --max-bandwidth 40 --downtime-limit 1 --max-rounds 3" \
	"d['stalled'] and 'stalled' in d['switchover']"

# --no-prefault: destination RAM allocated batch by batch as pages arrive
# (bulk runs and the scattered pages of dirty rounds), every page intact.
p=nopf
mig_start $p "--mem 64M --verify-all --run 1" "--no-prefault" \
	"--mem 64M --pattern random --dirty-rate 50" "--multifd 2"
mig_wait $p 20 20 20
mig_all_ok "--no-prefault, random dirtying guest, 2 channels" $p
check "--no-prefault: every page verified on the destination" \
	grep -q "verify-all after resume: .* 0 errors" "$MIG_TMP/${p}dg.err"

# --mem-path: guest RAM is a file on a tmpfs mounted huge=always (as QEMU's
# memory-backend-file), on both ends; every page arrives intact, and the
# destination's RAM (prefaulted by vmig listen) is mapped in 2 MiB pages.
if huge_tmpfs "$MIG_TMP/huge" 512M; then
	E2E_GUEST_BACKEND="--mem-path $MIG_TMP/huge" p=c$tap_n
	case_ok "--mem-path on a huge tmpfs: random dirtying guest, 2 channels" \
		"--mem 64M --pattern random --dirty-rate 50 --mem-path $MIG_TMP/huge" "--multifd 2"
	pmd=$(sed -n 's/^guest: RAM in 2 MiB mappings at exit: \([0-9-]*\) MiB.*/\1/p' \
		"$MIG_TMP/${p}dg.err")
	check "--mem-path on a huge tmpfs: the destination's RAM is 2 MiB pages ($pmd of 64 MiB)" \
		test "${pmd:-0}" -ge 32
	check "--mem-path: both guests say their RAM is a tmpfs file" \
		grep -q "RAM tmpfs file (uffd)" "$MIG_TMP/${p}sg.out" "$MIG_TMP/${p}dg.out"
	E2E_GUEST_BACKEND=
else
	skip "--mem-path on a huge tmpfs" "$HUGE_WHY"
fi
if [ "$(stat -f -c %T "$MIG_TMP")" != tmpfs ]; then
	out=$("$VMIG" guest --socket "$MIG_TMP/np.sock" --mem 8M --mem-path "$MIG_TMP" 2>&1)
	rc=$?
	check "--mem-path on a directory that is not a tmpfs exits 1 saying why" \
		test $rc -eq 1 -a -n "$(grep 'not a tmpfs' <<<"$out")"
else
	skip "--mem-path on a directory that is not a tmpfs" "$MIG_TMP is a tmpfs here"
fi
out=$("$VMIG" guest --socket "$MIG_TMP/np.sock" --mem 8M --mem-path /nonexistent/dir 2>&1)
rc=$?
check "--mem-path on a missing directory exits 1 naming it" \
	test $rc -eq 1 -a -n "$(grep '/nonexistent/dir: No such file' <<<"$out")"

# Both reports count their own process's CPU time (not the guests'): some,
# and no more than its threads (main, channels, a few helpers) could use in
# the run's wall time.
p=cpu
mig_start $p "--mem 64M --verify-all --run 1" "--json" "--mem 64M --pattern idle" "--multifd 2"
mig_wait $p 20 20 20
mig_all_ok "CPU time reported: migrated" $p
cpu_ok="0 < d['cpu_s'] < d['total_ms'] / 1e3 * (d['channels'] + 4)"
check "CPU time reported: vmig migrate's cpu_s is > 0 and < wall time x threads" \
	json "$MIG_TMP/$p.json" "$cpu_ok"
check "CPU time reported: vmig listen's cpu_s is > 0 and < wall time x threads" \
	json "$MIG_TMP/${p}ls.out" "$cpu_ok"
check "CPU time reported: vmig listen's prefault (guest RAM allocated up front) apart, within cpu_s" \
	json "$MIG_TMP/${p}ls.out" "d['prefault_ms'] > 0 and 0 < d['prefault_cpu_s'] <= d['cpu_s']"

# Giving up on a stall leaves the guest running, memory intact.
p=giveup
mig_start $p "--mem 64M" "" "--mem 64M --dirty-rate 200" \
	"--max-bandwidth 40 --downtime-limit 1 --max-rounds 2 --abort-on-stall"
check "--abort-on-stall gives up with exit 1, saying why" \
	test $RC_M -eq 1 -a -n "$(grep 'does not converge' "$MIG_TMP/$p.merr")"
check "--abort-on-stall: the source guest runs on with its memory intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
check "--abort-on-stall: the destination discards its partial guest" \
	wait_for "$MIG_TMP/${p}dg.err" "partial guest discarded" 10

# Backends: uffd ran above (guest RAM in memfds).  kmod needs /dev/vmig;
# the VM runs the same migrations on vmig.ko regions
# (selftests/vmig/migrate_kmod_test.sh, make vmcheck).
p=memfd
mig_start $p "--mem 32M --backend uffd" "" "--mem 32M --pattern idle --backend uffd" \
	"--backend kmod"
check "backend uffd: --backend kmod on memfd guest RAM fails saying why" \
	test $RC_M -eq 1 -a -n "$(grep 'not vmig.ko regions' "$MIG_TMP/$p.merr")"
check "backend uffd: the guest says its RAM is a memfd" grep -q "RAM memfd (uffd)" "$MIG_TMP/${p}sg.out"
if [ -e /dev/vmig ]; then
	E2E_GUEST_BACKEND="--backend kmod"
	case_ok "backend kmod: random dirtying guest, 2 channels, manual-init" \
		"--mem 64M --pattern random --dirty-rate 50 --backend kmod" "--multifd 2 --backend kmod" \
		"d['backend'] == 'kmod' and d['tracking'] == 'kmod-manual-init'"
	case_ok "backend kmod: random dirtying guest, protect" \
		"--mem 64M --pattern random --dirty-rate 50 --backend kmod" \
		"--multifd 2 --backend kmod --dirty-mode protect" "d['tracking'] == 'kmod-protect'"
	E2E_GUEST_BACKEND=
else
	why="no /dev/vmig on this host (vmig.ko not loaded; the VM test migrate_kmod_test.sh covers it)"
	skip "backend kmod: random dirtying guest, 2 channels, manual-init" "$why"
	skip "backend kmod: random dirtying guest, protect" "$why"
	out=$("$VMIG" guest --socket "$MIG_TMP/nokmod.sock" --mem 8M --backend kmod --lifetime 1 2>&1)
	rc=$?
	check "backend kmod unavailable: vmig guest --backend kmod exits 1 saying why" \
		test $rc -eq 1 -a -n "$(grep -e 'no /dev/vmig' -e 'ermission' -e 'not permitted' <<<"$out")"
	echo "# $out"
	out=$(timeout 20 "$VMIG" guest --socket "$MIG_TMP/auto.sock" --mem 8M --lifetime 1 2>&1)
	check "backend auto without the module falls back to a memfd" grep -q "RAM memfd (uffd)" <<<"$out"
fi

if [ -x "${VMIG_SAN_BIN:-}" ]; then
	VMIG=$VMIG_SAN_BIN
	case_ok "ASan/UBSan build: random dirtying guest, 2 channels" \
		"--mem 64M --pattern random --dirty-rate 50" "--multifd 2"
	case_ok "ASan/UBSan build: sync write-protect, 3 channels" \
		"--mem 64M --pattern random --dirty-rate 50" "--multifd 3 --track sync"
else
	skip "ASan/UBSan build e2e" "VMIG_SAN_BIN not built"
fi
tap_done
