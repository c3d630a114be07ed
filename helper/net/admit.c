// SPDX-License-Identifier: GPL-2.0
/* The destination's door: concurrent, bounded, deadline-limited connection openings. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "admit.h"
#include "auth.h"
#include "channel.h"
#include "util.h"

struct item {
	struct item *next;
	struct admitted c;
};

struct admit {
	int listen_fd, wake[2];
	int deadline_ms, timeout_ms;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned int opening;		/* threads at work */
	int fds[ADMIT_MAX_OPENING];	/* their sockets, to cut them short */
	uint64_t since[ADMIT_MAX_OPENING];	/* when each was accepted */
	bool cut[ADMIT_MAX_OPENING];	/* cut short to make room */
	struct item *head, **tail;	/* admitted, not taken yet */
	unsigned int queued;
};

struct opener {
	struct admit *a;
	int fd, slot;
};

static int open_conn(struct admit *a, int fd, struct admitted *c)
{
	memset(c, 0, sizeof(*c));
	stream_init_fd(&c->s, fd, a->timeout_ms);
	c->s.deadline_ns = now_ns() + a->deadline_ms * 1000000ull;
	return admit_read_opening(c);
}

int admit_read_opening(struct admitted *c)
{
	struct wire_pkt_hdr ph;
	int r;

	r = auth_server(&c->s);
	if (!r)
		r = chan_recv_hdr(&c->s, &c->h);
	if (r || c->h.kind != WIRE_CHAN_MAIN)
		return r;
	r = stream_recv_hdr(&c->s, &ph);
	if (r)
		return r;
	c->first = ph.type;
	if (ph.type == WIRE_PKT_RESUME) {
		if (ph.len != sizeof(c->resume))
			return stream_fail(&c->s, EPROTO, "malformed RESUME: %u bytes", ph.len);
		r = stream_read(&c->s, &c->resume, sizeof(c->resume));
		if (!r && c->resume.reserved)
			r = stream_fail(&c->s, EPROTO, "RESUME with reserved bits");
		return r;
	}
	return hs_parse_offer(&c->s, &ph, &c->offer);
}

/*
 * Close after telling the peer why: input it sent that was never read
 * would turn the close into a reset, which can overtake the ERROR.  So
 * stop writing, then read what comes for a moment (bounded); the caller closes.
 */
static void linger(int fd)
{
	uint64_t end = now_ns() + 200000000ull;
	char buf[4096];

	shutdown(fd, SHUT_WR);
	while (now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 50) < 0 || (p.revents && read(fd, buf, sizeof(buf)) <= 0))
			break;
	}
}

static void *opener_thread(void *arg)
{
	struct opener *o = arg;
	struct admit *a = o->a;
	struct item *it = malloc(sizeof(*it));
	int fd = o->fd, r = it ? open_conn(a, fd, &it->c) : -ENOMEM;

	if (r && it) {
		bool cut;

		pthread_mutex_lock(&a->lock);
		cut = a->cut[o->slot];
		pthread_mutex_unlock(&a->lock);
		stream_send_error(&it->c.s, r, it->c.s.err);
		fprintf(stderr, "vmig listen: dropped connection: %s\n", cut ? "the oldest of "
			"16 unfinished openings, to make room for a new connection" : it->c.s.err);
		linger(fd);
	}
	pthread_mutex_lock(&a->lock);
	a->fds[o->slot] = -1;		/* before the close: admit_stop() shuts down fds[] */
	a->cut[o->slot] = false;
	if (!r && !a->stop) {
		it->c.s.deadline_ns = 0;
		it->next = NULL;
		*a->tail = it;
		a->tail = &it->next;
		a->queued++;
		it = NULL;
		fd = -1;
	}
	a->opening--;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (fd >= 0)
		close(fd);
	free(it);
	free(o);
	return NULL;
}

static int free_slot(struct admit *a)
{
	int i;

	for (i = 0; i < ADMIT_MAX_OPENING; i++)
		if (a->fds[i] < 0)
			return i;
	return -1;
}

static void start_opener(struct admit *a, int fd)
{
	struct opener *o = malloc(sizeof(*o));
	pthread_attr_t at;
	pthread_t t;
	int slot;

	pthread_mutex_lock(&a->lock);
	slot = free_slot(a);
	if (slot < 0 && a->queued < ADMIT_MAX_OPENING) {
		/*
		 * Full: cut the oldest unfinished opening short and wait a moment
		 * for its slot.  A connection that drips its opening is by then
		 * the oldest, so it cannot keep a newer one (a source) out.
		 */
		struct timespec ts;
		int i, old = -1;

		for (i = 0; i < ADMIT_MAX_OPENING; i++)
			if (!a->cut[i] && (old < 0 || a->since[i] < a->since[old]))
				old = i;
		if (old >= 0) {
			a->cut[old] = true;
			shutdown(a->fds[old], SHUT_RDWR);
		}
		cond_deadline_in(&ts, 200);
		while ((slot = free_slot(a)) < 0 && !a->stop)
			if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
				break;
	}
	if (!o || slot < 0 || a->queued >= ADMIT_MAX_OPENING) {
		pthread_mutex_unlock(&a->lock);
		fprintf(stderr, "vmig listen: dropped a connection: %u already opening, %u "
			"waiting to be taken\n", a->opening, a->queued);
		close(fd);
		free(o);
		return;
	}
	o->a = a;
	o->fd = fd;
	o->slot = slot;
	a->fds[slot] = fd;
	a->since[slot] = now_ns();
	a->opening++;
	pthread_mutex_unlock(&a->lock);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, opener_thread, o)) {
		pthread_mutex_lock(&a->lock);
		a->fds[slot] = -1;
		a->opening--;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		close(fd);
		free(o);
	}
	pthread_attr_destroy(&at);
}

static void *acceptor_thread(void *arg)
{
	struct admit *a = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = a->listen_fd, .events = POLLIN },
			{ .fd = a->wake[0], .events = POLLIN },
		};
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = chan_accept(a->listen_fd, 0);
		if (fd >= 0)
			start_opener(a, fd);
		else if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS || fd == -ENOMEM)
			usleep(100000);	/* out of descriptors: let openings finish */
	}
	return NULL;
}

struct admit *admit_start(int listen_fd, int deadline_ms, int timeout_ms)
{
	struct admit *a = calloc(1, sizeof(*a));
	pthread_condattr_t ca;
	int i, e;

	if (!a)
		return NULL;
	a->listen_fd = listen_fd;
	a->deadline_ms = deadline_ms;
	a->timeout_ms = timeout_ms;
	a->tail = &a->head;
	for (i = 0; i < ADMIT_MAX_OPENING; i++)
		a->fds[i] = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pipe2(a->wake, O_CLOEXEC)) {
		e = errno;
		goto fail;
	}
	e = pthread_create(&a->acceptor, NULL, acceptor_thread, a);
	if (!e)
		return a;
	close(a->wake[0]);
	close(a->wake[1]);
fail:
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
	errno = e;
	return NULL;
}

int admit_next(struct admit *a, int ms, struct admitted *out)
{
	struct timespec ts;
	struct item *it;

	cond_deadline_in(&ts, ms > 0 ? ms : 0);
	pthread_mutex_lock(&a->lock);
	while (!a->head)
		if (pthread_cond_timedwait(&a->cond, &a->lock, &ts) == ETIMEDOUT)
			break;
	it = a->head;
	if (it) {
		a->head = it->next;
		if (!a->head)
			a->tail = &a->head;
		a->queued--;
	}
	pthread_mutex_unlock(&a->lock);
	if (!it)
		return -ETIMEDOUT;
	*out = it->c;
	free(it);
	return 0;
}

void admit_refuse(struct admitted *c, int err, const char *what)
{
	stream_send_error(&c->s, err, c->s.err);
	fprintf(stderr, "vmig listen: dropped %s: %s\n", what, c->s.err);
	close(c->s.fd);
}

void admit_stop(struct admit *a)
{
	struct item *it, *next;
	int i;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	for (i = 0; i < ADMIT_MAX_OPENING; i++)
		if (a->fds[i] >= 0)
			shutdown(a->fds[i], SHUT_RDWR);
	pthread_mutex_unlock(&a->lock);
	if (write(a->wake[1], "x", 1) < 0)
		perror("vmig listen: waking the acceptor");
	pthread_join(a->acceptor, NULL);
	pthread_mutex_lock(&a->lock);
	while (a->opening)
		pthread_cond_wait(&a->cond, &a->lock);
	pthread_mutex_unlock(&a->lock);
	for (it = a->head; it; it = next) {
		next = it->next;
		close(it->c.s.fd);
		free(it);
	}
	close(a->wake[0]);
	close(a->wake[1]);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
}
