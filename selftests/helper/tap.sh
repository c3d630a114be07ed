# SPDX-License-Identifier: GPL-2.0
# A few TAP helpers for the shell tests: source it, call check/skip, then
# tap_done.  Each test prints "ok N - name" or "not ok N - name".
tap_n=0
tap_failed=0

# check NAME COMMAND...: pass if COMMAND exits 0; returns what it passed
# (so that "if check ...; then" runs what needs it only after a pass).
check() {
	local name=$1
	shift
	tap_n=$((tap_n + 1))
	if "$@"; then
		echo "ok $tap_n - $name"
		return 0
	fi
	echo "not ok $tap_n - $name"
	tap_failed=$((tap_failed + 1))
	return 1
}

# skip NAME REASON
skip() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $1 # SKIP $2"
}

# need_cmd CMD NAME: without CMD, skip NAME saying so and end the test here.
need_cmd() {
	command -v "$1" >/dev/null && return 0
	skip "$2" "$1 is not installed (scripts/deps.sh installs it)"
	tap_done
	exit
}

tap_done() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}
