#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Both helpers under valgrind's memcheck, end to end: precopy with sync
# (write faults) and async (PAGEMAP_SCAN) dirty tracking, postcopy with a
# preempt channel, PSK TLS, and a source with the wrong token the listener
# drops.  Every migration must verify every page, and valgrind must find no
# invalid access, no use of uninitialised memory and no leak (definitely or
# indirectly lost) in `vmig listen` or `vmig migrate`; each process's report
# is shown when it does.  The guests run without valgrind: they only stand
# in for the VMM.  The non-sanitizer build is used (ASan and valgrind do
# not mix).
set -u
. "$(dirname "$0")/tap.sh"
REAL=${VMIG_BIN:?}

need_cmd valgrind "helpers under valgrind"
. "$(dirname "$0")/migrate_lib.sh"

# The helpers run through this wrapper, which the lib knows as $VMIG.  The
# log of each process is vg.PID.log; --error-exitcode makes any finding an
# exit status the migration checks see.
VG_LOGS=$MIG_TMP/vg
mkdir -p "$VG_LOGS"
VMIG=$MIG_TMP/vmig-vg
cat >"$VMIG" <<EOF
#!/bin/sh
case "\$1" in
listen | migrate)
	exec valgrind --quiet --error-exitcode=97 --leak-check=full \\
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \\
		--track-origins=yes --log-file="$VG_LOGS/\$1.%p.log" "$REAL" "\$@" ;;
*)	exec "$REAL" "\$@" ;;
esac
EOF
chmod +x "$VMIG"

# Valgrind 3.19 has no wrapper for userfaultfd(2) (syscall 323): it fails
# with ENOSYS and says so in five lines.  Only the helpers' probe of the
# kernel's uffd features calls it (the VMM owns the uffds): under valgrind
# the source then tracks in sync mode.  Those lines are valgrind's, not a
# finding; anything else in a log is.
VG_KNOWN='^--[0-9]+-- (WARNING: unhandled amd64-linux syscall: 323|You may be able to write your own handler\.|Read the file README_MISSING_SYSCALL_OR_IOCTL\.|Nevertheless we consider this a bug\.  Please report|it at http://valgrind\.org/support/bug_reports\.html\.)$'

# vg_clean NAME: every valgrind log so far says nothing but VG_KNOWN
# (moved aside after).
vg_clean() {
	local f bad=0
	for f in "$VG_LOGS"/*.log; do
		[ -e "$f" ] || continue
		if grep -Evq "$VG_KNOWN" "$f"; then
			bad=1
			echo "# valgrind, $(basename "$f"):"
			grep -Ev "$VG_KNOWN" "$f" | sed 's/^/#   /' | head -n 60
		fi
		mv "$f" "$f.seen"
	done
	check "$1: valgrind found nothing in either helper" test $bad -eq 0
}

# Slower under valgrind: longer handshake and peer timeouts than the lib's.
vg_case() { # NAME P "listen args" "migrate args" ["src guest args" [report check]]
	mig_start "$2" "--mem 32M --verify-all --run 0" "--json --timeout 60 $3" \
		"--mem 32M ${5:---pattern random --dirty-rate 20}" "--timeout 60 $4"
	mig_verified "$1: migrated, every page verified" "$2"
	[ -n "${6:-}" ] && check "$1: the source report says so" json "$MIG_TMP/$2.json" "$6"
	vg_clean "$1"
}

vg_case "precopy, 2 multifd channels, sync tracking (write faults)" pre "" "--multifd 2 --track sync" \
	"--pattern random --dirty-rate 20" "d['tracking'] == 'sync' and d['wp_faults'] > 0"
vg_case "precopy, async tracking (PAGEMAP_SCAN)" asy "" "--multifd 2 --track async" \
	"--pattern random --dirty-rate 20" "d['tracking'] == 'async' and d['harvests'] > 0"
vg_case "postcopy with a preempt channel" pc "" "--multifd 2 --postcopy-after 0" \
	"--pattern random --dirty-rate 50"
if command -v openssl >/dev/null; then
	vmig_psk "$MIG_TMP/vg.psk"
	vg_case "PSK TLS, 2 multifd channels" tls "--tls-psk $MIG_TMP/vg.psk" \
		"--tls-psk $MIG_TMP/vg.psk --multifd 2"
else
	skip "PSK TLS under valgrind" "the openssl command is missing (scripts/deps.sh installs it)"
fi

# A source with the wrong token: the listener drops it and keeps waiting;
# then the real source migrates.
p=bad
dest_pair $p "--mem 32M --verify-all --run 0" "--json --timeout 60"
src_guest $p "--mem 32M --dirty-rate 20"
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$MIG_TMP/wrong.token")
migrate $p $p "--token-file $MIG_TMP/wrong.token --timeout 60"
rc=$?
check "a source with the wrong token is refused, the listener saying why" \
	wait_for "$MIG_TMP/${p}ls.err" "dropped connection: a source that does not know the token" 30
check "... and the source fails with exit 1" test $rc -eq 1
migrate $p $p "--timeout 60"
RC_M=$?
mig_verified "... then the real source migrates, every page verified" $p
vg_clean "a refused source, then a migration"

tap_done
