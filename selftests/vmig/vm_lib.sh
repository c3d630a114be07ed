# SPDX-License-Identifier: GPL-2.0
# What the migration tests inside the test VM share (busybox sh): source it
# after tap.sh.  VMCHECK_EXTRA puts it in the guest's /usr/bin.
#
#   vm_auth DIR            a token both helpers hold; sets AUTH to pass it
#   wait_for FILE PATTERN SECONDS
#   wait_pid PID SECONDS   its exit status; 124 after killing it on timeout
#   dump FILE...           the last lines of each, as TAP comments

# vmig listen/migrate refuse to run without a choice of who may connect.
vm_auth() {
	(umask 077 && echo "vm-test-token-$$-0123456789abcdef" >"$1/token")
	AUTH="--token-file $1/token"
}

wait_for() {
	i=0
	while [ $i -lt $(($3 * 10)) ]; do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
		i=$((i + 1))
	done
	echo "# timed out waiting for '$2' in $1"
	return 1
}

wait_pid() {
	i=0
	while [ $i -lt $(($2 * 10)) ]; do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			return $?
		fi
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

dump() {
	for f in "$@"; do
		[ -f "$f" ] && tail -n 8 "$f" | sed "s|^|# $f: |"
	done
	return 0
}
