#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Device state and free-page hints, end to end over loopback: emulated
# devices whose state the destination checks byte by byte, spread over
# many channels or on the main channel; the destination's buffer cap; a
# device whose save fails; free pages skipped, and pages written after the
# hint still arriving (and lost when the hint is taken too early).
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

# Twelve devices of different sizes (some paced), six channels.
devs=""
total=0
for i in $(seq 0 11); do
	sz=$(( (i % 4 + 1) * 1024 + i * 8 ))	# KiB, not a multiple of the chunk size
	rate=""
	[ $((i % 3)) -eq 0 ] && rate=",save-rate=40M,load-rate=60M"
	devs+=" --device name=dev$((i % 5)),instance=$i,size=${sz}K$rate"
	total=$((total + sz * 1024))
done
p=many
mig_run $p "--pattern random --dirty-rate 50 $devs" "$devs" "--multifd 6" ""
mig_ok "12 devices over 6 channels" $p
check "12 devices over 6 channels: every device's state complete and in order" \
	grep -q "guest: 12 devices loaded and verified" "$MIG_TMP/${p}dg.err"
check "12 devices over 6 channels: report counts devices and bytes" \
	json "$MIG_TMP/$p.json" "d['devices'] == 12 and d['device_bytes'] == $total"
check "12 devices over 6 channels: downtime split into parts" \
	json "$MIG_TMP/$p.json" "d['downtime_parts_ms']['device_save'] > 0 and d['downtime_parts_ms']['final_pages'] > 0 and sum(d['downtime_parts_ms'].values()) <= d['downtime_ms'] * 1.01"

D3="--device name=nic,size=3M,save-rate=60M --device name=gpu,size=5M --device name=nic,instance=1,size=2M"
p=main
mig_run $p "$D3" "$D3" "--multifd 2 --device-state-channels main" ""
mig_ok "device state on the main channel" $p
check "device state on the main channel: every device verified" \
	grep -q "guest: 3 devices loaded and verified" "$MIG_TMP/${p}dg.err"

# A slow loader: with a 1 MiB cap the buffer never holds more; without, it does.
DS="--device name=a,size=6M,load-rate=30M --device name=b,size=6M,load-rate=30M --device name=c,size=6M,load-rate=30M"
p=cap
mig_run $p "--pattern idle $DS" "$DS" "--multifd 3" "--max-device-buffer 1M"
mig_ok "--max-device-buffer 1M with slow loaders" $p
check "--max-device-buffer 1M: peak buffered bytes stay within the cap" \
	json "$MIG_TMP/${p}ls.out" "0 < d['device_buffer_peak'] <= 1 << 20"
check "--max-device-buffer 1M: state still complete" \
	grep -q "guest: 3 devices loaded and verified" "$MIG_TMP/${p}dg.err"
p=nocap
mig_run $p "--pattern idle $DS" "$DS" "--multifd 3" ""
mig_ok "default buffer with slow loaders" $p
check "without the cap the same migration buffers more than 1 MiB (the measure works)" \
	json "$MIG_TMP/${p}ls.out" "d['device_buffer_peak'] > 1 << 20"

# A device whose save fails: clean abort, the source guest runs on.
p=fail
mig_run $p "--device name=a,size=4M --device name=b,size=4M,fail=save" \
	"--device name=a,size=4M --device name=b,size=4M" "--multifd 2" ""
check "a failing device save aborts the migration (exit 1, says which device)" \
	test $RC_M -eq 1 -a -n "$(grep 'device b.0: save failed' "$MIG_TMP/$p.merr")"
check "a failing device save: the source guest runs on, memory intact" \
	grep -q "memory intact after the failed migration: .* 0 errors" "$MIG_TMP/${p}sg.err"
check "a failing device save: the destination discards its partial guest" \
	grep -q "partial guest discarded" "$MIG_TMP/${p}dg.err"

p=lfail
mig_run $p "--device name=a,size=4M" "--device name=a,size=4M,fail=load" "--multifd 2" ""
check "a failing device load aborts the migration, the source runs on" \
	test $RC_M -eq 1 -a -n "$(grep 'device a.0: load failed' "$MIG_TMP/$p.merr")"

p=mismatch
mig_run $p "--device name=a,size=1M" "--device name=b,size=1M" "--multifd 1" ""
check "different device lists are refused before anything moves" \
	test $RC_M -eq 1 -a -n "$(grep 'device a.0' "$MIG_TMP/$p.merr")"

# State before switchover: the same two devices, once with 75 % of each
# saved while the guest runs, once without; content verified both times,
# and the bytes left for the downtime shrink (the time is the benchmark's).
DP0="--device name=gpu,size=8M,save-rate=80M --device name=nic,size=4M,save-rate=80M"
DP="--device name=gpu,size=8M,save-rate=80M,precopy=75% --device name=nic,size=4M,save-rate=80M,precopy=75%"
p=nopre
mig_run $p "--pattern random --dirty-rate 20 $DP0" "$DP0" "--multifd 2" ""
mig_ok "devices without a precopy part (baseline)" $p
p=pre
mig_run $p "--pattern random --dirty-rate 20 $DP" "$DP0" "--multifd 2" ""
mig_ok "devices with a precopy part over multifd" $p
check "precopy part: every device's state complete, in order, verified" \
	grep -q "guest: 2 devices loaded and verified" "$MIG_TMP/${p}dg.err"
check "precopy part: 75 % of the state went before switchover" \
	json "$MIG_TMP/$p.json" "d['device_bytes'] == 12 << 20 and d['device_precopy_bytes'] == 9 << 20"
check "precopy part: the device bytes left for the downtime shrink (12 MiB -> 3 MiB)" \
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
sys.exit(0 if a["device_bytes"] - a["device_precopy_bytes"] == 12 << 20 and b["device_bytes"] - b["device_precopy_bytes"] == 3 << 20 else 1)' \
	"$MIG_TMP/nopre.json" "$MIG_TMP/pre.json"
check "precopy part: the report's downtime split has the device-save part" \
	json "$MIG_TMP/$p.json" "d['downtime_parts_ms']['device_save'] > 0 and d['device_precopy_ms'] > 0"
p=premain
mig_run $p "$DP" "$DP0" "--multifd 2 --device-state-channels main" ""
mig_ok "devices with a precopy part on the main channel" $p
check "precopy part on the main channel: verified, 9 MiB before switchover" \
	grep -q "guest: 2 devices loaded and verified" "$MIG_TMP/${p}dg.err"
check "precopy part on the main channel: 9 MiB before switchover" \
	json "$MIG_TMP/$p.json" "d['device_precopy_bytes'] == 9 << 20"
p=prefail
mig_run $p "--device name=a,size=4M,precopy=90%,fail=save" "--device name=a,size=4M" "--multifd 2" ""
check "a device whose precopy save fails aborts the migration, the source runs on" \
	test $RC_M -eq 1 -a -n "$(grep 'device a.0: precopy save failed' "$MIG_TMP/$p.merr")" -a \
	-n "$(grep 'memory intact after the failed migration: .* 0 errors' "$MIG_TMP/${p}sg.err")"

# Postcopy: the devices' state is loaded before the destination resumes.
D2="--device name=a,size=3M,save-rate=60M --device name=b,instance=1,size=2M"
p=pcdev
mig_run $p "--pattern random --dirty-rate 20 $D2" "$D2" "--multifd 2 --postcopy" ""
mig_ok "postcopy with device state" $p
check "postcopy with device state: devices verified, every page verified" \
	grep -q "guest: 2 devices loaded and verified" "$MIG_TMP/${p}dg.err"
check "postcopy with device state: it did switch to postcopy, with the state" \
	json "$MIG_TMP/$p.json" "d['postcopy']['preempt'] and d['device_bytes'] == 5 << 20"
p=pcdev0
mig_run $p "--pattern sequential --dirty-rate 20 $DP" "$DP0" "--multifd 3 --postcopy-after 0 --no-preempt" ""
mig_ok "postcopy at once (no precopy pass, no preempt) with precopy-part devices" $p
check "postcopy at once: no precopy part was taken, the whole state went at the switch" \
	json "$MIG_TMP/$p.json" "d['device_precopy_bytes'] == 0 and d['device_bytes'] == 12 << 20"
check "postcopy at once: devices verified" \
	grep -q "guest: 2 devices loaded and verified" "$MIG_TMP/${p}dg.err"
p=pcmain
mig_run $p "$D2" "$D2" "--multifd 2 --postcopy --device-state-channels main" ""
mig_ok "postcopy with device state on the main channel" $p
p=pcfail
mig_run $p "--device name=a,size=4M,fail=save" "--device name=a,size=4M" "--multifd 2 --postcopy" ""
check "postcopy: a failing device save aborts before the switch, the source runs on" \
	test $RC_M -eq 1 -a -n "$(grep 'memory intact after the failed migration: .* 0 errors' "$MIG_TMP/${p}sg.err")"

# Free-page hints.
p=free0
mig_run $p "--pattern idle" "" "--multifd 2" ""
mig_ok "no hint (baseline)" $p
p=free75
mig_run $p "--pattern idle --free 75" "" "--multifd 2" ""
mig_ok "75% hinted free, idle guest" $p
check "75% hinted free: those pages are skipped and counted" \
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2]))
sys.exit(0 if b["free_bytes"] >= 0.74 * a["bytes"]["normal"] and b["bytes"]["normal"] <= 0.30 * a["bytes"]["normal"] else 1)' \
	"$MIG_TMP/free0.json" "$MIG_TMP/free75.json"
p=freedirty
mig_run $p "--pattern random --dirty-rate 100 --free 50" "" "--multifd 2" ""
mig_ok "50% hinted free, guest writing all over its memory: every written page arrives" $p
p=touch
mig_run $p "--pattern idle --free 75 --free-touch 300" "" "--multifd 2" ""
mig_ok "hinted pages written right after the hint still arrive" $p
check "hinted pages written after the hint: the guest did write them" \
	grep -q "wrote 300 hinted-free pages after the hint" "$MIG_TMP/${p}sg.err"
p=early
mig_run $p "--pattern idle --free 75 --free-touch 300" "" "--multifd 2 --inject-hint-before-tracking" ""
check "a hint taken before tracking loses those pages (the rule matters)" \
	test $RC_D -eq 1 -a -n "$(grep 'verify-all after resume: .* [1-9][0-9]* errors' "$MIG_TMP/${p}dg.err")"
# Hint updates: the guest moves its free set every 200 ms, writing the
# pages it takes back; a capped link makes the bulk stage last ~1.5 s.
# (Applying a hint to a dirty round instead loses hundreds of pages here.)
p=churn
mig_run $p "--pattern random --dirty-rate 1 --free 50 --free-churn 200" "" "--multifd 2 --max-bandwidth 24" ""
mig_ok "hint updates while the free set moves: every page verified" $p
check "hint updates: several hints were taken during the bulk stage" \
	json "$MIG_TMP/$p.json" "d['free_hints'] >= 4"
check "hint updates: pages free only in an update were skipped" \
	json "$MIG_TMP/$p.json" "d['free_bytes_updated'] > 1 << 20"
check "hint updates: the guest did unfree (write) pages after hints were taken" \
	grep -q "free set moved [1-9][0-9]* times: .* [1-9][0-9]* unfreed (written)" "$MIG_TMP/${p}sg.err"
p=nohint
mig_run $p "--pattern idle --free 75" "" "--multifd 2 --no-free-hints" ""
check "--no-free-hints sends hinted pages anyway" \
	json "$MIG_TMP/$p.json" "d['ok'] and d['free_bytes'] == 0 and d['bytes']['normal'] > 60 << 20"

if [ -x "${VMIG_SAN_BIN:-}" ]; then
	VMIG=$VMIG_SAN_BIN
	p=san
	mig_run $p "--pattern random --dirty-rate 50 --free 50 $D3" "$D3" "--multifd 3" "--max-device-buffer 1M"
	mig_ok "ASan/UBSan build: devices, hints, cap" $p
	p=san2
	mig_run $p "--pattern random --dirty-rate 1 --free 50 --free-churn 100 $DP" "$DP0" \
		"--multifd 2 --max-bandwidth 32 --postcopy-after 2" ""
	mig_ok "ASan/UBSan build: precopy-part devices, hint updates, postcopy" $p
else
	skip "ASan/UBSan build: devices, hints, cap" "VMIG_SAN_BIN not built"
	skip "ASan/UBSan build: precopy-part devices, hint updates, postcopy" "VMIG_SAN_BIN not built"
fi
tap_done
