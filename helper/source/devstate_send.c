// SPDX-License-Identifier: GPL-2.0
/*
 * Device state, source side.  Chunks of one device are read and sent in
 * order by one thread, so on any one channel they are in order; across
 * channels the destination reorders them by their sequence number.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devstate_send.h"
#include "util.h"
#include "vmm_proto.h"

struct ds_run {
	struct devstate_send *ds;
	bool precopy;			/* saving the precopy parts */
	_Atomic unsigned int next_dev;
	_Atomic bool failed;
	pthread_mutex_t lock;		/* error, totals, main channel writes */
	int err;
	pthread_t *t;
	unsigned int nr_threads;
	uint64_t t0;
};

static void run_fail(struct ds_run *run, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void run_fail(struct ds_run *run, int err, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&run->lock);
	if (!run->err) {
		run->err = err < 0 ? err : -err;
		va_start(ap, fmt);
		vsnprintf(run->ds->error, sizeof(run->ds->error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&run->lock);
	atomic_store(&run->failed, true);
}

int devstate_send_setup(struct devstate_send *ds, struct vmig_ctl *ctl, unsigned int threads,
			bool on_main, int timeout_ms)
{
	int r;

	memset(ds, 0, sizeof(*ds));
	ds->ctl = ctl;
	ds->threads = threads ? threads : 1;
	ds->on_main = on_main;
	ds->timeout_ms = timeout_ms;
	r = vmig_ctl_query_devices(ctl, timeout_ms);
	if (r) {
		snprintf(ds->error, sizeof(ds->error), "cannot list the VMM's devices: %s",
			 strerror(-r));
		return r;
	}
	ds->nr_devices = vmig_ctl_device_count(ctl);
	for (r = 0; r < (int)ds->nr_devices; r++)
		ds->nr_precopy += !!(vmig_ctl_device(ctl, r)->flags & VMIG_DEV_PRECOPY);
	return 0;
}

int devstate_send_announce(struct devstate_send *ds, struct stream *main)
{
	uint8_t buf[sizeof(struct wire_devices) + WIRE_MAX_DEVICES * sizeof(struct wire_device)];
	struct wire_devices *h = (struct wire_devices *)buf;
	struct wire_device *d = (struct wire_device *)(h + 1);
	unsigned int i;

	memset(buf, 0, sizeof(buf));
	h->nr_devices = ds->nr_devices;
	h->chunk_max = WIRE_DEV_CHUNK_MAX;
	h->on_main = ds->on_main;
	for (i = 0; i < ds->nr_devices; i++) {
		const struct vmig_dev_desc *v = vmig_ctl_device(ds->ctl, i);

		memcpy(d[i].name, v->name, sizeof(d[i].name));
		d[i].instance = v->instance;
		d[i].flags = v->flags;
		d[i].size = v->size;
	}
	return stream_send_pkt(main, WIRE_PKT_DEVICES, buf,
			       sizeof(*h) + ds->nr_devices * sizeof(*d));
}

/*
 * One DEVSTATE packet on the device's home channel (index modulo channels)
 * or, while another writer holds that one, the next free channel; all busy:
 * wait for home.  With at least as many channels as devices each device
 * keeps to its own channel, so its chunks arrive in order and more
 * channels change nothing; with fewer, busy devices spill over.
 */
static int send_chunk(struct ds_run *run, struct wire_devstate *dh, const void *data)
{
	struct devstate_send *ds = run->ds;
	struct wire_pkt_hdr h = { .type = WIRE_PKT_DEVSTATE, .len = sizeof(*dh) + dh->len };
	struct iovec iov[3] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = dh, .iov_len = sizeof(*dh) },
		{ .iov_base = (void *)data, .iov_len = dh->len },
	};
	struct send_chan *c = NULL;
	unsigned int i, start;
	int r;

	if (ds->on_main) {
		pthread_mutex_lock(&run->lock);
		r = stream_writev(ds->main, iov, dh->len ? 3 : 2);
		pthread_mutex_unlock(&run->lock);
		return r ? -EPIPE : 0;
	}
	start = dh->device % ds->nr_chans;
	for (i = 0; i < ds->nr_chans && !c; i++)
		if (!pthread_mutex_trylock(&ds->chans[(start + i) % ds->nr_chans].wlock))
			c = &ds->chans[(start + i) % ds->nr_chans];
	if (!c) {
		c = &ds->chans[start];
		pthread_mutex_lock(&c->wlock);
	}
	r = stream_writev(&c->s, iov, dh->len ? 3 : 2);
	pthread_mutex_unlock(&c->wlock);
	return r ? -EPIPE : 0;
}

static int save_one(struct ds_run *run, unsigned int idx, uint8_t *buf)
{
	struct devstate_send *ds = run->ds;
	const struct vmig_dev_desc *v = vmig_ctl_device(ds->ctl, idx);
	struct wire_devstate dh = { .device = idx, .seq = ds->seq[idx] };
	uint64_t bytes = 0, chunks = 0;
	int fd, r;

	if (run->precopy)
		atomic_store(&ds->pre_t0[idx], now_ns());
	fd = run->precopy ? vmig_ctl_device_open_precopy(ds->ctl, idx) :
			    vmig_ctl_device_open(ds->ctl, idx, false);
	if (fd < 0) {
		run_fail(run, fd, "device %s.%u: cannot start saving%s: %s", v->name, v->instance,
			 run->precopy ? " its precopy part" : "", strerror(-fd));
		return fd;
	}
	for (;;) {
		struct vmm_dev_rec rec;

		r = read_full(fd, &rec, sizeof(rec), ds->timeout_ms, &run->failed);
		if (!r && rec.len > WIRE_DEV_CHUNK_MAX)
			r = -EPROTO;
		if (!r && rec.len)
			r = read_full(fd, buf, rec.len, ds->timeout_ms, &run->failed);
		if (r) {
			if (r != -ECANCELED)
				run_fail(run, r, "device %s.%u: reading its state: %s", v->name,
					 v->instance, strerror(-r));
			break;
		}
		if (!rec.len && rec.status) {
			r = rec.status < 0 ? rec.status : -EIO;
			run_fail(run, r, "device %s.%u: %ssave failed in the VMM: %s", v->name,
				 v->instance, run->precopy ? "precopy " : "", strerror(-r));
			break;
		}
		if (!rec.len && run->precopy)
			break;		/* the rest, and the last chunk, at switchover */
		dh.len = rec.len;
		dh.flags = rec.len ? 0 : WIRE_DEVSTATE_LAST;
		r = send_chunk(run, &dh, buf);
		if (r) {
			run_fail(run, r, "device %s.%u: a channel failed while sending its state",
				 v->name, v->instance);
			break;
		}
		bytes += rec.len;
		chunks++;
		dh.seq++;
		if (run->precopy)
			atomic_fetch_add(&ds->pre_sent[idx], rec.len);
		if (!rec.len)
			break;
		if (atomic_load(&run->failed)) {
			r = -ECANCELED;
			break;
		}
	}
	close(fd);
	if (run->precopy)
		atomic_store(&ds->pre_ns[idx], now_ns() - atomic_load(&ds->pre_t0[idx]));
	pthread_mutex_lock(&run->lock);
	ds->seq[idx] = dh.seq;
	ds->bytes += bytes;
	ds->chunks += chunks;
	if (run->precopy)
		ds->precopy_bytes += bytes;
	pthread_mutex_unlock(&run->lock);
	trace("src: device %s.%u saved%s: %llu bytes, %d", v->name, v->instance,
	      run->precopy ? " (precopy part)" : "", (unsigned long long)bytes, r);
	return r;
}

static void *save_thread(void *arg)
{
	struct ds_run *run = arg;
	uint8_t *buf = malloc(WIRE_DEV_CHUNK_MAX);

	if (!buf) {
		run_fail(run, ENOMEM, "out of memory");
		return NULL;
	}
	while (!atomic_load(&run->failed)) {
		unsigned int idx = atomic_fetch_add(&run->next_dev, 1);

		if (idx >= run->ds->nr_devices)
			break;
		if (run->precopy && !(vmig_ctl_device(run->ds->ctl, idx)->flags & VMIG_DEV_PRECOPY))
			continue;
		if (save_one(run, idx, buf))
			break;
	}
	free(buf);
	return NULL;
}

static int run_start(struct devstate_send *ds, bool precopy, unsigned int nr_devs,
		     struct send_chan *chans, unsigned int nr_chans, struct stream *main)
{
	struct ds_run *run;
	unsigned int i, n = ds->threads < nr_devs ? ds->threads : nr_devs;

	ds->chans = chans;
	ds->nr_chans = nr_chans;
	ds->main = main;
	if (!nr_chans)
		ds->on_main = true;
	if (ds->on_main)
		n = 1;		/* one stream in order, as a single-channel VMM does */
	run = calloc(1, sizeof(*run));
	if (run)
		run->t = calloc(n, sizeof(*run->t));
	if (!run || !run->t) {
		free(run);
		snprintf(ds->error, sizeof(ds->error), "out of memory");
		return -ENOMEM;
	}
	run->ds = ds;
	run->precopy = precopy;
	run->t0 = now_ns();
	pthread_mutex_init(&run->lock, NULL);
	for (i = 0; i < n; i++) {
		int r = pthread_create(&run->t[i], NULL, save_thread, run);

		if (r) {
			run_fail(run, r, "cannot start a saving thread");
			break;
		}
	}
	run->nr_threads = i;
	ds->run = run;
	return 0;
}

static int run_wait(struct devstate_send *ds, bool cancel, uint64_t *ns)
{
	struct ds_run *run = ds->run;
	unsigned int i;
	int r;

	if (!run)
		return 0;
	if (cancel)
		atomic_store(&run->failed, true);
	for (i = 0; i < run->nr_threads; i++)
		pthread_join(run->t[i], NULL);
	*ns = now_ns() - run->t0;
	r = run->err;
	pthread_mutex_destroy(&run->lock);
	free(run->t);
	free(run);
	ds->run = NULL;
	return r;
}

int devstate_send_precopy_start(struct devstate_send *ds, struct send_chan *chans,
				unsigned int nr_chans, struct stream *main)
{
	if (!ds->nr_precopy)
		return 0;
	return run_start(ds, true, ds->nr_precopy, chans, nr_chans, main);
}

int devstate_send_precopy_wait(struct devstate_send *ds, bool cancel)
{
	uint64_t t0 = ds->run && ds->run->precopy ? ds->run->t0 : 0, end = 0, e;
	unsigned int i;
	int r = run_wait(ds, cancel, &ds->precopy_ns);

	/* From the start to the last part's end: the wait may have come much later. */
	for (i = 0; t0 && i < WIRE_MAX_DEVICES; i++) {
		e = atomic_load(&ds->pre_t0[i]) + atomic_load(&ds->pre_ns[i]);
		if (atomic_load(&ds->pre_ns[i]) && e > end)
			end = e;
	}
	if (end > t0 && t0)
		ds->precopy_ns = end - t0;
	return r;
}

void devstate_send_precopy_progress(struct devstate_send *ds, unsigned int i, uint64_t *sent,
				    double *save_rate)
{
	uint64_t ns;

	*sent = 0;
	*save_rate = 0;
	if (i >= WIRE_MAX_DEVICES)
		return;
	*sent = atomic_load(&ds->pre_sent[i]);
	ns = atomic_load(&ds->pre_ns[i]);
	if (!ns && atomic_load(&ds->pre_t0[i]))
		ns = now_ns() - atomic_load(&ds->pre_t0[i]);
	if (*sent >= (1u << 20) && ns)
		*save_rate = *sent / (ns / 1e9);
}

int devstate_send_all(struct devstate_send *ds, struct send_chan *chans, unsigned int nr_chans,
		      struct stream *main)
{
	int r;

	if (!ds->nr_devices)
		return 0;
	r = devstate_send_precopy_wait(ds, false);	/* (precopy waits for it itself) */
	if (r)
		return r;
	r = run_start(ds, false, ds->nr_devices, chans, nr_chans, main);
	return r ? r : run_wait(ds, false, &ds->save_ns);
}
