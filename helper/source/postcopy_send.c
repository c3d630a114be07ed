// SPDX-License-Identifier: GPL-2.0
/*
 * The postcopy source (postcopy_send.h).
 *
 * Order of the switch: stop the guest, harvest, device state, every
 * channel's marker, DISCARD, the handover record, then POSTCOPY.  From the
 * start (nothing tracked, nothing sent): no harvest and no DISCARD, and the
 * pages holding data are listed after RESUMED, to go in the background.  From POSTCOPY on the
 * destination may run the guest: this side never resumes it again unless
 * the destination says it did not switch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "channel.h"
#include "control.h"
#include "postcopy_send.h"
#include "recovery.h"
#include "src_recover.h"
#include "util.h"

/* The first reason given is the one reported (report_fail). */
#define fail(pc, err, ...)	report_fail((pc)->src->rep, err, __VA_ARGS__)

void postcopy_init(struct postcopy *pc, struct src *s)
{
	memset(pc, 0, sizeof(*pc));
	pc->src = s;
	pcs_init(&pc->ps, !s->o->no_preempt, s->o->spin_us, s->o->sched, !s->o->cpu_any);
}

void postcopy_destroy(struct postcopy *pc)
{
	pcs_destroy(&pc->ps);
}

/* DISCARD packets for the pages dirtied since they were sent. */
static int send_discards(struct postcopy *pc)
{
	struct src *s = pc->src;
	static uint64_t buf[1 + 2 * WIRE_MAX_DISCARD];
	struct wire_discard *wd = (struct wire_discard *)buf;
	size_t i = 0;
	int r;

	while (i < s->dirty.len) {
		uint32_t region = s->dirty.v[i].region, n = 0;

		while (i < s->dirty.len && s->dirty.v[i].region == region &&
		       n < WIRE_MAX_DISCARD) {
			buf[1 + 2 * n] = s->dirty.v[i].first;
			buf[2 + 2 * n] = s->dirty.v[i].n;
			n++;
			i++;
		}
		*wd = (struct wire_discard){ .region = region, .count = n };
		r = stream_send_pkt(&s->ses.main, WIRE_PKT_DISCARD, buf, 8 + 16 * n);
		if (r)
			return fail(pc, r, "main channel: %s", s->ses.main.err);
	}
	return 0;
}

int postcopy_background(struct postcopy *pc)
{
	struct src *s = pc->src;
	const struct precopy_opts *o = s->o;
	struct wire_complete wc = { 0 };
	uint64_t pages = s->dirty.pages, done0, arg = 0, last_nop = now_ns();
	enum rec_cut_kind cut = rec_cut_armed(&pc->test.cuts, &arg);
	struct ctl_event ev;
	unsigned int i = 0;
	int r;

	r = src_send_round_info(s, s->rep->rounds + 1, pages);
	done0 = src_pages_done(s);
	if (!r)
		r = src_test_reverse(&pc->test) ? src_test_queue_reverse(s, &s->dirty, 0) :
		    src_queue_vec(s, &s->dirty, 0);
	while (!r && i < s->ses.nr_chans) {
		r = send_chan_wait_idle(&s->chans[i], 50);
		if (r < 0)
			return src_channel_failed(s, i, r);
		r = r == 1 ? (i++, 0) : 0;
		if (atomic_load(&pc->ps.state) < 0)
			return fail(pc, atomic_load(&pc->ps.state), "%s", pc->ps.err);
		r = src_check_main(s);
		if (!r && now_ns() - last_nop > 1000000000ull) {
			last_nop = now_ns();
			r = stream_send_pkt(&s->ses.main, WIRE_PKT_NOP, NULL, 0);
			if (r)
				return fail(pc, r, "main channel: %s", s->ses.main.err);
		}
		if (!r && cut == CUT_PAGES && src_pages_done(s) - done0 >= arg) {
			pc->test.cuts.next++;
			cut = CUT_NONE;
			src_test_cut_all(pc);
		}
	}
	if (r)
		return r;
	for (i = 0; i < s->ses.nr_chans; i++) {
		r = send_chan_finish(&s->chans[i], o->timeout_ms);
		if (r)
			return fail(pc, r, "multifd channel %u: %s", i, s->chans[i].s.err);
		wc.pages += s->chans[i].pages_sent;
	}
	wc.rounds = s->rep->rounds + 1;
	r = stream_send_pkt(&s->ses.main, WIRE_PKT_COMPLETE, &wc, sizeof(wc));
	do {
		if (!r)
			r = control_recv(&s->ses.main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (!r && ev.type != WIRE_PKT_DONE)
		r = stream_fail(&s->ses.main, EPROTO, "%s instead of DONE", wire_pkt_name(ev.type));
	if (!r && rec_cut_armed(&pc->test.cuts, &arg) == CUT_DONE) {
		pc->test.cuts.next++;
		src_test_cut_all(pc);
		r = stream_fail(&s->ses.main, ECONNRESET, "test cut: DONE lost on the way");
	}
	/* A bad request the return-path thread refused is the cause, not the link. */
	if (r && atomic_load(&pc->ps.state) < 0 && !rec_transient(atomic_load(&pc->ps.state)))
		return fail(pc, atomic_load(&pc->ps.state), "%s", pc->ps.err);
	if (r)
		return fail(pc, r, "destination did not finish postcopy: %s", s->ses.main.err);
	r = pcs_wait(&pc->ps, o->timeout_ms);
	if (r)
		return fail(pc, r, "%s", pc->ps.err);
	/* Lost, the destination would wait for a RESUME: it ends at its timeout then. */
	if ((s->ses.hs.caps & WIRE_CAP_DONE_ACK) &&
	    stream_send_pkt(&s->ses.main, WIRE_PKT_DONE, NULL, 0))
		fprintf(stderr, "vmig migrate: postcopy finished, but the destination did not get "
			"the acknowledgement: %s\n", s->ses.main.err);
	return 0;
}

/*
 * A broken link after the switch: pause, reconnect, re-send what the
 * destination lacks, as often as it breaks (until a recovery fails).
 * r: how the switch or the background transfer ended.
 */
static int recover_loop(struct postcopy *pc, int r, uint64_t t_stop)
{
	struct src *s = pc->src;
	const struct precopy_opts *o = s->o;

	while (r && o->recovery_timeout_ms > 0 && rec_transient(r) && !vmig_ctl_lost(s->ctl) &&
	       strncmp(s->rep->error, "destination:", 12)) {
		r = postcopy_recover(pc, r);
		if (r == 2 && !pc->switch_confirmed) {
			pc->dest_runs = false;	/* the destination says it never switched */
			s->rep->error[0] = 0;
			return fail(pc, ECONNRESET, "the postcopy switch did not reach the "
				    "destination (the link broke); its guest never ran");
		}
		if (r == 2) {
			s->rep->error[0] = 0;
			r = fail(pc, EPROTO, "destination: it says it never switched, after it "
				 "had confirmed the switch");
		}
		if (r == 1) {	/* the destination had finished */
			pc->switch_confirmed = true;
			r = 0;
			break;
		}
		if (r)
			break;	/* not resumed in time: give up */
		if (!pc->switch_confirmed) {	/* the destination answered: it runs the guest */
			pc->switch_confirmed = true;
			s->rep->downtime_ns = now_ns() - t_stop;
		}
		r = postcopy_background(pc);
	}
	return r;
}

/*
 * Postcopy from the start: nothing was sent, everything holding data goes
 * in the background.  Listed once the guest runs on the destination, not
 * in the downtime (5-12 ms at 1 GiB); this guest is stopped, so the list
 * cannot change.
 */
static int list_data(struct postcopy *pc)
{
	struct src *s = pc->src;
	unsigned int i;
	int r = 0;

	for (i = 0; !s->o->postcopy_after && !r && i < vmig_ram_region_count(s->ram); i++)
		r = vmig_ram_for_each_data(s->ram, i, range_add, &s->dirty);
	return r ? fail(pc, r, "cannot list guest RAM data: %s", strerror(-r)) : 0;
}

/*
 * Postcopy: stop the guest, tell the destination what it holds is stale
 * (DISCARD), mark the switch on every channel, wait until the guest runs
 * there, then serve requests (return-path thread) while the rest goes in
 * the background in small packets.
 */
int postcopy_switchover(struct postcopy *pc)
{
	struct src *s = pc->src;
	const struct precopy_opts *o = s->o;
	struct wire_postcopy wpc = { 0 };
	struct ctl_event ev = { 0 };
	uint64_t t_stop, t_dev, t_sent, discard_ns, arg;
	unsigned int i;
	int r;

	t_stop = now_ns();
	r = src_stop_vm(s);
	t_stop += s->rep->stop_ran_ns;	/* the downtime starts at the real stop */
	if (r)
		return r;
	/*
	 * Device state before each channel's marker (or on the main channel
	 * before POSTCOPY): the destination loads it before the guest resumes.
	 */
	t_dev = now_ns();
	r = src_send_devstate(s);
	if (r)
		return r;
	for (i = 0; i < s->ses.nr_chans && !r; i++)
		r = send_chan_queue(&s->chans[i], 0, 0, 0, SEND_MARK);
	if (r)
		return fail(pc, r, "out of memory");
	discard_ns = now_ns();
	if (o->postcopy_after) {
		r = send_discards(pc);
		if (r)
			return r;
		wpc.discarded = s->dirty.pages;
	}
	discard_ns = now_ns() - discard_ns;
	s->rep->pc.discarded = wpc.discarded;
	/* Before the switch can reach the destination: see handover.h. */
	r = handover_leave(pc);
	if (r)
		return fail(pc, r, "the source VMM did not take the handover record (%s): a "
			    "VMM must keep it to go on after a helper crash in postcopy",
			    strerror(-r));
	/*
	 * The parts of the downtime: stop; final dirty pages (the harvest and
	 * the discards); device state; transfer (the markers, up to POSTCOPY);
	 * the destination's device load and resume come with its RESUMED.  The
	 * stamp is taken before the write: the destination starts its part
	 * when POSTCOPY arrives, which on a fast link is inside our write.
	 */
	t_sent = now_ns();
	if (rec_cut_armed(&pc->test.cuts, &arg) != CUT_SWITCH_LOST)
		r = stream_send_pkt(&s->ses.main, WIRE_PKT_POSTCOPY, &wpc, sizeof(wpc));
	s->rep->dt_pages_ns = t_dev - t_stop - s->rep->dt_stop_ns + discard_ns;
	s->rep->dt_dev_send_ns = t_sent - t_dev - s->rep->dt_dev_save_ns - discard_ns;
	if (r)	/* not all of it went out: the destination cannot have the switch */
		return fail(pc, r, "main channel: %s", s->ses.main.err);
	/*
	 * The switch is decided: the destination resumes the guest as soon as
	 * POSTCOPY arrives, before its RESUMED can come back.  From here a
	 * broken link pauses (this guest stays stopped) and recovery finds out;
	 * only an ERROR from the destination says it did not switch.
	 */
	pc->dest_runs = true;
	for (i = 0; i < s->ses.nr_chans; i++) {
		s->chans[i].sched = o->sched;
		s->chans[i].max_batch = o->postcopy_batch;
		if (o->no_preempt)
			chan_shallow_send(s->chans[i].s.fd);
	}
	if (rec_cut_armed(&pc->test.cuts, &arg) == CUT_SWITCH ||
	    rec_cut_armed(&pc->test.cuts, &arg) == CUT_SWITCH_LOST) {
		/* Tests: after every marker went out, so the destination switches. */
		for (i = 0; i < s->ses.nr_chans && r >= 0; i++)
			while (!(r = send_chan_wait_idle(&s->chans[i], 50)))
				;
		r = r < 0 ? r : 0;
		pc->test.cuts.next++;
		src_test_cut_all(pc);
	}
	/*
	 * Page requests are served from here on, not only after RESUMED: the
	 * destination's VMM may touch missing pages while it loads the device
	 * state, before it resumes (QEMU does).  Pages sent to a destination
	 * that then fails change nothing here.
	 */
	if (!r) {
		src_test_arm_req_cut(pc);
		r = pcs_start(&pc->ps, s->ram, s->chans, s->ses.nr_chans, s->ses.hs.caps,
			      o->timeout_ms);
		s->rep->pc.reply_return = pc->ps.reply_rp;
		if (r)
			return fail(pc, r, "cannot start the return-path thread");
	}
	do {
		if (!r)
			r = control_recv(&s->ses.main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (!r && ev.type != WIRE_PKT_RESUMED)
		r = stream_fail(&s->ses.main, EPROTO, "%s instead of RESUMED",
				wire_pkt_name(ev.type));
	if (r && ev.type == WIRE_PKT_ERROR) {
		/* It failed before the guest ran there, unless it says otherwise. */
		pc->dest_runs = s->ses.main.peer_code == WIRE_ERR_GUEST_RAN;
		return fail(pc, r, "destination: %s", s->ses.main.err);
	}
	if (r) {
		r = fail(pc, r, "destination did not confirm the switch: %s", s->ses.main.err[0] ?
			 s->ses.main.err : strerror(-r));
	} else {
		pc->switch_confirmed = true;
		s->rep->downtime_ns = now_ns() - t_stop;
		s->rep->dt_load_ns = ev.resumed.load_wait_ns;
		s->rep->dt_resume_ns = ev.resumed.resume_ns;
		s->rep->device_buffer_peak = ev.resumed.dev_buffer_peak;
		trace("src: postcopy, guest runs on the destination");
		r = list_data(pc);
		if (!r)
			r = postcopy_background(pc);
	}
	r = recover_loop(pc, r, t_stop);
	if (r)
		return r;
	s->rep->pc.requests = pc->ps.requests;
	s->rep->pc.sched = pc->ps.sched_got;
	s->rep->pc.cpu = pc->ps.cpu.cur;
	s->rep->pc.cpu_moves = pc->ps.cpu.moves;
	s->rep->pc.switch_ns = now_ns() - t_stop;
	s->vm_stopped = false;
	return 0;
}
