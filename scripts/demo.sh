#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo: a live migration on this machine, over loopback.
#
# A 1 GiB source guest (every page written, two vCPUs dirtying random pages),
# vmig migrate -> vmig listen with the defaults, a destination guest that
# checks every page after it resumes, and the report.
#
# Environment: DEMO_MEM (1G), DEMO_RATE (dirty MiB/s, 64), DEMO_ARGS (more
# vmig migrate options), VMIG (the binary, default build/out/vmig).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s -j"$(nproc)" all
vmig=${VMIG:-build/out/vmig}
mem=${DEMO_MEM:-1G}
rate=${DEMO_RATE:-64}
# shellcheck source=lib/vmig.sh
. scripts/lib/vmig.sh
vmig_setup vmig-demo	# $VMIG_TMP, cleanup on exit, $AUTH: a token both sides hold
tmp=$VMIG_TMP
port=$(free_port)

wait_ready() {	# a guest's OUT file, its pid
	wait_for "$1" "guest: ready" 30 "$2" && return 0
	echo "demo: a guest did not start:" >&2
	cat "$1" "${1%.out}.err" >&2
	exit 1
}

echo "== destination guest ($mem, incoming, verifies every page) and vmig listen"
$vmig guest --socket "$tmp/dst.sock" --mem "$mem" --incoming --verify-all --run 1 \
	>"$tmp/dst.out" 2>"$tmp/dst.err" &
dg=$!; vmig_track "$dg"
wait_ready "$tmp/dst.out" "$dg"
$vmig listen --vmm "$tmp/dst.sock" --port "127.0.0.1:$port" $AUTH --no-progress \
	>"$tmp/listen.out" 2>"$tmp/listen.err" &
ls=$!; vmig_track "$ls"
# It allocates guest RAM first.
wait_for "$tmp/listen.err" "waiting for a source" 60 "$ls" || { cat "$tmp/listen.err" >&2; exit 1; }

echo "== source guest ($mem, every page written, 2 vCPUs dirtying random pages at $rate MiB/s)"
$vmig guest --socket "$tmp/src.sock" --mem "$mem" --pattern random --dirty-rate "$rate" \
	>"$tmp/src.out" 2>"$tmp/src.err" &
sg=$!; vmig_track "$sg"
wait_ready "$tmp/src.out" "$sg"
sleep 0.5	# let it dirty memory for a moment

echo "== vmig migrate --vmm $tmp/src.sock --to 127.0.0.1:$port ${DEMO_ARGS:-}"
rc=0
# shellcheck disable=SC2086
$vmig migrate --vmm "$tmp/src.sock" --to "127.0.0.1:$port" $AUTH ${DEMO_ARGS:-} || rc=$?
lrc=0; wait "$ls" || lrc=$?
drc=0; wait "$dg" || drc=$?
src=0; wait "$sg" || src=$?
echo "== destination"
sed 's/^/  /' "$tmp/dst.err"
if [ "$rc" -ne 0 ] || [ "$lrc" -ne 0 ] || [ "$drc" -ne 0 ] || [ "$src" -ne 0 ]; then
	echo "== demo FAILED (migrate $rc, listen $lrc, destination guest $drc, source guest $src)"
	sed 's/^/  listen: /' "$tmp/listen.err" "$tmp/listen.out"
	sed 's/^/  source guest: /' "$tmp/src.err"
	exit 1
fi
echo "== demo OK: the guest moved, and every one of its pages was verified on the destination"
