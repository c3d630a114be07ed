// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Device state and free-page hints over the control protocol.
 *
 * VMM side: a registry of devices; each DEV_SAVE / DEV_LOAD request brings
 * the helper's end of a fresh socketpair, and a detached thread runs the
 * device's save or load on it (records {len, status} + bytes, a zero-length
 * record ends the stream with the device's status; on load the VMM answers
 * with one such record).  Helper side: the matching requests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm_dev.h"

#define PAGE_SZ		4096u

struct vmm_dev_ent {
	struct vmm_dev_desc d;
	const struct vmig_dev_ops *ops;
	void *opaque;
	bool precopy_done;		/* this session took its precopy part (under lock) */
	uint64_t save_rate, load_rate;	/* declared bytes/s, 0: unknown (under lock) */
};

struct vmm_devs {
	unsigned int n;
	struct vmm_dev_ent dev[VMM_MAX_DEVICES];
	vmig_free_hint_fn hint;
	void *hint_opaque;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int active;		/* save/load threads running */
};

struct vmig_dev_io {
	int fd;
	bool ended;
	struct vmm_devs *devs;
	struct vmm_dev_ent *e;
	bool load;
	bool precopy;			/* saving the part before switchover */
	bool after_precopy;		/* saving the rest after that part */
};

static struct vmm_devs *devs_get(struct vmm_devs **pd)
{
	if (!*pd) {
		*pd = calloc(1, sizeof(**pd));
		if (!*pd)
			return NULL;
		pthread_mutex_init(&(*pd)->lock, NULL);
		pthread_cond_init(&(*pd)->cond, NULL);
	}
	return *pd;
}

int vmm_devs_add(struct vmm_devs **pd, const char *name, uint32_t instance, uint64_t size,
		 uint32_t flags, const struct vmig_dev_ops *ops, void *opaque)
{
	struct vmm_devs *devs = devs_get(pd);
	struct vmm_dev_ent *e;
	unsigned int i;

	if (!devs)
		return -ENOMEM;
	if (!name || !name[0] || strlen(name) >= VMM_DEV_NAME_MAX || !ops ||
	    (flags & ~VMIG_DEV_PRECOPY) || (!(flags & VMIG_DEV_PRECOPY) != !ops->save_precopy))
		return -EINVAL;
	for (i = 0; i < devs->n; i++)
		if (!strcmp(devs->dev[i].d.name, name) && devs->dev[i].d.instance == instance)
			return -EEXIST;
	if (devs->n == VMM_MAX_DEVICES)
		return -ENOSPC;
	e = &devs->dev[devs->n++];
	memset(e, 0, sizeof(*e));
	strcpy(e->d.name, name);
	e->d.instance = instance;
	e->d.flags = flags;
	e->d.size = size;
	e->ops = ops;
	e->opaque = opaque;
	return 0;
}

int vmm_devs_update(struct vmm_devs *devs, const char *name, uint32_t instance,
		    const uint64_t *size, const uint64_t *save_rate, const uint64_t *load_rate)
{
	unsigned int i;

	if (!devs || !name)
		return -ENOENT;
	for (i = 0; i < devs->n; i++) {
		struct vmm_dev_ent *e = &devs->dev[i];

		if (strcmp(e->d.name, name) || e->d.instance != instance)
			continue;
		pthread_mutex_lock(&devs->lock);
		if (size)
			e->d.size = *size;
		if (save_rate)
			e->save_rate = *save_rate;
		if (load_rate)
			e->load_rate = *load_rate;
		pthread_mutex_unlock(&devs->lock);
		return 0;
	}
	return -ENOENT;
}

void vmm_devs_set_hint(struct vmm_devs **pd, vmig_free_hint_fn fn, void *opaque)
{
	struct vmm_devs *devs = devs_get(pd);

	if (devs) {
		devs->hint = fn;
		devs->hint_opaque = opaque;
	}
}

static int send_all(int fd, struct iovec *iov, int cnt)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = cnt };

	while (cnt) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
		mh.msg_iov = iov;
		mh.msg_iovlen = cnt;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	while (len) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		buf = (char *)buf + n;
		len -= n;
	}
	return 0;
}

static int send_rec(int fd, uint32_t len, int32_t status, const void *data)
{
	struct vmm_dev_rec rec = { .len = len, .status = status };
	struct iovec iov[2] = {
		{ .iov_base = &rec, .iov_len = sizeof(rec) },
		{ .iov_base = (void *)data, .iov_len = len },
	};

	return send_all(fd, iov, len ? 2 : 1);
}

int vmig_dev_put(struct vmig_dev_io *io, const void *buf, size_t len)
{
	if (io->load || !len || len > VMIG_DEV_CHUNK_MAX)
		return -EINVAL;
	return send_rec(io->fd, len, 0, buf);
}

bool vmig_dev_io_after_precopy(const struct vmig_dev_io *io)
{
	return io->after_precopy;
}

long vmig_dev_get(struct vmig_dev_io *io, void *buf, size_t cap)
{
	struct vmm_dev_rec rec;
	int r;

	if (!io->load)
		return -EINVAL;
	if (io->ended)
		return 0;
	r = recv_all(io->fd, &rec, sizeof(rec));
	if (r)
		return r;
	if (!rec.len) {
		io->ended = true;
		return rec.status < 0 ? rec.status : 0;
	}
	if (rec.len > VMIG_DEV_CHUNK_MAX || rec.len > cap)
		return -EMSGSIZE;
	r = recv_all(io->fd, buf, rec.len);
	return r ? r : (long)rec.len;
}

static void *dev_thread(void *arg)
{
	struct vmig_dev_io *io = arg;
	struct vmm_devs *devs = io->devs;
	int r;

	if (io->load) {
		r = io->e->ops->load(io->e->opaque, io);
		if (!r && !io->ended)
			r = -EPROTO;	/* returned success without taking the whole state */
	} else if (io->precopy) {
		r = io->e->ops->save_precopy(io->e->opaque, io);
		/* before the end record: the helper asks for the rest only after it */
		pthread_mutex_lock(&devs->lock);
		io->e->precopy_done = !r;
		pthread_mutex_unlock(&devs->lock);
	} else {
		r = io->e->ops->save(io->e->opaque, io);
	}
	send_rec(io->fd, 0, r < 0 ? r : 0, NULL);
	close(io->fd);
	free(io);
	pthread_mutex_lock(&devs->lock);
	devs->active--;
	pthread_cond_broadcast(&devs->cond);
	pthread_mutex_unlock(&devs->lock);
	return NULL;
}

static int serve_open(struct vmm_devs *devs, struct vmm_msg *m, bool load)
{
	const struct vmm_dev_open *o = (const void *)m->payload;
	bool precopy = o->flags & VMM_DEV_OPEN_PRECOPY;
	struct vmig_dev_io *io;
	pthread_attr_t attr;
	pthread_t t;
	int fd;

	if (m->hdr.len != sizeof(*o) || m->hdr.nfds != 1 || (o->flags & ~VMM_DEV_OPEN_PRECOPY) ||
	    (precopy && load))
		return -EPROTO;
	fd = m->fds[0];
	m->hdr.nfds = 0;
	if (!devs || o->index >= devs->n ||
	    !(load ? devs->dev[o->index].ops->load : precopy ?
	      devs->dev[o->index].ops->save_precopy : devs->dev[o->index].ops->save)) {
		send_rec(fd, 0, -ENODEV, NULL);
		close(fd);
		return 0;
	}
	io = calloc(1, sizeof(*io));
	if (!io) {
		send_rec(fd, 0, -ENOMEM, NULL);
		close(fd);
		return 0;
	}
	*io = (struct vmig_dev_io){ .fd = fd, .devs = devs, .e = &devs->dev[o->index],
				    .load = load, .precopy = precopy };
	pthread_mutex_lock(&devs->lock);
	devs->active++;
	io->after_precopy = !load && !precopy && io->e->precopy_done;
	pthread_mutex_unlock(&devs->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, dev_thread, io)) {
		pthread_mutex_lock(&devs->lock);
		devs->active--;
		pthread_mutex_unlock(&devs->lock);
		send_rec(fd, 0, -EAGAIN, NULL);
		close(fd);
		free(io);
	}
	pthread_attr_destroy(&attr);
	return 0;
}

/*
 * The device-protocol revision this VMM speaks.  Tests set
 * VMIG_TEST_DEV_REVISION=0 to be a VMM linked with a libvmig from before
 * DEV_PENDING, which answers 0 here and drops the helper on DEV_PENDING.
 */
static uint32_t dev_revision(void)
{
	const char *v = getenv("VMIG_TEST_DEV_REVISION");

	return v && !strcmp(v, "0") ? 0 : VMM_DEV_REVISION;
}

/* DEV_QUERY: the device list; a new session, so no precopy part taken yet. */
static int serve_list(struct vmm_devs *devs, int conn)
{
	char buf[sizeof(struct vmm_dev_list) + VMM_MAX_DEVICES * sizeof(struct vmm_dev_desc)];
	struct vmm_dev_list *l = (struct vmm_dev_list *)buf;
	unsigned int i, n = devs ? devs->n : 0;

	memset(buf, 0, sizeof(buf));
	l->nr_devices = n;
	l->revision = dev_revision();
	if (devs) {
		pthread_mutex_lock(&devs->lock);
		for (i = 0; i < n; i++) {
			devs->dev[i].precopy_done = false;
			l->devices[i] = devs->dev[i].d;
		}
		pthread_mutex_unlock(&devs->lock);
	}
	return vmm_msg_send(conn, VMM_DEV_LIST, buf, sizeof(*l) + n * sizeof(l->devices[0]),
			    NULL, 0);
}

/* DEV_PENDING: every device's size and rates as the VMM set them last. */
static int serve_pending(struct vmm_devs *devs, int conn)
{
	char buf[sizeof(struct vmm_dev_status) +
		 VMM_MAX_DEVICES * sizeof(struct vmm_dev_status_ent)];
	struct vmm_dev_status *st = (struct vmm_dev_status *)buf;
	unsigned int i, n = devs ? devs->n : 0;

	memset(buf, 0, sizeof(buf));
	st->nr_devices = n;
	if (devs) {
		pthread_mutex_lock(&devs->lock);
		for (i = 0; i < n; i++)
			st->devices[i] = (struct vmm_dev_status_ent){
				.size = devs->dev[i].d.size,
				.save_rate = devs->dev[i].save_rate,
				.load_rate = devs->dev[i].load_rate,
			};
		pthread_mutex_unlock(&devs->lock);
	}
	return vmm_msg_send(conn, VMM_DEV_STATUS, buf, sizeof(*st) + n * sizeof(st->devices[0]),
			    NULL, 0);
}

static int serve_hint(struct vmm_devs *devs, int conn, const struct uffd_span *spans,
		      unsigned int nr_regions)
{
	struct vmm_free_hint h = { .nr_regions = nr_regions };
	uint64_t total = 0, off = 0;
	unsigned int i;
	uint8_t *map;
	int fd, r;

	if (!devs || !devs->hint) {
		h.status = -ENOENT;
		return vmm_msg_send(conn, VMM_FREE_HINT, &h, sizeof(h), NULL, 0);
	}
	for (i = 0; i < nr_regions; i++) {
		h.pages[i] = spans[i].size / PAGE_SZ;
		total += (h.pages[i] + 63) / 64 * 8;
	}
	fd = memfd_create("vmig-free-hint", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, total ? total : 8)) {
		h.status = -errno;
		goto fail;
	}
	map = mmap(NULL, total ? total : 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		h.status = -errno;
		goto fail;
	}
	for (i = 0; i < nr_regions && !h.status; i++) {
		r = devs->hint(devs->hint_opaque, i, (uint64_t *)(map + off), h.pages[i]);
		if (r)
			h.status = r < 0 ? r : -EINVAL;
		off += (h.pages[i] + 63) / 64 * 8;
	}
	munmap(map, total ? total : 8);
	if (h.status)
		goto fail;
	r = vmm_msg_send(conn, VMM_FREE_HINT, &h, sizeof(h), &fd, 1);
	close(fd);
	return r;
fail:
	if (fd >= 0)
		close(fd);
	return vmm_msg_send(conn, VMM_FREE_HINT, &h, sizeof(h), NULL, 0);
}

int vmm_devs_serve(struct vmm_devs **pd, int conn, struct vmm_msg *m,
		   const struct uffd_span *spans, unsigned int nr_regions)
{
	unsigned int i;
	int r;

	switch (m->hdr.type) {
	case VMM_DEV_QUERY:
		r = m->hdr.len || m->hdr.nfds ? -EPROTO : serve_list(*pd, conn);
		break;
	case VMM_DEV_SAVE:
	case VMM_DEV_LOAD:
		r = serve_open(*pd, m, m->hdr.type == VMM_DEV_LOAD);
		break;
	case VMM_FREE_QUERY:
		r = m->hdr.len || m->hdr.nfds ? -EPROTO : serve_hint(*pd, conn, spans, nr_regions);
		break;
	case VMM_DEV_PENDING:
		if (!dev_revision())
			return -ENOMSG;		/* an old VMM: unknown, so dropped */
		r = m->hdr.len || m->hdr.nfds ? -EPROTO : serve_pending(*pd, conn);
		break;
	default:
		return -ENOMSG;
	}
	for (i = 0; i < m->hdr.nfds; i++)
		close(m->fds[i]);
	m->hdr.nfds = 0;
	return r;
}

void vmm_devs_free(struct vmm_devs *devs)
{
	struct timespec ts;
	bool idle;

	if (!devs)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&devs->lock);
	while (devs->active)
		if (pthread_cond_timedwait(&devs->cond, &devs->lock, &ts))
			break;
	idle = !devs->active;
	pthread_mutex_unlock(&devs->lock);
	if (idle)		/* else a device thread is stuck: leak rather than free under it */
		free(devs);
}

/* Helper side. */

struct ctl_devs {
	unsigned int n;
	uint32_t revision;		/* the VMM's VMM_DEV_REVISION */
	struct vmig_dev_desc d[VMM_MAX_DEVICES];
};

void vmm_ctl_devs_free(void *p)
{
	free(p);
}

static int ctl_reply(struct vmig_ctl *ctl, uint16_t type, int timeout_ms)
{
	struct vmm_msg *m = vmig_ctl_msg_(ctl);
	unsigned int i;
	int r = vmm_msg_recv(vmig_ctl_sock_(ctl), m, timeout_ms);

	if (r)
		return r;
	if (m->hdr.type != type) {
		for (i = 0; i < m->hdr.nfds; i++)
			close(m->fds[i]);
		return -EPROTO;
	}
	return 0;
}

int vmig_ctl_query_devices(struct vmig_ctl *ctl, int timeout_ms)
{
	struct vmm_msg *m = vmig_ctl_msg_(ctl);
	const struct vmm_dev_list *l = (const void *)m->payload;
	struct ctl_devs **pd = (struct ctl_devs **)vmig_ctl_devstate_(ctl);
	unsigned int i;
	int r;

	r = vmm_msg_send(vmig_ctl_sock_(ctl), VMM_DEV_QUERY, NULL, 0, NULL, 0);
	if (!r)
		r = ctl_reply(ctl, VMM_DEV_LIST, timeout_ms);
	if (r)
		return r;
	for (i = 0; i < m->hdr.nfds; i++)
		close(m->fds[i]);
	if (m->hdr.nfds || m->hdr.len < sizeof(*l) || l->nr_devices > VMM_MAX_DEVICES ||
	    m->hdr.len != sizeof(*l) + l->nr_devices * sizeof(l->devices[0]))
		return -EPROTO;
	if (!*pd) {
		*pd = calloc(1, sizeof(**pd));
		if (!*pd)
			return -ENOMEM;
	}
	for (i = 0; i < l->nr_devices; i++) {
		const struct vmm_dev_desc *d = &l->devices[i];

		if (!d->name[0] || strnlen(d->name, VMM_DEV_NAME_MAX) == VMM_DEV_NAME_MAX)
			return -EPROTO;
		memcpy((*pd)->d[i].name, d->name, VMM_DEV_NAME_MAX);
		(*pd)->d[i].instance = d->instance;
		(*pd)->d[i].flags = d->flags;
		(*pd)->d[i].size = d->size;
		(*pd)->d[i].save_rate = 0;
		(*pd)->d[i].load_rate = 0;
	}
	(*pd)->n = l->nr_devices;
	(*pd)->revision = l->revision;
	return 0;
}

int vmig_ctl_refresh_devices(struct vmig_ctl *ctl, int timeout_ms)
{
	struct vmm_msg *m = vmig_ctl_msg_(ctl);
	const struct vmm_dev_status *st = (const void *)m->payload;
	struct ctl_devs *d = *vmig_ctl_devstate_(ctl);
	unsigned int i;
	int r;

	if (!d || d->revision < 1)
		return -EOPNOTSUPP;
	r = vmm_msg_send(vmig_ctl_sock_(ctl), VMM_DEV_PENDING, NULL, 0, NULL, 0);
	if (!r)
		r = ctl_reply(ctl, VMM_DEV_STATUS, timeout_ms);
	if (r)
		return r;
	for (i = 0; i < m->hdr.nfds; i++)
		close(m->fds[i]);
	if (m->hdr.nfds || m->hdr.len < sizeof(*st) || st->nr_devices != d->n ||
	    m->hdr.len != sizeof(*st) + st->nr_devices * sizeof(st->devices[0]))
		return -EPROTO;
	for (i = 0; i < d->n; i++) {
		d->d[i].size = st->devices[i].size;
		d->d[i].save_rate = st->devices[i].save_rate;
		d->d[i].load_rate = st->devices[i].load_rate;
	}
	return 0;
}

unsigned int vmig_ctl_device_count(const struct vmig_ctl *ctl)
{
	struct ctl_devs *d = *vmig_ctl_devstate_((struct vmig_ctl *)ctl);

	return d ? d->n : 0;
}

const struct vmig_dev_desc *vmig_ctl_device(const struct vmig_ctl *ctl, unsigned int i)
{
	struct ctl_devs *d = *vmig_ctl_devstate_((struct vmig_ctl *)ctl);

	return d && i < d->n ? &d->d[i] : NULL;
}

static int ctl_device_open(struct vmig_ctl *ctl, unsigned int i, bool load, uint32_t flags)
{
	struct vmm_dev_open o = { .index = i, .flags = flags };
	int sv[2], r;

	if (i >= vmig_ctl_device_count(ctl))
		return -EINVAL;
	if ((flags & VMM_DEV_OPEN_PRECOPY) && !(vmig_ctl_device(ctl, i)->flags & VMIG_DEV_PRECOPY))
		return -EINVAL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -errno;
	r = vmm_msg_send(vmig_ctl_sock_(ctl), load ? VMM_DEV_LOAD : VMM_DEV_SAVE, &o,
			 sizeof(o), &sv[1], 1);
	close(sv[1]);
	if (r) {
		close(sv[0]);
		return r;
	}
	return sv[0];
}

int vmig_ctl_device_open(struct vmig_ctl *ctl, unsigned int i, bool load)
{
	return ctl_device_open(ctl, i, load, 0);
}

int vmig_ctl_device_open_precopy(struct vmig_ctl *ctl, unsigned int i)
{
	return ctl_device_open(ctl, i, false, VMM_DEV_OPEN_PRECOPY);
}

int vmig_ctl_free_hint(struct vmig_ctl *ctl, int timeout_ms, uint64_t **bitmaps)
{
	struct vmm_msg *m = vmig_ctl_msg_(ctl);
	const struct vmm_free_hint *h = (const void *)m->payload;
	unsigned int i, nr = vmig_ctl_region_count(ctl);
	uint64_t total = 0, off = 0;
	struct stat st;
	uint8_t *map;
	int fd, r;

	r = vmm_msg_send(vmig_ctl_sock_(ctl), VMM_FREE_QUERY, NULL, 0, NULL, 0);
	if (!r)
		r = ctl_reply(ctl, VMM_FREE_HINT, timeout_ms);
	if (r)
		return r;
	fd = m->hdr.nfds ? m->fds[0] : -1;
	for (i = 1; i < m->hdr.nfds; i++)
		close(m->fds[i]);
	if (m->hdr.len != sizeof(*h) || h->nr_regions != nr || (h->status < 0) != (fd < 0)) {
		r = -EPROTO;
		goto out;
	}
	if (h->status < 0) {
		r = h->status;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		int memfd;
		uint64_t size, addr;

		vmig_ctl_region(ctl, i, &memfd, &size, &addr);
		if (h->pages[i] != size / PAGE_SZ) {
			r = -EPROTO;
			goto out;
		}
		total += (h->pages[i] + 63) / 64 * 8;
	}
	if (fstat(fd, &st) || (uint64_t)st.st_size < total) {
		r = -EPROTO;
		goto out;
	}
	map = mmap(NULL, total ? total : 8, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		size_t n = (h->pages[i] + 63) / 64 * 8;

		bitmaps[i] = malloc(n ? n : 8);
		if (!bitmaps[i]) {
			while (i--)
				free(bitmaps[i]);
			r = -ENOMEM;
			break;
		}
		memcpy(bitmaps[i], map + off, n);
		off += n;
	}
	munmap(map, total ? total : 8);
out:
	if (fd >= 0)
		close(fd);
	return r;
}
