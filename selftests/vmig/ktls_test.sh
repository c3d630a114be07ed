#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Kernel TLS in the guest (busybox sh).  vmcheck loads tls.ko and the AES-GCM
# crypto modules (VMCHECK_MODULES), so the helpers' OpenSSL hands each
# channel's record layer to the kernel (SSL_OP_ENABLE_KTLS).  TLS 1.3
# migrations on vmig.ko regions, x509 and PSK, precopy and postcopy with a
# preempt channel, must verify every page on the destination while every
# channel of both helpers sends through kTLS: each handshake says so
# (VMIG_TRACE), and /proc/net/tls_stat's count of kernel TLS transmit
# sessions (TlsTxSw) rises by one per channel end, with no decryption
# error.  Both helpers then write plaintext on sockets whose records the
# kernel seals, so a page arriving intact is itself proof that the
# records went through the kernel; in postcopy the destination's page
# requests go the other way, also sealed by its kernel.  Receiving stays
# in OpenSSL: Debian 12's OpenSSL 3.0 offloads TLS 1.3 transmit only
# (TlsRxSw must match what the handshakes report, today nothing).  The
# same migration with VMIG_KTLS=off must leave the counters alone: they
# count our sessions, not something else's.
# Needs /usr/bin/vmig, /usr/bin/openssl (VMCHECK_EXTRA) and tap.sh.
. /usr/bin/tap.sh
. /usr/bin/vm_lib.sh

vmig=/usr/bin/vmig
T=/tmp/ktls
mkdir -p $T
port=5300

if [ ! -x "$vmig" ] || [ ! -e /dev/vmig ] || ! command -v openssl >/dev/null; then
	check "kTLS test prerequisites: /usr/bin/vmig, /dev/vmig, openssl in the guest" false
	tap_done
	exit 1
fi
check "the kernel offers the tls ULP (tls.ko loaded)" \
	grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp
if [ ! -r /proc/net/tls_stat ]; then
	check "/proc/net/tls_stat exists" false
	tap_done
	exit 1
fi

stat() { awk -v k="$1" '$1 == k {print $2}' /proc/net/tls_stat; }

# Test credentials: a CA and a certificate for 127.0.0.1 it signed; a PSK.
c=$T/creds
mkdir -p $c
export OPENSSL_CONF=/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout $c/ca.key -out $c/ca.pem -subj "/CN=vmig ktls test CA" 2>$T/openssl.err &&
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $c/key.pem \
	-out $c/req.csr -subj "/CN=localhost" 2>>$T/openssl.err &&
printf 'subjectAltName=IP:127.0.0.1\n' >$c/ext &&
openssl x509 -req -in $c/req.csr -CA $c/ca.pem -CAkey $c/ca.key -CAcreateserial \
	-days 1 -extfile $c/ext -out $c/cert.pem 2>>$T/openssl.err
check "openssl makes the test certificates in the guest" test -s $c/cert.pem ||
	dump $T/openssl.err
(umask 077; echo "vmig:$(openssl rand -hex 32)" >$T/key.psk)
unset OPENSSL_CONF

# migrate_case NAME KTLS(on|off) TLS_ARGS MIGRATE_ARGS CHANNELS: one
# migration of a dirtying 32 MiB guest; sets tx, rx, derr (the counters'
# rise) and checks that it verified.
migrate_case() {
	name=$1 ktls=$2 targs=$3 margs=$4 chans=$5
	p=$T/c$tap_n
	port=$((port + 1))
	tx0=$(stat TlsTxSw) rx0=$(stat TlsRxSw) de0=$(stat TlsDecryptError)
	$vmig guest --socket $p.dst --mem 32M --incoming --verify-all --run 1 --lifetime 250 \
		--backend kmod >$p.dg.out 2>$p.dg.err &
	dg=$!
	wait_for $p.dg.out "guest: ready" 60
	VMIG_KTLS=$ktls VMIG_TRACE=1 $vmig listen --vmm $p.dst --port 127.0.0.1:$port \
		--timeout 60 --accept-timeout 250 --no-progress --json $targs \
		>$p.ls.json 2>$p.ls.err &
	ls=$!
	wait_for $p.ls.err "waiting for a source" 60
	$vmig guest --socket $p.src --mem 32M --lifetime 250 --backend kmod \
		--pattern random --dirty-rate 8 >$p.sg.out 2>$p.sg.err &
	sg=$!
	wait_for $p.sg.out "guest: ready" 60
	VMIG_KTLS=$ktls VMIG_TRACE=1 timeout 250 $vmig migrate --vmm $p.src \
		--to 127.0.0.1:$port --json --timeout 60 --no-progress $targs $margs \
		>$p.json 2>$p.merr
	rc=$?
	wait_pid $ls 60; lrc=$?
	wait_pid $dg 60; drc=$?
	wait_pid $sg 60; src=$?
	tx=$(($(stat TlsTxSw) - tx0)) rx=$(($(stat TlsRxSw) - rx0))
	derr=$(($(stat TlsDecryptError) - de0))
	check "$name: migrated, all four processes exit 0" \
		[ $rc -eq 0 -a $lrc -eq 0 -a $drc -eq 0 -a $src -eq 0 ]
	[ $rc -eq 0 -a $drc -eq 0 -a $lrc -eq 0 ] ||
		dump $p.json $p.merr $p.ls.err $p.dg.err $p.sg.err
	check "$name: every page verified on the destination" \
		grep -q "verify-all after resume: .* 0 errors" $p.dg.err
	echo "# $name: tls_stat TlsTxSw +$tx TlsRxSw +$rx TlsDecryptError +$derr"
	# Handshakes that ended with kTLS sending (and receiving), per helper.
	ksrc=$(grep -c 'handshake done (.*kTLS tx 1' $p.merr)
	kdst=$(grep -c 'handshake done (.*kTLS tx 1' $p.ls.err)
	krx=$(grep -c 'handshake done (.*kTLS tx . rx 1)' $p.merr $p.ls.err | awk -F: '{s += $NF} END {print s}')
	if [ "$ktls" = on ]; then
		check "$name: each of the source's $chans channels sends through kTLS" \
			[ "$ksrc" -ge "$chans" ]
		check "$name: each of the destination's $chans channels sends through kTLS" \
			[ "$kdst" -ge "$chans" ]
		check "$name: kernel TLS TX sessions rose by one per channel end (+$tx)" \
			[ "$tx" -ge $((2 * chans)) -a "$tx" -eq $((ksrc + kdst)) ]
		# OpenSSL 3.0 (Debian 12) opens TLS 1.3 records itself: kTLS
		# receive comes with 3.2.  Whatever it does, the counter agrees.
		check "$name: kernel TLS RX sessions match the handshakes that reported kTLS receive (+$rx)" \
			[ "$rx" -eq "$krx" ]
		check "$name: no kernel TLS decryption error" [ "$derr" -eq 0 ]
		[ "$ksrc" -ge "$chans" ] || grep 'tls:' $p.merr | head -n 4 | sed 's/^/# /'
	else
		check "$name: no channel of either helper runs kTLS" \
			[ "$ksrc" -eq 0 -a "$kdst" -eq 0 ]
		check "$name: the kernel TLS counters stay where they were" \
			[ "$tx" -eq 0 -a "$rx" -eq 0 ]
	fi
}

X509="--tls-creds $c"
PSK="--tls-psk $T/key.psk"
# Precopy: the main channel and two multifd channels.
migrate_case "x509, kTLS, precopy, 2 channels" on "$X509" "--multifd 2" 3
migrate_case "PSK, kTLS, precopy, 2 channels" on "$PSK" "--multifd 2" 3
# Postcopy adds the preempt channel and the return path, whose page
# requests are records the destination sends: kTLS in both directions.
migrate_case "x509, kTLS, postcopy with preempt" on "$X509" "--multifd 2 --postcopy --postcopy-after 0" 5
migrate_case "PSK, kTLS, postcopy with preempt" on "$PSK" "--multifd 2 --postcopy --postcopy-after 0" 5
migrate_case "x509, VMIG_KTLS=off" off "$X509" "--multifd 2" 3
tap_done
