// SPDX-License-Identifier: GPL-2.0
/*
 * Precopy on the source, and the sequencer of the source's rooms:
 * setup (src.h), the bulk stage, dirty rounds until the predicted
 * downtime fits, then the precopy switchover here or the postcopy source
 * (postcopy_send.h, which recovers through src_recover.h).
 *
 * Order of operations per round: harvest (which write-protects the
 * harvested pages again), then queue them; the sender threads read a page
 * only after that.  Pages of one 2 MiB chunk always go to the same channel,
 * so rounds need no cross-channel barrier for correctness; the engine waits
 * for the channels to drain anyway, to measure the round.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "freepage.h"
#include "postcopy_send.h"
#include "precopy.h"
#include "src.h"
#include "src_recover.h"
#include "switchover.h"
#include "throttle.h"
#include "util.h"

#define STALL_WINDOW	3	/* rounds over which the dirty set must shrink */
#define STALL_SHRINK	0.9	/* ... to at most this fraction */
#define MIN_BW_SAMPLE	(1u << 20)
#define BULK_SLICES	16	/* with free-page hints: a fresh hint per slice */
#define BULK_SLICE_MIN	1024	/* pages */
#define RTT_KEEP	4	/* control round trips kept for the prediction */
#define ROUND_WAIT_NS	100000000ull	/* waiting for device state: rounds last this */

struct precopy {
	struct src src;			/* what the source's rooms share */
	struct postcopy post;		/* the postcopy source, if it switches */
	struct progress prog;
	struct throttle thr;		/* auto-converge (throttle.c) */
	struct freepage fp;
	uint64_t sample_bytes, sample_ns;	/* bandwidth: sum over measured rounds */
	double bw_peak;			/* the best rate a measured round reached */
	uint64_t last_harvest_ns;
	uint64_t history[STALL_WINDOW + 1];
	double rtt_ms[RTT_KEEP];	/* the latest control round trips to the VMM */
	unsigned int nr_rtt;
	bool go_postcopy;		/* precopy ended: switch to postcopy */
};

/* The first reason given is the one reported (report_fail). */
#define fail(pc, err, ...)	report_fail((pc)->src.rep, err, __VA_ARGS__)

static double bandwidth(struct precopy *pc)
{
	struct src *s = &pc->src;

	if (pc->sample_bytes >= MIN_BW_SAMPLE && pc->sample_ns)
		return pc->sample_bytes / (pc->sample_ns / 1e9);
	return s->o->max_bandwidth ? (double)s->o->max_bandwidth : 1e9;
}

static void note_rtt(struct precopy *pc, uint64_t ns)
{
	pc->rtt_ms[pc->nr_rtt++ % RTT_KEEP] = ns / 1e6;
}

/* The stop and resume costs predicted: the median of the latest round trips. */
static double ctl_rtt_ms(const struct precopy *pc)
{
	unsigned int i, j, n = pc->nr_rtt < RTT_KEEP ? pc->nr_rtt : RTT_KEEP;
	double v[RTT_KEEP], t;

	if (!n)
		return 0;
	memcpy(v, pc->rtt_ms, sizeof(v));
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && v[j] < v[j - 1]; j--) {
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*
 * Predict the downtime of a switch now (switchover.h), part by part, into
 * the report and the progress bar: the VMM's latest device sizes and rates
 * (asked for here, which also times a control round trip), less what each
 * device's precopy part sent so far; at the save rate the VMM declared, or
 * else the rate that part ran at.  The declared rate comes first: the part
 * ran beside the bulk stage and the vCPUs (under load at half the rate in
 * the benchmark), the rest runs with the guest stopped and the pages sent.
 * The destination says how far the loads already running got.
 */
static int predict(struct precopy *pc, uint64_t dirty_bytes, bool postcopy)
{
	struct src *s = &pc->src;
	const struct precopy_opts *o = s->o;
	struct sw_device dev[WIRE_MAX_DEVICES];
	struct sw_inputs in = {
		.dirty_bytes = dirty_bytes,
		.bandwidth = o->switchover_bandwidth ? (double)o->switchover_bandwidth :
			     bandwidth(pc),
		.dev_bandwidth = o->switchover_bandwidth ? (double)o->switchover_bandwidth :
				 pc->bw_peak,
		.harvest_ms = s->harvest_cost_ns / 1e6,
		.nr_devices = s->ds.nr_devices,
		.dev = dev,
		.threads = o->device_threads,
		.on_main = s->ds.on_main || !s->ses.nr_chans,
		.postcopy = postcopy,
	};
	uint64_t t = now_ns(), left = 0;
	struct ctl_event ev = { 0 };
	unsigned int i;
	int r;

	r = vmig_ctl_refresh_devices(s->ctl, o->timeout_ms);
	if (!r)
		note_rtt(pc, now_ns() - t);
	else if (r != -EOPNOTSUPP)
		return fail(pc, r, "the VMM did not answer the device status query: %s",
			    strerror(-r));
	/* Devices loading already: how far they got on the destination. */
	if (s->ds.nr_precopy && (s->ses.hs.caps & WIRE_CAP_DEV_LOAD)) {
		r = control_dev_load(&s->ses.main, &ev);
		if (r)
			return fail(pc, r, "%s: %s", ev.type == WIRE_PKT_ERROR ? "destination" :
				    "main channel", s->ses.main.err);
		/* None (nothing loading yet) or one per device, in the DEVICES order. */
		if (ev.dev_load.nr_devices && ev.dev_load.nr_devices != s->ds.nr_devices)
			return fail(pc, EPROTO, "destination: DEV_LOAD for %u devices, %u were "
				    "declared", ev.dev_load.nr_devices, s->ds.nr_devices);
	}
	for (i = 0; i < in.nr_devices && i < WIRE_MAX_DEVICES; i++) {
		const struct vmig_dev_desc *v = vmig_ctl_device(s->ctl, i);
		uint64_t sent;
		double rate;

		devstate_send_precopy_progress(&s->ds, i, &sent, &rate);
		dev[i] = (struct sw_device){
			.remaining = v->size > sent ? v->size - sent : 0,
			.save_rate = v->save_rate ? (double)v->save_rate : rate,
			.load_rate = v->load_rate,
		};
		if (i < ev.dev_load.nr_devices)
			sw_dest_load_apply(&ev.loaded[i], sent, &dev[i]);
		left += dev[i].remaining;
	}
	in.ctl_rtt_ms = ctl_rtt_ms(pc);
	sw_predict(&in, &s->rep->pred);
	s->rep->predicted = true;
	s->rep->expected_downtime_ms = sw_total(&s->rep->pred);
	s->rep->device_left_bytes = left;
	s->rep->downtime_limit_ms = o->downtime_limit_ms;
	pc->prog.predicted_ms = s->rep->expected_downtime_ms;
	pc->prog.device_left = left;
	return 0;
}

/* --json: the decision of one round, as a figure an orchestrator can poll. */
static void round_event(struct precopy *pc, unsigned int round, uint64_t dirty_bytes,
			bool fits)
{
	struct src *s = &pc->src;
	const struct sw_parts *p = &s->rep->pred;

	if (!s->o->round_events)
		return;
	report_event(s->rep, "round", "\"round\":%u,\"dirty_bytes\":%llu,"
		     "\"device_left_bytes\":%llu,\"remaining_bytes\":%llu,"
		     "\"bandwidth_bps\":%.0f,\"predicted_downtime_ms\":%.3f,\"limit_ms\":%.0f,"
		     "\"fits\":%s,\"predicted_parts_ms\":{\"stop\":%.3f,\"final_pages\":%.3f,"
		     "\"device_save\":%.3f,\"transfer\":%.3f,\"load\":%.3f,\"resume\":%.3f}",
		     round, (unsigned long long)dirty_bytes,
		     (unsigned long long)s->rep->device_left_bytes,
		     (unsigned long long)(dirty_bytes + s->rep->device_left_bytes),
		     s->rep->bandwidth, sw_total(p), s->o->downtime_limit_ms,
		     fits ? "true" : "false", p->stop, p->pages, p->dev_save, p->transfer, p->load,
		     p->resume);
}

/*
 * Waiting for device state (the pages alone fit): let the round last
 * ROUND_WAIT_NS, so that --max-rounds bounds the wait in time too, while
 * keeping the main channel alive and watching it.
 */
static int round_pause(struct precopy *pc, uint64_t until)
{
	struct src *s = &pc->src;
	int r;

	while (now_ns() < until) {
		r = src_check_main(s);
		if (r)
			return r;
		usleep(10000);
	}
	r = stream_send_pkt(&s->ses.main, WIRE_PKT_NOP, NULL, 0);
	return r ? fail(pc, r, "main channel: %s", s->ses.main.err) : 0;
}

/*
 * Auto-converge during the bulk stage (throttle.h: throttle_bulk), where
 * the tracking counts re-dirtied pages live (kmod manual-init): every
 * BULK_PERIOD_NS, pages written again after being sent against pages sent.
 */
struct bulk_sample {
	bool on;
	uint64_t t, sent, redirtied;
};

#define BULK_PERIOD_NS		250000000ull
#define BULK_MIN_SENT		256	/* pages: a smaller period says nothing */

static int bulk_throttle(struct precopy *pc, struct bulk_sample *bs);

/* Wait until every channel is idle; measure the round; keep the main channel alive. */
static int wait_round(struct precopy *pc, unsigned int round, uint64_t pages)
{
	struct src *s = &pc->src;
	uint64_t done0 = src_pages_done(s), bytes0 = src_bytes(s), t0 = now_ns();
	uint64_t last_nop = t0;
	struct bulk_sample bs = { .on = !round && s->o->auto_converge, .t = t0, .sent = done0 };
	unsigned int i = 0;
	int r;

	if (bs.on && vmig_ram_redirtied(s->ram, &bs.redirtied))
		bs.on = false;
	while (i < s->ses.nr_chans) {
		r = send_chan_wait_idle(&s->chans[i], 100);
		if (r < 0)
			return src_channel_failed(s, i, r);
		if (r == 1)
			i++;
		r = src_check_main(s);
		if (!r)
			r = bulk_throttle(pc, &bs);
		if (r)
			return r;
		if (now_ns() - last_nop > 1000000000ull) {
			last_nop = now_ns();
			r = stream_send_pkt(&s->ses.main, WIRE_PKT_NOP, NULL, 0);
			if (r)
				return fail(pc, r, "main channel: %s", s->ses.main.err);
		}
		{
			uint64_t dt = now_ns() - t0;

			progress_update(&pc->prog, round, src_pages_done(s) - done0, pages,
					dt ? (src_bytes(s) - bytes0) / (dt / 1e9) : 0);
		}
	}
	if (src_bytes(s) - bytes0 >= MIN_BW_SAMPLE) {
		double rate = (src_bytes(s) - bytes0) / ((now_ns() - t0) / 1e9 + 1e-9);

		pc->sample_bytes += src_bytes(s) - bytes0;
		pc->sample_ns += now_ns() - t0;
		if (rate > pc->bw_peak)
			pc->bw_peak = rate;
	}
	return 0;
}

/*
 * The bulk stage: every page holding data, less what the VMM hints free.
 * With hints it goes in slices, and each slice is filtered by the hint
 * asked for while the slice before it was on the wire (helper/source/freepage.h:
 * why that is safe).  Devices with a precopy part save it meanwhile, over
 * the multifd channels; on the main channel, after the pages.
 */
static int bulk_stage(struct precopy *pc)
{
	struct src *s = &pc->src;
	struct freepage_filter ff = { .fp = &pc->fp, .fn = range_add, .arg = &s->dirty };
	struct range_vec data = { 0 };
	uint64_t slice;
	size_t i;
	int r = 0;

	if (!s->ds.on_main) {
		r = devstate_send_precopy_start(&s->ds, s->chans, s->ses.nr_chans, &s->ses.main);
		if (r)
			return fail(pc, r, "%s", s->ds.error);
	}
	for (i = 0; i < vmig_ram_region_count(s->ram) && !r; i++)
		r = vmig_ram_for_each_data(s->ram, i, range_add, &data);
	if (r) {
		free(data.v);
		return fail(pc, r, "cannot list guest RAM data: %s", strerror(-r));
	}
	s->rep->skipped_pages = s->rep->guest_bytes / WIRE_PAGE_SIZE - data.pages;
	slice = data.pages;
	if (pc->fp.have && data.pages / BULK_SLICES > BULK_SLICE_MIN)
		slice = data.pages / BULK_SLICES;
	else if (pc->fp.have)
		slice = BULK_SLICE_MIN;
	r = src_send_round_info(s, 0, data.pages);
	for (i = 0; !r && i < data.len;) {
		uint64_t want = slice, pages;

		while (i < data.len && want) {
			struct range *rg = &data.v[i];
			uint64_t k = rg->n < want ? rg->n : want;

			r = freepage_filter_cb(&ff, rg->region, rg->first, k);
			if (r) {
				r = fail(pc, r, "out of memory listing pages");
				break;
			}
			rg->first += k;
			rg->n -= k;
			want -= k;
			if (!rg->n)
				i++;
		}
		pages = s->dirty.pages;
		if (!r)
			r = src_queue_vec(s, &s->dirty, SEND_BULK);
		if (!r && i < data.len) {
			r = freepage_update(&pc->fp, s->ctl, s->o->timeout_ms);
			if (r)
				r = fail(pc, r, "free-page hint update: %s", strerror(-r));
		}
		if (!r)
			r = wait_round(pc, 0, pages);
	}
	free(data.v);
	s->rep->free_pages = pc->fp.skipped;
	s->rep->free_pages_updated = pc->fp.skipped_updated;
	s->rep->free_hints = pc->fp.hints;
	/*
	 * On the main channel the precopy parts go now, alone there.  Over
	 * multifd they go on during the dirty rounds: what is left of them
	 * counts in each round's prediction, and the switch waits for them.
	 */
	if (!r && s->ds.on_main) {
		r = devstate_send_precopy_start(&s->ds, s->chans, s->ses.nr_chans, &s->ses.main);
		if (r)
			return fail(pc, r, "%s", s->ds.error);
		r = devstate_send_precopy_wait(&s->ds, false);
		if (r)
			r = fail(pc, r, "%s", s->ds.error);
	}
	return r;
}

/* Auto-converge: ask the VMM to run the guest at (100 - want) %. */
static int set_throttle(struct precopy *pc, unsigned int want)
{
	struct src *s = &pc->src;
	int r;

	if (want == pc->thr.percent)
		return 0;
	r = vmig_ctl_throttle(s->ctl, want, s->o->timeout_ms);
	if (r)
		return fail(pc, r, "the VMM did not take the throttle request (%u %%): %s", want,
			    strerror(-r));
	pc->thr.percent = want;
	s->rep->throttle_pct = want;
	progress_clear(&pc->prog);
	fprintf(stderr, "vmig migrate: auto-converge: the guest runs at %u %% now\n", 100 - want);
	return 0;
}

/* Auto-converge: throttle the guest harder when the dirty set did not shrink. */
static int auto_converge(struct precopy *pc)
{
	struct src *s = &pc->src;

	return set_throttle(pc, throttle_next(&pc->thr, s->dirty.pages));
}

static int bulk_throttle(struct precopy *pc, struct bulk_sample *bs)
{
	struct src *s = &pc->src;
	uint64_t t = now_ns(), sent = src_pages_done(s), redirtied;
	unsigned int want;

	if (!bs->on || t - bs->t < BULK_PERIOD_NS || sent - bs->sent < BULK_MIN_SENT)
		return 0;
	if (vmig_ram_redirtied(s->ram, &redirtied)) {
		bs->on = false;
		return 0;
	}
	want = throttle_bulk(&pc->thr, redirtied - bs->redirtied, sent - bs->sent);
	if (want != pc->thr.percent) {
		progress_clear(&pc->prog);
		fprintf(stderr, "vmig migrate: auto-converge in the bulk stage: %llu pages written "
			"again of %llu sent in %.0f ms\n",
			(unsigned long long)(redirtied - bs->redirtied),
			(unsigned long long)(sent - bs->sent), (t - bs->t) / 1e6);
	}
	bs->t = t;
	bs->sent = sent;
	bs->redirtied = redirtied;
	return set_throttle(pc, want);
}

/*
 * Dirty rounds until the predicted downtime (switchover.h: pages, device
 * state, stop and resume) fits the limit, or a stall.  While the pages
 * alone fit and device state does not, rounds last ROUND_WAIT_NS: the
 * devices' precopy parts go on meanwhile, the VMM may report smaller
 * devices, and --max-rounds bounds the wait; the dirty set's stall rule
 * and auto-converge are about pages and apply only while they do not fit.
 */
static int dirty_rounds(struct precopy *pc)
{
	struct src *s = &pc->src;
	const struct precopy_opts *o = s->o;
	struct report *rep = s->rep;
	unsigned int round, i;
	int r;

	/* Auto-converge: the bulk stage sent every page; round 1 must halve that. */
	for (i = 0; i < vmig_ram_region_count(s->ram); i++)
		pc->thr.last_pages += vmig_ram_region_pages(s->ram, i);
	for (round = 1;; round++) {
		uint64_t t = now_ns(), bytes;
		const struct sw_parts *p = &rep->pred;
		double bw, exp_ms;
		bool stall = false, pages_fit;

		if (o->postcopy && round >= o->postcopy_after) {
			pc->go_postcopy = true;
			snprintf(rep->switchover, sizeof(rep->switchover),
				 "postcopy after %u pass%s", round, round == 1 ? "" : "es");
			return 0;
		}

		r = src_harvest(s);
		if (r)
			return r;
		bytes = s->dirty.pages * WIRE_PAGE_SIZE;
		rep->dirty_rate = bytes / ((t - pc->last_harvest_ns) / 1e9 + 1e-9);
		pc->last_harvest_ns = t;
		bw = bandwidth(pc);
		rep->bandwidth = bw;
		r = predict(pc, bytes, false);
		if (r)
			return r;
		exp_ms = rep->expected_downtime_ms;
		pages_fit = p->pages <= o->downtime_limit_ms;
		round_event(pc, round, bytes, exp_ms <= o->downtime_limit_ms);
		if (exp_ms <= o->downtime_limit_ms) {
			snprintf(rep->switchover, sizeof(rep->switchover),
				 "predicted downtime %.1f ms fits the %.0f ms limit", exp_ms,
				 o->downtime_limit_ms);
			return 0;
		}
		memmove(pc->history, pc->history + 1, sizeof(pc->history[0]) * STALL_WINDOW);
		pc->history[STALL_WINDOW] = s->dirty.pages;
		if (o->auto_converge && !pages_fit) {
			r = auto_converge(pc);
			if (r)
				return r;
		}
		/* With auto-converge a stall counts only once the throttle is at its maximum. */
		if (!pages_fit && round > STALL_WINDOW &&
		    pc->history[STALL_WINDOW] > STALL_SHRINK * pc->history[0] &&
		    (!o->auto_converge || throttle_maxed(&pc->thr)))
			stall = true;
		if (round > o->max_rounds)
			stall = true;
		if (stall) {
			char b1[32], b2[32], b3[32];

			rep->stalled = true;
			progress_clear(&pc->prog);
			fprintf(stderr, "vmig migrate: precopy stalled after %u rounds: dirty rate "
				"%s/s against %s/s of bandwidth, %s of device state left; "
				"predicted downtime %.0f ms (%s %.0f ms of it) > limit %.0f ms\n",
				round - 1, fmt_bytes(rep->dirty_rate, b1, sizeof(b1)),
				fmt_bytes(bw, b2, sizeof(b2)),
				fmt_bytes(rep->device_left_bytes, b3, sizeof(b3)), exp_ms,
				sw_largest(p), sw_largest_ms(p), o->downtime_limit_ms);
			if (o->postcopy) {
				fprintf(stderr, "vmig migrate: switching to postcopy\n");
				snprintf(rep->switchover, sizeof(rep->switchover),
					 "stalled: switched to postcopy");
				pc->go_postcopy = true;
				return 0;
			}
			if (o->abort_on_stall)
				return fail(pc, ETIMEDOUT, "precopy does not converge (stalled after "
					    "%u rounds, predicted downtime %.0f ms > limit %.0f ms, "
					    "%s %.0f ms of it); giving up, the guest keeps running on "
					    "the source", round - 1, exp_ms, o->downtime_limit_ms,
					    sw_largest(p), sw_largest_ms(p));
			fprintf(stderr, "vmig migrate: WARNING: switching over anyway, OVER THE "
				"LIMIT: predicted downtime %.0f ms > --downtime-limit %.0f ms "
				"(--abort-on-stall would give up instead)\n", exp_ms,
				o->downtime_limit_ms);
			rep->over_limit = true;
			snprintf(rep->switchover, sizeof(rep->switchover),
				 "stalled after %u rounds: switched over anyway, predicted downtime "
				 "%.1f ms over the %.0f ms limit", round - 1, exp_ms,
				 o->downtime_limit_ms);
			return 0;
		}
		rep->rounds = round;
		r = src_send_round_info(s, round, s->dirty.pages);
		if (r)
			return r;
		{
			uint64_t pages = s->dirty.pages;

			r = src_queue_vec(s, &s->dirty, 0);
			if (!r)
				r = wait_round(pc, round, pages);
		}
		if (!r && pages_fit)
			r = round_pause(pc, t + ROUND_WAIT_NS);
		if (r)
			return r;
	}
}

static int switchover(struct precopy *pc)
{
	struct src *s = &pc->src;
	const struct precopy_opts *o = s->o;
	struct wire_complete wc = { 0 };
	struct ctl_event ev;
	uint64_t t_stop, t_dev, pages;
	unsigned int i;
	int r;

	t_stop = now_ns();
	trace("src: stop");
	r = src_stop_vm(s);
	t_stop += s->rep->stop_ran_ns;	/* the downtime starts at the real stop */
	trace("src: stopped");
	if (r)
		return r;
	pages = s->dirty.pages;
	trace("src: final harvest %llu pages", (unsigned long long)pages);
	r = src_send_round_info(s, s->rep->rounds + 1, pages);
	if (!r)
		r = src_queue_vec(s, &s->dirty, 0);
	if (!r)
		r = wait_round(pc, s->rep->rounds + 1, pages);
	if (r)
		return r;
	trace("src: final round sent");
	t_dev = now_ns();
	s->rep->dt_pages_ns = t_dev - t_stop - s->rep->dt_stop_ns;
	/* Device save: what the precopy parts had left, then the rest. */
	r = src_send_devstate(s);
	if (r)
		return r;
	trace("src: device state sent");
	for (i = 0; i < s->ses.nr_chans; i++) {
		r = send_chan_finish(&s->chans[i], o->timeout_ms);
		if (r)
			return fail(pc, r, "multifd channel %u: %s", i, s->chans[i].s.err);
		wc.pages += s->chans[i].pages_sent;
	}
	trace("src: channels ended");
	wc.rounds = s->rep->rounds + 1;
	/*
	 * The transfer part ends as COMPLETE goes: the destination's load part
	 * starts when it arrives, which on a fast link is inside our write, so
	 * a stamp after the write would count that overlap twice.
	 */
	s->rep->dt_dev_send_ns = now_ns() - t_dev - s->rep->dt_dev_save_ns;
	r = stream_send_pkt(&s->ses.main, WIRE_PKT_COMPLETE, &wc, sizeof(wc));
	do {
		if (!r)
			r = control_recv(&s->ses.main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (r)
		return fail(pc, r, "destination did not resume the guest: %s", s->ses.main.err);
	trace("src: resumed");
	s->rep->downtime_ns = now_ns() - t_stop;
	s->rep->dt_load_ns = ev.resumed.load_wait_ns;
	s->rep->dt_resume_ns = ev.resumed.resume_ns;
	s->rep->device_buffer_peak = ev.resumed.dev_buffer_peak;
	s->vm_stopped = false;		/* the guest now runs on the destination */
	return 0;
}

int precopy_migrate(const struct precopy_opts *o, struct report *rep)
{
	struct precopy pc = { .src = { .o = o, .rep = rep } };
	uint64_t t0 = now_ns(), rtt_ns = 0;
	unsigned int i;
	int r;

	rep->role = "source";
	rep->backend = "uffd";
	rep->tracking = "";
	rep->channels = o->channels;
	progress_init(&pc.prog, o->progress);
	postcopy_init(&pc.post, &pc.src);
	pc.post.test.cuts = o->test.cuts;
	session_init(&pc.src.ses, o->to, o->timeout_ms);
	r = src_setup(&pc.src, &pc.post.ps, &pc.fp, &rtt_ns);
	if (!r) {
		note_rtt(&pc, rtt_ns);
		pc.last_harvest_ns = now_ns();
	}
	rep->setup_ns = now_ns() - t0;
	pc.go_postcopy = o->postcopy && !o->postcopy_after;
	if (!r && !pc.go_postcopy)
		r = bulk_stage(&pc);
	if (!r && !pc.go_postcopy)
		r = dirty_rounds(&pc);
	if (!r && pc.go_postcopy) {
		rep->pc.on = true;
		rep->pc.preempt = !o->no_preempt;
		r = predict(&pc, 0, true);	/* the pages go after the switch */
		if (!r)
			r = postcopy_switchover(&pc.post);
	} else if (!r) {
		r = switchover(&pc);
	}
	progress_clear(&pc.prog);
	if (r && pc.src.ses.main_open)
		src_dest_reason(&pc.src);
	if (r) {
		/* Nothing was written to the source's memory: let the guest run on. */
		for (i = 0; i < pc.src.ses.nr_chans; i++)
			send_chan_cancel(&pc.src.chans[i]);
		devstate_send_precopy_wait(&pc.src.ds, true);
		if (pc.src.ses.main_open)
			stream_send_error(&pc.src.ses.main, r, rep->error);
		if (pc.post.dest_runs)
			snprintf(rep->error + strlen(rep->error),
				 sizeof(rep->error) - strlen(rep->error), "; %s: not resumed here",
				 pc.post.switch_confirmed ? "the guest was already running on the "
				 "destination (postcopy)" : "the destination may have started the "
				 "guest (postcopy switch sent, not confirmed)");
		else if (pc.src.ctl && pc.src.vm_stopped) {
			handover_drop(&pc.post);	/* before RESUME, which it would refuse */
			if (vmig_ctl_resume(pc.src.ctl, o->timeout_ms))
				fprintf(stderr, "vmig migrate: the source VMM did not confirm "
					"resuming\n");
		}
		if (pc.src.ctl)
			vmig_ctl_error(pc.src.ctl, rep->error);
	} else {
		vmig_ctl_complete(pc.src.ctl);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - t0;
	report_note_cpu(rep);
	src_collect(&pc.src);
	postcopy_destroy(&pc.post);	/* before the channels its thread queues on */
	src_close(&pc.src);
	freepage_free(&pc.fp);
	return r;
}

