#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The vmig CLI's contract: help on request, usage errors with status 2 and
# a message naming the problem, and `info` telling the backends apart.
# Runs the plain and the sanitizer builds.
set -u
. "$(dirname "$0")/tap.sh"

for bin in "${VMIG_BIN:?}" "${VMIG_SAN_BIN:-}"; do
	[ -n "$bin" ] && [ -x "$bin" ] || continue
	tag=$(basename "$(dirname "$bin")")
	out=$("$bin" --help); rc=$?
	check "$tag: --help exits 0 and lists the commands" \
		test $rc -eq 0 -a -n "$(grep -E '^  info ' <<<"$out")"
	for cmd in info guest listen migrate; do
		out=$("$bin" $cmd --help); rc=$?
		check "$tag: $cmd --help exits 0 and shows an example" \
			test $rc -eq 0 -a -n "$(grep -i -A1 '^Example' <<<"$out" | grep "vmig $cmd")"
	done
	for cmd in guest listen migrate; do
		"$bin" $cmd --bogus >/dev/null 2>&1; rc=$?
		check "$tag: $cmd with an unknown option exits 2" test $rc -eq 2
	done
	for cmd in listen migrate; do
		err=$("$bin" $cmd --postcopy-sched realtime --vmm x --port 1 --to x:1 2>&1 >/dev/null)
		rc=$?
		check "$tag: $cmd --postcopy-sched with an unknown policy exits 2" test $rc -eq 2
		check "$tag: $cmd names the option and the value it refused" \
			grep -q "bad value 'realtime' for --postcopy-sched" <<EOF2
$err
EOF2
		err=$("$bin" $cmd --postcopy-cpu 3 --vmm x --port 1 --to x:1 2>&1 >/dev/null)
		rc=$?
		check "$tag: $cmd --postcopy-cpu with a CPU number, not follow or any, exits 2" \
			test $rc -eq 2 -a -n "$(grep "bad value '3' for --postcopy-cpu" <<<"$err")"
	done
	"$bin" migrate --to 127.0.0.1:1 >/dev/null 2>&1; rc=$?
	check "$tag: migrate without --vmm is a usage error" test $rc -eq 2
	err=$("$bin" no-such-command 2>&1 >/dev/null); rc=$?
	check "$tag: an unknown command exits 2 naming it" \
		test $rc -eq 2 -a -n "$(grep "no-such-command" <<<"$err")"
	"$bin" >/dev/null 2>&1; rc=$?
	check "$tag: no command is a usage error" test $rc -eq 2
	err=$("$bin" info --bogus 2>&1 >/dev/null); rc=$?
	check "$tag: an unknown option exits 2" test $rc -eq 2
	out=$("$bin" info --json); rc=$?
	check "$tag: info --json is one valid JSON object" \
		python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert "kmod" in d and "uffd" in d' "$out"
	# The answer must match what this kernel really offers: a userfaultfd
	# we can open decides "uffd.available".
	if python3 -c 'import ctypes,sys; sys.exit(0 if ctypes.CDLL(None).syscall(323, 0x80801) >= 0 else 1)'; then
		check "$tag: info sees userfaultfd" \
			python3 -c 'import json,sys; assert json.loads(sys.argv[1])["uffd"]["available"]' "$out"
	else
		skip "$tag: info sees userfaultfd" "userfaultfd cannot be opened here"
	fi
	if [ -e /dev/vmig ]; then
		check "$tag: info sees the module" \
			python3 -c 'import json,sys; assert json.loads(sys.argv[1])["kmod"]["available"]' "$out"
	else
		check "$tag: info says the module is absent" \
			python3 -c 'import json,sys; d=json.loads(sys.argv[1])["kmod"]; assert not d["available"] and d["error"]' "$out"
	fi
done
tap_done
