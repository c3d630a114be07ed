#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Issue 16's attacks, each against the fixed listener/source, each of which
# worked against the old plaintext default: a takeover by the first valid
# HELLO, a hijack of a paused postcopy by its session id, a device-state
# flood, a slow drip holding the listener, and another local user steering
# a paused source through its control socket.  Each must fail now, with the
# real source still succeeding.  Plus the configuration: no listener or
# source without a choice of authentication, a token that others can read
# refused, a wrong token refused on both sides.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}
PEER=$(dirname "$0")/hostile_peer.py

# --- configuration ---------------------------------------------------------
"$VMIG" listen --vmm /nonexistent --port 1 2>"$MIG_TMP/cfg1.err"; rc=$?
check "listen without --tls-*/--token-file/--insecure is a usage error naming them" \
	test $rc -eq 2 -a -n "$(grep -- '--token-file FILE' "$MIG_TMP/cfg1.err")"
"$VMIG" migrate --vmm /x --to 127.0.0.1:1 --insecure --token-file "$MIG_TOKEN" 2>"$MIG_TMP/cfg2.err"; rc=$?
check "migrate with two choices is a usage error" \
	test $rc -eq 2 -a -n "$(grep 'choose one' "$MIG_TMP/cfg2.err")"
cp "$MIG_TOKEN" "$MIG_TMP/open.token" && chmod 644 "$MIG_TMP/open.token"
"$VMIG" listen --vmm /nonexistent --port 1 --token-file "$MIG_TMP/open.token" 2>"$MIG_TMP/cfg3.err"; rc=$?
check "a token file others can read is refused" \
	test $rc -eq 1 -a -n "$(grep 'readable by group or others' "$MIG_TMP/cfg3.err")"

# --- takeover: a peer without the token cannot become the source ------------
p=take
dest_pair $p "--mem 32M --verify-all --run 0" ""
python3 "$PEER" "$PORT_take" takeover 1 >"$MIG_TMP/take.out" 2>&1; rc=$?
check "takeover by a second HELLO without the token fails" test $rc -eq 1
check "... refused before any HELLO is read, plain or with an empty token" \
	test -n "$(grep 'plain: refused: a vmig channel without authentication' "$MIG_TMP/take.out")" \
	-a -n "$(grep 'empty: .*authentication refused' "$MIG_TMP/take.out")"
check "... and no RAM size was disclosed" test -z "$(grep -i 'MiB' "$MIG_TMP/take.out")"
has take.out 'plain: refused: a vmig channel without auth' || dump take.out ${p}ls.err
src_guest $p "--mem 32M --dirty-rate 20"
migrate $p $p ""; rc=$?
wait_pid "$PID_takedg" 30; drc=$?
check "... and the real source then migrates, every page verified" \
	test $rc -eq 0 -a $drc -eq 0 -a -n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}dg.err")"
[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump $p.merr ${p}ls.err ${p}dg.err

# A wrong token: refused on both sides with a message saying which.
p=wrong
dest_pair $p "--mem 16M" ""
src_guest $p "--mem 16M"
openssl rand -hex 32 >"$MIG_TMP/other.token"; chmod 600 "$MIG_TMP/other.token"
migrate $p $p "--token-file $MIG_TMP/other.token"; rc=$?
check "a source with another token fails, saying the destination does not know it" \
	test $rc -eq 1 -a -n "$(grep 'does not know this side.s token' "$MIG_TMP/$p.merr")"
check "... and the listener drops it and keeps waiting" \
	wait_for "$MIG_TMP/${p}ls.err" "dropped connection: a source that does not know the token" 5
migrate $p $p "--insecure"; rc=$?
check "an --insecure source against a token listener fails, saying so" \
	test $rc -eq 1 -a -n "$(grep 'without a token (the destination runs --token-file' "$MIG_TMP/$p.merr")"
has $p.merr 'without a token (the destination' || dump $p.merr ${p}ls.err
kill "$PID_wrongls" 2>/dev/null

# Channel binding on plain TCP: a channel of another session, or without the
# session's key, is refused even from a token holder.
for inj in session key; do
	p=bind$inj
	dest_pair $p "--mem 16M" ""
	src_guest $p "--mem 16M"
	migrate $p $p "--inject-tls-binding $inj"; rc=$?
	check "token: multifd channels with a corrupted binding ($inj) are refused" \
		wait_for "$MIG_TMP/${p}ls.err" "a multifd channel \(of another session\|without proof of the session's key\)" 5
	check "... and the source fails" test $rc -eq 1
	v=PID_${p}ls
	kill "${!v}" 2>/dev/null
done

# --- slow drip: connections that never finish cannot hold the listener -----
# 24 drips, more than the 16 openings at once, and a listener --timeout (30)
# far beyond the source's (5): each new connection cuts the oldest opening.
p=drip
dest_pair $p "--mem 32M --verify-all --run 0" "--timeout 30"
start ${p}peer python3 "$PEER" "$PORT_drip" drip 24 60
src_guest $p "--mem 32M --dirty-rate 20"
sleep 1
migrate $p $p ""; rc=$?
wait_pid "$PID_dripdg" 30; drc=$?
check "with 24 connections dripping a byte a second, the real source migrates" \
	test $rc -eq 0 -a $drc -eq 0 -a -n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}dg.err")"
[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump $p.merr ${p}ls.err ${p}dg.err ${p}peer.out
check "... the oldest openings were cut to make room" has ${p}ls.err "the oldest of 16 unfinished openings"
kill "$PID_drippeer" 2>/dev/null
# A byte every 0.3 s is well within any single wait's --timeout (3 s): only
# a deadline on the whole opening ends such a connection.
p=drip2
dest_pair $p "--mem 16M" "--timeout 3"
start ${p}peer python3 "$PEER" "$PORT_drip2" drip 8 20 0.3
n=0
for _ in $(seq 200); do
	n=$(grep -c 'dropped connection: .*did not finish its part in time' "$MIG_TMP/${p}ls.err")
	[ "$n" -ge 8 ] && break
	sleep 0.1
done
check "each dripping connection is dropped at the deadline of its whole opening" test "$n" -ge 8
[ "$n" -ge 8 ] || dump ${p}ls.err
kill "$PID_drip2ls" 2>/dev/null

# --- device-state flood from an authenticated but hostile source ------------
flood() {
	local kind=$1 msg=$2 p=fl$1
	dest_pair $p "--mem 16M --device name=nic0,size=1M" "--max-device-buffer 64K"
	python3 "$PEER" "$(eval echo \$PORT_$p)" flood "$kind" 4096 >"$MIG_TMP/$p.out" 2>&1
	local lpid="PID_${p}ls"
	wait_pid "${!lpid}" 30; local lrc=$?
	check "device-state flood ($kind): the listener ends the session saying '$msg'" \
		test $lrc -eq 1 -a -n "$(grep -- "$msg" "$MIG_TMP/${p}ls.err")"
	[ $lrc -eq 1 ] && has ${p}ls.err "$msg" || dump $p.out ${p}ls.err
}
flood empty "empty DEVSTATE chunk that is not the last"
flood window "chunk 1048576 too far ahead"
flood dup "chunk 1 out of sequence or twice"
flood tiny "device state buffer full"

# --- a paused postcopy: hijack by session id, and the control socket --------
# paused NAME "AUTH ARGS" [CUT]: a postcopy that lost its link (every connection of
# the source cut), both helpers paused, the source waiting for --resume on its
# control socket (under umask 000: the old socket was then open to everyone).
paused() {
	local p=$1
	dest_pair $p "--mem 64M --verify-all --run 1" "--json --recovery-timeout 120 $2"
	src_guest $p "--mem 64M --pattern random --dirty-rate 20"
	local port_var=PORT_$p
	start ${p}mig sh -c "umask 000; exec \"\$@\"" sh "$VMIG" migrate \
		--vmm "$MIG_TMP/${p}src.sock" --to "127.0.0.1:${!port_var}" $2 --json --timeout 5 \
		--postcopy-after 0 --max-bandwidth 16 --multifd 2 --no-progress --no-auto-resume \
		--recovery-timeout 120 --inject-cut ${3:-pages:1000}
	wait_for "$MIG_TMP/${p}mig.err" "postcopy paused" 30
	wait_for "$MIG_TMP/${p}ls.err" "postcopy paused" 30
	ctl=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["control"])' \
		"$MIG_TMP/${p}mig.out" 2>/dev/null)
	sess=$(basename "$ctl" .sock)
}

# fake_dest NAME bare|forged: a fake destination holding the token, reached
# through --resume --to, answers every RESUME with "the guest never ran
# here" (bare, or after a forged proof).  Believed, the source resumed its
# own guest while the real destination ran it (two guests writing), or, had
# the switch been confirmed, gave up the migration with the pages that
# guest still lacks.  Now it stays paused and says why.  --to moved it: the
# real resume must name the real destination again.
fake_dest() {
	local p=$1 how=$2 fport v
	fport=$(free_port)
	start ${p}ns$how python3 "$PEER" "$fport" notswitched 14 $how
	"$VMIG" migrate --resume "$ctl" --to "127.0.0.1:$fport" >"$MIG_TMP/${p}ns$how.res" 2>&1
	local rc=$?
	v=PID_${p}ns$how
	wait_pid "${!v}" 30
	check "fake destination ($how): an unproven 'guest never ran here' does not resume the source's guest" \
		test $rc -eq 1 -a -n "$(grep 'did not resume: error cannot resume through' "$MIG_TMP/${p}ns$how.res")" \
		-a -n "$(grep 'answered [1-9][0-9]* RESUMEs' "$MIG_TMP/${p}ns$how.out")" \
		-a -z "$(grep '"not_switched"' "$MIG_TMP/${p}mig.out")" \
		-a -z "$(grep 'running on here' "$MIG_TMP/${p}sg.err")"
	v=PID_${p}mig
	check "... the source stays paused, saying the answer lacked the session's key" \
		test -n "$(grep 'resume_failed.*without proof of the session.s key' "$MIG_TMP/${p}mig.out")" \
		-a -n "$(kill -0 "${!v}" 2>/dev/null && echo alive)"
	grep -q 'without proof of the session.s key' "$MIG_TMP/${p}mig.out" ||
		dump ${p}ns$how.res ${p}ns$how.out ${p}ns$how.err ${p}mig.err ${p}sg.err
}

# resumed NAME WHAT [ARGS]: the real user resumes it, and it completes.
resumed() {
	local p=$1
	"$VMIG" migrate --resume "$ctl" ${3:-} >"$MIG_TMP/$p.res" 2>&1; local rc=$?
	check "$2: the real user resumes the paused source" \
		test $rc -eq 0 -a -n "$(grep 'ok resumed' "$MIG_TMP/$p.res")"
	local mpid=PID_${p}mig lpid=PID_${p}ls dpid=PID_${p}dg
	wait_pid "${!mpid}" 90; local mrc=$?
	wait_pid "${!lpid}" 30; local lrc=$?
	wait_pid "${!dpid}" 30; local drc=$?
	check "$2: ... and the postcopy completes, every page verified, none wrong when touched" \
		test $mrc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a \
		-n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${p}dg.err")" -a \
		-n "$(grep 'page writes, 0 wrong pages' "$MIG_TMP/${p}dg.err")"
	[ $mrc -eq 0 ] && [ $drc -eq 0 ] || dump $p.res ${p}mig.err ${p}ls.err ${p}dg.err
}

p=pause
paused $p "$MIG_AUTH"
check "the control socket is 0600 in a 0700 directory of this user, even under umask 000" \
	test "$(stat -c %a "$ctl" 2>/dev/null)" = 600 -a "$(stat -c '%a %u' "$(dirname "$ctl")")" = "700 $(id -u)"

python3 "$PEER" "$PORT_pause" hijack "$sess" >"$MIG_TMP/hijack.out" 2>&1; rc=$?
check "hijack: RESUME with the session id from a token holder is refused" \
	test $rc -eq 1 -a -n "$(grep 'RESUME without proof of the session.s key' "$MIG_TMP/hijack.out")"
VMIG_TOKEN_FILE="$MIG_TMP/other.token" python3 "$PEER" "$PORT_pause" hijack "$sess" \
	>"$MIG_TMP/hijack2.out" 2>&1; rc=$?
check "hijack: ... and from a peer without the token too" test $rc -eq 1
[ $rc -eq 1 ] || dump hijack.out hijack2.out ${p}ls.err

if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
	nob() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	cp "$VMIG" "$MIG_TMP/vmig-nobody" && chmod 755 "$MIG_TMP" "$MIG_TMP/vmig-nobody"
	nob "$MIG_TMP/vmig-nobody" migrate --resume "$ctl" --to 127.0.0.1:1 \
		>"$MIG_TMP/nob1.out" 2>&1; rc=$?
	check "control socket: another user cannot reach it (directory 0700)" test $rc -eq 1
	# Even when an administrator opens the modes, the peer's uid is checked.
	chmod 755 "$(dirname "$ctl")"; chmod 666 "$ctl"
	nob "$MIG_TMP/vmig-nobody" migrate --resume "$ctl" --to 127.0.0.1:1 \
		>"$MIG_TMP/nob2.out" 2>&1; rc=$?
	check "control socket: with modes opened, another user is refused by SO_PEERCRED" \
		test $rc -eq 1 -a -n "$(grep 'permission denied' "$MIG_TMP/nob2.out")"
	check "... and the source logs the refused uid" \
		wait_for "$MIG_TMP/${p}mig.err" "refused a control request from uid 65534" 5
	chmod 700 "$(dirname "$ctl")"
	[ $rc -eq 1 ] || dump nob1.out nob2.out ${p}mig.err
else
	skip "control socket: another user" "needs root and setpriv"
fi

fake_dest $p bare
resumed $p "token" "--to 127.0.0.1:$PORT_pause"

# Cut right at the switch, before the destination confirmed it: its guest
# runs, and only the destination's word that it never ran lets the source
# resume its own.  The old source believed any peer holding the token.
p=swpause
paused $p "$MIG_AUTH" switch
fake_dest $p bare
fake_dest $p forged
resumed $p "cut at the switch" "--to 127.0.0.1:$PORT_swpause"

# Under TLS: a peer with another certificate of the same CA has a valid
# handshake, and with the session id nothing else before: RESUME is tied
# to the session's key now.
creds() {
	local d=$MIG_TMP/$1
	mkdir -p "$d"
	[ -f "$MIG_TMP/ca.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-nodes -days 2 -keyout "$MIG_TMP/ca.key" -out "$MIG_TMP/ca.pem" \
		-subj "/CN=vmig test CA" 2>/dev/null
	cp "$MIG_TMP/ca.pem" "$d/"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/key.pem" \
		-out "$d/req.csr" -subj "/CN=$1" 2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext" &&
	openssl x509 -req -in "$d/req.csr" -CA "$MIG_TMP/ca.pem" -CAkey "$MIG_TMP/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/ext" -out "$d/cert.pem" 2>/dev/null
}
if creds vmhost && creds intruder; then
	p=tpause
	paused $p "--tls-creds $MIG_TMP/vmhost"
	python3 "$PEER" "$PORT_tpause" hijack "$sess" "$MIG_TMP/intruder" >"$MIG_TMP/thijack.out" 2>&1; rc=$?
	check "TLS hijack: RESUME from another certificate of the same CA is refused" \
		test $rc -eq 1 -a -n "$(grep 'RESUME without proof of the session.s key' "$MIG_TMP/thijack.out")"
	[ $rc -eq 1 ] || dump thijack.out ${p}ls.err
	resumed $p "TLS"
else
	skip "TLS hijack" "openssl could not make test certificates"
fi
tap_done
