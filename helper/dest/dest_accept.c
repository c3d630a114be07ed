// SPDX-License-Identifier: GPL-2.0
/*
 * Destination: accept a session (a main channel with an acceptable
 * handshake) and its channels (multifd, return path, preempt); watch,
 * count and stop the receiver threads; drop a broken session's channels.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "dest_accept.h"
#include "libvmig.h"
#include "util.h"

static void *receiver_thread(void *arg)
{
	struct receiver *r = arg;
	int ret = recv_chan_run(&r->rc);

	atomic_store(&r->state, ret ? ret : 1);
	return NULL;
}

/*
 * Postcopy from the start: no page comes before the switch, so guest RAM
 * allocated ahead (--prefault, the default) goes now, while the guest still
 * runs on the source; at the switch there is then nothing left to punch out
 * with the guest stopped.
 */
static int release_prefaulted(struct dest *d)
{
	unsigned int i;
	int r;

	for (i = 0; i < d->mem.nr_regions; i++) {
		r = vmig_ram_postcopy_discard(d->ram, i, 0, d->mem.pages[i]);
		if (r)
			return r;
		d->rep->pc.released += d->mem.pages[i];
	}
	trace("dst: released %llu prefaulted pages (postcopy from the start)",
	      (unsigned long long)d->rep->pc.released);
	return 0;
}

/* Wait for a main channel with an acceptable handshake. */
int dest_accept_session(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->accept_timeout_ms * 1000000ull;

	for (;;) {
		struct admitted c;
		char msg[WIRE_MAX_MSG];
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		int r;

		if (left <= 0)
			return fail(d, ETIMEDOUT, "no source connected within %d s",
				    o->accept_timeout_ms / 1000);
		if (admit_next(d->adm, left, &c))
			continue;
		if (c.h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_HELLO) {
			stream_fail(&c.s, EPROTO, "%s before any session", c.h.kind !=
				    WIRE_CHAN_MAIN ? wire_kind_name(c.h.kind) : "RESUME");
			admit_refuse(&c, -EPROTO, "connection");
			continue;
		}
		msg[0] = 0;
		r = hs_decide(&c.offer, &d->local, &d->ses.hs, msg, sizeof(msg));
		/* Before the reply: the source waits for it with the guest still running. */
		if (!r && (d->ses.hs.caps & WIRE_CAP_POSTCOPY_NOW) && d->o->prefault &&
		    !d->rep->pc.released) {
			r = release_prefaulted(d);
			if (r) {
				snprintf(msg, sizeof(msg), "cannot release the prefaulted guest "
					 "RAM: %s", strerror(-r));
				hs_send_reply(&c.s, r, &d->ses.hs, "the destination failed");
				stream_fail(&c.s, -r, "%s", msg);
				admit_drop(&c.s, "migration request");
				return fail(d, r, "%s", msg);
			}
		}
		/* --insecure: the peer is nobody in particular; the layout stays in this log. */
		if (hs_send_reply(&c.s, r, &d->ses.hs, r && auth_mode() == AUTH_INSECURE ?
				  "refused (the reason is in the destination's log)" : msg) && !r)
			r = -EPIPE;
		if (r) {
			stream_fail(&c.s, -r, "%s", msg[0] ? msg : "handshake failed");
			admit_drop(&c.s, "migration request");
			continue;
		}
		d->ses.id = c.h.session;
		d->ses.nr_chans = c.offer.nr_multifd;
		session_adopt_main(&d->ses, &c.s);
		if (d->ses.hs.caps & WIRE_CAP_DEVICE_STATE) {
			r = devstate_recv_setup(&d->ds, &d->ses.main);
			if (r) {
				stream_send_error(&d->ses.main, r, d->ses.main.err);
				return fail(d, r, "%s", d->ses.main.err);
			}
		} else if (vmig_ctl_device_count(d->ctl)) {
			return fail(d, EPROTONOSUPPORT, "the source sends no device state, but "
				    "the VMM has devices");
		}
		return 0;
	}
}

int dest_accept_channels(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->timeout_ms * 1000000ull;
	unsigned int got = 0;

	d->rx = calloc(d->ses.nr_chans, sizeof(*d->rx));
	if (!d->rx)
		return fail(d, ENOMEM, "out of memory");
	unsigned int want = d->ses.nr_chans + !!(d->ses.hs.caps & WIRE_CAP_RETURN_PATH) +
			    !!(d->ses.hs.caps & WIRE_CAP_PREEMPT);

	while (got < want) {
		struct wire_chan_hdr h;
		struct admitted c;
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		struct receiver *rx;
		int r = 0;

		if (left <= 0)
			return fail(d, ETIMEDOUT, "only %u of %u channels connected", got, want);
		if (admit_next(d->adm, left, &c))
			continue;
		h = c.h;
		if (h.session == d->ses.id &&
		    ((h.kind == WIRE_CHAN_RETURN && (d->ses.hs.caps & WIRE_CAP_RETURN_PATH) &&
		      d->rp.fd < 0) ||
		     (h.kind == WIRE_CHAN_PREEMPT && (d->ses.hs.caps & WIRE_CAP_PREEMPT) &&
		      d->pre.fd < 0))) {
			struct stream *to = h.kind == WIRE_CHAN_RETURN ? &d->rp : &d->pre;

			*to = c.s;
			chan_mark_urgent(to->fd);
			got++;
			continue;
		}
		/* The binding proof was checked: only the session's source gets here. */
		if (h.kind != WIRE_CHAN_MULTIFD || h.session != d->ses.id)
			r = stream_fail(&c.s, EPROTO, "a %s channel while a session sets up",
					wire_kind_name(h.kind));
		if (!r && (h.index >= d->ses.nr_chans || d->rx[h.index].started))
			r = stream_fail(&c.s, EPROTO, "multifd channel index %u unexpected", h.index);
		if (r) {
			admit_refuse(&c, r, "connection");
			continue;
		}
		rx = &d->rx[h.index];
		/* Postcopy without preempt before pages flow: from the start, or resumed. */
		if ((d->ses.hs.caps & WIRE_CAP_POSTCOPY) && !(d->ses.hs.caps & WIRE_CAP_PREEMPT) &&
		    ((d->ses.hs.caps & WIRE_CAP_POSTCOPY_NOW) || d->pc_running))
			chan_shallow_recv(c.s.fd);
		recv_chan_init(&rx->rc, h.index, &c.s, o->timeout_ms, &d->mem,
			       d->ses.hs.caps & WIRE_CAP_ZERO_PAGES);
		if (d->ds.dev) {
			rx->rc.devstate = devstate_recv_chunk;
			rx->rc.devstate_arg = &d->ds;
		}
		if (d->pc_ready)
			rx->rc.pc = &d->pc;
		if (d->pc_running) {	/* resumed: the switch is behind us */
			rx->rc.bounce = malloc((size_t)WIRE_MAX_BATCH * WIRE_PAGE_SIZE);
			if (!rx->rc.bounce) {
				stream_close(&rx->rc.s);
				return fail(d, ENOMEM, "out of memory");
			}
		}
		r = pthread_create(&rx->thread, NULL, receiver_thread, rx);
		if (r) {
			stream_close(&rx->rc.s);
			return fail(d, r, "cannot start a receiver thread");
		}
		rx->started = true;
		got++;
	}
	return 0;
}

int dest_rx_check(struct dest *d, bool *all_ended)
{
	unsigned int i;

	*all_ended = true;
	for (i = 0; i < d->ses.nr_chans; i++) {
		int st = atomic_load(&d->rx[i].state);

		if (st < 0)
			return fail(d, st, "multifd channel %u: %s", i, d->rx[i].rc.s.err);
		if (st != 1)
			*all_ended = false;
	}
	return 0;
}

uint64_t dest_rx_pages(struct dest *d)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < d->ses.nr_chans; i++)
		sum += __atomic_load_n(&d->rx[i].rc.pages, __ATOMIC_RELAXED);
	return sum;
}

void dest_rx_settle(struct dest *d, int timeout_ms)
{
	struct timespec tick = { 0, 10 * 1000000L };
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 10) {
		unsigned int i, ended = 0;

		for (i = 0; i < d->ses.nr_chans && d->rx; i++)
			if (!d->rx[i].started || atomic_load(&d->rx[i].state))
				ended++;
		if (ended + __atomic_load_n(&d->pc.parked, __ATOMIC_RELAXED) >= d->ses.nr_chans)
			return;
		nanosleep(&tick, NULL);
	}
}

void dest_rx_stop(struct dest *d)
{
	unsigned int i;

	if (d->pc_ready)
		pcd_release(&d->pc, true);
	for (i = 0; i < d->ses.nr_chans; i++)
		if (d->rx && d->rx[i].started)
			shutdown(d->rx[i].rc.s.fd, SHUT_RDWR);
	for (i = 0; i < d->ses.nr_chans; i++) {
		if (d->rx && d->rx[i].started) {
			pthread_join(d->rx[i].thread, NULL);
			stream_close(&d->rx[i].rc.s);
			free(d->rx[i].rc.bounce);
			d->rx[i].rc.bounce = NULL;
			d->rx[i].started = false;
		}
	}
}

void dest_close_channels(struct dest *d)
{
	unsigned int i;

	for (i = 0; i < d->ses.nr_chans && d->rx; i++) {
		d->rep->normal_pages += d->rx[i].rc.normal_pages;
		d->rep->zero_pages += d->rx[i].rc.zero_pages_rcvd;
		d->rep->wire_bytes += d->rx[i].rc.s.bytes_in;
	}
	free(d->rx);
	d->rx = NULL;
	if (d->ses.main_open)
		d->rep->wire_bytes += d->ses.main.bytes_in;
	session_close_main(&d->ses);
	stream_close(&d->rp);
	stream_close(&d->pre);
}

/* A paused postcopy: drop every channel of the broken connection. */
void dest_drop_channels(struct dest *d)
{
	pcd_stop(&d->pc);
	dest_rx_stop(d);
	dest_close_channels(d);
}
