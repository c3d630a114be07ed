#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What the destination guest (vmig guest --incoming) reports of its vCPUs'
# slow page accesses means what its label says: a precopy fetches no page
# on demand; a postcopy does, with ordered percentiles; and --verify-all
# during a postcopy leaves the workload running until every page is here,
# then checks every page.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

OTHER='other page accesses >= 20 us'
DATA_PAGES=$((64 * 256 - 16))	# 64 MiB of pages, less the generation table's 16

# figure P FIELD: FIELD (count, avg, max, p50, p90, p99) of the on-demand line
# of P's destination guest, "-" if absent.
figure() {
	python3 - "$MIG_TMP/${1}dg.err" "$2" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"guest: (\d+) slow page accesses \(>= 20 us\) in postcopy[^:\n]*"
              r"(?:: avg ([\d.]+) us, max ([\d.]+) us, p50 ([\d.]+) us, p90 ([\d.]+) us, "
              r"p99 ([\d.]+) us)?", t)
k = ["count", "avg", "max", "p50", "p90", "p99"].index(sys.argv[2])
print(m.group(k + 1) if m and m.group(k + 1) else "-")
PY
}

# A precopy: every page is here at the resume; a busy destination workload
# (3 vCPUs on this small machine, as fast as they go) still sees slow
# accesses, and none of them may count as fetched on demand.
p=pre
mig_run $p "--pattern random --dirty-rate 20" "--pattern random --dirty-rate 0 --vcpus 3 --run 1" ""
mig_ok "precopy with --verify-all" $p
check "precopy: 0 page accesses fetched on demand" test "$(figure $p count)" = 0
check "precopy: the other slow accesses reported apart" has ${p}dg.err "^guest: [0-9]* $OTHER"
check "precopy: every page verified" \
	has ${p}dg.err "verify-all after resume: $DATA_PAGES pages verified .* 0 errors"

# A postcopy from the start: the random workload faults pages in.
p=pc
mig_start $p "--mem 64M --pattern random --run 1" "--json" "--mem 64M --pattern random --dirty-rate 50" \
	"--postcopy-after 0 --multifd 2"
mig_wait $p 60 60 10
mig_all_ok "postcopy from the start" $p
n=$(figure $p count)
check "postcopy: pages fetched on demand (${n})" test "${n:--}" != - -a "${n:-0}" -gt 0 2>/dev/null
p50=$(figure $p p50) p90=$(figure $p p90) p99=$(figure $p p99) max=$(figure $p max)
check "postcopy: p50 <= p90 <= p99 <= max ($p50 / $p90 / $p99 / $max us)" \
	python3 -c 'import sys; v = [float(x) for x in sys.argv[1:]]; sys.exit(v != sorted(v))' \
	"$p50" "$p90" "$p99" "$max"

# A postcopy with --verify-all: the random workload runs (and writes) while
# pages are missing, then every page is checked once all are here.
p=pcv
mig_start $p "--mem 64M --pattern random --verify-all --run 1" "--json" \
	"--mem 64M --pattern random --dirty-rate 50" "--postcopy-after 0 --multifd 2 --max-bandwidth 64"
mig_wait $p 60 60 10
mig_all_ok "postcopy with --verify-all" $p
w=$(sed -n 's/^guest: postcopy complete after .* ms here: \([0-9]*\) page writes.*/\1/p' \
	"$MIG_TMP/${p}dg.err")
check "postcopy with --verify-all: the random workload wrote pages while pages were missing (${w:-none})" \
	test "${w:-0}" -gt 0
check "postcopy with --verify-all: every page verified after the postcopy completed" \
	python3 -c '
import re, sys
t = open(sys.argv[1]).read()
a = t.find("guest: postcopy complete after")
b = re.search(r"verify-all after resume: %s pages verified in \d+ ms, 0 errors" % sys.argv[2], t)
sys.exit(not (a >= 0 and b and b.start() > a))' "$MIG_TMP/${p}dg.err" $DATA_PAGES
n=$(figure $p count)
check "postcopy with --verify-all: the workload's accesses fetched pages on demand (${n})" \
	test "${n:-0}" -gt 0 2>/dev/null
[ "${w:-0}" -gt 0 ] || dump ${p}dg.err

tap_done
