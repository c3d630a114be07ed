#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make test: build everything, run the host tests, then the module tests
# in a qemu guest, once on Debian 12's default kernel and once on its
# 6.12 LTS kernel, and end with one line "N passed, N failed, N skipped"
# counting every TAP result of all.
#
# Environment: VMIG_SKIP_VM=1 skips the guest runs (each is then counted as
# one skipped test, with the reason printed).
set -uo pipefail
cd "$(dirname "$0")/.."
res=build/results
rm -rf "$res"
mkdir -p "$res"
jobs=$(nproc)

step() { echo "== $*"; }
die() { echo "test: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "build"
make -s -j"$jobs" all >"$res/build.log" 2>&1 || { cat "$res/build.log"; die "userspace build failed"; }
make -s -j"$jobs" hosttests >>"$res/build.log" 2>&1 || { cat "$res/build.log"; die "host test build failed"; }
make -s SAN=1 -j"$jobs" all hosttests >>"$res/build.log" 2>&1 || { cat "$res/build.log"; die "sanitizer build failed"; }

step "host tests"
export VMIG_BIN=$PWD/build/out/vmig VMIG_SAN_BIN=$PWD/build/san/vmig
for t in build/out/tests/*_test selftests/helper/*_test.sh; do
	[ -x "$t" ] || continue
	n=$(basename "$t")
	echo "# host: $n"
	timeout 600 "$t" 2>&1 | tee "$res/host-$n.tap"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ] && ! grep -q '^not ok' "$res/host-$n.tap"; then
		echo "not ok - host: $n exited with status $rc" | tee -a "$res/host-$n.tap"
	fi
done

if [ "${VMIG_SKIP_VM:-0}" = 1 ]; then
	echo "ok - vm: module tests # SKIP VMIG_SKIP_VM=1 was set" | tee "$res/vm.tap"
else
	step "module tests in a qemu guest"
	make -s -j"$jobs" kmod vmtests >>"$res/build.log" 2>&1 || { tail -n 40 "$res/build.log"; die "module or selftest build failed"; }
	make -s vmcheck VMCHECK_ARGS="-o $res/vm-console.log" 2>&1 | tee "$res/vm.tap"
	# The same suite on Debian 12's 6.12 LTS kernel, in a boot of its own;
	# its results are named "6.12: ..." so a failure says which kernel.
	lts=$(scripts/kernels.sh lts 2>/dev/null)
	if [ -z "$lts" ]; then
		echo "not ok - 6.12: module tests: no 6.12 LTS kernel installed (scripts/deps.sh installs it)" |
			tee "$res/vm-lts.tap"
	else
		step "module tests in a qemu guest, kernel $lts"
		make -s -j"$jobs" kmod KVER="$lts" >>"$res/build.log" 2>&1 || { tail -n 40 "$res/build.log"; die "module build for $lts failed"; }
		make -s vmcheck KVER="$lts" VMCHECK_ARGS="-o $res/vm-lts-console.log" 2>&1 |
			sed -E 's/^(not ok|ok)( [0-9]+)?( -)? /\1\2\3 6.12: /' | tee "$res/vm-lts.tap"
		# Leave kmod/vmig.ko built for the default kernel, as before.
		make -s kmod >>"$res/build.log" 2>&1
	fi
fi

# QEMU running a Linux guest inside the test VM: a boot of its own, since it
# needs QEMU in the initramfs and the most memory (make vmcheck-qemu).
if [ "${VMIG_SKIP_VM:-0}" = 1 ]; then
	echo "ok - vm-qemu: QEMU guest tests # SKIP VMIG_SKIP_VM=1 was set" | tee "$res/vm-qemu.tap"
else
	step "QEMU guest tests in a qemu guest"
	make -s -j"$jobs" qemu-guest >>"$res/build.log" 2>&1 || { tail -n 40 "$res/build.log"; die "inner test guest build failed"; }
	make -s vmcheck-qemu VMCHECK_ARGS="-o $res/vm-qemu-console.log" 2>&1 |
		sed 's/^\(\(not \)\{0,1\}ok\) - vm: /\1 - vm-qemu: /' | tee "$res/vm-qemu.tap"
	if [ "${PIPESTATUS[0]}" -ne 0 ] && ! grep -q '^not ok' "$res/vm-qemu.tap"; then
		echo "not ok - vm-qemu: make vmcheck-qemu failed" | tee -a "$res/vm-qemu.tap"
	fi
fi

# KVM guests of the reference VMM (nested SVM under TCG) against KVM's own
# dirty logs, and their migrations: a boot of their own on each kernel
# (make vmcheck-kvm; single-threaded TCG, docs/testing.md says why).
if [ "${VMIG_SKIP_VM:-0}" = 1 ]; then
	echo "ok - vm-kvm: KVM guest tests # SKIP VMIG_SKIP_VM=1 was set" | tee "$res/vm-kvm.tap"
else
	step "KVM guest tests in a qemu guest"
	make -s vmcheck-kvm VMCHECK_ARGS="-o $res/vm-kvm-console.log" 2>&1 |
		sed 's/^\(\(not \)\{0,1\}ok\) - vm: /\1 - vm-kvm: /' | tee "$res/vm-kvm.tap"
	if [ "${PIPESTATUS[0]}" -ne 0 ] && ! grep -q '^not ok' "$res/vm-kvm.tap"; then
		echo "not ok - vm-kvm: make vmcheck-kvm failed" | tee -a "$res/vm-kvm.tap"
	fi
	lts=$(scripts/kernels.sh lts 2>/dev/null)
	if [ -z "$lts" ]; then
		echo "ok - 6.12: vm-kvm: KVM guest tests # SKIP no 6.12 LTS kernel installed" |
			tee "$res/vm-kvm-lts.tap"
	else
		step "KVM guest tests in a qemu guest, kernel $lts"
		make -s -j"$jobs" kmod KVER="$lts" >>"$res/build.log" 2>&1 || { tail -n 40 "$res/build.log"; die "module build for $lts failed"; }
		make -s vmcheck-kvm KVER="$lts" VMCHECK_ARGS="-o $res/vm-kvm-lts-console.log" 2>&1 |
			sed -E 's/^(not ok|ok)( [0-9]+)?( -)? /\1\2\3 6.12: /; s/ 6\.12: vm: / 6.12: vm-kvm: /' |
			tee "$res/vm-kvm-lts.tap"
		if [ "${PIPESTATUS[0]}" -ne 0 ] && ! grep -q '^not ok' "$res/vm-kvm-lts.tap"; then
			echo "not ok - 6.12: vm-kvm: make vmcheck-kvm failed" | tee -a "$res/vm-kvm-lts.tap"
		fi
		make -s kmod >>"$res/build.log" 2>&1
	fi
fi

scripts/tap-summary.sh "$res"/*.tap
