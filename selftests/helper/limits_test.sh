#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# A hostile source cannot make the destination hold more than its caps:
# handshake sizes (HELLO packet, regions, TLS certificate chain), channel
# count (negotiated and connected), and time (a silent connection).  Each
# cap answers with a clear message, before a session (the listener drops
# the connection and keeps waiting) or inside one.
set -u
. "$(dirname "$0")/tap.sh"
. "$(dirname "$0")/migrate_lib.sh"
VMIG=${VMIG_BIN:?}
PEER=$(dirname "$0")/limits_peer.py

# --- plaintext: handshake sizes and channel counts -------------------------
p=pl
dest_pair $p "--mem 16M" ""
python3 "$PEER" "$PORT_pl" channels >"$MIG_TMP/channels.out" 2>&1
check "a HELLO asking for 65 multifd channels is refused naming the cap" \
	wait_for "$MIG_TMP/${p}ls.err" "source wants 65 multifd channels (1..64 allowed)" 5
check "... and the source is told why" has channels.out "source wants 65 multifd channels"
python3 "$PEER" "$PORT_pl" regions >/dev/null 2>&1
check "a HELLO describing 17 RAM regions is refused (cap 16)" \
	wait_for "$MIG_TMP/${p}ls.err" "malformed HELLO: 17 regions" 5
python3 "$PEER" "$PORT_pl" hellosize >/dev/null 2>&1
check "a HELLO header claiming 2 GiB is refused before any of it is read" \
	wait_for "$MIG_TMP/${p}ls.err" "oversized HELLO packet: 2147483648 bytes (limit [0-9]*)" 5
python3 "$PEER" "$PORT_pl" extrachan --pages 4096 >"$MIG_TMP/extra.out" 2>&1
check "a second multifd channel with an index already taken is refused" \
	wait_for "$MIG_TMP/${p}ls.err" "multifd channel index 0 unexpected" 5
check "a multifd channel beyond the negotiated count is refused" \
	wait_for "$MIG_TMP/${p}ls.err" "multifd channel index 2 unexpected" 5
check "... and the source is told why" has extra.out "extra channel 2: .*multifd channel index 2 unexpected"
wait_pid "$PID_plls" 15; rc=$?
check "... and the session then ends when its real channel goes" test $rc -eq 1

# --- TLS: the same caps inside TLS, plus the certificate chain and time ----
need_cmd openssl "TLS limits"
vmig_x509 "$MIG_TMP/good" || { echo "# openssl could not make test certificates"; exit 1; }
# Same CA, a certificate of ~100 KiB (3000 names): over the 64 KiB chain cap.
mkdir -p "$MIG_TMP/big"
cp "$MIG_TMP/good/ca.pem" "$MIG_TMP/good/ca.key" "$MIG_TMP/good/key.pem" "$MIG_TMP/good/req.csr" "$MIG_TMP/big/"
printf 'subjectAltName=IP:127.0.0.1%s\n' "$(seq -f ',DNS:name-%04g.padding.vmig.example.org' 3000 | tr -d '\n')" \
	>"$MIG_TMP/big/ext"
openssl x509 -req -in "$MIG_TMP/big/req.csr" -CA "$MIG_TMP/big/ca.pem" -CAkey "$MIG_TMP/big/ca.key" \
	-CAcreateserial -days 2 -extfile "$MIG_TMP/big/ext" -out "$MIG_TMP/big/cert.pem" 2>/dev/null
GOOD="--tls-creds $MIG_TMP/good"

p=tl
dest_pair $p "--mem 16M --verify-all --run 0" "$GOOD --timeout 2"
python3 "$PEER" "$PORT_tl" hellosize --tls "$MIG_TMP/good" >/dev/null 2>&1
check "TLS: a HELLO header claiming 2 GiB is refused the same way" \
	wait_for "$MIG_TMP/${p}ls.err" "oversized HELLO packet: 2147483648 bytes" 5
python3 "$PEER" "$PORT_tl" channels --tls "$MIG_TMP/good" >/dev/null 2>&1
check "TLS: a HELLO asking for 65 multifd channels is refused the same way" \
	wait_for "$MIG_TMP/${p}ls.err" "source wants 65 multifd channels (1..64 allowed)" 5
src_guest $p "--mem 16M --dirty-rate 10"
check "a certificate over 64 KiB (test setup: it is $(stat -c %s "$MIG_TMP/big/cert.pem") bytes)" \
	test "$(stat -c %s "$MIG_TMP/big/cert.pem")" -gt 65536
migrate $p $p "--tls-creds $MIG_TMP/big"; rc=$?
check "TLS: a certificate chain over the 64 KiB cap is refused naming the size" \
	wait_for "$MIG_TMP/${p}ls.err" "TLS handshake failed: excessive message size" 5
check "... and the source fails with exit 1" test $rc -eq 1
python3 "$PEER" "$PORT_tl" silent >/dev/null 2>&1 &
check "a connection that never starts its TLS handshake is dropped after --timeout" \
	wait_for "$MIG_TMP/${p}ls.err" "TLS handshake: no ClientHello in time" 8
migrate $p $p "$GOOD"; RC_M=$?
mig_verified "after all that, the same listener takes a good TLS migration, every page verified" $p
tap_done
