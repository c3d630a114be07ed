# SPDX-License-Identifier: GPL-2.0
# What the migration tests inside the test VM share (busybox sh): source it
# after tap.sh.  VMCHECK_EXTRA puts it in the guest's /usr/bin.
#
#   vm_auth DIR            a token both helpers hold; sets AUTH to pass it
#   wait_for FILE PATTERN SECONDS, wait_pid PID SECONDS: scripts/lib/vmig.sh
#   dump FILE...           the last lines of each, as TAP comments

# The waits and the token are scripts/lib/vmig.sh's (in /usr/bin as vmig.sh).
. /usr/bin/vmig.sh

vm_auth() {
	vmig_token "$1"
}

dump() {
	for f in "$@"; do
		[ -f "$f" ] && tail -n 8 "$f" | sed "s|^|# $f: |"
	done
	return 0
}
