// SPDX-License-Identifier: LGPL-2.1-or-later
/* The helper's side of the control protocol: connect to a VMM, drive it. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "libvmig.h"
#include "vmm_dev.h"
#include "vmm_proto.h"

struct vmig_ctl {
	int sock;
	enum vmig_role role;
	bool handed_over;		/* HELLO: VMM_HELLO_HANDED_OVER */
	int pid;
	bool mirrored;			/* VMM_HELLO_MIRRORED */
	bool dirty_log;			/* VMM_HELLO_DIRTY_LOG */
	unsigned int nr_regions;
	int memfds[VMM_MAX_REGIONS];
	struct vmm_region_desc regions[VMM_MAX_REGIONS];
	void *devstate;			/* vmm_dev.c */
	struct vmm_msg msg;
};

static int connect_retry(const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t t0 = now_ns();

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		int err;

		if (fd < 0)
			return -errno;
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			return fd;
		err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED) ||
		    (now_ns() - t0) / 1000000 >= (uint64_t)timeout_ms)
			return -err;
		usleep(20000);
	}
}

struct vmig_ctl *vmig_ctl_connect(const char *path, int timeout_ms)
{
	struct vmig_ctl *ctl = calloc(1, sizeof(*ctl));
	const struct vmm_hello *h;
	unsigned int i;
	int r;

	if (!ctl)
		return NULL;
	ctl->sock = connect_retry(path, timeout_ms);
	if (ctl->sock < 0) {
		r = ctl->sock;
		free(ctl);
		errno = -r;
		return NULL;
	}
	r = vmm_msg_recv(ctl->sock, &ctl->msg, timeout_ms);
	if (r)
		goto fail;
	h = (const struct vmm_hello *)ctl->msg.payload;
	if (ctl->msg.hdr.type != VMM_HELLO || ctl->msg.hdr.len < sizeof(*h) ||
	    h->nr_regions > VMM_MAX_REGIONS || h->nr_regions != ctl->msg.hdr.nfds ||
	    ctl->msg.hdr.len != sizeof(*h) + h->nr_regions * sizeof(h->regions[0]) ||
	    ((h->role & ~VMM_HELLO_HANDED_OVER) != VMIG_ROLE_SOURCE &&
	     (h->role & ~VMM_HELLO_HANDED_OVER) != VMIG_ROLE_DEST)) {
		for (i = 0; i < ctl->msg.hdr.nfds; i++)
			close(ctl->msg.fds[i]);
		r = -EPROTO;
		goto fail;
	}
	if (h->version != VMM_PROTO_VERSION) {
		for (i = 0; i < ctl->msg.hdr.nfds; i++)
			close(ctl->msg.fds[i]);
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	ctl->role = h->role & ~VMM_HELLO_HANDED_OVER;
	ctl->handed_over = h->role & VMM_HELLO_HANDED_OVER;
	ctl->pid = h->pid;
	ctl->mirrored = ctl->msg.hdr.flags & VMM_HELLO_MIRRORED;
	ctl->dirty_log = ctl->msg.hdr.flags & VMM_HELLO_DIRTY_LOG;
	ctl->nr_regions = h->nr_regions;
	for (i = 0; i < h->nr_regions; i++) {
		ctl->memfds[i] = ctl->msg.fds[i];
		ctl->regions[i] = h->regions[i];
	}
	return ctl;
fail:
	close(ctl->sock);
	free(ctl);
	errno = -r;
	return NULL;
}

bool vmig_ctl_mirrored(const struct vmig_ctl *ctl)
{
	return ctl->mirrored;
}

bool vmig_ctl_dirty_log_offered(const struct vmig_ctl *ctl)
{
	return ctl->dirty_log;
}

enum vmig_role vmig_ctl_role(const struct vmig_ctl *ctl)
{
	return ctl->role;
}

bool vmig_ctl_handed_over(const struct vmig_ctl *ctl)
{
	return ctl->handed_over;
}

unsigned int vmig_ctl_region_count(const struct vmig_ctl *ctl)
{
	return ctl->nr_regions;
}

int vmig_ctl_region(const struct vmig_ctl *ctl, unsigned int i, int *memfd,
		    uint64_t *size, uint64_t *vmm_addr)
{
	if (i >= ctl->nr_regions)
		return -EINVAL;
	*memfd = ctl->memfds[i];
	*size = ctl->regions[i].size;
	*vmm_addr = ctl->regions[i].addr;
	return 0;
}

int vmig_ctl_vmm_pid(const struct vmig_ctl *ctl)
{
	return ctl->pid;
}

/* Wait for a reply of the given type; anything else is a protocol error. */
static int ctl_expect(struct vmig_ctl *ctl, uint16_t type, uint32_t len, int timeout_ms)
{
	int r = vmm_msg_recv(ctl->sock, &ctl->msg, timeout_ms);
	unsigned int i;

	if (r)
		return r;
	if (ctl->msg.hdr.type != type || ctl->msg.hdr.len != len) {
		for (i = 0; i < ctl->msg.hdr.nfds; i++)
			close(ctl->msg.fds[i]);
		return -EPROTO;
	}
	return 0;
}

int vmig_ctl_track(struct vmig_ctl *ctl, enum vmig_track mode, int timeout_ms,
		   enum vmig_track *chosen)
{
	struct vmm_track t = { .mode = mode };
	const struct vmm_tracking *rep;
	int r;

	r = vmm_msg_send(ctl->sock, VMM_TRACK, &t, sizeof(t), NULL, 0);
	if (r)
		return r;
	r = ctl_expect(ctl, VMM_TRACKING, sizeof(*rep), timeout_ms);
	if (r)
		return r;
	rep = (const struct vmm_tracking *)ctl->msg.payload;
	if (rep->status) {
		if (ctl->msg.hdr.nfds)
			close(ctl->msg.fds[0]);
		return rep->status < 0 ? rep->status : -EPROTO;
	}
	if (ctl->msg.hdr.nfds != 1 || (mode != VMIG_TRACK_AUTO && rep->mode != mode) ||
	    (rep->mode != VMIG_TRACK_ASYNC && rep->mode != VMIG_TRACK_SYNC &&
	     rep->mode != VMIG_TRACK_VMM) ||
	    ((mode == VMIG_TRACK_VMM) != (rep->mode == VMIG_TRACK_VMM))) {
		if (ctl->msg.hdr.nfds)
			close(ctl->msg.fds[0]);
		return -EPROTO;
	}
	*chosen = rep->mode;
	return ctl->msg.fds[0];
}

int vmig_ctl_dirty_log(struct vmig_ctl *ctl, int timeout_ms)
{
	const struct vmm_dirty_log *rep;
	int r;

	r = vmm_msg_send(ctl->sock, VMM_DIRTY_QUERY, NULL, 0, NULL, 0);
	if (!r)
		r = ctl_expect(ctl, VMM_DIRTY_LOG, sizeof(*rep), timeout_ms);
	if (r)
		return r;
	if (ctl->msg.hdr.nfds) {
		close(ctl->msg.fds[0]);
		return -EPROTO;
	}
	rep = (const struct vmm_dirty_log *)ctl->msg.payload;
	return rep->status <= 0 ? rep->status : -EPROTO;
}

int vmig_ctl_postcopy(struct vmig_ctl *ctl, int timeout_ms)
{
	struct vmm_track t = { .mode = VMIG_TRACK_MISSING };
	const struct vmm_tracking *rep;
	int r;

	if (ctl->role != VMIG_ROLE_DEST)
		return -EINVAL;
	r = vmm_msg_send(ctl->sock, VMM_TRACK, &t, sizeof(t), NULL, 0);
	if (!r)
		r = ctl_expect(ctl, VMM_TRACKING, sizeof(*rep), timeout_ms);
	if (r)
		return r;
	rep = (const struct vmm_tracking *)ctl->msg.payload;
	if (rep->status || ctl->msg.hdr.nfds > 1 || rep->mode != VMIG_TRACK_MISSING) {
		if (ctl->msg.hdr.nfds)
			close(ctl->msg.fds[0]);
		return rep->status < 0 ? rep->status : -EPROTO;
	}
	/* vmig.ko regions: nothing registered in the VMM, the module serves faults. */
	return ctl->msg.hdr.nfds ? ctl->msg.fds[0] : 0;
}

int vmig_ctl_throttle(struct vmig_ctl *ctl, unsigned int percent, int timeout_ms)
{
	struct vmm_throttle t = { .percent = percent };
	const struct vmm_throttled *rep;
	int r;

	if (ctl->role != VMIG_ROLE_SOURCE || percent > VMM_THROTTLE_MAX)
		return -EINVAL;
	r = vmm_msg_send(ctl->sock, VMM_THROTTLE, &t, sizeof(t), NULL, 0);
	if (!r)
		r = ctl_expect(ctl, VMM_THROTTLED, sizeof(*rep), timeout_ms);
	if (r)
		return r;
	rep = (const struct vmm_throttled *)ctl->msg.payload;
	if (rep->status)
		return rep->status < 0 ? rep->status : -EPROTO;
	return rep->percent == percent ? 0 : -EPROTO;
}

int vmig_ctl_stop_ran(struct vmig_ctl *ctl, int timeout_ms, uint64_t *ran_ns)
{
	struct vmm_stop st = { .flags = VMM_STOP_RAN };
	uint64_t t0 = now_ns(), took;
	unsigned int i;
	int r;

	*ran_ns = 0;
	r = vmm_msg_send(ctl->sock, VMM_STOP, &st, sizeof(st), NULL, 0);
	if (!r)
		r = vmm_msg_recv(ctl->sock, &ctl->msg, timeout_ms);
	if (r)
		return r;
	if (ctl->msg.hdr.type != VMM_STOPPED || ctl->msg.hdr.nfds ||
	    (ctl->msg.hdr.len && ctl->msg.hdr.len != sizeof(struct vmm_stopped))) {
		for (i = 0; i < ctl->msg.hdr.nfds; i++)
			close(ctl->msg.fds[i]);
		return -EPROTO;
	}
	if (ctl->msg.hdr.len) {
		took = now_ns() - t0;
		*ran_ns = ((const struct vmm_stopped *)ctl->msg.payload)->ran_ns;
		if (*ran_ns > took)	/* cannot have stopped before we asked */
			*ran_ns = took;
	}
	return 0;
}

int vmig_ctl_stop(struct vmig_ctl *ctl, int timeout_ms)
{
	uint64_t ran;

	return vmig_ctl_stop_ran(ctl, timeout_ms, &ran);
}

int vmig_ctl_resume(struct vmig_ctl *ctl, int timeout_ms)
{
	int r = vmm_msg_send(ctl->sock, VMM_RESUME, NULL, 0, NULL, 0);

	return r ? r : ctl_expect(ctl, VMM_RESUMED, 0, timeout_ms);
}

int vmig_ctl_complete(struct vmig_ctl *ctl)
{
	return vmm_msg_send(ctl->sock, VMM_COMPLETE, NULL, 0, NULL, 0);
}

int vmig_ctl_error(struct vmig_ctl *ctl, const char *msg)
{
	size_t n = strlen(msg);

	return vmm_msg_send(ctl->sock, VMM_ERROR, msg, n > 255 ? 255 : n, NULL, 0);
}

int vmig_ctl_handover(struct vmig_ctl *ctl, const void *rec, size_t len, int timeout_ms)
{
	const struct vmm_status *rep;
	int r;

	if (len > VMM_HANDOVER_MAX)
		return -EINVAL;
	r = vmm_msg_send(ctl->sock, VMM_HANDOVER, rec, len, NULL, 0);
	if (!r)
		r = ctl_expect(ctl, VMM_HANDOVER_OK, sizeof(*rep), timeout_ms);
	if (r)
		return r;
	rep = (const struct vmm_status *)ctl->msg.payload;
	return rep->status <= 0 ? rep->status : -EPROTO;
}

int vmig_ctl_handover_query(struct vmig_ctl *ctl, void *rec, size_t max, int timeout_ms)
{
	const struct vmm_handover_info *info;
	unsigned int i;
	int r;

	r = vmm_msg_send(ctl->sock, VMM_HANDOVER_QUERY, NULL, 0, NULL, 0);
	if (!r)
		r = vmm_msg_recv(ctl->sock, &ctl->msg, timeout_ms);
	if (r)
		return r;
	info = (const struct vmm_handover_info *)ctl->msg.payload;
	if (ctl->msg.hdr.type != VMM_HANDOVER_INFO || ctl->msg.hdr.nfds ||
	    ctl->msg.hdr.len < sizeof(*info) || info->len > VMM_HANDOVER_MAX ||
	    ctl->msg.hdr.len != sizeof(*info) + info->len) {
		for (i = 0; i < ctl->msg.hdr.nfds; i++)
			close(ctl->msg.fds[i]);
		return -EPROTO;
	}
	if (info->status)
		return info->status < 0 ? info->status : -EPROTO;
	if (!info->len)
		return -EPROTO;
	if (info->len > max)
		return -EMSGSIZE;
	memcpy(rec, info->record, info->len);
	return info->len;
}

bool vmig_ctl_lost(struct vmig_ctl *ctl)
{
	struct pollfd p = { .fd = ctl->sock, .events = POLLIN };

	/* The VMM only ever answers: anything readable now is a hang-up or an error. */
	return poll(&p, 1, 0) != 0;
}

void vmig_ctl_close(struct vmig_ctl *ctl)
{
	unsigned int i;

	if (!ctl)
		return;
	for (i = 0; i < ctl->nr_regions; i++)
		close(ctl->memfds[i]);
	vmm_ctl_devs_free(ctl->devstate);
	close(ctl->sock);
	free(ctl);
}

int vmig_ctl_sock_(const struct vmig_ctl *ctl)
{
	return ctl->sock;
}

struct vmm_msg *vmig_ctl_msg_(struct vmig_ctl *ctl)
{
	return &ctl->msg;
}

void **vmig_ctl_devstate_(struct vmig_ctl *ctl)
{
	return &ctl->devstate;
}
