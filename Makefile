# SPDX-License-Identifier: GPL-2.0
#
# vmig: make            libvmig (static, shared, pkg-config) and the vmig helper
#       make kmod       vmig.ko against KDIR
#       make test       deps, build, host tests, VM tests; ends "N passed, N failed"
#       make vmcheck    the module selftests in a qemu guest
#       make demo       a migration on this machine
#       make checkpatch checkpatch.pl --strict over kmod/ and uapi/
#       make install    DESTDIR=... PREFIX=/usr/local
#       make SAN=1      the same userspace built with ASan+UBSan into build/san
#
VERSION    := 0.1.0
CC         ?= gcc
PREFIX     ?= /usr/local
DESTDIR    ?=
KDIR       ?= $(shell scripts/kdir.sh)
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
CFLAGS     += -std=gnu11 -D_GNU_SOURCE -pthread -fPIC $(WARN) $(SANFLAGS) \
	      -Iuapi -Ilib -DVMIG_VERSION='"$(VERSION)"'
LDFLAGS    += -pthread $(SANFLAGS)
LIBS       :=

LIB_SRCS    := $(wildcard lib/*.c)
HELPER_SRCS := $(wildcard helper/*.c)
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/%.o)
HELPER_OBJS := $(HELPER_SRCS:%.c=$(BUILD)/%.o)

VM_TEST_SRCS   := $(wildcard selftests/vmig/*_test.c)
VM_TESTS       := $(VM_TEST_SRCS:selftests/vmig/%.c=build/vmtests/%)
HOST_TEST_SRCS := $(wildcard selftests/helper/*_test.c)
HOST_TESTS     := $(HOST_TEST_SRCS:selftests/helper/%.c=$(BUILD)/tests/%)

all: $(BUILD)/libvmig.a $(BUILD)/libvmig.so $(BUILD)/libvmig.pc $(BUILD)/vmig

$(BUILD)/%.o: %.c $(wildcard lib/*.h helper/*.h uapi/linux/*.h)
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
	$(CC) $(LDFLAGS) -o $@ $(HELPER_OBJS) $(BUILD)/libvmig.a $(LIBS)

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

$(BUILD)/tests/%: selftests/helper/%.c $(wildcard selftests/helper/*.h helper/*.c helper/*.h) $(BUILD)/libvmig.a $(KSRC)/.extracted
	@mkdir -p $(dir $@)
	$(CC) $(filter-out $(WARN),$(CFLAGS)) $(TEST_WARN) -I$(KSRC)/tools/testing/selftests $(LDFLAGS) -o $@ $< \
		$(BUILD)/libvmig.a $(LIBS)

vmtests: $(VM_TESTS)
hosttests: all $(HOST_TESTS)

VMCHECK_ARGS ?=
vmcheck: kmod vmtests all
	scripts/vmcheck.sh $(VMCHECK_ARGS) kmod/vmig.ko $(VM_TESTS)

deps:
	@scripts/deps.sh

test: deps
	@scripts/test.sh

demo: deps
	@scripts/demo.sh

checkpatch: $(KSRC)/.extracted
	@files=$$(ls kmod/*.c kmod/*.h uapi/linux/*.h | grep -v "\.mod\.c$$"); \
	$(KSRC)/scripts/checkpatch.pl --no-tree --strict --terse --show-types \
		--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG -f $$files && echo "checkpatch: clean"

# --- install -------------------------------------------------------------
install: all kmod
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/linux \
		$(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(BUILD)/libvmig.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libvmig.so $(DESTDIR)$(PREFIX)/lib/libvmig.so.0
	ln -sf libvmig.so.0 $(DESTDIR)$(PREFIX)/lib/libvmig.so
	install -m 644 lib/libvmig.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 uapi/linux/vmig.h $(DESTDIR)$(PREFIX)/include/linux/
	install -m 644 $(BUILD)/libvmig.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/
	install -m 755 $(BUILD)/vmig $(DESTDIR)$(PREFIX)/bin/
	kver=$$(cat $(KDIR)/include/config/kernel.release); \
	install -d $(DESTDIR)/lib/modules/$$kver/extra; \
	install -m 644 kmod/vmig.ko $(DESTDIR)/lib/modules/$$kver/extra/

clean:
	rm -rf build
	-$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod clean >/dev/null 2>&1

.PHONY: all kmod kmod-clean vmtests hosttests vmcheck deps test demo checkpatch install clean

# --- fuzzing (clang + libFuzzer) -----------------------------------------
FUZZ_CC   ?= clang
FUZZ_SRCS := selftests/helper/stream_fuzz.c helper/stream.c helper/channel.c helper/handshake.c \
	     helper/control.c helper/multifd_recv.c helper/zero.c
build/fuzz/stream_fuzz: $(FUZZ_SRCS) $(wildcard helper/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -g -O1 -std=gnu11 -D_GNU_SOURCE $(WARN) -Ihelper -Iuapi -Ilib \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -o $@ $(FUZZ_SRCS)

fuzz: build/fuzz/stream_fuzz
.PHONY: fuzz
