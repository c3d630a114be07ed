// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The VMM's side of the control protocol: listen, announce the regions,
 * serve tracking requests, hand stop/resume/complete/error to the VMM.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvmig.h"
#include "uffd_track.h"
#include "vmm_dev.h"
#include "vmm_proto.h"

struct vmig_vmm {
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	enum vmig_role role;
	int listen_fd;
	int conn;			/* the helper, or -1 */
	int uffd;			/* tracking, or -1 */
	enum vmig_track track_mode;
	bool resumed;			/* acked a RESUME in this session */
	bool stop_ran;			/* the last STOP takes STOPPED {ran_ns} */
	_Atomic unsigned int throttle;	/* auto-converge: percent of time stopped */
	unsigned int nr_regions;
	int memfds[VMM_MAX_REGIONS];
	struct uffd_span spans[VMM_MAX_REGIONS];
	char error[256];
	struct vmm_devs *devs;		/* device state, free-page hints (vmm_dev.c) */
	/* Postcopy: the helper's handover record (vmm_proto.h); 0: none. */
	uint32_t handover_len;
	uint8_t handover[VMM_HANDOVER_MAX];
	uint32_t hello_flags;		/* VMM_HELLO_* */
	bool claimed;			/* destination: this helper asked for the record */
	/* The VMM's own dirty log (vmig_vmm_set_dirty_log); on while log_fd >= 0. */
	const struct vmig_dirty_log_ops *log_ops;
	void *log_opaque;
	int log_fd;			/* the bitmaps, shared with the helper */
	uint64_t *log_map;
	size_t log_len;
	struct vmm_msg msg;
};

struct vmig_vmm *vmig_vmm_listen(const char *path, enum vmig_role role)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vmig_vmm *vmm;
	int err;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	vmm = calloc(1, sizeof(*vmm));
	if (!vmm)
		return NULL;
	strcpy(vmm->path, path);
	strcpy(sa.sun_path, path);
	vmm->role = role;
	vmm->conn = -1;
	vmm->uffd = -1;
	vmm->log_fd = -1;
	vmm->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (vmm->listen_fd < 0)
		goto fail;
	unlink(path);
	if (bind(vmm->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(vmm->listen_fd, 1))
		goto fail;
	return vmm;
fail:
	err = errno;
	if (vmm->listen_fd >= 0)
		close(vmm->listen_fd);
	free(vmm);
	errno = err;
	return NULL;
}

int vmig_vmm_add_region(struct vmig_vmm *vmm, int memfd, void *addr, uint64_t size)
{
	if (vmm->nr_regions == VMM_MAX_REGIONS)
		return -ENOSPC;
	vmm->memfds[vmm->nr_regions] = memfd;
	vmm->spans[vmm->nr_regions].addr = addr;
	vmm->spans[vmm->nr_regions].size = size;
	vmm->nr_regions++;
	return 0;
}

int vmig_vmm_accept(struct vmig_vmm *vmm, int timeout_ms)
{
	char buf[sizeof(struct vmm_hello) + VMM_MAX_REGIONS * sizeof(struct vmm_region_desc)];
	struct vmm_hello *h = (struct vmm_hello *)buf;
	struct pollfd p = { .fd = vmm->listen_fd, .events = POLLIN };
	unsigned int i;
	int r;

	vmig_vmm_hangup(vmm);
	r = poll(&p, 1, timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	vmm->conn = accept4(vmm->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (vmm->conn < 0)
		return -errno;
	memset(buf, 0, sizeof(buf));
	h->version = VMM_PROTO_VERSION;
	h->role = vmm->role;
	/* A postcopy whose helper died runs here: only one that takes it over may stay. */
	if (vmm->role == VMIG_ROLE_DEST && vmm->handover_len)
		h->role |= VMM_HELLO_HANDED_OVER;
	vmm->claimed = false;
	h->pid = getpid();
	h->nr_regions = vmm->nr_regions;
	for (i = 0; i < vmm->nr_regions; i++) {
		h->regions[i].size = vmm->spans[i].size;
		h->regions[i].addr = (uintptr_t)vmm->spans[i].addr;
	}
	vmm->error[0] = 0;
	r = vmm_msg_send_flags(vmm->conn, VMM_HELLO, vmm->hello_flags, buf,
			 sizeof(*h) + vmm->nr_regions * sizeof(h->regions[0]),
			 vmm->memfds, vmm->nr_regions);
	if (r)
		vmig_vmm_hangup(vmm);
	return r;
}

void vmig_vmm_set_mirrored(struct vmig_vmm *vmm, bool mirrored)
{
	if (mirrored)
		vmm->hello_flags |= VMM_HELLO_MIRRORED;
	else
		vmm->hello_flags &= ~VMM_HELLO_MIRRORED;
}

/*
 * Destination: while a handover record is held, the guest runs on the
 * registration (uffd, or vmig.ko regions in postcopy mode) the next helper
 * takes over: nothing but COMPLETE or an ERROR tears it down.
 */
static bool vmm_dest_held(const struct vmig_vmm *vmm)
{
	return vmm->role == VMIG_ROLE_DEST && vmm->handover_len;
}

void vmig_vmm_set_dirty_log(struct vmig_vmm *vmm, const struct vmig_dirty_log_ops *ops,
			    void *opaque)
{
	vmm->log_ops = ops;
	vmm->log_opaque = opaque;
	if (ops)
		vmm->hello_flags |= VMM_HELLO_DIRTY_LOG;
	else
		vmm->hello_flags &= ~VMM_HELLO_DIRTY_LOG;
}

/* Bytes of the log's bitmaps: region after region, each padded to 8 bytes. */
static size_t log_bytes(const struct vmig_vmm *vmm)
{
	size_t n = 0;
	unsigned int i;

	for (i = 0; i < vmm->nr_regions; i++)
		n += (vmm->spans[i].size / 4096 + 63) / 64 * 8;
	return n;
}

static void log_off(struct vmig_vmm *vmm)
{
	if (vmm->log_fd < 0)
		return;
	vmm->log_ops->stop(vmm->log_opaque);
	munmap(vmm->log_map, vmm->log_len ? vmm->log_len : 8);
	close(vmm->log_fd);
	vmm->log_fd = -1;
}

/* TRACK {VMIG_TRACK_VMM}: the bitmaps' memfd, then the VMM's log on. */
static int log_on(struct vmig_vmm *vmm)
{
	size_t len = log_bytes(vmm);
	int fd, r;

	if (!vmm->log_ops)
		return -EOPNOTSUPP;
	fd = memfd_create("vmig-dirty-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* The helper maps it too: its size is fixed for good. */
	if (ftruncate(fd, len ? len : 8) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) {
		r = -errno;
		close(fd);
		return r;
	}
	vmm->log_map = mmap(NULL, len ? len : 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (vmm->log_map == MAP_FAILED) {
		r = -errno;
		close(fd);
		return r;
	}
	r = vmm->log_ops->start(vmm->log_opaque);
	if (r) {
		munmap(vmm->log_map, len ? len : 8);
		close(fd);
		return r < 0 ? r : -EIO;
	}
	vmm->log_fd = fd;
	vmm->log_len = len;
	return 0;
}

/* DIRTY_QUERY: every region's pages written since the last one, into the bitmaps. */
static int vmm_serve_dirty(struct vmig_vmm *vmm)
{
	struct vmm_dirty_log reply = { 0 };
	uint64_t *bm = vmm->log_map;
	unsigned int i;

	memset(bm, 0, vmm->log_len);
	for (i = 0; i < vmm->nr_regions && !reply.status; i++) {
		uint64_t pages = vmm->spans[i].size / 4096;

		reply.status = vmm->log_ops->collect(vmm->log_opaque, i, bm, pages);
		if (reply.status > 0)
			reply.status = -EIO;
		bm += (pages + 63) / 64;
	}
	return vmm_msg_send(vmm->conn, VMM_DIRTY_LOG, &reply, sizeof(reply), NULL, 0);
}

static void vmm_untrack(struct vmig_vmm *vmm)
{
	if (vmm_dest_held(vmm))
		return;
	log_off(vmm);
	if (vmm->uffd >= 0)
		uffd_track_unregister(vmm->uffd, vmm->spans, vmm->nr_regions);
	vmm->uffd = -1;
	vmm->track_mode = VMIG_TRACK_AUTO;
	vmm->resumed = false;
}

bool vmig_vmm_postcopy_active(const struct vmig_vmm *vmm)
{
	return vmm->track_mode == VMIG_TRACK_MISSING && vmm->resumed;
}

/* On failure: keep a running postcopy guest's registration (see libvmig.h). */
static void vmm_untrack_failed(struct vmig_vmm *vmm)
{
	if (!vmig_vmm_postcopy_active(vmm))
		vmm_untrack(vmm);
}

static int vmm_serve_track(struct vmig_vmm *vmm, const struct vmm_track *t)
{
	struct vmm_tracking reply = { 0 };
	enum vmig_track chosen = VMIG_TRACK_AUTO;
	int fd;

	if (vmm_dest_held(vmm)) {
		/* The helper that took over gets the registration the guest runs on. */
		reply.mode = VMIG_TRACK_MISSING;
		return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), &vmm->uffd,
				    vmm->uffd >= 0);
	}
	vmm_untrack(vmm);
	if (t->mode == VMIG_TRACK_MISSING && vmm->nr_regions && vmig_fd_is_region(vmm->memfds[0])) {
		/* vmig.ko regions: the helper switches them to postcopy mode itself. */
		vmm->track_mode = VMIG_TRACK_MISSING;
		reply.mode = VMIG_TRACK_MISSING;
		return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), NULL, 0);
	} else if (t->mode == VMIG_TRACK_MISSING) {
		fd = uffd_missing_register(vmm->spans, vmm->nr_regions);
		chosen = VMIG_TRACK_MISSING;
	} else if (t->mode == VMIG_TRACK_VMM) {
		reply.status = log_on(vmm);
		if (reply.status)
			return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), NULL, 0);
		vmm->track_mode = VMIG_TRACK_VMM;
		reply.mode = VMIG_TRACK_VMM;
		return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), &vmm->log_fd, 1);
	} else {
		fd = t->mode > VMIG_TRACK_SYNC ? -EINVAL :
		     uffd_track_register(vmm->spans, vmm->nr_regions, t->mode, &chosen);
	}
	if (fd < 0) {
		reply.status = fd;
		return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), NULL, 0);
	}
	vmm->uffd = fd;
	vmm->track_mode = chosen;
	reply.mode = chosen;
	return vmm_msg_send(vmm->conn, VMM_TRACKING, &reply, sizeof(reply), &fd, 1);
}

unsigned int vmig_vmm_throttle(const struct vmig_vmm *vmm)
{
	return atomic_load_explicit(&((struct vmig_vmm *)vmm)->throttle, memory_order_relaxed);
}

static int vmm_serve_throttle(struct vmig_vmm *vmm, const struct vmm_throttle *t)
{
	struct vmm_throttled reply = { .percent = t->percent };

	atomic_store(&vmm->throttle, t->percent);
	return vmm_msg_send(vmm->conn, VMM_THROTTLED, &reply, sizeof(reply), NULL, 0);
}

bool vmig_vmm_handed_over(const struct vmig_vmm *vmm)
{
	return vmm->handover_len != 0;
}

/* HANDOVER: keep (or, empty, drop) the record, then say so. */
static int vmm_serve_handover(struct vmig_vmm *vmm, const struct vmm_msg *m)
{
	struct vmm_status reply = { 0 };

	memcpy(vmm->handover, m->payload, m->hdr.len);
	vmm->handover_len = m->hdr.len;
	vmm->claimed = true;		/* it is this helper's own */
	return vmm_msg_send(vmm->conn, VMM_HANDOVER_OK, &reply, sizeof(reply), NULL, 0);
}

static int vmm_serve_handover_query(struct vmig_vmm *vmm)
{
	uint8_t buf[sizeof(struct vmm_handover_info) + VMM_HANDOVER_MAX];
	struct vmm_handover_info *info = (struct vmm_handover_info *)buf;

	vmm->claimed = vmm->handover_len != 0;
	memset(info, 0, sizeof(*info));
	info->status = vmm->handover_len ? 0 : -ENOENT;
	info->len = vmm->handover_len;
	memcpy(info->record, vmm->handover, vmm->handover_len);
	return vmm_msg_send(vmm->conn, VMM_HANDOVER_INFO, buf, sizeof(*info) + info->len,
			    NULL, 0);
}

int vmig_vmm_poll(struct vmig_vmm *vmm, int timeout_ms)
{
	struct vmm_msg *m = &vmm->msg;
	unsigned int i;
	int r;

	if (vmm->conn < 0)
		return -ENOTCONN;
	for (;;) {
		r = vmm_msg_recv(vmm->conn, m, timeout_ms);
		if (r == -ETIMEDOUT)
			return VMIG_VMM_NONE;
		if (r)
			goto lost;
		r = vmm_devs_serve(&vmm->devs, vmm->conn, m, vmm->spans, vmm->nr_regions);
		if (r == -EPROTO)
			goto proto;
		if (r != -ENOMSG) {
			if (r)
				goto lost;
			continue;
		}
		for (i = 0; i < m->hdr.nfds; i++)	/* the helper sends none */
			close(m->fds[i]);
		switch (m->hdr.type) {
		case VMM_TRACK:
			if (m->hdr.len != sizeof(struct vmm_track) ||
			    vmm->role != (((const struct vmm_track *)m->payload)->mode ==
					  VMIG_TRACK_MISSING ? VMIG_ROLE_DEST : VMIG_ROLE_SOURCE))
				goto proto;
			if (vmm->handover_len && (vmm->role == VMIG_ROLE_SOURCE || !vmm->claimed)) {
				/*
				 * Source: the guest may run elsewhere, nothing to track here.
				 * Destination: only a helper that took the record over.
				 */
				struct vmm_tracking busy = { .status = -EBUSY };

				r = vmm_msg_send(vmm->conn, VMM_TRACKING, &busy, sizeof(busy),
						 NULL, 0);
			} else {
				r = vmm_serve_track(vmm, (const struct vmm_track *)m->payload);
			}
			if (r)
				goto lost;
			continue;
		case VMM_HANDOVER:
			/* Destination: once the guest runs, and not over another's record. */
			if (m->hdr.len > VMM_HANDOVER_MAX ||
			    (vmm->role == VMIG_ROLE_DEST &&
			     (!vmig_vmm_postcopy_active(vmm) || (vmm->handover_len && !vmm->claimed))))
				goto proto;
			r = vmm_serve_handover(vmm, m);
			if (r)
				goto lost;
			continue;
		case VMM_DIRTY_QUERY:
			/* Only after TRACK {VMIG_TRACK_VMM} was granted. */
			if (m->hdr.len || vmm->log_fd < 0)
				goto proto;
			r = vmm_serve_dirty(vmm);
			if (r)
				goto lost;
			continue;
		case VMM_HANDOVER_QUERY:
			if (m->hdr.len)
				goto proto;
			r = vmm_serve_handover_query(vmm);
			if (r)
				goto lost;
			continue;
		case VMM_THROTTLE:
			if (m->hdr.len != sizeof(struct vmm_throttle) || vmm->role != VMIG_ROLE_SOURCE ||
			    ((const struct vmm_throttle *)m->payload)->percent > VMM_THROTTLE_MAX ||
			    ((const struct vmm_throttle *)m->payload)->reserved)
				goto proto;
			r = vmm_serve_throttle(vmm, (const struct vmm_throttle *)m->payload);
			if (r)
				goto lost;
			continue;
		case VMM_STOP:
			vmm->stop_ran = m->hdr.len >= sizeof(struct vmm_stop) &&
					(((const struct vmm_stop *)m->payload)->flags &
					 VMM_STOP_RAN);
			return VMIG_VMM_STOP;
		case VMM_RESUME:
			/* Handed over: the guest may run on the destination (or runs here). */
			if (vmm->handover_len)
				goto proto;
			return VMIG_VMM_RESUME;
		case VMM_COMPLETE:
			if (vmm_dest_held(vmm) && !vmm->claimed)
				goto proto;
			atomic_store(&vmm->throttle, 0);
			vmm->handover_len = 0;
			vmm_untrack(vmm);
			return VMIG_VMM_COMPLETE;
		case VMM_ERROR:
			/* Destination: a helper that gives up ends the migration; not another's. */
			if (vmm_dest_held(vmm) && !vmm->claimed)
				goto proto;
			if (vmm->role == VMIG_ROLE_DEST)
				vmm->handover_len = 0;
			atomic_store(&vmm->throttle, 0);
			vmm_untrack_failed(vmm);
			snprintf(vmm->error, sizeof(vmm->error), "%.*s",
				 (int)(m->hdr.len < sizeof(vmm->error) ? m->hdr.len :
				       sizeof(vmm->error) - 1), (const char *)m->payload);
			return VMIG_VMM_ERROR;
		default:
			goto proto;
		}
	}
proto:
	r = -EPROTO;
lost:
	atomic_store(&vmm->throttle, 0);
	vmm_untrack_failed(vmm);
	snprintf(vmm->error, sizeof(vmm->error), "helper connection lost: %s",
		 r == -ECONNRESET ? "hang-up" : strerror(-r));
	close(vmm->conn);
	vmm->conn = -1;
	return VMIG_VMM_DISCONNECT;
}

int vmig_vmm_ack(struct vmig_vmm *vmm, enum vmig_vmm_event ev)
{
	if (vmm->conn < 0)
		return -ENOTCONN;
	if (ev == VMIG_VMM_STOP)
		return vmig_vmm_ack_stop(vmm, 0);
	if (ev == VMIG_VMM_RESUME) {
		vmm->resumed = true;
		return vmm_msg_send(vmm->conn, VMM_RESUMED, NULL, 0, NULL, 0);
	}
	return -EINVAL;
}

int vmig_vmm_ack_stop(struct vmig_vmm *vmm, uint64_t ran_ns)
{
	struct vmm_stopped st = { .ran_ns = ran_ns };

	if (vmm->conn < 0)
		return -ENOTCONN;
	if (!vmm->stop_ran)	/* a helper from before: STOPPED is empty */
		return vmm_msg_send(vmm->conn, VMM_STOPPED, NULL, 0, NULL, 0);
	return vmm_msg_send(vmm->conn, VMM_STOPPED, &st, sizeof(st), NULL, 0);
}

const char *vmig_vmm_error(const struct vmig_vmm *vmm)
{
	return vmm->error;
}

enum vmig_track vmig_vmm_track_mode(const struct vmig_vmm *vmm)
{
	return vmm->track_mode;
}

void vmig_vmm_hangup(struct vmig_vmm *vmm)
{
	atomic_store(&vmm->throttle, 0);
	vmm_untrack(vmm);
	if (vmm->conn >= 0)
		close(vmm->conn);
	vmm->conn = -1;
}

void vmig_vmm_close(struct vmig_vmm *vmm)
{
	if (!vmm)
		return;
	vmm->handover_len = 0;		/* the VMM ends: nothing to keep for anyone */
	vmig_vmm_hangup(vmm);
	vmm_devs_free(vmm->devs);
	close(vmm->listen_fd);
	unlink(vmm->path);
	free(vmm);
}

int vmig_vmm_add_device(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			uint64_t size, uint32_t flags, const struct vmig_dev_ops *ops,
			void *opaque)
{
	return vmm_devs_add(&vmm->devs, name, instance, size, flags, ops, opaque);
}

void vmig_vmm_set_free_hint(struct vmig_vmm *vmm, vmig_free_hint_fn fn, void *opaque)
{
	vmm_devs_set_hint(&vmm->devs, fn, opaque);
}

int vmig_vmm_set_device_size(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			     uint64_t size)
{
	return vmm_devs_update(vmm->devs, name, instance, &size, NULL, NULL);
}

int vmig_vmm_set_device_rates(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			      uint64_t save_rate, uint64_t load_rate)
{
	return vmm_devs_update(vmm->devs, name, instance, NULL, &save_rate, &load_rate);
}
