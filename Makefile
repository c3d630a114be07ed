# SPDX-License-Identifier: GPL-2.0
#
# vmig: make            libvmig (static, shared, pkg-config) and the vmig helper
#       make kmod       vmig.ko against KDIR (KVER=RELEASE: that kernel's headers)
#       make test       deps, build, host tests, VM tests; ends "N passed, N failed"
#       make vmcheck    the module selftests in a qemu guest (KVER=RELEASE: that kernel)
#       make vmcheck-qemu  the QEMU-guest tests (qemu_*_test.sh) in their own boot
#       make vmcheck-kvm   the KVM-guest test (kvm_guest_test.sh) in its own boot
#       make bench-qemu QEMU's own migration of a Linux guest, in a qemu guest
#       make demo       a migration on this machine
#       make checkpatch checkpatch.pl --strict over kmod/ and uapi/
#       make bench-dirty dirty-logging benchmark in a qemu guest
#       make bench-postcopy  the postcopy round-trip benchmark in a qemu guest
#       make bench-backends  one migration on the kmod and uffd backends in a qemu guest
#       make bench-backends-postcopy  its postcopy cases (request latency) only
#       make bench-backends-converge  its dirty-heavy case with/without --auto-converge
#       make bench-backends-all  the three above in one boot
#       make bench-ktls  TLS throughput, kernel TLS against OpenSSL's, in a qemu guest
#       make bench-kvm-dirty  a KVM guest's dirty logging: vmig.ko against KVM's logs
#       make bench-qemu-vmig  QEMU's own migration vs vmig qemu, interleaved, in a qemu guest
#       make bench-vs-qemu  on this host: QEMU 7.2 migrating its TCG guest vs vmig, interleaved
#       make install    DESTDIR=... PREFIX=/usr/local (also the DKMS tree, udev rule)
#       make dkms-src   the DKMS source tree only, in DESTDIR/DKMSDIR/vmig-VERSION
#       make SAN=1      the same userspace built with ASan+UBSan into build/san
#       make man        man pages of vmig and its commands, from their --help
#
VERSION    := 0.1.0
CC         ?= gcc
PREFIX     ?= /usr/local
DESTDIR    ?=
# Outside PREFIX: where DKMS and udev look.
DKMSDIR    ?= /usr/src
UDEVDIR    ?= /etc/udev/rules.d
# KVER: the kernel release to build vmig.ko for (and so to boot in vmcheck,
# which follows the module's vermagic); scripts/kernels.sh all lists them.
KVER       ?=
KDIR       ?= $(shell KVER=$(KVER) scripts/kdir.sh)
KSRC       := build/ksrc
V          ?= 0

ifeq ($(SAN),1)
BUILD      ?= build/san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD      ?= build/out
SANFLAGS   :=
endif

WARN       := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
# The kselftest harness's macros compare signed with unsigned and leave
# parameters unused; tests otherwise keep the same warnings.
TEST_WARN  := -Wall -Wextra -Werror -Wno-sign-compare -Wno-unused-parameter
CFLAGS     ?= -O2 -g
# The helper's rooms (docs/guide.md, "Layout"); each is on the include path.
HELPER_DIRS := helper/cli helper/net helper/session helper/source helper/dest \
	       helper/qemu helper/common guest
HELPER_INC  := $(addprefix -I,$(HELPER_DIRS))
CFLAGS     += -std=gnu11 -D_GNU_SOURCE -pthread -fPIC $(WARN) $(SANFLAGS) \
	      -Iuapi -Ilib $(HELPER_INC) -DVMIG_VERSION='"$(VERSION)"'
LDFLAGS    += -pthread $(SANFLAGS)
# libmnl: the netlink client; libkmod: module loading.
PKGS       := libmnl libkmod
CFLAGS     += $(shell pkg-config --cflags $(PKGS))
LIBS       := $(shell pkg-config --libs $(PKGS))
# OpenSSL: TLS on the migration channels (the helper only, not libvmig).
TLS_PKGS   := libssl libcrypto
CFLAGS     += $(shell pkg-config --cflags $(TLS_PKGS))
TLS_LIBS   := $(shell pkg-config --libs $(TLS_PKGS))

LIB_SRCS    := $(wildcard lib/*.c)
HELPER_SRCS := $(wildcard $(addsuffix /*.c,$(HELPER_DIRS)))
HELPER_HDRS := $(wildcard $(addsuffix /*.h,$(HELPER_DIRS)))
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/%.o)
HELPER_OBJS := $(HELPER_SRCS:%.c=$(BUILD)/%.o)

# Tests that create KVM VMs run in the single-threaded boot of vmcheck-kvm
# (see there), not in vmcheck's multi-threaded one.
KVM_TEST_SRCS  := selftests/vmig/postcopy_kvm_test.c
VM_TEST_SRCS   := $(filter-out $(KVM_TEST_SRCS),$(wildcard selftests/vmig/*_test.c))
# qemu_*_test.sh run QEMU guests: their own boot (vmcheck-qemu), not vmcheck's.
QEMU_TEST_SH   := $(wildcard selftests/vmig/qemu_*_test.sh)
# kvm_guest_test.sh runs KVM guests (nested SVM under TCG): a boot of its own,
# make vmcheck-kvm, which make test runs on both kernels (docs/testing.md).
KVM_TEST_SH    := selftests/vmig/kvm_guest_test.sh
VM_TEST_SH     := $(filter-out $(QEMU_TEST_SH) $(KVM_TEST_SH),$(wildcard selftests/vmig/*_test.sh))
VM_TESTS       := $(VM_TEST_SRCS:selftests/vmig/%.c=build/vmtests/%) \
		  $(VM_TEST_SH:selftests/vmig/%=build/vmtests/%)
KVM_VM_TESTS   := $(KVM_TEST_SRCS:selftests/vmig/%.c=build/vmtests/%) \
		  $(KVM_TEST_SH:selftests/vmig/%=build/vmtests/%)
QEMU_VM_TESTS  := $(QEMU_TEST_SH:selftests/vmig/%=build/vmtests/%)
HOST_TEST_SRCS := $(wildcard selftests/helper/*_test.c)
HOST_TESTS     := $(HOST_TEST_SRCS:selftests/helper/%.c=$(BUILD)/tests/%)

all: $(BUILD)/libvmig.a $(BUILD)/libvmig.so $(BUILD)/libvmig.pc $(BUILD)/vmig

# Man pages: help2man over each command's --help (scripts/mkman.sh), plus
# docs/man/*.h2m for what --help does not say.
MANDIR     ?= $(PREFIX)/share/man
$(BUILD)/man/.built: $(BUILD)/vmig scripts/mkman.sh $(wildcard docs/man/*.h2m)
	@rm -rf $(dir $@)
	scripts/mkman.sh $(BUILD)/vmig $(dir $@) $(VERSION)
	@touch $@
man: $(BUILD)/man/.built

$(BUILD)/%.o: %.c $(wildcard lib/*.h uapi/linux/*.h) $(HELPER_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libvmig.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libvmig.so: $(LIB_OBJS)
	$(CC) -shared -Wl,-soname,libvmig.so.0 $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/libvmig.pc: lib/libvmig.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|' $< >$@

$(BUILD)/vmig: $(HELPER_OBJS) $(BUILD)/libvmig.a
	$(CC) $(LDFLAGS) -o $@ $(HELPER_OBJS) $(BUILD)/libvmig.a $(LIBS) $(TLS_LIBS)

# --- kernel module -------------------------------------------------------
kmod:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod CONFIG_VMIG=m W=1 modules

kmod-clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean

# --- tests ---------------------------------------------------------------
$(KSRC)/.extracted:
	scripts/ksrc.sh $(KSRC)

# Module selftests: static, so the guest needs no libraries for them.
build/vmtests/%: selftests/vmig/%.c $(wildcard selftests/vmig/*.h) uapi/linux/vmig.h $(KSRC)/.extracted
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -D_GNU_SOURCE -pthread $(TEST_WARN) \
		-Iuapi -I$(KSRC)/tools/testing/selftests -o $@ $< -lpthread

# Shell tests run as they are under the guest's busybox sh.
build/vmtests/%_test.sh: selftests/vmig/%_test.sh
	@mkdir -p $(dir $@)
	install -m 755 $< $@

# Host tests that include helper sources get the TLS layer from here, only if they use it.
$(BUILD)/helper-tls.a: $(BUILD)/helper/net/tls.o $(BUILD)/helper/net/tls_io.o $(BUILD)/helper/net/auth.o $(BUILD)/helper/common/util.o
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tests/%: selftests/helper/%.c $(wildcard selftests/helper/*.h) $(HELPER_SRCS) $(HELPER_HDRS) $(BUILD)/libvmig.a $(BUILD)/helper-tls.a $(KSRC)/.extracted
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN),$(CFLAGS)) $(TEST_WARN) -I$(KSRC)/tools/testing/selftests $(LDFLAGS) -o $@ $< \
		$(BUILD)/libvmig.a $(BUILD)/helper-tls.a $(LIBS) $(TLS_LIBS)

# Benchmarks that run in the guest: static like the module selftests.
build/bench/%: bench/%.c $(wildcard selftests/vmig/*.h) uapi/linux/vmig.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) \
		-Iuapi -Iselftests/vmig -o $@ $< -lpthread

# The machine's limits for precopy (memory write rate, loopback TCP into guest
# memory), run on the host by bench/migrate_bench.sh; not static.
$(BUILD)/bench/precopy_limits: bench/precopy_limits.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -o $@ $< -lpthread

# Dirty-logging figures (vmig.ko against userfaultfd-wp) from a guest.
bench-dirty: kmod build/bench/dirty_bench
	scripts/vmcheck.sh -m 3G -t 900 kmod/vmig.ko build/bench/dirty_bench

vmtests: $(VM_TESTS)
hosttests: all $(HOST_TESTS)

# --- QEMU guests in the test VM (selftests/qemu/, issue 14) ---------------
# The inner guest: Debian's kernel + a busybox initramfs whose /init runs
# guest_workload (static; it shares guest/guest_page.c's page format).
build/qemu/guest_workload: selftests/qemu/guest_workload.c guest/guest_page.c helper/common/zero.c \
		guest/guest_page.h helper/common/zero.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Iguest -Ihelper/common -Ihelper/net -o $@ \
		$(filter %.c,$^) -lpthread

build/qemu/guest-initrd.gz: build/qemu/guest_workload selftests/qemu/guest-init.sh scripts/qemu-guest.sh
	scripts/qemu-guest.sh $@ $<

# vmcheck.sh with VMCHECK_QEMU=1: QEMU, its firmware and the inner guest in
# the VM; qemu_lib.sh (the shell side of QMP) next to tap.sh.  The inner QEMU
# runs on nested KVM under multi-threaded TCG (single-threaded, its guests do
# not even boot in the time): kvm_hold, run first, keeps one KVM VM (with a
# vCPU whose local APIC is disabled) for the whole boot so that KVM's
# int3-patched branches (in __schedule and in the local APIC's interrupt
# path) are not flipped at every QEMU start and exit (docs/testing.md).  The
# benchmarks that run KVM guests under multi-threaded TCG hold it too.  A
# boot that fails the way this stack fails here (its kernel frozen, its CPU
# reset, an inner guest halted at boot) runs once more (VMCHECK_RETRY).
QEMU_VM_MEM     ?= 2G
VMCHECK_QEMU_EXTRA = $(VMCHECK_EXTRA) selftests/qemu/qemu_lib.sh
qemu-guest: build/qemu/guest-initrd.gz
vmcheck-qemu: kmod all qemu-guest build/vmtests/kvm_hold $(QEMU_VM_TESTS)
	VMCHECK_QEMU=1 VMCHECK_CLOCK=kernel VMCHECK_QEMU_GUEST=build/qemu/guest-initrd.gz \
		VMCHECK_RETRY=1 VMCHECK_EXTRA="$(VMCHECK_QEMU_EXTRA)" VMCHECK_MODULES="$(VMCHECK_MODULES)" \
		scripts/vmcheck.sh -m $(QEMU_VM_MEM) -t 600 $(VMCHECK_ARGS) kmod/vmig.ko \
		build/vmtests/kvm_hold $(QEMU_VM_TESTS)

# QEMU's own migration of the inner guest, multifd 1/2/4 and postcopy-preempt,
# interleaved rounds in one boot (bench/qemu_bench.sh).  Its settings go in
# BENCH_ENV, e.g. make bench-qemu BENCH_ENV="BENCH_ROUNDS=5 QEMU_MEM=1G".
BENCH_ENV ?=
bench-qemu: kmod all qemu-guest build/vmtests/kvm_hold
	VMCHECK_ENV="$(BENCH_ENV)" VMCHECK_QEMU=1 VMCHECK_CLOCK=kernel VMCHECK_QEMU_GUEST=build/qemu/guest-initrd.gz \
		VMCHECK_EXTRA="$(VMCHECK_QEMU_EXTRA)" VMCHECK_MODULES="$(VMCHECK_MODULES)" \
		scripts/vmcheck.sh -m 3G -t 3600 $(VMCHECK_ARGS) kmod/vmig.ko build/vmtests/kvm_hold \
		bench/qemu_bench.sh

VMCHECK_ARGS ?=
# The guest's /usr/bin: the helper (with its shared libraries), the TAP
# helpers, vm_lib.sh and scripts/lib/vmig.sh the shell tests source, and kmod's depmod for the module tree test;
# openssl makes the kTLS test's credentials.
VMCHECK_EXTRA ?= $(BUILD)/vmig selftests/helper/tap.sh selftests/vmig/vm_lib.sh scripts/lib/vmig.sh $(firstword $(wildcard /usr/sbin/depmod /sbin/depmod)) \
		 $(firstword $(wildcard /usr/bin/openssl))
# KVM in the guest (nested SVM under TCG), for tests that run a real KVM guest;
# kernel TLS with the AES-GCM it offloads (the guest has no modprobe to load
# crypto on demand), for ktls_test.sh.
VMCHECK_MODULES ?= irqbypass ccp kvm kvm-amd $(KTLS_MODULES)
vmcheck: kmod vmtests all
	VMCHECK_EXTRA="$(VMCHECK_EXTRA)" VMCHECK_MODULES="$(VMCHECK_MODULES)" scripts/vmcheck.sh $(VMCHECK_ARGS) kmod/vmig.ko $(VM_TESTS)

# KVM guests of the reference VMM against KVM's own dirty logs, and their
# migrations.  TCG runs single-threaded (-s): KVM flips a static branch in
# __schedule as its first VM comes and its last goes, and multi-threaded TCG
# can run a stale translation of the int3 it is patched through (an Oops on
# 6.12, a silent freeze on 6.1; docs/testing.md).  900 s: a loaded machine.
vmcheck-kvm: kmod all $(KVM_VM_TESTS)
	VMCHECK_EXTRA="$(VMCHECK_EXTRA)" VMCHECK_MODULES="$(VMCHECK_MODULES)" scripts/vmcheck.sh -s -t 900 $(VMCHECK_ARGS) kmod/vmig.ko $(KVM_VM_TESTS)

# Benchmarks: static, run in a qemu guest; they print figures, not TAP.
build/bench/%: bench/%.c uapi/linux/vmig.h
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -static -std=gnu11 -D_GNU_SOURCE -pthread $(WARN) -Iuapi -o $@ $< -lpthread

BENCH_CPUS ?= 2 1
bench-postcopy: kmod build/bench/postcopy_bench
	@for c in $(BENCH_CPUS); do \
		echo "== postcopy_bench in a $$c-vCPU guest"; \
		scripts/vmcheck.sh -c $$c kmod/vmig.ko build/bench/postcopy_bench || exit 1; \
	done

# The same migration on the kmod and uffd backends, one boot (bench/backends_bench.sh).
bench-backends: kmod all
	VMCHECK_EXTRA="$(BUILD)/vmig scripts/lib/vmig.sh" scripts/vmcheck.sh -m 1G -t 1500 kmod/vmig.ko \
		bench/backends_bench.sh

# Its postcopy cases only: page-request latency on both backends.
bench-backends-postcopy: kmod all
	VMCHECK_EXTRA="$(BUILD)/vmig scripts/lib/vmig.sh" scripts/vmcheck.sh -m 1G -t 900 kmod/vmig.ko \
		bench/backends_postcopy_bench.sh

# Its dirty-heavy case with and without --auto-converge.
bench-backends-converge: kmod all
	VMCHECK_EXTRA="$(BUILD)/vmig scripts/lib/vmig.sh" scripts/vmcheck.sh -m 1G -t 900 kmod/vmig.ko \
		bench/backends_converge_bench.sh

# TLS throughput with the record layer in the kernel (kTLS) and in OpenSSL.
KTLS_MODULES := tls aesni-intel ghash-clmulni-intel gcm ghash-generic ctr
bench-ktls: kmod all
	VMCHECK_EXTRA="$(BUILD)/vmig scripts/lib/vmig.sh /usr/bin/openssl" VMCHECK_MODULES="$(KTLS_MODULES)" \
		scripts/vmcheck.sh -m 1G -t 2400 kmod/vmig.ko bench/ktls_bench.sh
.PHONY: bench-ktls

# All three in one boot (figures comparable across them).
bench-backends-all: kmod all
	VMCHECK_EXTRA="$(BUILD)/vmig scripts/lib/vmig.sh" scripts/vmcheck.sh -m 1G -t 2400 kmod/vmig.ko \
		bench/backends_bench.sh bench/backends_converge_bench.sh \
		bench/backends_postcopy_bench.sh

# Dirty logging of a KVM guest: vmig.ko's modes against KVM's own logs, one boot.
bench-kvm-dirty: kmod all build/vmtests/kvm_hold
	VMCHECK_ENV="$(BENCH_ENV)" VMCHECK_EXTRA="$(VMCHECK_EXTRA)" VMCHECK_MODULES="$(VMCHECK_MODULES)" \
		scripts/vmcheck.sh -m 1G -t 1500 kmod/vmig.ko build/vmtests/kvm_hold bench/kvm_dirty_bench.sh

# QEMU's own migration against vmig qemu's, same inner guest, interleaved, one
# boot (bench/qemu_vmig_bench.sh; BENCH_ENV="RUNS=N CHANNELS=..." as above).
bench-qemu-vmig: kmod all qemu-guest build/bench/tcp_rr build/vmtests/kvm_hold
	VMCHECK_ENV="$(BENCH_ENV)" VMCHECK_QEMU=1 VMCHECK_CLOCK=kernel VMCHECK_QEMU_GUEST=build/qemu/guest-initrd.gz \
		VMCHECK_EXTRA="$(VMCHECK_QEMU_EXTRA) build/bench/tcp_rr" VMCHECK_MODULES="$(VMCHECK_MODULES)" \
		scripts/vmcheck.sh -m 3G -t 7200 $(VMCHECK_ARGS) kmod/vmig.ko build/vmtests/kvm_hold \
		bench/qemu_vmig_bench.sh

# On the host, not in a VM: QEMU 7.2 migrating its own TCG guest against vmig
# migrating `vmig guest`, interleaved, ratios (bench/vs_qemu_bench.sh, issue
# 19); settings in the environment, e.g. BENCH_MEM=256M BENCH_RUNS=1.
bench-vs-qemu: all qemu-guest build/bench/tcp_rr
	bench/vs_qemu_bench.sh

deps:
	@scripts/deps.sh

test: deps
	@scripts/test.sh

demo: deps
	@scripts/demo.sh

# kmod/compat.h is the one file that may test the kernel's version.
CHECKPATCH = $(KSRC)/scripts/checkpatch.pl --no-tree --strict --terse --show-types \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG
checkpatch: $(KSRC)/.extracted
	@files=$$(ls kmod/*.c kmod/*.h uapi/linux/*.h | grep -v "\.mod\.c$$" | grep -v "^kmod/compat\.h$$"); \
	$(CHECKPATCH) -f $$files && \
	$(CHECKPATCH),LINUX_VERSION_CODE,CONSTANT_COMPARISON -f kmod/compat.h && echo "checkpatch: clean"

# --- install -------------------------------------------------------------
# vmig.ko goes under the release in its vermagic: Debian's kernel.release
# (e.g. 6.1.192) is not its module directory (6.1.0-56-amd64).
install-man: man
	install -d $(DESTDIR)$(MANDIR)/man1
	install -m 644 $(BUILD)/man/*.1 $(DESTDIR)$(MANDIR)/man1/

install: all install-man kmod
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/linux \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libvmig.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libvmig.so $(DESTDIR)$(PREFIX)/lib/libvmig.so.0
	ln -sf libvmig.so.0 $(DESTDIR)$(PREFIX)/lib/libvmig.so
	install -m 644 lib/libvmig.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 uapi/linux/vmig.h $(DESTDIR)$(PREFIX)/include/linux/
	install -m 644 $(BUILD)/libvmig.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/vmig $(DESTDIR)$(PREFIX)/bin/
	kver=$$(modinfo -F vermagic kmod/vmig.ko | cut -d' ' -f1); \
	install -d $(DESTDIR)/lib/modules/$$kver/extra; \
	install -m 644 kmod/vmig.ko $(DESTDIR)/lib/modules/$$kver/extra/
	install -d $(DESTDIR)$(UDEVDIR)
	install -m 644 kmod/99-vmig.rules $(DESTDIR)$(UDEVDIR)/
	$(MAKE) -s dkms-src

# The tree `dkms add` takes: dkms.conf on top, kmod/ and uapi/ beside it
# (kmod/Kbuild includes ../uapi).
DKMS_SRC := $(DESTDIR)$(DKMSDIR)/vmig-$(VERSION)
dkms-src:
	rm -rf $(DKMS_SRC)
	install -d $(DKMS_SRC)/kmod $(DKMS_SRC)/uapi/linux
	sed 's/^PACKAGE_VERSION=.*/PACKAGE_VERSION="$(VERSION)"/' kmod/dkms.conf >$(DKMS_SRC)/dkms.conf
	install -m 644 kmod/Kbuild kmod/Kconfig kmod/Makefile $(filter-out %.mod.c,$(wildcard kmod/*.c)) \
		$(wildcard kmod/*.h) $(DKMS_SRC)/kmod/
	install -m 644 uapi/linux/vmig.h $(DKMS_SRC)/uapi/linux/

clean:
	rm -rf build
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean >/dev/null 2>&1

.PHONY: all man install-man vmcheck-kvm kmod kmod-clean bench-ktls bench-qemu-vmig bench-vs-qemu bench-dirty bench-postcopy bench-backends bench-backends-postcopy bench-backends-converge bench-backends-all vmtests hosttests vmcheck deps test demo \
	checkpatch install dkms-src clean

# --- fuzzing (clang + libFuzzer) -----------------------------------------
FUZZ_CC   ?= clang
FUZZ_SRCS := selftests/helper/stream_fuzz.c helper/net/stream.c helper/net/channel.c helper/net/handshake.c \
	     helper/net/control.c helper/dest/multifd_recv.c helper/common/zero.c helper/common/pctrace.c \
	     helper/dest/postcopy_dst.c helper/dest/postcopy_place.c helper/dest/postcopy_fault.c \
	     helper/dest/postcopy_stats.c lib/ram_postcopy.c helper/net/tls.c helper/net/tls_io.c \
	     helper/net/auth.c helper/common/util.c helper/common/thread_sched.c
build/fuzz/stream_fuzz: $(FUZZ_SRCS) $(HELPER_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=gnu11 -D_GNU_SOURCE $(WARN) $(HELPER_INC) -Iuapi -Ilib \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ $(FUZZ_SRCS) \
		$(TLS_LIBS)

fuzz: build/fuzz/stream_fuzz
.PHONY: fuzz

# vmigfs under Debian's unmodified QEMU 7.2 in the guest; in plain vmcheck
# regionfs_qemu_test.sh skips, as the guest has no QEMU there.
REGIONFS_QEMU := $(firstword $(wildcard /usr/bin/qemu-system-x86_64)) \
		 $(wildcard /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so)
vmcheck-regionfs-qemu: kmod all build/vmtests/regionfs_qemu_test.sh
	VMCHECK_EXTRA="$(VMCHECK_EXTRA) $(REGIONFS_QEMU)" scripts/vmcheck.sh kmod/vmig.ko \
		build/vmtests/regionfs_qemu_test.sh
.PHONY: vmcheck-regionfs-qemu
# Fuzz targets for the peer-facing parsers outside the page stream, and for
# the VMM control protocol (fuzz_test.sh runs each for a bounded time).
FUZZ_FLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE $(WARN) $(HELPER_INC) -Iuapi -Ilib \
	      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
PEER_FUZZ_SRCS := selftests/helper/peer_fuzz.c helper/net/stream.c helper/net/channel.c \
	     helper/net/handshake.c helper/net/admit.c helper/net/auth.c helper/net/tls.c \
	     helper/net/tls_io.c helper/common/util.c helper/common/thread_sched.c \
	     helper/common/pctrace.c lib/ram_postcopy.c
build/fuzz/peer_fuzz: $(PEER_FUZZ_SRCS) $(HELPER_SRCS) $(HELPER_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(PEER_FUZZ_SRCS) $(TLS_LIBS)
fuzz: build/fuzz/peer_fuzz
VMM_FUZZ_SRCS := selftests/helper/vmm_fuzz.c lib/vmm.c lib/vmm_dev.c lib/vmm_proto.c lib/ctl.c \
	     lib/uffd_track.c lib/uffd_missing.c lib/uffd_probe.c
build/fuzz/vmm_fuzz: $(VMM_FUZZ_SRCS) $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(VMM_FUZZ_SRCS)
fuzz: build/fuzz/vmm_fuzz
