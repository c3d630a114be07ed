#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Device state and free-page hints on loopback.
#
#   bench/devstate_bench.sh [downtime|precopy|predict|free|all]
#
# Every table repeats its runs BENCH_REPS times (default 5) interleaved: one
# run of every setting, then the next round (each round starting at the
# next setting), so a load change on a shared machine hits all settings
# alike.  Figures: median, interquartile range and min-max.  The load
# average is printed before and after.
#
# downtime: an idle 64 MiB guest with BENCH_DEVICES (default "1 2 4") emulated devices of
#   BENCH_DEV_SIZE (default 100M) each, saved and loaded at BENCH_DEV_RATE
#   (default 200M, bytes/s; paced by sleeping per 256 KiB chunk, like a
#   device's DMA engine, so on this 2-core machine parallel devices overlap
#   as they would on real hardware); device state on the main channel
#   (in order, one device after another, as a single-channel VMM does)
#   versus spread over BENCH_CHANNELS (default "2 4 6 8 12") multifd
#   channels.  Downtime with the median run's parts; then, per device
#   count, each channel count's median against the best one's.
# precopy: BENCH_PRE_DEVICES (default 4) such devices on 4 channels with no
#   precopy part, 75 % and 90 % of their state sent before switchover: the
#   downtime, its device-save part and the device bytes left for it.
# predict: the switchover's prediction against the outcome, with a guest
#   dirtying 32 MiB/s of its 64 MiB: 1 or 4 devices as above, on the main
#   channel or 4 multifd channels, with limits they can meet (then the policy
#   lets the migration wait) or not (then it switches anyway after
#   --max-rounds 10), and 4 devices with 75 % / 90 % precopy parts.  Per
#   setting: predicted and measured downtime (medians), the error of each
#   run, how many runs were within +-20 %, how many met the limit where the
#   switch waited for a fit, and the median parts predicted / measured.
#   BENCH_PREDICT picks settings by name (default all: 1main 1chan 4main
#   4chan 4chan1500 pre75 pre90); BENCH_PREDICT_OLD=1 adds, interleaved,
#   each one with the prediction as it was before the destination's load
#   report (VMIG_SWITCHOVER_NO_LOAD_LAG, helper/source/switchover.h).
# free: an idle BENCH_FREE_MEM (default 1G) guest, every page written, with
#   0, 50 and 75 % of it hinted free: total time and bytes on the wire.
# Prints markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j2 all
vmig=${VMIG:-build/out/vmig}
what=${1:-all}
reps=${BENCH_REPS:-5}
dsize=${BENCH_DEV_SIZE:-100M}
drate=${BENCH_DEV_RATE:-200M}
chans=${BENCH_CHANNELS:-2 4 6 8 12}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-bench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP
# BENCH_SAVE=DIR keeps every run's JSON report
# shellcheck disable=SC2034  # run by vmig_cleanup (scripts/lib/vmig.sh)
VMIG_AT_EXIT='[ -z "${BENCH_SAVE:-}" ] || { mkdir -p "$BENCH_SAVE" && cp "$VMIG_TMP"/res/* "$BENCH_SAVE"/ 2>/dev/null; }'
mkdir "$tmp/res"

# migrate MEM "guest args" "dest guest args" "migrate args" ["VAR=value" for migrate]:
# the JSON report.
migrate() {
	local p
	p=$(free_port)
	bench_guests "$vmig" "$1" "$2" "$3"
	bench_listen $vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$p" $AUTH --no-progress
	sleep 0.3
	env ${5:-} $vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$p" $AUTH --json --no-progress $4 | tr -d '\n'
	echo
	wait "$BENCH_DG" || { echo "bench: destination guest failed" >&2; cat "$tmp/dg.err" >&2; exit 1; }
}

# interleave FILE_PREFIX "label|mem|guest args|dest guest args|migrate args[|env]"...:
# BENCH_REPS rounds of one run per setting; JSON lines in FILE_PREFIX.<i>.
interleave() {
	local pre=$1 r i k n
	shift
	n=$#
	local cfg=("$@")
	for ((r = 0; r < reps; r++)); do
		for ((k = 0; k < n; k++)); do
			i=$(((k + r) % n))
			IFS='|' read -r _ m ga da ma me <<<"${cfg[$i]}"
			migrate "$m" "$ga" "$da" "$ma" "$me" >>"$pre.$i"
		done
		echo "bench: round $((r + 1)) of $reps done ($(cut -d' ' -f1-3 /proc/loadavg))" >&2
	done
}

stats() {	# python: statistics over JSON line files
	python3 - "$@" <<'PY'
import json, sys
mode = sys.argv[1]
def load(f):
    return [json.loads(l) for l in open(f) if l.strip()]
def q(v, f):
    v = sorted(v); i = f * (len(v) - 1); lo = int(i); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (i - lo)
def spread(v, fmt="%.0f"):
    return (fmt + " (IQR " + fmt + "-" + fmt + ", " + fmt + "-" + fmt + ")") % (
        q(v, .5), q(v, .25), q(v, .75), min(v), max(v))
if mode == "downtime":
    # labels "N:setting"; the first is the main channel
    labels = sys.argv[2].split(",")
    meds = []
    for lab, f in zip(labels, sys.argv[3:]):
        runs = sorted(load(f), key=lambda d: d["downtime_ms"])
        m = runs[len(runs) // 2]; p = m["downtime_parts_ms"]
        dev, setting = lab.split(":")
        meds.append((setting, q([d["downtime_ms"] for d in runs], .5)))
        print("| %s | %s | %d | %s | %.0f / %.0f / %.0f / %.0f / %.0f |" % (dev, setting, len(runs),
              spread([d["downtime_ms"] for d in runs]), p["final_pages"] + p["stop"],
              p["device_save"], p["transfer"], p["load"], p["resume"]))
    mf = meds[1:]
    if mf:
        b = min(range(len(mf)), key=lambda k: mf[k][1])
        line = "%s devices: best %s, median %.0f ms, %.0f %% below the main channel" % (
            labels[0].split(":")[0], mf[b][0], mf[b][1], 100 * (1 - mf[b][1] / meds[0][1]))
        if mf[b + 1:]:
            line += "; past it: " + ", ".join("%s %+.0f %%" % (k, 100 * (v / mf[b][1] - 1))
                                              for k, v in mf[b + 1:])
        print("<!-- %s -->" % line)
elif mode == "precopy":
    for lab, f in zip(sys.argv[2].split(","), sys.argv[3:]):
        runs = load(f)
        print("| %s | %d | %s | %s | %.0f |" % (lab, len(runs), spread([d["downtime_ms"] for d in runs]),
              spread([d["downtime_parts_ms"]["device_save"] for d in runs]),
              q([(d["device_bytes"] - d["device_precopy_bytes"]) / 2**20 for d in runs], .5)))
elif mode == "predict":
    for lab, f in zip(sys.argv[2].split(","), sys.argv[3:]):
        runs = load(f)
        err = [100 * (d["predicted_downtime_ms"] / d["downtime_ms"] - 1) for d in runs]
        fit = [d for d in runs if not d["over_limit"]]
        met = sum(d["downtime_ms"] <= d["downtime_limit_ms"] for d in fit)
        parts = ("stop", "final_pages", "device_save", "transfer", "load", "resume")
        pp = " / ".join("%.0f:%.0f" % (q([d["predicted_parts_ms"][k] for d in runs], .5),
                                      q([d["downtime_parts_ms"][k] for d in runs], .5)) for k in parts)
        print("| %s | %d | %.0f | %d fit, %d anyway | %.0f | %.0f | %+.0f (%+.0f..%+.0f) | %d/%d | %s | %s |" % (
              lab, len(runs), runs[0]["downtime_limit_ms"], len(fit), len(runs) - len(fit),
              q([d["predicted_downtime_ms"] for d in runs], .5), q([d["downtime_ms"] for d in runs], .5),
              q(err, .5), min(err), max(err), sum(abs(e) <= 20 for e in err), len(runs),
              "%d/%d" % (met, len(fit)) if fit else "-", pp))
elif mode == "free":
    M = 1 << 20
    for lab, f in zip(sys.argv[2].split(","), sys.argv[3:]):
        runs = load(f)
        print("| %s %% | %d | %s | %.0f | %.0f | %.0f |" % (lab, len(runs),
              spread([d["total_ms"] / 1e3 for d in runs], "%.2f"),
              q([d["bytes"]["normal"] / M for d in runs], .5), q([d["bytes"]["wire"] / M for d in runs], .5),
              q([d["free_bytes"] / M for d in runs], .5)))
PY
}

echo "bench/devstate_bench.sh $what: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $reps interleaved runs per setting"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

if [ "$what" = downtime ] || [ "$what" = all ]; then
	echo "### Downtime with emulated devices ($dsize each, save and load at $drate/s), idle 64 MiB guest"
	echo
	echo "| devices | device state on | runs | downtime ms: median (IQR, min-max) | median run: final pages / device save / transfer / load / resume ms |"
	echo "| --- | --- | --- | --- | --- |"
	verdicts=""
	for n in ${BENCH_DEVICES:-1 2 4}; do
		devs=""
		for i in $(seq 1 "$n"); do
			devs+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate"
		done
		cfg=("main|64M|--pattern idle $devs|$devs|--multifd 2 --device-state-channels main")
		labels="$n:main channel"
		files="$tmp/res/d$n.0"
		k=1
		for c in $chans; do
			cfg+=("$c|64M|--pattern idle $devs|$devs|--multifd $c")
			labels+=",$n:$c multifd channels"
			files+=" $tmp/res/d$n.$k"
			k=$((k + 1))
		done
		interleave "$tmp/res/d$n" "${cfg[@]}"
		out=$(stats downtime "$labels" $files)
		echo "$out" | grep -v '^<!--'
		verdicts+="$(echo "$out" | grep '^<!--' | sed 's/^<!-- //; s/ -->$//')"$'\n'
	done
	echo
	echo "$verdicts"
fi

if [ "$what" = precopy ] || [ "$what" = all ]; then
	n=${BENCH_PRE_DEVICES:-4}
	echo "### State before switchover: $n devices of $dsize (save and load at $drate/s), idle 64 MiB guest, 4 channels"
	echo
	echo "| precopy part | runs | downtime ms: median (IQR, min-max) | device save in the downtime ms | device MiB left for the downtime |"
	echo "| --- | --- | --- | --- | --- |"
	cfg=()
	for pct in 0 75 90; do
		devs="" ddevs=""
		for i in $(seq 1 "$n"); do
			ddevs+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate"
			devs+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate"
			[ "$pct" = 0 ] || devs+=",precopy=$pct%"
		done
		cfg+=("$pct|64M|--pattern idle $devs|$ddevs|--multifd 4")
	done
	interleave "$tmp/res/pre" "${cfg[@]}"
	stats precopy "none,75 %,90 %" "$tmp/res/pre.0" "$tmp/res/pre.1" "$tmp/res/pre.2"
	echo
fi

if [ "$what" = predict ] || [ "$what" = all ]; then
	echo "### Predicted against measured downtime: devices of $dsize (save and load at $drate/s), 64 MiB guest dirtying 32 MiB/s"
	echo
	echo "| setting | runs | limit ms | switch | predicted ms (median) | measured ms (median) | error %: median (min..max) | within +-20 % | limit met when it waited | parts predicted:measured ms (stop / pages / save / transfer / load / resume) |"
	echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	d1=" --device name=fn1,size=$dsize,save-rate=$drate,load-rate=$drate"
	d4="" p75="" p90=""
	for i in 1 2 3 4; do
		d4+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate"
		p75+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate,precopy=75%"
		p90+=" --device name=fn$i,size=$dsize,save-rate=$drate,load-rate=$drate,precopy=90%"
	done
	g="--pattern random --dirty-rate 32"
	declare -A plab pcfg
	plab[1main]="1 device main channel"
	pcfg[1main]="64M|$g $d1|$d1|--multifd 4 --device-state-channels main --downtime-limit 700"
	plab[1chan]="1 device 4 channels"
	pcfg[1chan]="64M|$g $d1|$d1|--multifd 4 --downtime-limit 700"
	plab[4main]="4 devices main channel"
	pcfg[4main]="64M|$g $d4|$d4|--multifd 4 --device-state-channels main --max-rounds 10"
	plab[4chan]="4 devices 4 channels"
	pcfg[4chan]="64M|$g $d4|$d4|--multifd 4 --max-rounds 10"
	plab[4chan1500]="4 devices 4 channels"
	pcfg[4chan1500]="64M|$g $d4|$d4|--multifd 4 --downtime-limit 1500"
	plab[pre75]="4 devices 75 % precopy 4 channels"
	pcfg[pre75]="64M|$g $p75|$d4|--multifd 4"
	plab[pre90]="4 devices 90 % precopy 4 channels"
	pcfg[pre90]="64M|$g $p90|$d4|--multifd 4"
	cfg=() labels="" files="" k=0
	for name in ${BENCH_PREDICT:-1main 1chan 4main 4chan 4chan1500 pre75 pre90}; do
		[ -n "${pcfg[$name]:-}" ] || { echo "bench: no predict setting $name" >&2; exit 1; }
		cfg+=("$name|${pcfg[$name]}")
		labels+="${labels:+,}${plab[$name]}"
		files+=" $tmp/res/pred.$k"
		k=$((k + 1))
		if [ -n "${BENCH_PREDICT_OLD:-}" ]; then
			cfg+=("$name|${pcfg[$name]}|VMIG_SWITCHOVER_NO_LOAD_LAG=1")
			labels+=",${plab[$name]} (old prediction)"
			files+=" $tmp/res/pred.$k"
			k=$((k + 1))
		fi
	done
	interleave "$tmp/res/pred" "${cfg[@]}"
	stats predict "$labels" $files
	echo
fi

if [ "$what" = free ] || [ "$what" = all ]; then
	mem=${BENCH_FREE_MEM:-1G}
	echo "### Free-page hints: idle $mem guest, 2 channels"
	echo
	echo "| hinted free | runs | total time s: median (IQR, min-max) | page data sent MiB | wire MiB | skipped as free MiB |"
	echo "| --- | --- | --- | --- | --- | --- |"
	interleave "$tmp/res/free" "0|$mem|--pattern idle --free 0||--multifd 2" \
		"50|$mem|--pattern idle --free 50||--multifd 2" "75|$mem|--pattern idle --free 75||--multifd 2"
	stats free "0,50,75" "$tmp/res/free.0" "$tmp/res/free.1" "$tmp/res/free.2"
	echo
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
