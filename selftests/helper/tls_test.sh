#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# TLS on every channel: x509 and PSK migrations verify every page; a wrong
# certificate, a wrong key, a plaintext peer and a channel that cannot prove
# it belongs to the session are refused with clear messages, and nothing of
# theirs reaches guest memory.  Credentials are made here, never committed.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}

need_cmd openssl "TLS tests"

vmig_x509 "$MIG_TMP/good" && vmig_x509 "$MIG_TMP/other" || { echo "# openssl could not make test certificates"; exit 1; }
# A certificate from another CA, presented with this CA's ca.pem.
mkdir -p "$MIG_TMP/rogue"
cp "$MIG_TMP/good/ca.pem" "$MIG_TMP/rogue/ca.pem"
cp "$MIG_TMP/other/cert.pem" "$MIG_TMP/other/key.pem" "$MIG_TMP/rogue/"
# The right certificate with a private key that is not its own.
mkdir -p "$MIG_TMP/badkey"
cp "$MIG_TMP/good/ca.pem" "$MIG_TMP/good/cert.pem" "$MIG_TMP/badkey/"
cp "$MIG_TMP/other/key.pem" "$MIG_TMP/badkey/key.pem"
vmig_psk "$MIG_TMP/good.psk"
vmig_psk "$MIG_TMP/wrong.psk"
GOOD="--tls-creds $MIG_TMP/good"
PSK="--tls-psk $MIG_TMP/good.psk"

# ok_case NAME LISTEN_TLS MIGRATE_ARGS: a migration that must verify every page.
ok_case() {
	local name=$1 p=ok$tap_n
	mig_start $p "--mem 64M --verify-all --run 0" "$2 --json" \
		"--mem 64M --pattern random --dirty-rate 50" "$3"
	mig_verified "$name: migrates, every page verified on the destination" $p
	check "$name: no plaintext warning on loopback" \
		test -z "$(grep -h 'plain TCP' "$MIG_TMP/$p.merr" "$MIG_TMP/${p}ls.err")"
	if [ -n "${4:-}" ]; then
		check "$name: the source report says so" json "$MIG_TMP/$p.json" "$4"
	fi
}
ok_case "x509, 2 multifd channels" "$GOOD" "$GOOD --multifd 2"
ok_case "x509, 8 multifd channels" "$GOOD" "$GOOD --multifd 8"
ok_case "PSK, 2 multifd channels" "$PSK" "$PSK --multifd 2"
ok_case "PSK, postcopy with a preempt channel" "$PSK" "$PSK --multifd 2 --postcopy-after 0" \
	"d['postcopy'] and d['postcopy']['preempt']"
ok_case "x509, postcopy without a preempt channel" "$GOOD" "$GOOD --multifd 2 --postcopy-after 0 --no-preempt" \
	"d['postcopy'] and not d['postcopy']['preempt']"

# --- refused before a session: the listener drops them and keeps waiting ---
p=ref
dest_pair $p "--mem 32M --verify-all --run 0" "$GOOD --json"
src_guest $p "--mem 32M --dirty-rate 20"
migrate $p $p "--tls-creds $MIG_TMP/rogue"; rc=$?
check "a certificate from another CA is refused by the destination" \
	wait_for "$MIG_TMP/${p}ls.err" "dropped connection: TLS handshake failed: the peer's certificate was refused: unable to get local issuer certificate" 5
check "... and the source fails with exit 1 saying the handshake failed" \
	test $rc -eq 1 -a -n "$(grep 'TLS' "$MIG_TMP/$p.merr")"
[ $rc -eq 1 ] || dump $p.merr
migrate $p $p "--tls-creds $MIG_TMP/badkey"; rc=$?
check "a certificate with a private key that is not its own: the source refuses to start" \
	test $rc -eq 1 -a -n "$(grep 'cannot use the private key .*/badkey/key.pem' "$MIG_TMP/$p.merr")"
migrate $p $p ""; rc=$?
check "a plaintext source against a TLS listener is refused, saying so" \
	wait_for "$MIG_TMP/${p}ls.err" "not a TLS connection (first byte 0x56: a plaintext vmig channel)" 5
check "... and the plaintext source fails with exit 1" test $rc -eq 1
migrate $p $p "$PSK"; rc=$?
[ $rc -eq 1 ] || dump $p.merr ${p}ls.err
check "a PSK source against an x509 listener is refused" \
	test $rc -eq 1 -a -n "$(grep 'TLS' "$MIG_TMP/$p.merr")" -a "$(grep -c 'dropped connection: TLS handshake failed' "$MIG_TMP/${p}ls.err")" -ge 2
check "the source guest ran on through all of that, every page intact" \
	wait_for "$MIG_TMP/${p}sg.err" "memory intact after the failed migration: .* 0 errors" 10
migrate $p $p "$GOOD"; RC_M=$?
mig_verified "then the same listener takes a good x509 migration, every page verified" $p
check "... and it received exactly the good source's pages, none from the refused ones" \
	python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if a["bytes"]["normal"] == b["bytes"]["normal"] and a["bytes"]["zero"] == b["bytes"]["zero"] else 1)' \
	"$MIG_TMP/$p.json" "$MIG_TMP/${p}ls.out"

# refused_only NAME LISTEN_TLS MIGRATE_ARGS LISTENER_MSG SOURCE_MSG: nothing
# but a refused source; the listener gives up, having placed no page.
refused_only() {
	local name=$1 p=ro$tap_n
	dest_pair $p "--mem 32M" "$2 --json --accept-timeout 4" &&
		src_guest $p "--mem 32M --dirty-rate 20" && migrate $p $p "$3"
	local rc=$?
	local lpid="PID_${p}ls" dpid="PID_${p}dg"
	wait_pid "${!lpid}" 20; local lrc=$?
	wait_pid "${!dpid}" 20; local drc=$?
	check "$name: the destination refuses it saying '$4'" has ${p}ls.err "$4"
	check "$name: the source fails with exit 1 saying '$5'" \
		test $rc -eq 1 -a -n "$(grep -- "$5" "$MIG_TMP/$p.merr")"
	check "$name: not one page reached the destination guest, which is discarded" \
		test $lrc -eq 1 -a $drc -eq 3 -a -n "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("y" if d["bytes"]["normal"] == 0 and d["bytes"]["zero"] == 0 else "")' "$MIG_TMP/${p}ls.out")"
	[ $rc -eq 1 ] && [ $lrc -eq 1 ] && [ $drc -eq 3 ] || dump $p.merr ${p}ls.err ${p}ls.out ${p}dg.err
}
refused_only "a wrong pre-shared key" "$PSK" "--tls-psk $MIG_TMP/wrong.psk" \
	"dropped connection: TLS handshake failed" "TLS"
refused_only "a TLS source against a plaintext listener" "" "$GOOD" \
	"a TLS handshake, but this side runs without --tls-creds/--tls-psk" "TLS"
# The listener refuses such channels as they open (admit.c): the source learns
# it from a channel that breaks, or from the listener giving up on them.
refused_only "multifd channels claiming another session's id" "$GOOD" \
	"$GOOD --inject-tls-binding session" \
	"a multifd channel of another session: refused" \
	"multifd channel\|of 2 channels connected"
refused_only "multifd channels of the right session id without its TLS secret" "$GOOD" \
	"$GOOD --inject-tls-binding key" \
	"a multifd channel without proof of the session's key" \
	"multifd channel\|of 2 channels connected"

# Plain TCP stays available, with a warning when the peer is not on loopback.
addr=$(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n 1)
if [ -z "$addr" ]; then
	skip "plain TCP off loopback warns on both sides" "this machine has no global IPv4 address"
else
	p=wan
	start ${p}dg "$VMIG" guest --socket "$MIG_TMP/${p}dst.sock" --incoming --lifetime 60 \
		--mem 16M --verify-all --run 0
	wait_for "$MIG_TMP/${p}dg.out" "guest: ready"
	wport=$(free_port)
	start ${p}ls "$VMIG" listen --vmm "$MIG_TMP/${p}dst.sock" --port "$addr:$wport" --timeout 5 $MIG_AUTH \
		--no-progress
	wait_for "$MIG_TMP/${p}ls.err" "waiting for a source"
	src_guest $p "--mem 16M --dirty-rate 10"
	timeout 60 "$VMIG" migrate --vmm "$MIG_TMP/${p}src.sock" --to "$addr:$wport" --timeout 5 $MIG_AUTH \
		--json >"$MIG_TMP/$p.json" 2>"$MIG_TMP/$p.merr"; rc=$?
	wait_pid "$PID_wanls" 20; lrc=$?
	wait_pid "$PID_wandg" 20; drc=$?
	check "plain TCP to $addr (not loopback) still migrates, every page verified" \
		test $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0
	[ $rc -eq 0 ] && [ $drc -eq 0 ] || dump $p.merr ${p}ls.err ${p}dg.err
	check "... and the source warns that guest memory crosses the network unencrypted" \
		has $p.merr "warning: plain TCP with $addr: guest memory crosses the network unencrypted"
	check "... and so does the destination" has ${p}ls.err "warning: plain TCP with $addr"
fi

# Configuration errors are clear and early.
"$VMIG" listen --vmm /nonexistent --port 1 --tls-psk "$MIG_TMP/nonexistent.psk" 2>"$MIG_TMP/cfg1.err"; rc=$?
check "a missing PSK file: listen exits 1 naming it" \
	test $rc -eq 1 -a -n "$(grep 'cannot open the pre-shared key file .*nonexistent.psk' "$MIG_TMP/cfg1.err")"
echo "vmig:abcd" >"$MIG_TMP/short.psk"
"$VMIG" listen --vmm /nonexistent --port 1 --tls-psk "$MIG_TMP/short.psk" 2>"$MIG_TMP/cfg2.err"; rc=$?
check "a PSK shorter than 16 bytes is refused" \
	test $rc -eq 1 -a -n "$(grep 'key of 16..64 bytes' "$MIG_TMP/cfg2.err")"
"$VMIG" migrate --vmm /x --to 127.0.0.1:1 $GOOD $PSK 2>"$MIG_TMP/cfg3.err"; rc=$?
check "--tls-creds with --tls-psk is a usage error" \
	test $rc -eq 2 -a -n "$(grep 'exclude each other' "$MIG_TMP/cfg3.err")"
tap_done
