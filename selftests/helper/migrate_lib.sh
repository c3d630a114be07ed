# SPDX-License-Identifier: GPL-2.0
# Helpers for end-to-end migration tests on loopback: start guests and
# helpers, wait for them with bounds, and clean up every process started.
# Source after tap.sh.  Uses $VMIG (the binary under test).

MIG_TMP=$(mktemp -d /tmp/vmig-test.XXXXXX)
MIG_PIDS=()
mig_cleanup() {
	local p
	for p in "${MIG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$MIG_TMP"
}
trap mig_cleanup EXIT

# Who may connect: a token both sides hold (vmig refuses to run without a
# choice).  A test may set MIG_AUTH to other options (--insecure, TLS).
MIG_TOKEN=$MIG_TMP/token
(umask 077 && openssl rand -hex 32 >"$MIG_TOKEN")
MIG_AUTH=${MIG_AUTH:---token-file $MIG_TOKEN}
export VMIG_TOKEN_FILE=$MIG_TOKEN	# the python peers (vmig_auth.py) use it too
# auth_args ARGS: $MIG_AUTH, unless ARGS choose for themselves.
auth_args() {
	case " $1 " in
	*" --tls-"* | *" --insecure "* | *" --token-file "*) ;;
	*) echo "$MIG_AUTH" ;;
	esac
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE PATTERN [SECONDS]: until PATTERN appears in FILE.
wait_for() {
	local i
	for ((i = 0; i < ${3:-20} * 10; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "# timed out waiting for '$2' in $1" >&2
	return 1
}

# wait_pid PID SECONDS: its exit status, or 124 after killing it on timeout.
wait_pid() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return $?; }
		sleep 0.1
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

# start NAME CMD...: run in the background, output in $MIG_TMP/NAME.{out,err};
# the pid lands in PID_<NAME>.
start() {
	local name=$1
	shift
	"$@" >"$MIG_TMP/$name.out" 2>"$MIG_TMP/$name.err" &
	MIG_PIDS+=($!)
	printf -v "PID_$name" %s $!
}

# A destination pair (guest + listener) and a source guest, named by prefix.
# dest_pair PREFIX "guest args" "listen args"
dest_pair() {
	local p=$1
	start "${p}dg" "$VMIG" guest --socket "$MIG_TMP/${p}dst.sock" --incoming --lifetime 120 $2
	wait_for "$MIG_TMP/${p}dg.out" "guest: ready" || return 1
	printf -v "PORT_$p" %s "$(free_port)"
	local port_var="PORT_$p"
	start "${p}ls" "$VMIG" listen --vmm "$MIG_TMP/${p}dst.sock" --port "127.0.0.1:${!port_var}" \
		--timeout 5 --no-progress $(auth_args "$3") $3
	wait_for "$MIG_TMP/${p}ls.err" "waiting for a source"
}

src_guest() {
	local p=$1
	start "${p}sg" "$VMIG" guest --socket "$MIG_TMP/${p}src.sock" --lifetime 120 $2
	wait_for "$MIG_TMP/${p}sg.out" "guest: ready"
}

# migrate PREFIX DEST_PREFIX "args": runs in the foreground; JSON report in $MIG_TMP/PREFIX.json
migrate() {
	local port_var="PORT_$2"
	timeout 120 "$VMIG" migrate --vmm "$MIG_TMP/${1}src.sock" --to "127.0.0.1:${!port_var}" \
		--json --timeout 5 $(auth_args "$3") $3 >"$MIG_TMP/$1.json" 2>"$MIG_TMP/$1.merr"
}

# json FILE EXPR: evaluate a python expression on the report d (the last
# line: with --json, events as JSON lines may come before it).
json() {
	python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}

# events FILE REGEX: every line parses as JSON, the last is the report, and
# the names of the events before it, joined by spaces, match REGEX whole.
events() {
	python3 -c '
import json, re, sys
lines = [json.loads(l) for l in open(sys.argv[1]).read().strip().splitlines()]
got = " ".join(l["event"] for l in lines[:-1])
ok = re.fullmatch(sys.argv[2], got) is not None and "event" not in lines[-1] and "role" in lines[-1]
ok = ok and all(isinstance(l["time"], float) for l in lines[:-1])
if not ok:
    print("# events: got \"%s\", want \"%s\"" % (got, sys.argv[2]))
sys.exit(0 if ok else 1)' "$1" "$2"
}

# Show what a failed check was about.
dump() {
	local f
	for f in "$@"; do
		[ -f "$MIG_TMP/$f" ] && sed "s/^/# $f: /" "$MIG_TMP/$f" | tail -n 8
	done
	return 0
}
