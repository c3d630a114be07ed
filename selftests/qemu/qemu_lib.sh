# SPDX-License-Identifier: GPL-2.0
# qemu_lib.sh: run QEMU virtual machines from a shell (busybox sh in the
# module's test VM, or bash on a host) and talk QMP to them.  Source it.
#
# Each VM has a NAME and a directory $QEMU_WORK/NAME holding:
#   console.log   the guest's serial console (ttyS0), appended as it runs
#   ctl.in        its second serial port (ttyS1), input side: a FIFO; a line
#                 written here reaches the guest (qemu_ctl)
#   qmp.in        QMP commands go here (a FIFO; -mon mode=control on a pipe
#                 chardev: no socket client needed)
#   qmp.log       everything QEMU said on QMP: greeting, replies, events
#   qmp.sock      with QEMU_QMP_SOCK=1: a second QMP monitor on a UNIX socket
#                 (server, nowait), for a program such as `vmig qemu --qmp`
#   qemu.err      QEMU's stderr;  pid  QEMU's pid
#
# Functions (return 0 on success; on failure they say why on stdout as a
# "# ..." TAP comment and return non-zero):
#   qemu_start NAME RAM [QEMU-ARGS...]
#       start a VM; RAM is "anon" (memory-backend-ram) or a file path for
#       memory-backend-file,mem-path=RAM,share=on (created by QEMU if
#       missing).  Extra arguments go to QEMU (e.g. -incoming defer -S).
#       Returns once QMP answered qmp_capabilities.
#   qmp NAME COMMAND [ARGUMENTS-JSON] [TIMEOUT]
#       send {"execute":COMMAND,"arguments":ARGS,"id":...}, wait for the
#       reply with that id, print it; non-zero if it is an error or none came
#   qmp_ok NAME COMMAND [ARGUMENTS-JSON] [TIMEOUT]
#       the same, silent on success; on failure says which command and
#       what QEMU answered, as a "# " comment
#   qmp_field REPLY KEY    print the first "KEY": value of a reply (a string
#       without quotes, or a number / true / false)
#   qmp_mark NAME          print qmp.log's line count, for qmp_wait_event
#   qmp_wait_event NAME EVENT TIMEOUT [FROM-LINE]
#   qemu_wait_status NAME STATUS TIMEOUT     poll query-status
#   qemu_wait_migration NAME TIMEOUT         poll query-migrate until it
#       completes (0) or fails/cancels (1); prints the last reply
#   qemu_boot NAME RAM TIMEOUT [QEMU-ARGS...]
#       qemu_start, then wait for the guest's workload (WL-READY); a guest
#       that reset itself during that boot with no panic is booted once more
#   qemu_wait_console NAME PATTERN TIMEOUT [FROM-LINE]  (fails at once when
#       QEMU is gone)
#   qemu_diag NAME     why QEMU NAME exited, or what its threads are doing
#   qemu_console_lines NAME                  line count of console.log
#   qemu_ctl NAME LINE                       write LINE to the guest's ttyS1
#   qemu_verify NAME SEQ TIMEOUT
#       ask guest_workload for a full verification pass ("verify SEQ") and
#       wait for its "WL-VERIFY SEQ" line; 0 if it says ok, 1 if FAIL,
#       2 if none came
#   qemu_where NAME SEQ TIMEOUT
#       ask guest_workload for a data page it then stops writing; prints
#       the page's guest frame number (its offset in the RAM file / 4096)
#   qemu_accel NAME        print kvm or tcg: what the VM runs on (query-kvm)
#   qemu_stop NAME         QMP quit, then kill if it lingers
#   qemu_stop_all          every VM this shell started
#
# Environment (read by qemu_start):
#   QEMU_WORK=/tmp/qemu    where the VM directories go
#   QEMU_DIR=/qemu         the inner guest: vmlinuz and guest-initrd.gz
#   QEMU_MEM=256M          guest RAM;   QEMU_SMP=1  vCPUs
#   QEMU_ACCEL=auto        kvm (-cpu host), tcg (-cpu max), or auto: KVM where a
#                          probe VM runs on it, else TCG
#   QEMU_APPEND=           more kernel command line (wl.NAME=VALUE words are
#                          guest_workload options, see guest-init.sh)
#   QEMU_QMP_SOCK=0        1: add the qmp.sock monitor
#   QEMU_BIN=qemu-system-x86_64
QEMU_WORK=${QEMU_WORK:-/tmp/qemu}
QEMU_DIR=${QEMU_DIR:-/qemu}
QEMU_BIN=${QEMU_BIN:-qemu-system-x86_64}
qemu_names=

# The accelerator auto picks: KVM where a VM with -cpu host gets through its
# first vCPU reset (a /dev/kvm that opens is not enough: some hosts refuse
# QEMU's MSRs), else TCG.  Probed once per $QEMU_WORK.
qemu_pick_accel() {
	case ${QEMU_ACCEL:-auto} in
	kvm | tcg) echo "$QEMU_ACCEL"; return ;;
	esac
	mkdir -p "$QEMU_WORK"
	if [ ! -s "$QEMU_WORK/.accel" ]; then
		if [ -c /dev/kvm ] && : 2>/dev/null <>/dev/kvm &&
			printf '{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n' |
			timeout 60 "$QEMU_BIN" -nodefaults -no-user-config -display none \
				-machine q35 -accel kvm -cpu host -m 32 -S -qmp stdio \
				>"$QEMU_WORK/.kvm-probe" 2>&1; then
			echo kvm >"$QEMU_WORK/.accel"
		else
			echo tcg >"$QEMU_WORK/.accel"
		fi
	fi
	cat "$QEMU_WORK/.accel"
}

# _qemu_wait_grep FILE PATTERN TIMEOUT [FROM-LINE]: a line matching PATTERN
# (grep -E) after line FROM-LINE; prints it.
_qemu_wait_grep() {
	local i=0 from=${4:-0} line
	while [ $i -lt $(($3 * 10)) ]; do
		line=$(tail -n +$((from + 1)) "$1" 2>/dev/null | grep -E -m 1 -- "$2" | tr -d "\r")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

qemu_start() {
	local name=$1 ram=$2 d=$QEMU_WORK/$1 mem=${QEMU_MEM:-256M} accel backend cpu append
	shift 2
	rm -rf "$d"
	mkdir -p "$d"
	mkfifo "$d/qmp.in" "$d/qmp.out" "$d/ctl.in" "$d/ctl.out"
	: >"$d/qmp.log"
	: >"$d/console.log"
	echo 0 >"$d/qmp.seq"
	if [ "$ram" = anon ]; then
		backend=memory-backend-ram,id=ram,size=$mem
	else
		backend=memory-backend-file,id=ram,size=$mem,mem-path=$ram,share=on
	fi
	accel=$(qemu_pick_accel)
	# KVM runs the host's CPU model; TCG the richest it emulates.  Under
	# nested KVM in the TCG test VM, CPUID's XSAVE sizes disagree with
	# the features and Linux WARNs at boot (fpu__init_system_xstate):
	# the guest does without XSAVE there (noxsave; FXSAVE instead).
	# A TCG guest keeps time by the HPET: its TSC is the host's raw TSC,
	# which can leap (see scripts/vmcheck.sh).
	cpu=max append=clocksource=hpet
	[ "$accel" = kvm ] && cpu=host append=noxsave
	# Threads named (debug-threads: "CPU 0/KVM", ...) so that the module's
	# traces tell a vCPU's fault from the main loop's (device load).
	# The reader first: it holds qmp.out open for as long as QEMU lives.
	cat "$d/qmp.out" >>"$d/qmp.log" &
	echo $! >"$d/reader.pid"
	# shellcheck disable=SC2046
	"$QEMU_BIN" -nodefaults -no-user-config -display none -no-reboot \
		-name "$name,debug-threads=on" \
		-machine q35,memory-backend=ram -accel "$accel" -cpu "$cpu" \
		-smp "${QEMU_SMP:-1}" -m "$mem" -object "$backend" \
		-kernel "$QEMU_DIR/vmlinuz" -initrd "$QEMU_DIR/guest-initrd.gz" \
		-append "console=ttyS0 loglevel=4 panic=-1 $append ${QEMU_APPEND:-}" \
		-chardev file,id=con,path="$d/console.log" -serial chardev:con \
		-chardev pipe,id=ctl,path="$d/ctl" -serial chardev:ctl \
		-chardev pipe,id=qmp,path="$d/qmp" -mon chardev=qmp,mode=control \
		$([ "${QEMU_QMP_SOCK:-0}" = 1 ] && echo "-qmp unix:$d/qmp.sock,server=on,wait=off") \
		"$@" </dev/null >"$d/qemu.out" 2>"$d/qemu.err" &
	echo $! >"$d/pid"
	echo "$accel" >"$d/accel"
	qemu_names="$qemu_names $name"
	if ! _qemu_wait_grep "$d/qmp.log" '"QMP"' 60 >/dev/null; then
		echo "# qemu $name: no QMP greeting in 60 s; its stderr:"
		sed 's/^/#   /' "$d/qemu.err" | tail -n 10
		return 1
	fi
	qmp "$name" qmp_capabilities >/dev/null
}

qmp() {
	local d=$QEMU_WORK/$1 cmd=$2 args=${3:-} tmo=${4:-60} seq msg reply
	seq=$(($(cat "$d/qmp.seq") + 1))
	echo $seq >"$d/qmp.seq"
	msg="{\"execute\":\"$cmd\""
	[ -n "$args" ] && msg="$msg,\"arguments\":$args"
	msg="$msg,\"id\":\"q$seq\"}"
	if ! qemu_alive "$1"; then
		echo "# qemu $1 is not running (for $cmd)"
		qemu_gone "$1"
		return 1
	fi
	echo "$msg" 1<>"$d/qmp.in"
	reply=$(_qemu_wait_grep "$d/qmp.log" "\"id\": \"q$seq\"" "$tmo")
	if [ -z "$reply" ]; then
		echo "# qemu $1: no reply to $cmd in ${tmo} s"
		qemu_diag "$1"
		return 1
	fi
	echo "$reply"
	case $reply in
	*'"error"'*) return 1 ;;
	esac
	return 0
}

qmp_ok() {
	local r
	r=$(qmp "$@") && return 0
	echo "# qemu $1: $2 failed: $r"
	return 1
}

qmp_field() {
	echo "$1" | sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1
}

qmp_mark() {
	wc -l <"$QEMU_WORK/$1/qmp.log"
}

qmp_wait_event() {
	_qemu_wait_grep "$QEMU_WORK/$1/qmp.log" "\"event\": \"$2\"" "$3" "${4:-0}"
}

qemu_wait_status() {
	local i=0 r
	while [ $i -lt $(($3 * 2)) ]; do
		r=$(qmp "$1" query-status) || return 1
		[ "$(qmp_field "$r" status)" = "$2" ] && return 0
		sleep 0.5
		i=$((i + 1))
	done
	echo "# qemu $1: status $(qmp_field "$r" status), not $2, after $3 s"
	return 1
}

qemu_wait_migration() {
	local i=0 r st
	while [ $i -lt $(($2 * 5)) ]; do
		r=$(qmp "$1" query-migrate) || { echo "$r"; return 1; }
		st=$(qmp_field "$r" status)
		case $st in
		completed)
			# QEMU 7.2 says "completed" a moment before it fills in
			# total-time and downtime (0 until then): ask again.
			i=0
			while [ "$(qmp_field "$r" total-time)" = 0 ] && [ $i -lt 25 ]; do
				sleep 0.2
				r=$(qmp "$1" query-migrate) || { echo "$r"; return 1; }
				i=$((i + 1))
			done
			echo "$r"
			return 0 ;;
		failed | cancelled) echo "$r"; echo "# qemu $1: migration $st"; return 1 ;;
		esac
		sleep 0.2
		i=$((i + 1))
	done
	echo "$r"
	echo "# qemu $1: migration still $st after $2 s"
	return 1
}

qemu_console_lines() {
	wc -l <"$QEMU_WORK/$1/console.log"
}

qemu_wait_console() {
	local d=$QEMU_WORK/$1 i=0 from=${4:-0} line
	while [ $i -lt $(($3 * 10)) ]; do
		line=$(tail -n +$((from + 1)) "$d/console.log" 2>/dev/null | grep -E -m 1 -- "$2" | tr -d "\r")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		# A guest whose QEMU is gone prints nothing more: fail now,
		# not at the timeout (the caller says why: qemu_diag).
		if [ $((i % 10)) = 0 ] && ! qemu_alive "$1"; then
			# What it wrote before it went is read once more.
			line=$(tail -n +$((from + 1)) "$d/console.log" 2>/dev/null |
				grep -E -m 1 -- "$2" | tr -d "\r")
			[ -n "$line" ] && echo "$line"
			[ -n "$line" ]
			return
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# qemu_alive NAME: QEMU NAME's process runs (an exited one this shell has
# not reaped yet still answers kill -0: its state says zombie).
qemu_alive() {
	local pid st
	pid=$(cat "$QEMU_WORK/$1/pid" 2>/dev/null)
	[ -n "$pid" ] && st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null) &&
		[ "$st" != Z ] && [ "$st" != X ]
}

# qemu_shutdown_reason NAME: the reason of QEMU NAME's SHUTDOWN event, once
# the reader of its QMP output has written all of it (it ends with QEMU).
qemu_shutdown_reason() {
	local d=$QEMU_WORK/$1 i=0
	while kill -0 "$(cat "$d/reader.pid" 2>/dev/null)" 2>/dev/null && [ $i -lt 20 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	grep -m 1 '"event": "SHUTDOWN"' "$d/qmp.log" | sed -n 's/.*"reason": *"\([^"]*\)".*/\1/p'
}

# qemu_gone NAME: QEMU NAME has exited: say so, with its SHUTDOWN event (the
# reason) and the end of its stderr, as "# " comments.  A guest that reset
# with no panic on its console (a triple fault; under -no-reboot QEMU
# exits, "guest-reset") is named so; with QEMU_RESET_IS_ENV=1 (set where no
# vmig touched that guest's memory: its own boot, QEMU's own migrations) in
# the words vmcheck.sh's VMCHECK_RETRY knows as nested KVM under TCG failing.
qemu_gone() {
	local d=$QEMU_WORK/$1 ev
	ev=$(qemu_shutdown_reason "$1")
	echo "# qemu $1 (pid $(cat "$d/pid" 2>/dev/null)) has exited; SHUTDOWN reason: ${ev:-none}; its stderr:"
	tail -n 15 "$d/qemu.err" | sed 's/^/#   /'
	case $ev in
	guest-reset)
		if grep -Eq 'Kernel panic|Oops|BUG:|general protection|invalid opcode' "$d/console.log"; then
			echo "# qemu $1: the guest kernel failed and reset (its console):"
			grep -E -A 8 'Kernel panic|Oops|BUG:|general protection|invalid opcode' \
				"$d/console.log" | head -n 30 | tr 'a-z:' 'A-Z;' | sed 's/^/#   /'
		elif [ "${QEMU_RESET_IS_ENV:-0}" = 1 ]; then
			echo "# qemu $1: the inner guest reset itself, no panic on its console" \
				"(a triple fault)"
		else
			echo "# qemu $1: the guest reset with no panic on its console (a triple" \
				"fault)"
		fi ;;
	esac
}

# qemu_diag NAME: what QEMU NAME is doing, for a failure's report: gone (and
# why), or its threads (state, wait channel, kernel stack) and the end of
# its stderr.
qemu_diag() {
	local d=$QEMU_WORK/$1 pid t
	qemu_alive "$1" || { qemu_gone "$1"; return 0; }
	pid=$(cat "$d/pid")
	echo "# qemu $1 (pid $pid) runs; its threads:"
	for t in /proc/"$pid"/task/*; do
		echo "#   $(cat "$t/comm") $(sed 's/^.*) \(.\).*/\1/' "$t/stat") $(cat "$t/wchan" 2>/dev/null)"
		sed -n '1,8s/^/#     /p' "$t/stack" 2>/dev/null
	done
	echo "# qemu $1: its stderr:"
	tail -n 15 "$d/qemu.err" | sed 's/^/#   /'
}

# qemu_reset_at_boot NAME: QEMU NAME exited because its guest reset with no
# panic on its console.
qemu_reset_at_boot() {
	! qemu_alive "$1" && [ "$(qemu_shutdown_reason "$1")" = guest-reset ] &&
		! grep -Eq 'Kernel panic|Oops|BUG:|general protection|invalid opcode' \
			"$QEMU_WORK/$1/console.log"
}

qemu_boot() {
	local name=$1 ram=$2 tmo=$3 try
	shift 3
	for try in 1 2; do
		qemu_start "$name" "$ram" "$@" || return 1
		qemu_wait_console "$name" '^WL-READY' "$tmo" >/dev/null && return 0
		[ $try = 1 ] && qemu_reset_at_boot "$name" || break
		# Nested KVM under multi-threaded TCG (docs/testing.md); before
		# any migration, so a second boot tells nothing vmig did.
		echo "# qemu $name: the guest reset during its boot with no panic on its" \
			"console (a triple fault): booting it once more"
		qemu_stop "$name"
	done
	echo "# qemu $name: the inner guest did not reach its workload in $tmo s; console tail:"
	tail -n 20 "$QEMU_WORK/$name/console.log" | tr 'a-z:' 'A-Z;' | sed 's/^/#   /'
	local QEMU_RESET_IS_ENV=1	# its boot: no vmig in it yet
	qemu_diag "$name"
	return 1
}

qemu_ctl() {
	echo "$2" 1<>"$QEMU_WORK/$1/ctl.in"
}

qemu_verify() {
	local from line
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "verify $2"
	# The whole line (its last field): QEMU writes the file as bytes arrive.
	line=$(qemu_wait_console "$1" "^WL-VERIFY $2 .* dmesg=(clean|errors)" "$3" "$from")
	if [ -z "$line" ]; then
		echo "# qemu $1: no verification report $2 in $3 s; console tail:"
		tail -n 10 "$QEMU_WORK/$1/console.log" | sed 's/^/#   /'
		qemu_diag "$1"
		return 2
	fi
	# The inner guest's kernel-log lines, upper-cased and ':' as ';': the
	# outer VM's own log check (vmcheck.sh) must not take them for its own.
	tail -n +$((from + 1)) "$QEMU_WORK/$1/console.log" | grep -E '^WL-(BAD|STATS|LAT|DMESG)' |
		sed "s/^/# $1: /"
	tail -n +$((from + 1)) "$QEMU_WORK/$1/console.log" | grep -E '^WL-KLOG' |
		tr 'a-z:' 'A-Z;' | sed "s/^/# $1 (inner kernel log): /"
	echo "# $1: $line"
	case $line in
	*" ok "*) return 0 ;;
	esac
	return 1
}

qemu_where() {
	local from line
	from=$(qemu_console_lines "$1")
	qemu_ctl "$1" "where $2"
	line=$(qemu_wait_console "$1" "^WL-WHERE $2 .* end" "$3" "$from") || return 1
	line=${line#*pfn=}
	line=${line%% *}
	case $line in
	'' | *[!0-9]*) return 1 ;;
	esac
	echo "$line"
}

qemu_accel() {
	local r
	r=$(qmp "$1" query-kvm) || { cat "$QEMU_WORK/$1/accel"; return; }
	case $r in
	*'"enabled": true'*) echo kvm ;;
	*) echo tcg ;;
	esac
}

qemu_stop() {
	local d=$QEMU_WORK/$1 pid i=0
	[ -f "$d/pid" ] || return 0
	pid=$(cat "$d/pid")
	if qemu_alive "$1"; then
		echo '{"execute":"quit"}' 1<>"$d/qmp.in"
		while qemu_alive "$1" && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	kill "$(cat "$d/reader.pid")" 2>/dev/null
	rm -f "$d/pid"
	return 0
}

qemu_stop_all() {
	local n
	for n in $qemu_names; do
		qemu_stop "$n"
	done
	qemu_names=
}
