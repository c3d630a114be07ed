#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Boot Debian's kernel in qemu (TCG) with vmig.ko and the module selftests
# in an initramfs, stream their TAP output back and judge the run.
#
# usage: vmcheck.sh [-m MEM] [-c CPUS] [-t TIMEOUT] [-o LOG] [-s] KO TEST...
#   KO      the vmig.ko to load (its vermagic picks the guest kernel)
#   TEST    static test programs to run in order inside the guest
#   -s      single-threaded TCG (one host thread runs every vCPU in turn):
#           slower, but code one vCPU patches is never run stale by another
# Environment: VMCHECK_EXTRA="file..." more files for /usr/bin (shared
# libraries they need are copied too); VMCHECK_MODULES="name..." host
# kernel modules to insmod first (looked up under /lib/modules/<ver>,
# with their dependencies; a name built into that kernel is skipped).
# VMCHECK_QEMU=1 puts QEMU in the VM too (qemu-system-x86_64 and its
# libraries, its TCG accelerator modules, the x86 firmware) and an inner
# test guest in /qemu: vmlinuz (the kernel this VM boots) and
# guest-initrd.gz (VMCHECK_QEMU_GUEST, made by scripts/qemu-guest.sh).
# VMCHECK_ENV="NAME=VALUE..." is exported to the tests in the guest.
# VMCHECK_CLOCK: the guest's clock source (hpet; "kernel": the kernel's own
# choice, for boots whose Linux guests run on nested KVM, see below).
#
# Prints the tests' TAP output (once the boot is over; the console is in
# the -o LOG file as it comes), then one "ok"/"not ok" line each for the
# guest's own checks.  A boot whose console stalls (see boot() below) is
# run once more; with VMCHECK_RETRY=1 also one that failed the way nested
# KVM under multi-threaded TCG fails here (see env_failure below).  Exits
# non-zero on any failed test, a test that timed out or exited non-zero, a
# missing end marker (guest hung or crashed), or a BUG/WARNING/Oops-class
# line in the guest's kernel log.
set -uo pipefail

mem=1G cpus=2 tmo=300 log= accel=tcg
while getopts "m:c:t:o:s" o; do
	case $o in
	m) mem=$OPTARG ;;
	c) cpus=$OPTARG ;;
	t) tmo=$OPTARG ;;
	o) log=$OPTARG ;;
	s) accel=tcg,thread=single ;;
	*) sed -n '2,/^set/p' "$0" | sed 's/^# \{0,1\}//;/^set/d' >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "vmcheck: no module given" >&2; exit 2; }
ko=$1
shift

here=$(cd "$(dirname "$0")" && pwd)
kver=$(modinfo -F vermagic "$ko" | awk '{print $1}')
kernel=/boot/vmlinuz-$kver
[ -r "$kernel" ] || { echo "vmcheck: no $kernel for module vermagic $kver (install linux-image-$kver)" >&2; exit 2; }

work=$(mktemp -d /tmp/vmcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,lib,lib64,proc,sys,dev,tmp,tests,lib/modules-extra}
cp /bin/busybox "$root/bin/busybox"
cp "$here/vm-init.sh" "$root/init"
chmod +x "$root/init"
cp "$ko" "$root/lib/vmig.ko"
echo "$tmo" >"$root/tests/timeout"
for kv in ${VMCHECK_ENV:-}; do
	echo "export ${kv%%=*}='${kv#*=}'" >>"$root/tests/env"
done
: >"$root/tests/list"
for t in "$@"; do
	cp "$t" "$root/tests/"
	basename "$t" >>"$root/tests/list"
done

# Copy a dynamic program's shared libraries, and the loader, into the image.
copy_libs() {
	ldd "$1" 2>/dev/null | awk '/=>/ {print $3} /^\t\/.*ld-linux/ {print $1}' |
	while read -r lib; do
		[ -e "$lib" ] || continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
for f in ${VMCHECK_EXTRA:-}; do
	cp "$f" "$root/usr/bin/"
	copy_libs "$f"
done
# mod_paths NAME: the module's file under /lib/modules/$kver and those of
# its dependencies, in insmod order (modules.dep lists them the other way);
# nothing for a built-in one (kernels differ: ctr is a module on 6.1 only).
mod_paths() {
	local md=/lib/modules/$kver line
	line=$(grep -E "(^|/)$1\.ko(\.xz|\.zst)?:" "$md/modules.dep" | head -n 1)
	if [ -z "$line" ]; then
		grep -qE "(^|/)$1\.ko\$" "$md/modules.builtin" 2>/dev/null && return 0
		return 1
	fi
	# shellcheck disable=SC2086
	printf '%s\n' ${line#*:} | tac
	echo "${line%%:*}"
}
for m in ${VMCHECK_MODULES:-}; do
	paths=$(mod_paths "$m") || { echo "vmcheck: no module $m for $kver" >&2; exit 2; }
	for rel in $paths; do
		src=/lib/modules/$kver/$rel
		name=$(basename "$rel" | sed -E 's/\.(xz|zst)$//')
		grep -qx "$name" "$root/tests/modules" 2>/dev/null && continue
		case $src in
		*.xz) xz -dc "$src" >"$root/lib/modules-extra/$name" ;;
		*.zst) zstd -qdc "$src" >"$root/lib/modules-extra/$name" ;;
		*) cp "$src" "$root/lib/modules-extra/$name" ;;
		esac
		echo "$name" >>"$root/tests/modules"
	done
done

if [ "${VMCHECK_QEMU:-0}" = 1 ]; then
	qemu=$(command -v qemu-system-x86_64)
	guest=${VMCHECK_QEMU_GUEST:-}
	[ -r "$guest" ] || { echo "vmcheck: VMCHECK_QEMU=1 needs VMCHECK_QEMU_GUEST, the inner guest's initramfs" >&2; exit 2; }
	cp "$qemu" "$root/usr/bin/"
	copy_libs "$qemu"
	for so in /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-*.so; do
		mkdir -p "$root$(dirname "$so")"
		cp "$so" "$root$so"
		copy_libs "$so"
	done
	# x86 firmware only: seabios, and the option ROMs -kernel boots with.
	mkdir -p "$root/usr/share/qemu" "$root/qemu"
	cp -a /usr/share/seabios "$root/usr/share/"
	for f in kvmvapic.bin linuxboot.bin linuxboot_dma.bin multiboot.bin multiboot_dma.bin \
		pvh.bin qboot.rom bios-microvm.bin sgabios.bin; do
		[ -e "/usr/share/qemu/$f" ] && cp -a "/usr/share/qemu/$f" "$root/usr/share/qemu/"
	done
	cp "$kernel" "$root/qemu/vmlinuz"
	cp "$guest" "$root/qemu/guest-initrd.gz"
fi

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

out=${log:-$work/console.log}
# The guest keeps time by the HPET (VMCHECK_CLOCK, default hpet), not the
# TSC.  Under TCG the guest's TSC is the host's raw TSC, and the host here
# marks its own unstable: a CI run saw the guest's CLOCK_MONOTONIC leap 7.4
# hours in one test (total_ms 26666541 in a 2 s migration) while the
# host's clock did not.  The HPET counts QEMU's virtual clock, which
# follows the host's.  The boots that run Linux guests on nested KVM leave
# the choice to the kernel (VMCHECK_CLOCK=kernel: the TSC when it passes
# the kernel's checks): their guests' kvm-clock is built on the TSC, and
# with the HPET one inner guest of 16 did not boot in 900 s.
clock=${VMCHECK_CLOCK:-hpet}
clockarg=clocksource=$clock
[ "$clock" = kernel ] && clockarg=
# The whole run must end well before the per-test timeouts add up.
total=$((tmo * ($# + 1) + 120))

# A stalled console: no byte for VMCHECK_STALL seconds (default 600) while
# QEMU used less than a fifth of a CPU meanwhile, i.e. the guest sits idle
# with a test's output half written.  Seen once (2026-12-06, in
# qemu_vmig_fail_test.sh): the serial line stopped mid-line, QEMU's vCPUs
# halted, its stdout pipe empty: the guest's 8250 driver waiting for a
# transmit interrupt it never got.  Nothing in the guest can end that (its
# own test timeout would block writing its verdict), so the boot would run
# to the total timeout.  vmcheck stops such a boot and runs it once more,
# saying so; a second stall fails.  A test that hangs while printing
# nothing but keeps the guest busy is not a stall: its timeout judges it.
stall=${VMCHECK_STALL:-600}
qemu_cpu_s() {	# CPU seconds of the QEMU under the timeout $1
	local c
	c=$(pgrep -P "$1" | head -n 1)
	[ -n "$c" ] && awk '{ print int(($14 + $15) / 100) }' "/proc/$c/stat" 2>/dev/null || echo 0
}
boot() {	# one boot, console in $out (\r dropped); 0, or 2 if it stalled
	local raw=$work/console.raw size last=-1 t_last cpu_last now q
	: >"$raw"
	timeout "$total" qemu-system-x86_64 -accel "$accel" -machine q35 -cpu max \
		-m "$mem" -smp "$cpus" -nographic -no-reboot \
		-kernel "$kernel" -initrd "$work/initramfs.gz" \
		-append "console=ttyS0 loglevel=4 panic=-1 oops=panic $clockarg rdinit=/init" \
		</dev/null >"$raw" 2>&1 &
	q=$!
	t_last=$(date +%s) cpu_last=0
	while kill -0 "$q" 2>/dev/null; do
		sleep 5
		size=$(stat -c %s "$raw") now=$(date +%s)
		if [ "$size" != "$last" ]; then
			last=$size t_last=$now cpu_last=$(qemu_cpu_s "$q")
		elif [ $((now - t_last)) -ge "$stall" ] &&
		     [ $(($(qemu_cpu_s "$q") - cpu_last)) -lt $((stall / 5)) ]; then
			kill "$q" 2>/dev/null
			wait "$q" 2>/dev/null
			tr -d '\r' <"$raw" >"$out"
			return 2
		fi
	done
	wait "$q" 2>/dev/null
	qrc=$?
	tr -d '\r' <"$raw" >"$out"
	return 0
}
# The test named last on the console: the one a failure happened in.
last_test() { grep '^VMIG-TEST-BEGIN' "$out" | tail -n 1 | cut -d' ' -f2; }
qrc=0 stalled=
if ! boot; then
	stalled=1
	cp "$out" "$out.stalled"
	echo "# vmcheck: the guest's console stalled for ${stall} s with the guest idle" \
		"(in $(last_test)); its last" \
		"lines follow (all of it in $out.stalled); the boot runs once more"
	tail -n 5 "$out" | sed 's/^/#   /'
	boot || echo "# vmcheck: the console stalled again: the run ends here"
fi
# VMCHECK_RETRY=1 (the boots whose Linux guests run on nested KVM under
# multi-threaded TCG): a boot that failed the way that stack fails here
# runs once more, the first console kept as LOG.retried.  Ways seen, each
# with no migration in progress in some of its cases (docs/testing.md):
# this VM's own kernel froze (a soft lockup or an RCU stall of its CPUs,
# an inner QEMU's vCPU or main thread on them), its CPU reset (QEMU gone
# before the end marker, no panic or Oops printed: a triple fault under
# -no-reboot), an inner guest never reached its workload (its kernel
# halted at boot), or an inner guest reset itself with no panic on its
# console (a triple fault: its QEMU exits under -no-reboot; qemu_lib.sh
# says so in these words only where no vmig touched its memory: in its
# boot, or after a migration QEMU itself made), or an inner QEMU's vCPU
# thread ran out of kernel stack ("corrupted stack end detected inside
# scheduler", "TASK stack guard page was hit", Comm "CPU n/KVM": seen on
# 12-05, 12-07 00:17 and in a CI run of 12-07 21:0x, in KVM's own paths,
# no vmig.ko frame printed; see docs/testing.md).  A second such
# boot fails as it is.
env_failure() {	# prints what matched; 0 if the console shows one
	local m
	m=$(grep -m 1 -E 'watchdog: BUG: soft lockup|rcu: INFO: rcu_(preempt|sched) detected (stalls|expedited stalls)|inner guest did not reach its workload|inner guest reset itself, no panic' "$out") &&
		{ echo "$m"; return 0; }
	m=$(grep -m 1 -A 3 -E 'corrupted stack end detected inside scheduler|BUG: TASK stack guard page was hit' "$out" |
		grep -m 1 -oE 'Comm: CPU [0-9]+/KVM') &&
		! grep -q '\[vmig\]' "$out" &&
		{ echo "an inner QEMU's vCPU thread ran out of kernel stack ($m), no vmig.ko frame"; return 0; }
	if [ "$qrc" != 124 ] && grep -q 'VMIG-BOOTED' "$out" && ! grep -q '^VMIG-ALL-DONE' "$out" &&
	   ! grep -Eq 'Kernel panic|Oops|BUG:|general protection|invalid opcode' "$out"; then
		echo "the VM's QEMU exited (status $qrc) before the end, with no panic or Oops printed"
		return 0
	fi
	return 1
}
if [ "${VMCHECK_RETRY:-0}" = 1 ] && [ -z "$stalled" ] && why=$(env_failure); then
	cp "$out" "$out.retried"
	echo "# vmcheck: this boot failed in $(last_test) the way nested KVM under" \
		"multi-threaded TCG fails here: $why; the console is kept in $out.retried;" \
		"the boot runs once more"
	boot || echo "# vmcheck: the console stalled in the second boot: the run ends here"
fi
# The tests' TAP, once the boot is over: each test that ended as it is, a
# test that never ended (stalled, crashed, hung) as comments, so that a
# half-written line counts for nothing (the checks below fail it).
awk '/^VMIG-TEST-BEGIN/ { on = 1; n = 0 }
on { buf[++n] = $0 }
/^VMIG-TEST-END/ { for (i = 1; i <= n; i++) print buf[i]; on = 0; n = 0 }
END { for (i = 1; i <= n; i++) print "# (unfinished) " buf[i] }' "$out"

fail=0
result() { # ok? description
	if [ "$1" = ok ]; then echo "ok - $2"; else echo "not ok - $2"; fail=1; fi
}
grep -q 'VMIG-BOOTED' "$out" || { echo "# guest did not boot; console tail:"; tail -n 40 "$out" | sed 's/^/# /'; }
# Timeouts in the tests trust the guest's clock (see -append above).
if [ "$clock" = kernel ]; then
	:	# whatever the kernel picked (the BOOTED line in the log says)
elif grep -q "VMIG-BOOTED .* clock=$clock\$" "$out"; then
	result ok "vm: guest keeps time by the $clock clock source"
else
	result no "vm: guest keeps time by the $clock clock source ($(grep -o 'clock=.*' "$out" | head -n 1))"
fi
grep '^VMIG-RESULT ' "$out" | sed 's/^VMIG-RESULT //' | while read -r l; do echo "$l"; done
grep -q '^VMIG-RESULT not ok' "$out" && fail=1
grep -q '^VMIG-RESULT ok - vm: rmmod' "$out" || fail=1
while read -r line; do
	t=${line#VMIG-TEST-END }
	name=${t% rc=*}
	rc=${t##*rc=}
	# A failing test has said "not ok" already; report only silent failures.
	sect=$(sed -n "/^VMIG-TEST-BEGIN $name\$/,/^VMIG-TEST-END $name /p" "$out")
	case $rc in
	0) ;;
	124|143) result no "vm: $name timed out after ${tmo}s" ;;
	*) grep -q '^not ok' <<<"$sect" || result no "vm: $name exited with status $rc" ;;
	esac
done < <(grep '^VMIG-TEST-END' "$out")
# Tests that never ended (guest crashed or hung in them).
for t in "$@"; do
	n=$(basename "$t")
	grep -q "^VMIG-TEST-END $n " "$out" || result no "vm: $n did not finish (guest crashed or hung)"
done
if grep -q '^VMIG-ALL-DONE' "$out"; then
	result ok "vm: guest ran to the end"
else
	result no "vm: guest ran to the end"
fi
bad='BUG:|WARNING:|Oops|general protection|list_del corruption|refcount_t|Kernel panic|UBSAN:|KASAN:|INFO: task .* blocked'
if grep -Eq "$bad" "$out"; then
	result no "vm: guest kernel log clean"
	echo "# guest kernel log, matching lines and tail:"
	grep -En "$bad" "$out" | head -n 20 | sed 's/^/#   /'
	sed -n '/^VMIG-DMESG-BEGIN/,/^VMIG-DMESG-END/p' "$out" | tail -n 60 | sed 's/^/# /'
else
	result ok "vm: guest kernel log clean"
fi
exit $fail
