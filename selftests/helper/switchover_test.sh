#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The switchover decision, end to end over loopback: the predicted downtime
# counts device state, so devices that cannot fit the limit hold the
# switch back until the policy says otherwise (and the report says so);
# devices with a precopy part let it come once enough state moved; a VMM
# that reports a smaller device changes the decision; --switchover-bandwidth
# is what the prediction uses; the report's predicted and measured parts are
# present and consistent, after a postcopy switch too.  No check is on time
# beyond logical consistency: the devices' rates are sleep-paced, and every
# figure checked follows from them.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# rounds FILE EXPR: EXPR holds for the list r of "round" events (dicts) and the report d.
rounds() {
	python3 -c '
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().strip().splitlines()]
r = [l for l in lines[:-1] if l.get("event") == "round"]
d = lines[-1]
ok = bool(eval(sys.argv[2]))
if not ok:
    print("# rounds: %s" % [(e["round"], e["device_left_bytes"], round(e["predicted_downtime_ms"]), e["fits"]) for e in r])
    print("# switchover: %s; parts predicted %s" % (d.get("switchover"), d.get("predicted_parts_ms")))
sys.exit(0 if ok else 1)' "$1" "$2"
}

# Every round event decides by its own prediction, and adds up: this holds for every run.
CONSISTENT='all(e["fits"] == (e["predicted_downtime_ms"] <= e["limit_ms"]) and
	abs(sum(e["predicted_parts_ms"].values()) - e["predicted_downtime_ms"]) < 0.01 and
	e["remaining_bytes"] == e["dirty_bytes"] + e["device_left_bytes"] for e in r)'

# A device of 32 MiB saved at 16 MiB/s: 2 s, against a 400 ms limit.
BIG="--device name=gpu,size=32M,save-rate=16M,load-rate=64M"
p=nofit
mig_run $p "--pattern idle $BIG" "$BIG" "--multifd 2 --downtime-limit 400 --max-rounds 4 --json-rounds"
mig_ok "device state that cannot fit" $p
check "cannot fit: no round fits, each one's prediction holds the device's 2 s" \
	rounds "$MIG_TMP/$p.json" "len(r) == 5 and all(not e['fits'] and e['predicted_parts_ms']['device_save'] >= 1900 for e in r) and $CONSISTENT"
check "cannot fit: after --max-rounds it switched anyway, and the report says so" \
	json "$MIG_TMP/$p.json" "d['over_limit'] and d['stalled'] and 'anyway' in d['switchover'] and d['predicted_downtime_ms'] > d['downtime_limit_ms'] == 400"
check "cannot fit: stderr says OVER THE LIMIT" grep -q "OVER THE LIMIT" "$MIG_TMP/$p.merr"
check "cannot fit: the device's state arrived whole" \
	grep -q "guest: 1 devices loaded and verified" "$MIG_TMP/${p}dg.err"

p=nofitabort
mig_run $p "--pattern idle $BIG" "$BIG" "--multifd 2 --downtime-limit 400 --max-rounds 2 --abort-on-stall"
check "cannot fit, --abort-on-stall: gives up (exit 1), naming the predicted downtime" \
	test $RC_M -eq 1 -a -n "$(grep 'predicted downtime .* > limit 400 ms, device state save' "$MIG_TMP/$p.merr")"
check "cannot fit, --abort-on-stall: the source guest runs on" \
	grep -q "running on here" "$MIG_TMP/${p}sg.err"

# The same device with 90 % of it as a precopy part (3.6 s at 8 MiB/s):
# the switch waits until what is left fits (at most 8 MiB/s, 600 ms: at
# most 4.8 MiB; at the end of the part 3.2 MiB, 400 ms).
PRE="--device name=gpu,size=32M,save-rate=8M,load-rate=64M,precopy=90%"
PRE_DST="--device name=gpu,size=32M"
p=pre
mig_run $p "--pattern random --dirty-rate 8 $PRE" "$PRE_DST" \
	"--multifd 2 --downtime-limit 600 --max-rounds 1000 --json-rounds"
mig_ok "a device with a 90 % precopy part" $p
check "precopy part: rounds waited while more than the rest was left, then it fit" \
	rounds "$MIG_TMP/$p.json" "len(r) >= 2 and not r[0]['fits'] and r[0]['device_left_bytes'] > 5 << 20 and r[-1]['fits'] and r[-1]['device_left_bytes'] <= 5 << 20 and $CONSISTENT"
check "precopy part: 90 % went before the switch, none of it was counted twice" \
	json "$MIG_TMP/$p.json" "d['device_precopy_bytes'] == 32 * 2**20 * 90 // 100 // 8 * 8 and d['device_bytes'] == 32 << 20 and not d['over_limit'] and d['device_left_bytes'] <= 5 << 20"
check "precopy part: the device's state arrived whole" \
	grep -q "guest: 1 devices loaded and verified" "$MIG_TMP/${p}dg.err"

# A load slower than the precopy part that feeds it (64 MiB/s saved, 16
# MiB/s loaded): the part is all sent (3.2 MiB left) long before the
# destination loaded it.  Counting only what is left (200 ms at 16 MiB/s)
# it would fit at once; the destination's answer (DEV_LOAD) says how far
# its load got, and the switch waits for it.
SLOW="--device name=gpu,size=32M,save-rate=64M,load-rate=16M,precopy=90%"
SLOW_DST="--device name=gpu,size=32M,load-rate=16M"
p=slowload
mig_run $p "--pattern random --dirty-rate 8 $SLOW" "$SLOW_DST" \
	"--multifd 2 --downtime-limit 600 --max-rounds 1000 --json-rounds"
mig_ok "a device whose load is slower than its precopy part" $p
check "slow load: rounds with only the 3.2 MiB rest left waited for the load (predicted > 600 ms)" \
	rounds "$MIG_TMP/$p.json" "any(not e['fits'] and e['device_left_bytes'] <= 4 << 20 and e['predicted_parts_ms']['load'] > 300 for e in r) and r[-1]['fits'] and $CONSISTENT"
check "slow load: it switched because the prediction fit, not anyway" \
	json "$MIG_TMP/$p.json" "not d['over_limit'] and d['device_bytes'] == 32 << 20 and 'fits' in d['switchover']"
check "slow load: the device's state arrived whole" \
	grep -q "guest: 1 devices loaded and verified" "$MIG_TMP/${p}dg.err"

# The VMM reports a smaller device while the guest runs: the switch follows.
p=upd
dest_pair $p "--mem 64M --verify-all --run 0 --device name=gpu,size=1M" "--json" &&
	src_guest $p "--mem 64M --pattern idle --device name=gpu,size=32M,save-rate=16M,resize=1M"
port_var="PORT_$p"
start updmig "$VMIG" migrate $MIG_AUTH --vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port_var}" --timeout 5 \
	--multifd 2 --downtime-limit 400 --max-rounds 100000 --json-rounds
wait_for "$MIG_TMP/updmig.out" '"round":3,' 60
check "VMM update: before it, the migration waits (it is still running after 3 rounds)" \
	kill -0 "$PID_updmig"
kill -USR1 "$PID_updsg"
wait_pid "$PID_updmig" 60; rc=$?
wait_pid "$PID_updls" 30; lrc=$?
wait_pid "$PID_upddg" 30; drc=$?
check "VMM update: after it, the migration switches and completes" test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0
[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump updmig.out updmig.err "${p}ls.err" "${p}dg.err" "${p}sg.err"
check "VMM update: the device's remaining state went from 32 MiB to 1 MiB between rounds" \
	rounds "$MIG_TMP/updmig.out" "len(r) >= 4 and all(not e['fits'] and e['device_left_bytes'] == 32 << 20 for e in r[:-1]) and r[-1]['fits'] and r[-1]['device_left_bytes'] == 1 << 20 and $CONSISTENT"
check "VMM update: the destination loaded and verified the new size" \
	grep -q "gpu.0: 1048576 bytes loaded" "$MIG_TMP/${p}dg.err"

# A VMM whose libvmig predates DEV_PENDING (revision 0: it drops the helper
# on an unknown message) still migrates: the helper never asks it, and
# predicts from the sizes the device list gave, without the rates (which
# only DEV_STATUS carries: declared, they would make it >= 125 ms).
MID="--device name=a,size=8M,save-rate=64M,load-rate=64M --device name=b,size=8M,save-rate=64M,load-rate=64M"
p=old
dest_pair $p "--mem 64M --verify-all --run 0 $MID" "--json" &&
	VMIG_TEST_DEV_REVISION=0 src_guest $p "--mem 64M --pattern random --dirty-rate 16 $MID" &&
	migrate $p $p "--multifd 2 --json-rounds --switchover-bandwidth 1024"
rc=$?
wait_pid "$PID_oldls" 30; lrc=$?
wait_pid "$PID_olddg" 30; drc=$?
check "a VMM from before DEV_PENDING: migrated, both devices verified" \
	test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a -n "$(grep 'guest: 2 devices loaded and verified' "$MIG_TMP/${p}dg.err")"
[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump "$p.json" "$p.merr" "${p}ls.err" "${p}dg.err" "${p}sg.err"
check "a VMM from before DEV_PENDING: predicted from the listed sizes, unpaced (no rates declared)" \
	rounds "$MIG_TMP/$p.json" "len(r) >= 1 and r[-1]['fits'] and r[-1]['device_left_bytes'] == 16 << 20 and d['predicted_parts_ms']['device_save'] < 125"

# --switchover-bandwidth: the prediction takes it (4 MiB of device state at 1 MiB/s).
FAST="--device name=nic,size=4M"
p=swbw
mig_run $p "--pattern idle $FAST" "$FAST" "--multifd 2 --switchover-bandwidth 1 --max-rounds 2 --json-rounds"
mig_ok "--switchover-bandwidth 1" $p
check "--switchover-bandwidth 1: 4 MiB of unpaced device state predicted at 4 s, never fits" \
	rounds "$MIG_TMP/$p.json" "len(r) == 3 and all(not e['fits'] and 3900 < e['predicted_parts_ms']['device_save'] < 4500 and e['bandwidth_bps'] > 0 for e in r)"
p=swbwdef
mig_run $p "--pattern idle $FAST" "$FAST" "--multifd 2 --json-rounds"
mig_ok "the same without --switchover-bandwidth" $p
check "without --switchover-bandwidth: the measured bandwidth makes it fit at once" \
	rounds "$MIG_TMP/$p.json" "len(r) == 1 and r[0]['fits'] and not d['over_limit']"

# The report: predicted and measured, part by part, consistent (a device and a dirtying guest).
p=parts
mig_run $p "--pattern random --dirty-rate 16 $MID" "$MID" "--multifd 2"
mig_ok "precopy with two devices" $p
PARTS_OK='(set(d["predicted_parts_ms"]) == set(d["downtime_parts_ms"]) and
	abs(sum(d["predicted_parts_ms"].values()) - d["predicted_downtime_ms"]) < 0.01 and
	d["predicted_downtime_ms"] == d["expected_downtime_ms"] and
	0.5 * d["downtime_ms"] <= sum(d["downtime_parts_ms"].values()) <= d["downtime_ms"] * 1.01)'
check "report: predicted parts sum to the predicted total, measured parts to about the downtime" \
	json "$MIG_TMP/$p.json" "$PARTS_OK"
check "report: every part that exists is predicted non-zero (stop, pages, devices, resume)" \
	json "$MIG_TMP/$p.json" "all(d['predicted_parts_ms'][k] > 0 for k in ('stop', 'final_pages', 'device_save', 'transfer', 'resume')) and d['device_left_bytes'] == 16 << 20"
check "report: 16 MiB at 64 MiB/s per device, two at once: device save predicted >= 125 ms" \
	json "$MIG_TMP/$p.json" "d['predicted_parts_ms']['device_save'] >= 125"

p=pc
mig_run $p "--pattern random --dirty-rate 16 $MID" "$MID" "--multifd 2 --postcopy"
mig_ok "postcopy with two devices" $p
check "postcopy: the measured parts are filled (stop, device save, load, resume) and add up" \
	json "$MIG_TMP/$p.json" "all(d['downtime_parts_ms'][k] > 0 for k in ('stop', 'final_pages', 'device_save', 'resume')) and $PARTS_OK"
check "postcopy: the predicted parts leave the pages out but not the devices" \
	json "$MIG_TMP/$p.json" "d['predicted_parts_ms']['device_save'] >= 125 and d['predicted_parts_ms']['final_pages'] < 50 and d['postcopy']['preempt']"

tap_done
