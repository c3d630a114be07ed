#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Precopy throughput in the qemu guest (make bench-ktls; busybox sh): plain
# TCP against TLS 1.3 with the record layer in the kernel (kTLS, tls.ko
# loaded by vmcheck) and in OpenSSL (VMIG_KTLS=off), x509 and PSK, in one
# boot, the five modes interleaved run by run so that load on the machine
# hits them alike.  An idle guest of SIZE (default 128M, every page
# non-zero) on vmig.ko regions, CHANNELS multifd channels (default 1),
# RUNS runs per mode (default 3); each run's figures are printed as it
# ends, so a run cut short by vmcheck's timeout still shows what it got.  Throughput is page data / (total time -
# setup) from the source's report; the table gives the median per mode and
# its ratio to plain.  Figures are TCG's: the ratios are what to read.
# Prints figures, not TAP.
vmig=/usr/bin/vmig
RUNS=${RUNS:-3}
SIZE=${SIZE:-128M}
T=/tmp/ktlsb
mkdir -p $T
port=5400
# wait_for: scripts/lib/vmig.sh, in the guest's /usr/bin (VMCHECK_EXTRA).
. /usr/bin/vmig.sh

field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" "$2"; }

# one CHANNELS KTLS(on|off) "tls args": one migration; prints Gbit/s (0 if it failed).
one() {
	port=$((port + 1))
	rm -f $T/*.sock
	# The files waited on are emptied first: a job's own > truncates only
	# once the job runs, and the last run's lines would do.
	: >$T/dg.out
	: >$T/sg.out
	$vmig guest --socket $T/dst.sock --mem $SIZE --incoming --run 0 --lifetime 900 \
		--backend kmod >$T/dg.out 2>$T/dg.err &
	dg=$!
	$vmig guest --socket $T/src.sock --mem $SIZE --pattern idle --lifetime 900 \
		--backend kmod >$T/sg.out 2>$T/sg.err &
	sg=$!
	wait_for $T/dg.out "guest: ready" 120
	: >$T/ls.err
	VMIG_KTLS=$2 $vmig listen --vmm $T/dst.sock --port 127.0.0.1:$port --no-progress \
		--timeout 60 $3 >$T/ls.out 2>$T/ls.err &
	ls=$!
	wait_for $T/ls.err "waiting for a source" 60
	wait_for $T/sg.out "guest: ready" 120
	VMIG_KTLS=$2 $vmig migrate --vmm $T/src.sock --to 127.0.0.1:$port --multifd $1 \
		--json --no-progress --timeout 60 $3 >$T/m.json 2>$T/m.err
	wait $ls
	wait $dg
	kill $sg 2>/dev/null
	wait $sg 2>/dev/null
	if grep -q '"ok":true' $T/m.json; then
		awk -v b="$(field throughput_bps $T/m.json)" 'BEGIN {printf "%.3f", b * 8 / 1e9}'
	else
		echo "# failed: $(tail -n 2 $T/m.err)" >&2
		echo 0
	fi
}

median() { tr ' ' '\n' | sort -n | awk 'NF {a[++n] = $1} END {print a[int((n + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.0f %%", 100 * a / b; else print "-"}'; }

c=$T/creds
mkdir -p $c
export OPENSSL_CONF=/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout $c/ca.key -out $c/ca.pem -subj "/CN=vmig bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $c/key.pem \
	-out $c/req.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >$c/ext
openssl x509 -req -in $c/req.csr -CA $c/ca.pem -CAkey $c/ca.key -CAcreateserial \
	-days 1 -extfile $c/ext -out $c/cert.pem 2>/dev/null
(umask 077; echo "vmig:$(openssl rand -hex 32)" >$T/key.psk)
unset OPENSSL_CONF
X509="--tls-creds $c"
PSK="--tls-psk $T/key.psk"

echo "# ktls_bench: kernel $(uname -r), $(nproc) vCPUs (TCG), $(openssl version)"
echo "# tls ULP: $(cat /proc/sys/net/ipv4/tcp_available_ulp); $SIZE idle guest, kmod backend, $RUNS runs per mode, interleaved"
echo "# load average in the guest at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| channels | plain Gbit/s | x509 kTLS | x509 OpenSSL | PSK kTLS | PSK OpenSSL | x509 kTLS / OpenSSL | PSK kTLS / OpenSSL | runs (plain; x509 k; x509 o; PSK k; PSK o) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for n in ${CHANNELS:-1}; do
	pl="" xk="" xo="" pk="" po=""
	tx0=$(awk '$1 == "TlsTxSw" {print $2}' /proc/net/tls_stat 2>/dev/null)
	for _ in $(seq "$RUNS"); do
		a=$(one $n on "--insecure") b=$(one $n on "$X509") c=$(one $n off "$X509")
		d=$(one $n on "$PSK") e=$(one $n off "$PSK")
		echo "# run: $n channel(s), Gbit/s: plain $a, x509 kTLS $b, x509 OpenSSL $c, PSK kTLS $d, PSK OpenSSL $e"
		pl="$pl $a" xk="$xk $b" xo="$xo $c" pk="$pk $d" po="$po $e"
	done
	tx1=$(awk '$1 == "TlsTxSw" {print $2}' /proc/net/tls_stat 2>/dev/null)
	mp=$(echo $pl | median) mxk=$(echo $xk | median) mxo=$(echo $xo | median)
	mpk=$(echo $pk | median) mpo=$(echo $po | median)
	echo "| $n | $mp | $mxk ($(ratio $mxk $mp)) | $mxo ($(ratio $mxo $mp)) |" \
		"$mpk ($(ratio $mpk $mp)) | $mpo ($(ratio $mpo $mp)) | $(ratio $mxk $mxo) |" \
		"$(ratio $mpk $mpo) |$pl;$xk;$xo;$pk;$po |"
	echo "# $n channel(s): kernel TLS TX sessions opened during these runs: $((tx1 - tx0))"
done
echo
echo "# load average in the guest at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
