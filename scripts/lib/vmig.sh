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
#   vmig_x509 DIR [SAN_EXTRA]
#                            DIR/{ca,cert,key}.pem: a CA of its own and a
#                            certificate for 127.0.0.1 and localhost (and
#                            SAN_EXTRA, e.g. ",DNS:x") signed by it (openssl)
#   vmig_psk FILE            a new pre-shared key for --tls-psk in FILE
#   free_port                a TCP port free on 127.0.0.1 now
#   wait_for FILE PATTERN [SECONDS [PID]]
#                            until PATTERN is in FILE (20 s; 1 if PID exits)
#   must_wait_for FILE PATTERN [SECONDS [PID]]
#                            wait_for, or show FILE and exit 1 (benchmarks)
#   wait_pid PID SECONDS     its exit status; 124 after killing it on timeout
#   bench_guests BIN MEM "src guest args" "dst guest args"
#                            in VMIG_TMP, the last run's sockets and output
#                            gone: a destination guest (dst.sock, incoming,
#                            --run 0; pid in BENCH_DG) and a source guest
#                            (src.sock), tracked; returns once the
#                            destination is ready (benchmarks)
#   bench_listen CMD...      a listener (CMD: vmig listen --vmm
#                            $VMIG_TMP/dst.sock ..., maybe behind a wrapper)
#                            in the background, output in ls.out and ls.err,
#                            pid in BENCH_LS, tracked; returns once it waits
#                            for a source and the source guest is ready
#
#   huge_tmpfs DIR SIZE      a tmpfs mounted huge=always at DIR (made), for
#                            `vmig guest --mem-path`, unmounted by the
#                            cleanup; 1 with the reason in HUGE_WHY if it
#                            cannot be had (not root, no THP)
#
# VMIG_AT_EXIT: a command the cleanup runs once the processes are gone and
# before VMIG_TMP is (e.g. to save results).

vmig_cleanup() {
	local p
	for p in $VMIG_PIDS; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "${VMIG_AT_EXIT:-}" ] || eval "$VMIG_AT_EXIT" || true
	for p in ${VMIG_MOUNTS:-}; do umount "$p" 2>/dev/null || true; done
	[ -n "${VMIG_TMP:-}" ] && rm -rf "$VMIG_TMP"
	return 0
}

vmig_setup() {
	VMIG_PIDS=
	VMIG_TMP=$(mktemp -d "/tmp/$1.XXXXXX")
	trap vmig_cleanup EXIT
	vmig_token "$VMIG_TMP"
}

huge_tmpfs() {
	HUGE_WHY=
	if [ ! -e /sys/kernel/mm/transparent_hugepage/shmem_enabled ]; then
		HUGE_WHY="no transparent huge pages for shmem in this kernel"
		return 1
	fi
	mkdir -p "$1"
	if ! HUGE_WHY=$(mount -t tmpfs -o "huge=always,size=$2,mode=0700" vmig-huge "$1" 2>&1); then
		HUGE_WHY="cannot mount a huge=always tmpfs at $1: $HUGE_WHY"
		return 1
	fi
	VMIG_MOUNTS="${VMIG_MOUNTS:-} $1"
}

# vmig listen/migrate refuse to run without a choice of who may connect.
vmig_token() {
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$1/token")
	AUTH="--token-file $1/token"
	VMIG_TOKEN_FILE=$1/token	# the python peers (vmig_auth.py) use it too
	export VMIG_TOKEN_FILE
}

vmig_x509() {
	mkdir -p "$1" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$1/ca.key" -out "$1/ca.pem" -subj "/CN=vmig test CA ${1##*/}" 2>/dev/null &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1/key.pem" -out "$1/req.csr" -subj "/CN=localhost" 2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost%s\n' "${2:-}" >"$1/ext" &&
	openssl x509 -req -in "$1/req.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
		-CAcreateserial -days 2 -extfile "$1/ext" -out "$1/cert.pem" 2>/dev/null
}

vmig_psk() {
	(umask 077 && echo "vmig:$(openssl rand -hex 32)" >"$1")
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

# shellcheck disable=SC2086  # the guest args are lists of words
bench_guests() {
	rm -f "$VMIG_TMP"/*.sock "$VMIG_TMP"/*.out "$VMIG_TMP"/*.err
	$1 guest --socket "$VMIG_TMP/dst.sock" --mem "$2" --incoming --run 0 $4 \
		>"$VMIG_TMP/dg.out" 2>"$VMIG_TMP/dg.err" &
	BENCH_DG=$!
	vmig_track $BENCH_DG
	$1 guest --socket "$VMIG_TMP/src.sock" --mem "$2" $3 >"$VMIG_TMP/sg.out" 2>"$VMIG_TMP/sg.err" &
	vmig_track $!
	must_wait_for "$VMIG_TMP/dg.out" "guest: ready" 120
}

bench_listen() {
	"$@" >"$VMIG_TMP/ls.out" 2>"$VMIG_TMP/ls.err" &
	BENCH_LS=$!
	vmig_track $BENCH_LS
	must_wait_for "$VMIG_TMP/ls.err" "waiting for a source" 120
	must_wait_for "$VMIG_TMP/sg.out" "guest: ready" 120
}
