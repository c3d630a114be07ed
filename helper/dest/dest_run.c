// SPDX-License-Identifier: GPL-2.0
/* Destination: follow a running session's main channel until COMPLETE. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "dest_accept.h"
#include "dest_postcopy.h"
#include "dest_run.h"
#include "libvmig.h"
#include "recovery.h"
#include "util.h"

/* Follow the main channel until COMPLETE, watching the receivers. */
int dest_run(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t last_pkt = now_ns(), round_base = 0, round_pages = 0, t_round = now_ns();
	unsigned int round = 0, n_unans;
	struct ctl_event ev;
	uint64_t u_page;
	uint32_t u_region;
	bool ended;
	int r;

	for (;;) {
		struct pollfd p = { .fd = d->ses.main.fd, .events = POLLIN };

		r = dest_rx_check(d, &ended);
		if (!r && d->pc_running && atomic_load(&d->pc.state) < 0)
			r = fail(d, atomic_load(&d->pc.state), "%s", d->pc.err);
		if (r)
			return r;
		if (vmig_ctl_lost(d->ctl))
			return fail(d, ECONNRESET, "the destination VMM went away");
		r = stream_ready(&d->ses.main) ? 1 : poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			return fail(d, errno, "poll: %s", strerror(errno));
		if (r <= 0) {
			if (now_ns() - last_pkt > o->timeout_ms * 1000000ull)
				return fail(d, ETIMEDOUT, "main channel: nothing from the source "
					    "for %d ms", o->timeout_ms);
			progress_update(&d->prog, round, dest_rx_pages(d) - round_base,
					round_pages, (dest_rx_pages(d) - round_base) *
					(double)WIRE_PAGE_SIZE / ((now_ns() - t_round) / 1e9));
			continue;
		}
		last_pkt = now_ns();
		r = control_recv(&d->ses.main, false, &ev);
		if (!r && ev.type == WIRE_PKT_DEVSTATE)
			r = devstate_recv_chunk(d->ds.dev ? &d->ds : NULL, &d->ses.main, ev.len);
		if (r)
			return fail(d, r, "main channel: %s", d->ses.main.err);
		if (ev.type == WIRE_PKT_ROUND) {
			round = ev.round.round;
			round_base = dest_rx_pages(d);
			round_pages = ev.round.dirty_pages;
			t_round = now_ns();
			if (round > d->rep->rounds)
				d->rep->rounds = round;
		}
		/* The source's switchover prediction asks how far the loads got. */
		if (ev.type == WIRE_PKT_DEV_LOAD) {
			r = devstate_recv_report(&d->ds, &d->ses.main);
			if (r)
				return fail(d, r, "main channel: %s", d->ses.main.err);
		}
		trace("dst: %s", wire_pkt_name(ev.type));
		if (ev.type == WIRE_PKT_DISCARD || ev.type == WIRE_PKT_POSTCOPY) {
			r = dest_pc_event(d, &ev);
			if (r)
				return r;
		}
		if (ev.type == WIRE_PKT_COMPLETE)
			break;
	}
	d->t_complete = now_ns();
	/* Every channel has sent END before COMPLETE; wait for them to be placed. */
	{
		uint64_t deadline = now_ns() + o->timeout_ms * 1000000ull;

		for (;;) {
			r = dest_rx_check(d, &ended);
			if (!r && d->pc_running && atomic_load(&d->pc.state) < 0)
				r = fail(d, atomic_load(&d->pc.state), "%s", d->pc.err);
			if (r)
				return r;
			if (ended)
				break;
			if (now_ns() > deadline)
				return fail(d, ETIMEDOUT, "multifd channels did not finish");
			usleep(200);
		}
	}
	if (dest_rx_pages(d) != ev.complete.pages)
		return fail(d, EPROTO, "source sent %llu pages, %llu arrived",
			    (unsigned long long)ev.complete.pages,
			    (unsigned long long)dest_rx_pages(d));
	r = devstate_recv_finish(&d->ds);
	if (r)
		return fail(d, r, "%s", d->ds.error);
	if (d->pc_running) {
		r = pcd_finish(&d->pc, o->timeout_ms);
		if (r)
			return fail(d, r, "%s", d->pc.err);
		/* A guest thread would wait on it for ever (or see a zero page): refuse. */
		n_unans = pcd_unanswered(&d->pc, &u_region, &u_page);
		if (n_unans)
			return fail(d, EPROTO, "the source completed postcopy with %u requested "
				    "page%s never sent (page %llu of region %u)", n_unans,
				    n_unans == 1 ? "" : "s", (unsigned long long)u_page, u_region);
		d->rep->pc.switch_ns = now_ns() - d->t_switch;
		d->pc_done = true;
		r = stream_send_pkt(&d->ses.main, WIRE_PKT_DONE, NULL, 0);
		if (!r && (d->ses.hs.caps & WIRE_CAP_DONE_ACK))
			r = rec_wait_done_ack(&d->ses.main, o->timeout_ms);
		/* Unconfirmed: wait for the source to come back and ask (dest_recover()). */
		if (r && (d->ses.hs.caps & WIRE_CAP_DONE_ACK) && rec_transient(r))
			return fail(d, r, "postcopy finished here, the source did not confirm: %s",
				    d->ses.main.err);
		if (r)
			fprintf(stderr, "vmig listen: postcopy finished, but the source did not get "
				"DONE: %s\n", d->ses.main.err);
	}
	return 0;
}
