#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The operator's tools on a host without the module: `vmig stats`, `monitor`
# and `module status` fail cleanly (status 1, a message that says the module
# is not loaded), usage errors exit 2; `make install` into a DESTDIR puts the
# library, headers, pkg-config file, helper, module, DKMS tree and udev rule
# in place, a program builds against what was installed, and DKMS builds the
# module from the installed tree for Debian 12's 6.1 and 6.12 LTS kernels.  Runs the plain and the sanitizer builds.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$here/tap.sh"
tmp=$(mktemp -d /tmp/modtools_test.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for bin in "${VMIG_BIN:?}" "${VMIG_SAN_BIN:-}"; do
	[ -n "$bin" ] && [ -x "$bin" ] || continue
	tag=$(basename "$(dirname "$bin")")
	if [ -d /sys/module/vmig ]; then
		skip "$tag: stats/monitor/status without the module" "vmig is loaded on this host"
	else
		err=$("$bin" stats 2>&1 >/dev/null); rc=$?
		check "$tag: stats without the module exits 1 saying it is not loaded" \
			test $rc -eq 1 -a -n "$(grep 'module is not loaded' <<<"$err")"
		err=$("$bin" stats --json 2>&1 >/dev/null); rc=$?
		check "$tag: stats --json without the module exits 1" test $rc -eq 1
		err=$("$bin" monitor --timeout 5 2>&1 >/dev/null); rc=$?
		check "$tag: monitor without the module exits 1 at once saying so" \
			test $rc -eq 1 -a -n "$(grep 'module is not loaded' <<<"$err")"
		out=$("$bin" module status 2>&1); rc=$?
		check "$tag: module status without the module exits 1 saying not loaded" \
			test $rc -eq 1 -a -n "$(grep 'not loaded' <<<"$out")"
		out=$("$bin" module status --json); rc=$?
		check "$tag: module status --json is valid JSON with loaded false" \
			python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["loaded"] is False' "$out"
		err=$("$bin" module unload 2>&1); rc=$?
		check "$tag: module unload without the module exits 1" \
			test $rc -eq 1 -a -n "$(grep 'not loaded' <<<"$err")"
	fi
	"$bin" monitor --count 0 >/dev/null 2>&1; rc=$?
	check "$tag: monitor --count 0 is a usage error" test $rc -eq 2
	"$bin" monitor --timeout x >/dev/null 2>&1; rc=$?
	check "$tag: monitor --timeout x is a usage error" test $rc -eq 2
	"$bin" stats --region -1 >/dev/null 2>&1; rc=$?
	check "$tag: stats --region -1 is a usage error" test $rc -eq 2
	"$bin" module >/dev/null 2>&1; rc=$?
	check "$tag: module without a subcommand is a usage error" test $rc -eq 2
	err=$("$bin" module frob 2>&1); rc=$?
	check "$tag: module frob is a usage error naming it" \
		test $rc -eq 2 -a -n "$(grep frob <<<"$err")"
	"$bin" module load notaparam >/dev/null 2>&1; rc=$?
	check "$tag: module load with a non PARAM=VALUE argument is a usage error" test $rc -eq 2
	out=$("$bin" --help)
	check "$tag: --help lists stats, monitor and module" \
		test -n "$(grep -E '^  stats ' <<<"$out")" -a -n "$(grep -E '^  monitor ' <<<"$out")" \
		-a -n "$(grep -E '^  module ' <<<"$out")"
done

# --- make install into a DESTDIR ---------------------------------------
dest=$tmp/dest
if ! make -s -C "$top" install DESTDIR="$dest" PREFIX=/usr >"$tmp/install.log" 2>&1; then
	sed 's/^/# /' "$tmp/install.log"
	check "make install DESTDIR succeeds" false
	tap_done
	exit
fi
check "make install DESTDIR succeeds" true
ko=$(ls "$dest"/lib/modules/*/extra/vmig.ko 2>/dev/null | head -n 1)
kver=$(modinfo -F vermagic "$top/kmod/vmig.ko" | cut -d' ' -f1)
check "install puts libvmig (static, shared, soname link) in PREFIX/lib" \
	test -f "$dest/usr/lib/libvmig.a" -a -f "$dest/usr/lib/libvmig.so.0" -a -L "$dest/usr/lib/libvmig.so"
check "install puts libvmig.h and linux/vmig.h in PREFIX/include" \
	test -f "$dest/usr/include/libvmig.h" -a -f "$dest/usr/include/linux/vmig.h"
check "install puts libvmig.pc, requiring libmnl and libkmod privately" \
	grep -q '^Requires.private: libmnl libkmod' "$dest/usr/lib/pkgconfig/libvmig.pc"
check "install puts the vmig helper in PREFIX/bin" test -x "$dest/usr/bin/vmig"
check "install puts vmig.ko under the module's own kernel release ($kver)" \
	test -f "$dest/lib/modules/$kver/extra/vmig.ko" -a "$ko" = "$dest/lib/modules/$kver/extra/vmig.ko"
check "install puts the udev rule giving /dev/vmig to group kvm, mode 0660" \
	grep -q 'KERNEL=="vmig".*GROUP="kvm".*MODE="0660"' "$dest/etc/udev/rules.d/99-vmig.rules"
src=$dest/usr/src/vmig-$(sed -n 's/^VERSION *:= *//p' "$top/Makefile")
check "install lays out the DKMS tree: dkms.conf, kmod/, uapi/" \
	test -f "$src/dkms.conf" -a -f "$src/kmod/Kbuild" -a -f "$src/kmod/netlink.c" \
	-a -f "$src/uapi/linux/vmig.h"
check "the DKMS tree's dkms.conf carries the release version" \
	grep -q "^PACKAGE_VERSION=\"${src##*vmig-}\"" "$src/dkms.conf"

# A program builds against the installed files through pkg-config.
cat >"$tmp/user.c" <<'EOF'
#include <errno.h>
#include <stdio.h>
#include <libvmig.h>
#include <linux/vmig.h>
int main(void)
{
	struct vmig_module_status st;
	struct vmig_nl *nl = vmig_nl_open();

	if (vmig_module_status(&st))
		return 3;
	if (nl)
		vmig_nl_close(nl);
	/* The family exists exactly when the module is loaded. */
	return (nl != NULL) == st.loaded ? 0 : 4;
}
EOF
pc() { PKG_CONFIG_PATH=$dest/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest pkg-config "$@" libvmig; }
# libvmig.a with the shared libraries its pc file requires privately.
check "a program builds against the installed libvmig.a via pkg-config" \
	cc -Wall -Werror -o "$tmp/user" "$tmp/user.c" $(pc --cflags) \
		"$dest/usr/lib/libvmig.a" $(pkg-config --libs $(pc --print-requires-private))
check "the installed-library program agrees with module status about the module" "$tmp/user"

# --- DKMS builds the module from the installed tree ---------------------
# For every kernel the module supports (Debian 12's default and its 6.12
# LTS: scripts/kernels.sh), and the one kmod/vmig.ko was built for.
kvers=$( { "$top/scripts/kernels.sh" all 2>/dev/null; echo "$kver"; } | awk 'NF && !seen[$0]++')
for k in $kvers; do
	if ! command -v dkms >/dev/null; then
		skip "dkms builds vmig.ko for $k from the installed tree" "dkms is not installed (scripts/deps.sh installs it)"
		continue
	elif [ ! -e "/lib/modules/$k/build" ]; then
		skip "dkms builds vmig.ko for $k from the installed tree" "no /lib/modules/$k/build"
		continue
	fi
	mkdir -p "$tmp/dkms-$k"
	if dkms build -m vmig -v "${src##*vmig-}" -k "$k" --sourcetree "$dest/usr/src" \
		--dkmstree "$tmp/dkms-$k" >"$tmp/dkms-$k.log" 2>&1; then
		built=$(find "$tmp/dkms-$k" -name 'vmig.ko*' -path "*/$k/*" | head -n 1)
	else
		built=
		tail -n 20 "$tmp/dkms-$k.log" | sed 's/^/# /'
	fi
	check "dkms builds vmig.ko for $k from the installed tree" \
		test -n "$built" -a "$(modinfo -F vermagic "$built" 2>/dev/null | cut -d' ' -f1)" = "$k"
done
if [ -z "$("$top/scripts/kernels.sh" lts 2>/dev/null)" ]; then
	check "a 6.12 LTS kernel's headers are installed for the DKMS build (scripts/deps.sh)" false
fi
tap_done
