# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=dash disable=SC2034  # AUTH and the like are for the sourcing script
# What the host tests, the benchmarks and the demo share: a scratch
# directory, every process they start killed on exit, a token for the
# helpers, bounded waits.  POSIX sh with `local` (bash on the host, busybox
# sh in a VM).
#
#   vmig_setup NAME          VMIG_TMP: a fresh /tmp/NAME.XXXXXX, removed on
#                            exit with every tracked process killed; AUTH:
#                            options passing a token both helpers hold
#                            ($VMIG_TMP/token)
#   vmig_token DIR           AUTH: a token in DIR/token (also exported as
#                            VMIG_TOKEN_FILE)
#   vmig_track PID           kill PID on exit
#   free_port                a TCP port free on 127.0.0.1 now
#   wait_for FILE PATTERN [SECONDS [PID]]
#                            until PATTERN is in FILE (20 s; 1 if PID exits)
#   must_wait_for FILE PATTERN [SECONDS [PID]]
#                            wait_for, or show FILE and exit 1 (benchmarks)
#   wait_pid PID SECONDS     its exit status; 124 after killing it on timeout
#
# VMIG_AT_EXIT: a command the cleanup runs once the processes are gone and
# before VMIG_TMP is (e.g. to save results).

vmig_cleanup() {
	local p
	for p in $VMIG_PIDS; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "${VMIG_AT_EXIT:-}" ] || eval "$VMIG_AT_EXIT" || true
	[ -n "${VMIG_TMP:-}" ] && rm -rf "$VMIG_TMP"
	return 0
}

vmig_setup() {
	VMIG_PIDS=
	VMIG_TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	trap vmig_cleanup EXIT
	vmig_token "$VMIG_TMP"
}

# vmig listen/migrate refuse to run without a choice of who may connect.
vmig_token() {
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1/token")
	AUTH="--token-file $1/token"
	VMIG_TOKEN_FILE=$1/token	# the python peers (vmig_auth.py) use it too
	export VMIG_TOKEN_FILE
}

vmig_track() {
	VMIG_PIDS="$VMIG_PIDS $1"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() {
	local i=0
	while [ "$i" -lt $((${3:-20} * 10)) ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		if [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null; then
			echo "# process $4 exited while waiting for '$2' in $1" >&2
			return 1
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "# timed out waiting for '$2' in $1" >&2
	return 1
}

must_wait_for() {
	wait_for "$@" && return 0
	cat "$1" >&2
	exit 1
}

wait_pid() {
	local i=0 r=0
	while [ "$i" -lt $(($2 * 10)) ]; do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1" || r=$?
			return "$r"
		fi
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	return 124
}
