// SPDX-License-Identifier: GPL-2.0
/* Device state, destination side: reorder, cap, load. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devstate_recv.h"
#include "util.h"
#include "vmm_proto.h"

struct ds_chunk {
	uint32_t seq, flags, len;
	uint8_t data[];
};

/* What a chunk costs against --max-device-buffer. */
static uint64_t chunk_cost(uint32_t len)
{
	return (uint64_t)len + DS_CHUNK_OVERHEAD;
}

static struct ds_chunk **slot(struct ds_dev *d, uint32_t seq)
{
	return &d->ring[seq % DS_WINDOW];
}

static int ds_fail_locked(struct devstate_recv *ds, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int ds_fail_locked(struct devstate_recv *ds, int err, const char *fmt, ...)
{
	va_list ap;

	if (!ds->err) {
		ds->err = err < 0 ? err : -err;
		va_start(ap, fmt);
		vsnprintf(ds->error, sizeof(ds->error), fmt, ap);
		va_end(ap);
	}
	ds->stop = true;
	pthread_cond_broadcast(&ds->cond);
	return ds->err;
}

int devstate_recv_init(struct devstate_recv *ds, struct vmig_ctl *ctl, uint64_t cap,
		       unsigned int threads, int timeout_ms)
{
	pthread_condattr_t ca;
	int r;

	memset(ds, 0, sizeof(*ds));
	ds->ctl = ctl;
	ds->cap = cap;
	ds->threads = threads ? threads : 1;
	ds->timeout_ms = timeout_ms;
	pthread_mutex_init(&ds->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ds->cond, &ca);
	pthread_condattr_destroy(&ca);
	ds->started = true;
	r = vmig_ctl_query_devices(ctl, timeout_ms);
	if (r)
		snprintf(ds->error, sizeof(ds->error), "cannot list the VMM's devices: %s",
			 strerror(-r));
	return r;
}

static int write_full(int fd, struct iovec *iov, int cnt, int timeout_ms)
{
	while (cnt) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = cnt };
		ssize_t n;
		int r = poll_fd(fd, POLLOUT, timeout_ms);

		if (r)
			return r;
		n = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return -errno;
		while (cnt && (size_t)n >= iov->iov_len) {
			n -= iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= n;
		}
	}
	return 0;
}

/* Hand one chunk to the VMM (opening the device's load stream first). */
static int load_chunk(struct devstate_recv *ds, struct ds_dev *d, struct ds_chunk *c)
{
	struct vmm_dev_rec rec = { .len = c->len };
	struct iovec iov[2] = {
		{ .iov_base = &rec, .iov_len = sizeof(rec) },
		{ .iov_base = c->data, .iov_len = c->len },
	};
	int r;

	if (d->fd < 0) {
		d->fd = vmig_ctl_device_open(ds->ctl, d->local, true);
		if (d->fd < 0)
			return d->fd;
	}
	r = write_full(d->fd, iov, c->len ? 2 : 1, ds->timeout_ms);
	if (r || !(c->flags & WIRE_DEVSTATE_LAST))
		return r;
	/* The end: the VMM answers with its load's status. */
	r = read_full(d->fd, &rec, sizeof(rec), ds->timeout_ms, NULL);
	if (!r && (rec.len || rec.status))
		r = rec.len ? -EPROTO : rec.status < 0 ? rec.status : -EIO;
	close(d->fd);
	d->fd = -1;
	return r;
}

static struct ds_dev *ready_dev(struct devstate_recv *ds)
{
	unsigned int i;

	for (i = 0; i < ds->nr_devices; i++) {
		struct ds_dev *d = &ds->dev[i];

		struct ds_chunk *c = d->ring ? *slot(d, d->next_seq) : NULL;

		/* The end of a stream waits for guest RAM to be readable. */
		if (!d->busy && c && c->seq == d->next_seq &&
		    (ds->ram_ready || !(c->flags & WIRE_DEVSTATE_LAST)))
			return d;
	}
	return NULL;
}

static void *load_thread(void *arg)
{
	struct devstate_recv *ds = arg;

	pthread_mutex_lock(&ds->lock);
	for (;;) {
		struct ds_dev *d = NULL;
		struct ds_chunk *c;
		int r;

		while (!ds->stop && ds->ndone < ds->nr_devices && !(d = ready_dev(ds)))
			pthread_cond_wait(&ds->cond, &ds->lock);
		if (!d)
			break;
		c = *slot(d, d->next_seq);
		*slot(d, d->next_seq) = NULL;
		d->busy = true;
		if (!d->load_t0)
			d->load_t0 = now_ns();
		pthread_mutex_unlock(&ds->lock);
		r = load_chunk(ds, d, c);
		pthread_mutex_lock(&ds->lock);
		d->busy = false;
		d->next_seq++;
		d->bytes += c->len;
		ds->bytes += c->len;
		ds->buffered -= chunk_cost(c->len);
		if (!r && (c->flags & WIRE_DEVSTATE_LAST)) {
			d->done = true;
			d->load_ns = now_ns() - d->load_t0;
			ds->ndone++;
			trace("dst: device %s.%u loaded: %llu bytes", d->w.name, d->w.instance,
			      (unsigned long long)d->bytes);
		}
		free(c);
		if (r)
			ds_fail_locked(ds, r, "device %s.%u: load failed: %s", d->w.name,
				       d->w.instance, strerror(-r));
		pthread_cond_broadcast(&ds->cond);
	}
	pthread_mutex_unlock(&ds->lock);
	return NULL;
}

int devstate_recv_setup(struct devstate_recv *ds, struct stream *main)
{
	struct wire_pkt_hdr h;
	struct wire_devices wd;
	unsigned int i, j, nlocal = vmig_ctl_device_count(ds->ctl);
	bool *used;
	int r;

	r = stream_recv_hdr(main, &h);
	if (!r && h.type == WIRE_PKT_ERROR)
		return stream_read_error(main, &h);
	if (!r && (h.type != WIRE_PKT_DEVICES || h.len < sizeof(wd)))
		r = stream_fail(main, EPROTO, "expected DEVICES, got %s (%u bytes)",
				wire_pkt_name(h.type), h.len);
	if (!r)
		r = stream_read(main, &wd, sizeof(wd));
	if (r)
		return r;
	if (wd.nr_devices > WIRE_MAX_DEVICES || wd.reserved || wd.on_main > 1 ||
	    !wd.chunk_max || wd.chunk_max > WIRE_DEV_CHUNK_MAX ||
	    h.len != sizeof(wd) + wd.nr_devices * sizeof(struct wire_device))
		return stream_fail(main, EPROTO, "malformed DEVICES packet");
	ds->nr_devices = wd.nr_devices;
	ds->on_main = wd.on_main;
	ds->chunk_max = wd.chunk_max;
	ds->dev = calloc(wd.nr_devices ? wd.nr_devices : 1, sizeof(*ds->dev));
	used = calloc(nlocal + 1, sizeof(*used));
	if (!ds->dev || !used) {
		free(used);
		return stream_fail(main, ENOMEM, "out of memory");
	}
	/* Before any read can fail: destroy closes each entry's fd. */
	for (i = 0; i < wd.nr_devices; i++) {
		ds->dev[i].fd = -1;
		ds->dev[i].last_seq = UINT32_MAX;
	}
	for (i = 0; i < wd.nr_devices; i++) {
		struct ds_dev *d = &ds->dev[i];

		r = stream_read(main, &d->w, sizeof(d->w));
		if (r)
			break;
		d->w.name[sizeof(d->w.name) - 1] = 0;
		for (j = 0; j < nlocal; j++) {
			const struct vmig_dev_desc *v = vmig_ctl_device(ds->ctl, j);

			if (!used[j] && !strcmp(v->name, d->w.name) && v->instance == d->w.instance)
				break;
		}
		if (j == nlocal) {
			r = stream_fail(main, ENODEV, "the source has device %s.%u, the "
					"destination VMM has not", d->w.name, d->w.instance);
			break;
		}
		used[j] = true;
		d->local = j;
	}
	for (j = 0; !r && j < nlocal; j++)
		if (!used[j])
			r = stream_fail(main, ENODEV, "the destination VMM has device %s.%u, "
					"the source has not", vmig_ctl_device(ds->ctl, j)->name,
					vmig_ctl_device(ds->ctl, j)->instance);
	free(used);
	if (r)
		return r;
	if (ds->cap < 2ull * ds->chunk_max) {
		ds->cap = 2ull * ds->chunk_max;
		fprintf(stderr, "vmig listen: device buffer raised to %llu KiB (two chunks)\n",
			(unsigned long long)(ds->cap >> 10));
	}
	if (!ds->nr_devices)
		return 0;
	ds->nr_workers = ds->threads < ds->nr_devices ? ds->threads : ds->nr_devices;
	ds->workers = calloc(ds->nr_workers, sizeof(*ds->workers));
	if (!ds->workers)
		return stream_fail(main, ENOMEM, "out of memory");
	for (i = 0; i < ds->nr_workers; i++) {
		if (pthread_create(&ds->workers[i], NULL, load_thread, ds)) {
			ds->nr_workers = i;
			return stream_fail(main, EAGAIN, "cannot start loading threads");
		}
	}
	return 0;
}

int devstate_recv_chunk(void *arg, struct stream *s, uint32_t len)
{
	struct devstate_recv *ds = arg;
	struct wire_devstate dh;
	struct ds_chunk *c;
	struct ds_dev *d;
	struct timespec ts;
	uint64_t cost;
	int r;

	if (!ds || !ds->dev)
		return stream_fail(s, EPROTO, "device state was not announced");
	if (len < sizeof(dh))
		return stream_fail(s, EPROTO, "truncated DEVSTATE packet");
	r = stream_read(s, &dh, sizeof(dh));
	if (r)
		return r;
	if (dh.device >= ds->nr_devices || dh.len > ds->chunk_max ||
	    len != sizeof(dh) + dh.len || (dh.flags & ~WIRE_DEVSTATE_LAST))
		return stream_fail(s, EPROTO, "malformed DEVSTATE packet (device %u, %u bytes)",
				   dh.device, dh.len);
	if (!dh.len && !(dh.flags & WIRE_DEVSTATE_LAST))
		return stream_fail(s, EPROTO, "empty DEVSTATE chunk that is not the last");
	d = &ds->dev[dh.device];
	cost = chunk_cost(dh.len);
	cond_deadline_in(&ts, ds->timeout_ms);
	pthread_mutex_lock(&ds->lock);
	if (dh.seq < d->next_seq || dh.seq > d->last_seq ||
	    ((dh.flags & WIRE_DEVSTATE_LAST) && d->last_seq != UINT32_MAX) ||
	    dh.seq - d->next_seq >= DS_WINDOW ||
	    (d->ring && *slot(d, dh.seq)) || (d->busy && dh.seq == d->next_seq)) {
		pthread_mutex_unlock(&ds->lock);
		return stream_fail(s, EPROTO, "device %s.%u: chunk %u %s (next to load: %u)",
				   d->w.name, d->w.instance, dh.seq,
				   dh.seq - d->next_seq >= DS_WINDOW && dh.seq >= d->next_seq ?
				   "too far ahead" : "out of sequence or twice", d->next_seq);
	}
	if (!d->ring) {
		d->ring = calloc(DS_WINDOW, sizeof(*d->ring));
		if (!d->ring) {
			pthread_mutex_unlock(&ds->lock);
			return stream_fail(s, ENOMEM, "out of memory");
		}
	}
	/* Room: the next chunk of its device may use the last chunk's worth. */
	while (!ds->stop && ds->buffered + cost +
	       (dh.seq == d->next_seq ? 0 : chunk_cost(ds->chunk_max)) > ds->cap) {
		if (pthread_cond_timedwait(&ds->cond, &ds->lock, &ts) == ETIMEDOUT) {
			ds_fail_locked(ds, ETIMEDOUT, "device state buffer full (%llu bytes) "
				       "for %d ms", (unsigned long long)ds->buffered,
				       ds->timeout_ms);
			break;
		}
	}
	if (ds->stop) {
		r = ds->err ? ds->err : -ECANCELED;
		pthread_mutex_unlock(&ds->lock);
		return stream_fail(s, -r, "%s", ds->error[0] ? ds->error : "device state stopped");
	}
	ds->buffered += cost;
	if (ds->buffered > ds->peak)
		ds->peak = ds->buffered;
	if (dh.flags & WIRE_DEVSTATE_LAST)
		d->last_seq = dh.seq;
	pthread_mutex_unlock(&ds->lock);

	c = malloc(sizeof(*c) + dh.len);
	r = c ? 0 : stream_fail(s, ENOMEM, "out of memory");
	/*
	 * No SO_RCVLOWAT here: once part of a chunk is read, poll() would wait
	 * for lowat more bytes, and the stream's last chunk has no more behind it.
	 */
	if (!r && dh.len)
		r = stream_read(s, c->data, dh.len);
	pthread_mutex_lock(&ds->lock);
	/* Another channel may have brought the same seq meanwhile (loaded, even). */
	if (!r && (dh.seq < d->next_seq || *slot(d, dh.seq) ||
		   (d->busy && dh.seq == d->next_seq)))
		r = stream_fail(s, EPROTO, "device %s.%u: chunk %u twice", d->w.name,
				d->w.instance, dh.seq);
	if (r) {
		ds->buffered -= cost;
		pthread_cond_broadcast(&ds->cond);
		pthread_mutex_unlock(&ds->lock);
		free(c);
		return r;
	}
	c->seq = dh.seq;
	c->flags = dh.flags;
	c->len = dh.len;
	*slot(d, dh.seq) = c;
	d->received += dh.len;
	pthread_cond_broadcast(&ds->cond);
	pthread_mutex_unlock(&ds->lock);
	return 0;
}

int devstate_recv_finish(struct devstate_recv *ds)
{
	struct timespec ts;
	int r;

	if (!ds->dev)
		return 0;
	cond_deadline_in(&ts, ds->timeout_ms);
	pthread_mutex_lock(&ds->lock);
	ds->ram_ready = true;
	pthread_cond_broadcast(&ds->cond);
	while (!ds->stop && ds->ndone < ds->nr_devices)
		if (pthread_cond_timedwait(&ds->cond, &ds->lock, &ts) == ETIMEDOUT)
			ds_fail_locked(ds, ETIMEDOUT, "devices not loaded within %d ms "
				       "(%u of %u done)", ds->timeout_ms, ds->ndone,
				       ds->nr_devices);
	r = ds->err;
	if (!r && ds->ndone < ds->nr_devices)
		r = ds_fail_locked(ds, EPROTO, "device state incomplete");
	pthread_mutex_unlock(&ds->lock);
	return r;
}

int devstate_recv_report(struct devstate_recv *ds, struct stream *main)
{
	uint8_t buf[sizeof(struct wire_dev_load) +
		    WIRE_MAX_DEVICES * sizeof(struct wire_dev_loaded)];
	struct wire_dev_load *h = (struct wire_dev_load *)buf;
	struct wire_dev_loaded *l = (struct wire_dev_loaded *)(h + 1);
	unsigned int i;
	uint64_t t;

	memset(buf, 0, sizeof(buf));
	if (!ds->dev)
		return stream_send_pkt(main, WIRE_PKT_DEV_LOAD, buf, sizeof(*h));
	h->nr_devices = ds->nr_devices;
	pthread_mutex_lock(&ds->lock);
	t = now_ns();	/* after the lock: no load_t0 set later than t */
	for (i = 0; i < ds->nr_devices; i++) {
		const struct ds_dev *d = &ds->dev[i];

		/* A chunk being handed over is not loaded yet. */
		l[i].received = d->received;
		l[i].loaded = d->bytes;
		l[i].load_ns = d->load_ns ? d->load_ns : d->load_t0 ? t - d->load_t0 : 0;
	}
	pthread_mutex_unlock(&ds->lock);
	return stream_send_pkt(main, WIRE_PKT_DEV_LOAD, buf,
			       sizeof(*h) + ds->nr_devices * sizeof(*l));
}

void devstate_recv_cancel(struct devstate_recv *ds)
{
	if (!ds->started)
		return;
	pthread_mutex_lock(&ds->lock);
	ds_fail_locked(ds, ECANCELED, "migration failed");
	pthread_mutex_unlock(&ds->lock);
}

void devstate_recv_destroy(struct devstate_recv *ds)
{
	unsigned int i;

	if (!ds->started)
		return;
	pthread_mutex_lock(&ds->lock);
	ds->stop = true;
	pthread_cond_broadcast(&ds->cond);
	pthread_mutex_unlock(&ds->lock);
	for (i = 0; i < ds->nr_workers; i++)
		pthread_join(ds->workers[i], NULL);
	for (i = 0; ds->dev && i < ds->nr_devices; i++) {
		unsigned int k;

		for (k = 0; ds->dev[i].ring && k < DS_WINDOW; k++)
			free(ds->dev[i].ring[k]);
		free(ds->dev[i].ring);
		if (ds->dev[i].fd >= 0)
			close(ds->dev[i].fd);
	}
	free(ds->dev);
	free(ds->workers);
	pthread_mutex_destroy(&ds->lock);
	pthread_cond_destroy(&ds->cond);
	ds->started = false;
}
