// SPDX-License-Identifier: GPL-2.0
/* Recovery of the postcopy source (src_recover.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "handover.h"
#include "recovery.h"
#include "src_recover.h"
#include "util.h"

/* The first reason given is the one reported (report_fail). */
#define fail(pc, err, ...)	report_fail((pc)->src->rep, err, __VA_ARGS__)

/*
 * Leave with the source VMM what a helper needs to take this postcopy over
 * if we die (handover.h): from here the guest may run on the destination,
 * so the VMM must stay stopped even if we vanish.
 */
int handover_leave(struct postcopy *pc)
{
	struct src *s = pc->src;
	struct handover h = {
		.magic = HANDOVER_MAGIC, .wire_version = s->ses.hs.version,
		.session = s->ses.id, .caps = s->ses.hs.caps, .nr_chans = s->ses.nr_chans,
		.flags = s->o->no_preempt ? 0 : HANDOVER_PREEMPT,
	};
	int r;

	snprintf(h.to, sizeof(h.to), "%s", s->ses.peer);
	/* What a replacing helper's RESUME must prove (auth.h). */
	if (auth_root_export(h.secret))
		h.secret_len = AUTH_ROOT_LEN;
	r = vmig_ctl_handover(s->ctl, &h, sizeof(h), s->o->timeout_ms);
	explicit_bzero(h.secret, sizeof(h.secret));
	if (!r)
		pc->handed_over = true;
	return r;
}

/* The destination never ran the guest: the VMM may resume it again. */
void handover_drop(struct postcopy *pc)
{
	struct src *s = pc->src;

	if (pc->handed_over && !vmig_ctl_handover(s->ctl, NULL, 0, s->o->timeout_ms))
		pc->handed_over = false;
}

/* Every channel of the broken connection closed; what they counted kept. */
static void drop_channels(struct postcopy *pc)
{
	struct src *s = pc->src;
	uint64_t requests = pc->ps.requests;
	unsigned int moves = pc->ps.cpu.moves;
	unsigned int i;

	pcs_destroy(&pc->ps);
	pcs_init(&pc->ps, !s->o->no_preempt, s->o->spin_us, s->o->sched, !s->o->cpu_any);
	pc->ps.requests = requests;
	pc->ps.cpu.moves = moves;
	for (i = 0; i < s->ses.nr_chans; i++) {
		if (!s->chans[i].started)
			continue;
		send_chan_destroy(&s->chans[i]);
		s->rep->normal_pages += s->chans[i].normal_pages;
		s->rep->zero_pages += s->chans[i].zero_pages;
		s->rep->wire_bytes += s->chans[i].s.bytes_out;
		stream_close(&s->chans[i].s);
		memset(&s->chans[i], 0, sizeof(s->chans[i]));
		s->chans[i].s.fd = -1;
	}
	s->rep->wire_bytes += session_close_main(&s->ses);
}

/*
 * One attempt: main channel with RESUME, the bitmap, then every other
 * channel.  0 resumed, 1 the destination had finished (DONE acknowledged),
 * 2 it never switched (the guest did not run there).
 */
static int resume_once(struct postcopy *pc, unsigned int attempt, int wait_ms, char *err,
		       size_t errlen)
{
	struct src *s = pc->src;
	const struct precopy_opts *o = s->o;
	struct wire_resume wr = { .attempt = attempt };
	uint64_t *bm[WIRE_MAX_REGIONS] = { 0 }, arg;
	unsigned int i;
	int r;

	r = session_connect_main(&s->ses, wait_ms, err, errlen);
	if (r && !s->ses.main_open)
		return r;
	if (!r)
		r = auth_resume_proof(&s->ses.main, wr.proof);	/* only this source can */
	if (!r)
		r = stream_send_pkt(&s->ses.main, WIRE_PKT_RESUME, &wr, sizeof(wr));
	if (!r && rec_cut_armed(&pc->test.cuts, &arg) == CUT_RESUME) {
		/*
		 * A cut link fails both directions; shutdown() alone would still
		 * let a reply the peer had already queued be read, and the
		 * attempt would then "survive" its own cut.
		 */
		pc->test.cuts.next++;
		src_test_cut_all(pc);
		r = stream_fail(&s->ses.main, ECONNRESET, "test: cut during the resume handshake");
	}
	if (!r)
		r = rec_recv_bitmap(&s->ses.main, s->ram, bm);
	if (r == 2) {		/* proven by the destination that holds the session */
		rec_free_bitmap(bm);
		snprintf(err, errlen, "%s", s->ses.main.err);
		return 2;
	}
	s->dirty.len = s->dirty.pages = 0;
	if (r == 1) {		/* it had finished: only the acknowledgement was missing */
		rec_free_bitmap(bm);
		r = stream_send_pkt(&s->ses.main, WIRE_PKT_DONE, NULL, 0);
		if (r)
			snprintf(err, errlen, "acknowledging DONE: %s", s->ses.main.err);
		return r ? r : 1;
	}
	if (!r)
		r = rec_missing_data(s->ram, bm, src_test_add_unheld, pc);
	rec_free_bitmap(bm);
	if (r) {
		snprintf(err, errlen, "resume handshake: %s", s->ses.main.err[0] ? s->ses.main.err :
			 strerror(-r));
		return r;
	}
	session_established(&s->ses);	/* a fresh binding for the channels */
	for (i = 0; i < s->ses.nr_chans; i++) {
		struct stream tmp;
		char why[192];

		r = session_connect_chan(&s->ses, WIRE_CHAN_MULTIFD, i, &tmp, why, sizeof(why));
		if (r) {
			/* no tmp.err: the connection failed (why says it all) */
			if (!tmp.err[0])
				snprintf(err, errlen, "%s", why);
			else
				snprintf(err, errlen, "multifd channel %u: %s", i, why);
			return r;
		}
		r = send_chan_start(&s->chans[i], i, &tmp, o->timeout_ms, s->ram,
					    s->ses.hs.caps & WIRE_CAP_ZERO_PAGES,
					    o->max_bandwidth / o->channels);
		if (r) {
			stream_close(&s->chans[i].s);
			snprintf(err, errlen, "multifd channel %u: %s", i,
				 tmp.err[0] ? tmp.err : strerror(-r));
			return r;
		}
		s->chans[i].sched = o->sched;
		s->chans[i].max_batch = o->postcopy_batch;
		send_chan_freeze(&s->chans[i]);	/* postcopy: the guest stays stopped here */
		if (o->no_preempt)
			chan_shallow_send(s->chans[i].s.fd);
	}
	r = pcs_connect(&pc->ps, s->ses.peer, s->ses.id, o->timeout_ms, err, errlen);
	if (r)
		return r;
	src_test_arm_req_cut(pc);
	r = pcs_start(&pc->ps, s->ram, s->chans, s->ses.nr_chans, s->ses.hs.caps, o->timeout_ms);
	s->rep->pc.reply_return = pc->ps.reply_rp;
	if (r)
		snprintf(err, errlen, "cannot start the return-path thread");
	return r;
}

/*
 * Postcopy recovery, source side: the guest runs on the destination and
 * this side holds every page it lacks.  Close everything; listen on the
 * control socket (vmig migrate --resume); reconnect with backoff (50 ms
 * doubling to 1 s) until --recovery-timeout, or with --no-auto-resume only
 * when asked; take the destination's received bitmap as what not to send
 * again.  0 resumed, 1 the destination had finished, 2 it never switched
 * (the link broke before POSTCOPY arrived), or -errno.
 */
int postcopy_recover(struct postcopy *pc, int err)
{
	struct src *s = pc->src;
	const struct precopy_opts *o = s->o;
	uint64_t t0 = now_ns(), deadline = t0 + o->recovery_timeout_ms * 1000000ull;
	uint64_t manual_until = 0;
	char reason[sizeof(s->rep->error)], why[256] = "", ctl[108], to[256], q[4][320];
	unsigned int attempt = 0, backoff_ms = 50;
	const char *where = pc->switch_confirmed ? "the guest runs on the destination" :
			    "the guest may run on the destination (the switch is unconfirmed; "
			    "it stays stopped here)";
	int lfd, cfd = -1, r;

	src_test_note_cut(pc);
	snprintf(reason, sizeof(reason), "%s", s->rep->error);
	drop_channels(pc);
	if (o->control_path)
		snprintf(ctl, sizeof(ctl), "%s", o->control_path);
	else
		rec_ctl_default_path(ctl, sizeof(ctl), s->ses.id);
	lfd = rec_ctl_listen(ctl, !o->control_path);
	if (lfd < 0) {
		fprintf(stderr, "vmig migrate: cannot listen on the control socket %s: %s\n", ctl,
			strerror(-lfd));
		if (o->no_auto_resume) {
			s->rep->error[0] = 0;
			return fail(pc, err, "%s; postcopy paused, and no way to resume it (no "
				    "control socket, --no-auto-resume)", reason);
		}
	}
	if (o->no_auto_resume)
		fprintf(stderr, "vmig migrate: postcopy paused: %s; %s and every page it lacks "
			"is kept here; waiting up to %d s for 'vmig migrate --resume %s "
			"[--to HOST:PORT]'\n", reason, where, o->recovery_timeout_ms / 1000, ctl);
	else
		fprintf(stderr, "vmig migrate: postcopy paused: %s; %s and every page it lacks "
			"is kept here; reconnecting to %s for up to %d s (or now: 'vmig migrate "
			"--resume %s [--to HOST:PORT]')\n", reason, where, s->ses.peer,
			o->recovery_timeout_ms / 1000, ctl);
	report_event(s->rep, "paused", "\"reason\":%s,\"to\":%s,\"control\":%s,"
		     "\"auto_resume\":%s,\"timeout_s\":%d",
		     json_quote(q[0], sizeof(q[0]), reason),
		     json_quote(q[1], sizeof(q[1]), s->ses.peer),
		     json_quote(q[2], sizeof(q[2]), lfd >= 0 ? ctl : ""),
		     o->no_auto_resume ? "false" : "true", o->recovery_timeout_ms / 1000);
	for (;;) {
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;

		if (left <= 0 || vmig_ctl_lost(s->ctl)) {
			if (cfd >= 0) {
				rec_ctl_reply(cfd, "error not resumed within --recovery-timeout: %s",
					      why);
				close(cfd);
			}
			if (lfd >= 0) {
				close(lfd);
				unlink(ctl);
			}
			s->rep->error[0] = 0;
			return fail(pc, err, "%s; postcopy paused and not resumed within %d s (%s)",
				    reason, o->recovery_timeout_ms / 1000,
				    vmig_ctl_lost(s->ctl) ? "the source VMM went away" :
				    why[0] ? why : "no resume asked for");
		}
		if (cfd < 0 && (o->no_auto_resume || attempt)) {
			/* Until a request comes (manual) or the backoff passes (auto). */
			int ms = o->no_auto_resume ? 1000 : (int)backoff_ms;

			if (rec_ctl_wait(lfd, ms < left ? ms : left, &cfd, to, sizeof(to)) == 1) {
				if (*to)
					session_set_peer(&s->ses, to);
				manual_until = now_ns() + 10000000000ull;
				backoff_ms = 50;
				fprintf(stderr, "vmig migrate: resume requested: reconnecting to %s\n",
					s->ses.peer);
				report_event(s->rep, "resume_requested", "\"to\":%s",
					     json_quote(q[1], sizeof(q[1]), s->ses.peer));
			} else if (o->no_auto_resume) {
				continue;
			} else if (backoff_ms < 1000) {
				backoff_ms *= 2;
			}
		} else if (cfd >= 0 && attempt) {
			usleep(backoff_ms * 1000);
			if (backoff_ms < 1000)
				backoff_ms *= 2;
		}
		left = (int64_t)(deadline - now_ns()) / 1000000;
		if (left <= 0)
			continue;
		attempt++;
		report_event(s->rep, "resume_attempt", "\"attempt\":%u,\"to\":%s", attempt,
			     json_quote(q[1], sizeof(q[1]), s->ses.peer));
		r = resume_once(pc, attempt, left < 1000 ? left : 1000, why, sizeof(why));
		if (r == 2) {
			fprintf(stderr, "vmig migrate: the destination answered: %s\n", why);
			report_event(s->rep, "not_switched", "\"attempt\":%u", attempt);
			if (cfd >= 0) {
				rec_ctl_reply(cfd, "error the destination never ran the guest: "
					      "resuming it here");
				close(cfd);
			}
			if (lfd >= 0) {
				close(lfd);
				unlink(ctl);
			}
			drop_channels(pc);
			return 2;
		}
		if (r >= 0)
			break;
		trace("src: resume attempt %u: %s", attempt, why);
		report_event(s->rep, "resume_failed", "\"attempt\":%u,\"error\":%s", attempt,
			     json_quote(q[3], sizeof(q[3]), why));
		drop_channels(pc);
		if (cfd >= 0 && now_ns() > manual_until) {
			rec_ctl_reply(cfd, "error cannot resume through %s: %s", s->ses.peer, why);
			close(cfd);
			cfd = -1;
		}
	}
	s->rep->error[0] = 0;
	s->rep->pc.recoveries++;
	s->rep->pc.last_pause_ns = now_ns() - t0;
	s->rep->pc.paused_ns += s->rep->pc.last_pause_ns;
	if (r == 1)
		fprintf(stderr, "vmig migrate: postcopy had finished on the destination; its "
			"DONE was lost with the link and is now acknowledged (after %.3f s)\n",
			s->rep->pc.last_pause_ns / 1e9);
	else
		fprintf(stderr, "vmig migrate: postcopy resumed after %.3f s (attempt %u): %llu "
			"pages to send again\n", s->rep->pc.last_pause_ns / 1e9, attempt,
			(unsigned long long)s->dirty.pages);
	report_event(s->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,\"to\":%s,"
		     "\"pages_to_send\":%llu,\"complete\":%s", attempt,
		     s->rep->pc.last_pause_ns / 1e6, json_quote(q[1], sizeof(q[1]), s->ses.peer),
		     (unsigned long long)(r == 1 ? 0 : s->dirty.pages), r == 1 ? "true" : "false");
	if (cfd >= 0) {
		rec_ctl_reply(cfd, "ok %s after %.3f s (attempt %u, %s)",
			      r == 1 ? "completed" : "resumed", s->rep->pc.last_pause_ns / 1e9,
			      attempt, s->ses.peer);
		close(cfd);
	}
	if (lfd >= 0) {
		close(lfd);
		unlink(ctl);
	}
	return r;
}
