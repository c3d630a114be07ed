// SPDX-License-Identifier: GPL-2.0
/* Destination: postcopy recovery, and refusing a RESUME after a failed switch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "dest_accept.h"
#include "dest_recover.h"
#include "libvmig.h"
#include "recovery.h"
#include "util.h"

/*
 * Postcopy recovery, destination side: pause (the guest runs on; threads
 * touching missing pages wait), keep listening, and take the session back
 * from a main channel that says RESUME with this session's id.
 */
int dest_recover(struct dest *d, int err)
{
	const struct dest_opts *o = d->o;
	uint64_t t0 = now_ns(), deadline = t0 + o->recovery_timeout_ms * 1000000ull;
	char reason[sizeof(d->rep->error)];

	char q[2][320];

	snprintf(reason, sizeof(reason), "%s", d->rep->error);
	dest_drop_channels(d);
	if (d->pc_done)
		fprintf(stderr, "vmig listen: postcopy paused: %s; every page is here; waiting up "
			"to %d s for the source to reconnect and take the news\n", reason,
			o->recovery_timeout_ms / 1000);
	else
		fprintf(stderr, "vmig listen: postcopy paused: %s; %llu pages missing; the guest "
			"runs on, threads touching missing pages wait; waiting up to %d s for the "
			"source to reconnect\n", reason, (unsigned long long)pcd_missing(&d->pc),
			o->recovery_timeout_ms / 1000);
	report_event(d->rep, "paused", "\"reason\":%s,\"missing_pages\":%llu,\"complete\":%s,"
		     "\"timeout_s\":%d", json_quote(q[0], sizeof(q[0]), reason),
		     (unsigned long long)pcd_missing(&d->pc), d->pc_done ? "true" : "false",
		     o->recovery_timeout_ms / 1000);
	for (;;) {
		struct wire_chan_hdr h;
		struct wire_resume wr;
		struct admitted c;
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		int fd, r;

		if (left <= 0 && d->pc_done) {
			d->rep->error[0] = 0;
			fprintf(stderr, "vmig listen: postcopy had finished here; the source did not "
				"come back to hear it within %d s\n", o->recovery_timeout_ms / 1000);
			report_event(d->rep, "unconfirmed", NULL);
			return 0;
		}
		if (left <= 0 || vmig_ctl_lost(d->ctl)) {
			d->rep->error[0] = 0;
			return fail(d, err, "%s; no source resumed the migration within %d s", reason,
				    o->recovery_timeout_ms / 1000);
		}
		if (admit_next(d->adm, left < 200 ? left : 200, &c))
			continue;
		fd = c.s.fd;
		d->main = c.s;
		h = c.h;
		wr = c.resume;
		r = 0;
		if (h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_RESUME ||
		    h.session != d->session)
			r = stream_fail(&d->main, EPROTO, "%s while a session is paused",
					h.kind != WIRE_CHAN_MAIN ? "a channel of another kind than "
					"main" : c.first != WIRE_PKT_RESUME ? "HELLO" :
					"RESUME of another session");
		if (!r)
			r = auth_resume_check(&d->main, wr.proof);
		if (!r)
			report_event(d->rep, "resume_attempt", "\"attempt\":%u", wr.attempt);
		if (!r && d->pc_done) {
			/* Finished here: the source only has to hear it (from us: proved). */
			uint8_t proof[AUTH_KEY_LEN];

			r = auth_resumed_proof(&d->main, proof);
			if (!r)
				r = stream_send_pkt(&d->main, WIRE_PKT_DONE, proof, sizeof(proof));
			if (!r)
				r = rec_wait_done_ack(&d->main, o->timeout_ms);
			if (!r) {
				d->main_open = true;
				d->rep->error[0] = 0;
				d->rep->pc.recoveries++;
				d->rep->pc.last_pause_ns = now_ns() - t0;
				d->rep->pc.paused_ns += d->rep->pc.last_pause_ns;
				fprintf(stderr, "vmig listen: the source reconnected after %.3f s and "
					"took the completion\n", d->rep->pc.last_pause_ns / 1e9);
				report_event(d->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,"
					     "\"resent\":0,\"complete\":true", wr.attempt,
					     d->rep->pc.last_pause_ns / 1e6);
				return 0;
			}
		}
		/* Before RESUMED goes out: the channels that follow it bind to this key. */
		if (!r && !d->pc_done) {
			auth_session_established(&d->main);
			r = rec_send_bitmap(&d->main, &d->pc);
		}
		if (r) {
			stream_send_error(&d->main, r, d->main.err);
			dest_drop(fd, &d->main, "connection while paused");
			continue;
		}
		d->main_open = true;
		r = dest_accept_channels(d);
		if (!r)
			r = pcd_resume(&d->pc, d->rp_fd, d->pre_fd, o->timeout_ms);
		if (r) {
			fprintf(stderr, "vmig listen: resume attempt %u failed: %s\n", wr.attempt,
				d->rep->error[0] ? d->rep->error : strerror(-r));
			report_event(d->rep, "resume_failed", "\"attempt\":%u,\"error\":%s",
				     wr.attempt, json_quote(q[1], sizeof(q[1]), d->rep->error[0] ?
							    d->rep->error : strerror(-r)));
			d->rep->error[0] = 0;
			dest_drop_channels(d);
			continue;
		}
		d->rep->error[0] = 0;
		d->rep->pc.recoveries++;
		d->rep->pc.last_pause_ns = now_ns() - t0;
		d->rep->pc.paused_ns += d->rep->pc.last_pause_ns;
		fprintf(stderr, "vmig listen: postcopy resumed after %.3f s (attempt %u)\n",
			d->rep->pc.last_pause_ns / 1e9, wr.attempt);
		report_event(d->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,\"resent\":%llu,"
			     "\"missing_pages\":%llu,\"complete\":false", wr.attempt,
			     d->rep->pc.last_pause_ns / 1e6, (unsigned long long)d->pc.resent,
			     (unsigned long long)pcd_missing(&d->pc));
		return 0;
	}
}

/*
 * The link broke during the postcopy switch, before the guest ran here.
 * The source cannot know whether its POSTCOPY arrived: it keeps its guest
 * stopped and comes back with RESUME.  Answer that the guest never ran here
 * (NOT_SWITCHED with the proof of the session's key, then ERROR
 * WIRE_ERR_NOT_SWITCHED), so that it resumes its own; wait for it up to
 * --recovery-timeout.  This side fails either way.
 */
void dest_refuse_resume(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->recovery_timeout_ms * 1000000ull;

	dest_drop_channels(d);
	fprintf(stderr, "vmig listen: the link broke during the postcopy switch, before the "
		"guest ran here; waiting up to %d s to tell the source to resume its own\n",
		o->recovery_timeout_ms / 1000);
	for (;;) {
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		uint8_t proof[AUTH_KEY_LEN];
		struct admitted c;
		struct stream *s = &c.s;
		int r = 0;

		if (left <= 0 || vmig_ctl_lost(d->ctl))
			return;
		if (admit_next(d->adm, left < 200 ? left : 200, &c))
			continue;
		if (c.h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_RESUME ||
		    c.h.session != d->session)
			r = stream_fail(s, EPROTO, "no RESUME of this session");
		if (!r)
			r = auth_resume_check(s, c.resume.proof);
		if (!r)
			r = auth_notswitched_proof(s, proof);
		if (!r)		/* only the destination holding the session can */
			r = stream_send_pkt(s, WIRE_PKT_NOT_SWITCHED, proof, sizeof(proof));
		if (r) {
			admit_refuse(&c, r, "connection after the failed switch");
			continue;
		}
		stream_send_error(s, WIRE_ERR_NOT_SWITCHED, "the postcopy switch did not reach "
				  "the destination: its guest never ran");
		close(s->fd);
		fprintf(stderr, "vmig listen: told the source (RESUME attempt %u) that the guest "
			"never ran here\n", c.resume.attempt);
		return;
	}
}
