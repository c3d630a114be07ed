// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the VMM side of the control protocol (lib/vmm.c,
 * lib/vmm_dev.c, lib/vmm_proto.c): whatever a helper sends on the VMM's
 * socket, the VMM answers, reports an event, or drops the connection;
 * never a crash, an out-of-bounds access, or a leaked descriptor.
 *
 * Input: one byte picking the VMM's role (bit 0: destination), then
 * messages as {le16 length, bytes}, each sent as one SOCK_SEQPACKET
 * message (header included: the fuzzer writes it) before the VMM reads.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvmig.h"

#define REGION_SIZE	(64 << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Guest RAM here is a memfd, never a vmig.ko region (lib/ram_kmod.c is not linked). */
bool vmig_fd_is_region(int fd)
{
	(void)fd;
	return false;
}

static struct vmig_vmm *vmm[2];
static char path[2][108];

/* A dirty log of the VMM's own (TRACK {VMIG_TRACK_VMM}, DIRTY_QUERY): a page or none. */
static int log_start(void *opaque)
{
	(void)opaque;
	return 0;
}

static int log_collect(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages)
{
	(void)opaque;
	if (region || !pages)
		return -EINVAL;
	bitmap[0] |= 1;
	return 0;
}

static void log_stop(void *opaque)
{
	(void)opaque;
}

static const struct vmig_dirty_log_ops log_ops = {
	.start = log_start, .collect = log_collect, .stop = log_stop,
};

static struct vmig_vmm *get_vmm(unsigned int role)
{
	void *mem;
	int fd;

	if (vmm[role])
		return vmm[role];
	snprintf(path[role], sizeof(path[role]), "/tmp/vmig-vmm-fuzz-%d-%u.sock", getpid(), role);
	vmm[role] = vmig_vmm_listen(path[role], role ? VMIG_ROLE_DEST : VMIG_ROLE_SOURCE);
	if (!vmm[role])
		abort();
	fd = memfd_create("vmm-fuzz", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, REGION_SIZE))
		abort();
	mem = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED || vmig_vmm_add_region(vmm[role], fd, mem, REGION_SIZE))
		abort();
	vmig_vmm_set_dirty_log(vmm[role], &log_ops, NULL);
	return vmm[role];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vmig_vmm *v;
	unsigned int role, i;
	size_t off = 1;
	int c;

	if (!size)
		return 0;
	role = data[0] & 1;
	v = get_vmm(role);
	strcpy(sa.sun_path, path[role]);
	c = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		abort();
	while (off + 2 <= size) {
		size_t n = data[off] | data[off + 1] << 8;

		off += 2;
		if (n > size - off)
			n = size - off;
		if (send(c, data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
			break;
		off += n;
	}
	shutdown(c, SHUT_WR);
	if (!vmig_vmm_accept(v, 1000)) {
		for (i = 0; i < 64; i++) {
			int ev = vmig_vmm_poll(v, 0);

			if (ev == VMIG_VMM_NONE || ev == VMIG_VMM_DISCONNECT || ev < 0)
				break;
			if (ev == VMIG_VMM_STOP || ev == VMIG_VMM_RESUME)
				vmig_vmm_ack(v, ev);
		}
	}
	vmig_vmm_hangup(v);
	close(c);
	return 0;
}
