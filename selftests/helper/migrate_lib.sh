# SPDX-License-Identifier: GPL-2.0
# Helpers for end-to-end migration tests on loopback: start guests and
# helpers by name, migrate, check the report.  Source after tap.sh; the
# scratch directory, cleanup, token and waits come from scripts/lib/vmig.sh.
# Uses $VMIG (the binary under test).

# shellcheck source=../../scripts/lib/vmig.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/vmig.sh"
vmig_setup vmig-test
MIG_TMP=$VMIG_TMP
MIG_TOKEN=$VMIG_TMP/token

# A test may set MIG_AUTH to other options (--insecure, TLS).
MIG_AUTH=${MIG_AUTH:-$AUTH}
# auth_args ARGS: $MIG_AUTH, unless ARGS choose for themselves.
auth_args() {
	case " $1 " in
	*" --tls-"* | *" --insecure "* | *" --token-file "*) ;;
	*) echo "$MIG_AUTH" ;;
	esac
}

# start NAME CMD...: run in the background, output in $MIG_TMP/NAME.{out,err};
# the pid lands in PID_<NAME>.
start() {
	local name=$1
	shift
	"$@" >"$MIG_TMP/$name.out" 2>"$MIG_TMP/$name.err" &
	vmig_track $!
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

# mig_start P "dst guest args" "listen args" "src guest args" "migrate args":
# a destination pair, a source guest and the migration (in the foreground),
# all named P; the migration's exit code in RC_M.
mig_start() {
	dest_pair "$1" "$2" "$3" && src_guest "$1" "$4" && migrate "$1" "$1" "$5"
	RC_M=$?
}

# mig_wait P LISTEN_S DST_GUEST_S SRC_GUEST_S: wait for each (seconds); their
# exit codes in RC_L RC_D RC_S.
mig_wait() {
	local dpid="PID_${1}dg" lpid="PID_${1}ls" spid="PID_${1}sg"
	wait_pid "${!lpid}" "$2"; RC_L=$?
	wait_pid "${!dpid}" "$3"; RC_D=$?
	wait_pid "${!spid}" "$4"; RC_S=$?
}

# mig_run P "src guest args" "dst guest args" "migrate args" ["listen args"]:
# one migration of a 64 MiB guest the destination verifies page by page;
# exit codes in RC_M (migrate) RC_L (listen) RC_D (destination guest) RC_S
# (source guest).
mig_run() {
	mig_start "$1" "--mem 64M --verify-all --run 0 $3" "--json ${5:-}" "--mem 64M $2" "$4"
	mig_wait "$1" 60 60 5
}

# mig_in_postcopy P "listen args" "migrate args": a 64 MiB destination
# verifying every page, a source guest dirtying random pages, and a
# migration in the background (start P"m": output in P"m".out, P"m".err);
# returns once the guest runs on the destination, pages still missing (with
# a slow enough migration).
mig_in_postcopy() {
	local p=$1 port_var="PORT_$1"
	dest_pair "$p" "--mem 64M --verify-all --run 1" "--json --recovery-timeout 60 $2"
	src_guest "$p" "--mem 64M --pattern random --dirty-rate 50"
	start "${p}m" "$VMIG" migrate $(auth_args "$3") --vmm "$MIG_TMP/${p}src.sock" \
		--to "127.0.0.1:${!port_var}" --json --timeout 5 --no-progress $3
	wait_for "$MIG_TMP/${p}ls.err" "postcopy: the guest runs here" 30
}

# mig_all_ok NAME P: check that all four of mig_start/mig_wait P exited 0;
# show why not.
mig_all_ok() {
	check "$1" test $RC_M -eq 0 -a $RC_L -eq 0 -a $RC_D -eq 0 -a $RC_S -eq 0
	[ $RC_M -eq 0 ] && [ $RC_D -eq 0 ] && [ $RC_L -eq 0 ] ||
		dump "$2.json" "$2.merr" "${2}ls.err" "${2}ls.out" "${2}dg.err" "${2}sg.err"
}

# mig_verified NAME P: after a migration to P's pair (its exit code in
# RC_M), check that it, P's listener and destination guest all ended well
# and the guest verified every page; show why not.
mig_verified() {
	local lpid="PID_${2}ls" dpid="PID_${2}dg"
	wait_pid "${!lpid}" 20; RC_L=$?
	wait_pid "${!dpid}" 20; RC_D=$?
	check "$1" test $RC_M -eq 0 -a $RC_L -eq 0 -a $RC_D -eq 0 -a \
		-n "$(grep 'verify-all after resume: .* 0 errors' "$MIG_TMP/${2}dg.err")"
	[ $RC_M -eq 0 ] && [ $RC_D -eq 0 ] || dump "$2.merr" "${2}ls.err" "${2}dg.err"
}

# mig_ok NAME P: check that mig_run P succeeded; show why not.
mig_ok() {
	local name=$1 p=$2
	check "$name: migrated, destination guest verified" test $RC_M -eq 0 -a $RC_L -eq 0 -a $RC_D -eq 0
	[ $RC_M -eq 0 ] && [ $RC_D -eq 0 ] || dump "$p.json" "$p.merr" "${p}ls.err" "${p}dg.err" "${p}sg.err"
}

# json FILE EXPR: evaluate a python expression on the report d (the last
# line: with --json, events as JSON lines may come before it).
json() {
	python3 -c '
import json, sys
line = open(sys.argv[1]).read().strip().splitlines()[-1]
d = json.loads(line)
if eval(sys.argv[2]):
    sys.exit(0)
# A false check says what it saw (the file is gone after the run).
print("# false: %s\n# in %s: %s" % (sys.argv[2], sys.argv[1], line[:4000]))
sys.exit(1)' "$1" "$2"
}

# json_both FILE1 EXPR1 FILE2 EXPR2: json on two reports (one check of both).
json_both() {
	json "$1" "$2" && json "$3" "$4"
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

# has FILE PATTERN: PATTERN is in $MIG_TMP/FILE.
has() { grep -q -- "$2" "$MIG_TMP/$1"; }

# Show what a failed check was about.
dump() {
	local f
	for f in "$@"; do
		[ -f "$MIG_TMP/$f" ] && sed "s/^/# $f: /" "$MIG_TMP/$f" | tail -n 8
	done
	return 0
}
