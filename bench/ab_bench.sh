#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Two builds of vmig side by side on this host: the same precopy migration
# of a dirtying `vmig guest`, A then B, BENCH_REPS (default 5) times,
# interleaved, so that both see the same machine.  Each run's line gives
# the downtime and its parts (stop, final pages: the last harvest and the
# pages it found, device state, transfer, load, resume), the total time and
# the dirty rounds; then the medians of each build and B's over A's.
#
#   bench/ab_bench.sh A_VMIG B_VMIG
#
# A_VMIG, B_VMIG: two vmig binaries, e.g. a build of an earlier commit:
#   git worktree add /tmp/a COMMIT && make -C /tmp/a all
#   bench/ab_bench.sh /tmp/a/build/out/vmig build/out/vmig
# Environment: BENCH_MEM (1G), BENCH_RATE (the guest's writes, MiB/s; 256),
# BENCH_VCPUS (2), BENCH_MIGRATE_ARGS ("--multifd 2"), BENCH_GUEST_ARGS
# (more `vmig guest` options for the source, e.g. "--backend kmod").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
	echo "usage: bench/ab_bench.sh A_VMIG B_VMIG (two vmig binaries)" >&2
	exit 2
fi
reps=${BENCH_REPS:-5} mem=${BENCH_MEM:-1G} rate=${BENCH_RATE:-256}
# shellcheck source=../scripts/lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-bench	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP

# run VMIG TAG N: one migration; appends "TAG downtime parts... total" to runs.
run() {
	local vmig=$1 p=$tmp/r$3 port
	port=$(free_port)
	# A job's own > truncates its file only once the job runs, and B's run N
	# reuses A's names: each file waited on is emptied first, or A's
	# "guest: ready" could pass for B's.
	: >"$p.dg.out"
	"$vmig" guest --socket "$p.d" --incoming --mem "$mem" --lifetime 120 --run 1 \
		>"$p.dg.out" 2>"$p.dg.err" & vmig_track $!
	must_wait_for "$p.dg.out" "guest: ready" 30
	: >"$p.ls.err"
	"$vmig" listen --vmm "$p.d" --port "127.0.0.1:$port" $AUTH --json --no-progress \
		--timeout 60 >"$p.ls.json" 2>"$p.ls.err" & vmig_track $!
	local lpid=$!
	: >"$p.sg.out"
	# shellcheck disable=SC2086
	"$vmig" guest --socket "$p.s" --mem "$mem" --pattern random --dirty-rate "$rate" \
		--vcpus "${BENCH_VCPUS:-2}" --lifetime 120 ${BENCH_GUEST_ARGS:-} \
		>"$p.sg.out" 2>"$p.sg.err" & vmig_track $!
	local spid=$!
	must_wait_for "$p.sg.out" "guest: ready" 30
	must_wait_for "$p.ls.err" "waiting for a source" 30
	sleep 2	# the guest's writing settles
	# shellcheck disable=SC2086
	if ! "$vmig" migrate --vmm "$p.s" --to "127.0.0.1:$port" $AUTH --json --no-progress \
		--timeout 60 ${BENCH_MIGRATE_ARGS:---multifd 2} >"$p.json" 2>"$p.merr"; then
		echo "# $2 run $3 failed:"; sed 's/^/#   /' "$p.merr" | tail -n 5
	else
		python3 - "$p.json" "$2" >>"$tmp/runs" <<'EOF'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
p = d["downtime_parts_ms"]
print(sys.argv[2], d["downtime_ms"], *(p[k] for k in ("stop", "final_pages", "device_save",
      "transfer", "load", "resume")), d["total_ms"], d["rounds"])
EOF
		tail -n 1 "$tmp/runs" | awk '{ printf "%s  downtime %.2f ms (stop %.2f, final pages %.2f, device %.2f, transfer %.2f, load %.2f, resume %.2f)  total %.0f ms  rounds %d\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
	fi
	wait "$lpid" 2>/dev/null || true
	kill "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
}

echo "# A: $1"
echo "# B: $2"
echo "# $reps runs each, interleaved; guest $mem, random writes at $rate MiB/s;" \
	"migrate ${BENCH_MIGRATE_ARGS:---multifd 2}; load $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$tmp/runs"
for i in $(seq 1 "$reps"); do
	run "$1" A "$i"
	run "$2" B "$i"
done
python3 - "$tmp/runs" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = ["downtime", "stop", "final pages", "device", "transfer", "load", "resume", "total"]
med = {}
for tag in ("A", "B"):
    r = [list(map(float, x[1:9])) for x in rows if x[0] == tag]
    if not r:
        sys.exit("no run of %s completed" % tag)
    med[tag] = [statistics.median(c) for c in zip(*r)]
print("# medians (ms)      " + "  ".join("%11s" % n for n in names))
for tag in ("A", "B"):
    print("# %-17s " % tag + "  ".join("%11.2f" % v for v in med[tag]))
print("# B / A             " + "  ".join("%10.2fx" % (b / a if a else float("nan"))
                                         for a, b in zip(med["A"], med["B"])))
EOF
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
