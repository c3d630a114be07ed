// SPDX-License-Identifier: GPL-2.0
/*
 * Precopy on the source.
 *
 * Order of operations per round: harvest (which write-protects the
 * harvested pages again), then queue them; the sender threads read a page
 * only after that.  Pages of one 2 MiB chunk always go to the same channel,
 * so rounds need no cross-channel barrier for correctness; the engine waits
 * for the channels to drain anyway, to measure the round.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "control.h"
#include "devstate_send.h"
#include "freepage.h"
#include "handover.h"
#include "handshake.h"
#include "multifd_send.h"
#include "postcopy_src.h"
#include "recovery.h"
#include "switchover.h"
#include "throttle.h"
#include "tls.h"
#include "precopy.h"
#include "util.h"

#define STALL_WINDOW	3	/* rounds over which the dirty set must shrink */
#define STALL_SHRINK	0.9	/* ... to at most this fraction */
#define MIN_BW_SAMPLE	(1u << 20)
#define BULK_SLICES	16	/* with free-page hints: a fresh hint per slice */
#define BULK_SLICE_MIN	1024	/* pages */
#define RTT_KEEP	4	/* control round trips kept for the prediction */
#define ROUND_WAIT_NS	100000000ull	/* waiting for device state: rounds last this */

struct range {
	uint32_t region;
	uint64_t first, n;
};

struct range_vec {
	struct range *v;
	size_t len, cap;
	uint64_t pages;
};

struct precopy {
	const struct precopy_opts *o;
	struct report *rep;
	struct progress prog;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
	struct throttle thr;		/* auto-converge (throttle.c) */
	struct stream main;
	bool main_open;
	uint64_t session;
	struct hs_result hs;
	struct send_chan *chans;
	unsigned int nr_chans;
	struct range_vec dirty;
	bool vm_stopped;
	uint64_t sample_bytes, sample_ns;	/* bandwidth: sum over measured rounds */
	double bw_peak;			/* the best rate a measured round reached */
	uint64_t last_harvest_ns;
	uint64_t history[STALL_WINDOW + 1];
	double rtt_ms[RTT_KEEP];	/* the latest control round trips to the VMM */
	unsigned int nr_rtt;
	uint64_t harvest_cost_ns;	/* the latest harvest */
	struct devstate_send ds;
	struct freepage fp;
	struct pc_src ps;		/* postcopy: the return path */
	bool go_postcopy;		/* precopy ended: switch to postcopy */
	bool dest_runs;			/* the guest may run on the destination */
	bool switch_confirmed;		/* ... and it does (RESUMED, or recovered) */
	bool handed_over;		/* the VMM holds our handover record */
	struct rec_cuts cuts;		/* tests: where to cut the links */
	/* tests: pages never sent in the background (one each; n 2: nor on request) */
	struct range held[REC_MAX_CUTS];
	unsigned int nheld;
	char to[256];			/* the destination (--resume --to may change it) */
};

/* The first reason given is the one reported (report_fail). */
#define fail(pc, err, ...)	report_fail((pc)->rep, err, __VA_ARGS__)

static int range_add(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct range_vec *rv = arg;

	if (rv->len && rv->v[rv->len - 1].region == region &&
	    rv->v[rv->len - 1].first + rv->v[rv->len - 1].n == first) {
		rv->v[rv->len - 1].n += n;
	} else {
		if (rv->len == rv->cap) {
			size_t cap = rv->cap ? rv->cap * 2 : 1024;
			struct range *v = realloc(rv->v, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			rv->v = v;
			rv->cap = cap;
		}
		rv->v[rv->len++] = (struct range){ .region = region, .first = first, .n = n };
	}
	rv->pages += n;
	return 0;
}

/* Split at chunk boundaries; a chunk always goes to the same channel. */
static int queue_range(struct precopy *pc, uint32_t region, uint64_t first, uint64_t n,
		       uint32_t flags)
{
	while (n) {
		uint64_t chunk = first / WIRE_CHUNK_PAGES;
		uint64_t k = (chunk + 1) * WIRE_CHUNK_PAGES - first;
		int r;

		if (k > n)
			k = n;
		r = send_chan_queue(&pc->chans[(chunk + region) % pc->nr_chans], region, first,
				    k, flags);
		if (r)
			return fail(pc, r, "out of memory queueing pages");
		first += k;
		n -= k;
	}
	return 0;
}

static int queue_vec(struct precopy *pc, struct range_vec *rv, uint32_t flags)
{
	size_t i;
	int r;

	for (i = 0; i < rv->len; i++) {
		r = queue_range(pc, rv->v[i].region, rv->v[i].first, rv->v[i].n, flags);
		if (r)
			return r;
	}
	rv->len = 0;
	rv->pages = 0;
	return 0;
}

/*
 * Tests (CUT_REQHOLD): the same from the last chunk backwards, so that a
 * guest verifying its pages from the first finds them not sent yet.
 */
static int queue_vec_reverse(struct precopy *pc, struct range_vec *rv, uint32_t flags)
{
	size_t i = rv->len;
	int r;

	while (i--) {
		uint64_t first = rv->v[i].first, end = first + rv->v[i].n;

		while (end > first) {
			uint64_t c0 = (end - 1) / WIRE_CHUNK_PAGES * WIRE_CHUNK_PAGES;

			if (c0 < first)
				c0 = first;
			r = queue_range(pc, rv->v[i].region, c0, end - c0, flags);
			if (r)
				return r;
			end = c0;
		}
	}
	rv->len = 0;
	rv->pages = 0;
	return 0;
}

static uint64_t chans_pages_done(struct precopy *pc)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < pc->nr_chans; i++)
		sum += atomic_load(&pc->chans[i].pages_done);
	return sum;
}

static uint64_t chans_bytes(struct precopy *pc)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < pc->nr_chans; i++)
		sum += __atomic_load_n(&pc->chans[i].s.bytes_out, __ATOMIC_RELAXED);
	return sum;
}

/* The destination speaks on the main channel only to refuse: read why. */
static int check_main(struct precopy *pc)
{
	struct pollfd p = { .fd = pc->main.fd, .events = POLLIN };
	struct ctl_event ev;
	int r;

	if (vmig_ctl_lost(pc->ctl))
		return fail(pc, ECONNRESET, "the source VMM went away");
	if (poll(&p, 1, 0) <= 0)
		return 0;
	r = control_recv(&pc->main, true, &ev);
	/* Only its ERROR is the destination's word; a broken link may recover. */
	if (r)
		return fail(pc, r, "%s: %s", ev.type == WIRE_PKT_ERROR ? "destination" :
			    "main channel", pc->main.err);
	return fail(pc, EPROTO, "destination sent RESUMED before COMPLETE");
}

/*
 * After a failure: if the destination said why on the main channel (it
 * refused the devices, say), that is the better message.
 */
static void dest_reason(struct precopy *pc)
{
	struct pollfd p = { .fd = pc->main.fd, .events = POLLIN };
	struct ctl_event ev;

	if (!strncmp(pc->rep->error, "destination:", 12) || poll(&p, 1, 200) <= 0)
		return;
	pc->main.err[0] = 0;
	if (control_recv(&pc->main, true, &ev) && ev.type == WIRE_PKT_ERROR)
		snprintf(pc->rep->error, sizeof(pc->rep->error), "destination: %s", pc->main.err);
}

/*
 * A channel broke.  A destination that gives up says why on the main
 * channel before it drops the others: prefer its words when they come soon.
 */
static int channel_failed(struct precopy *pc, unsigned int i, int r)
{
	struct pollfd p = { .fd = pc->main.fd, .events = POLLIN };
	struct ctl_event ev;

	if (poll(&p, 1, 500) > 0 && control_recv(&pc->main, true, &ev) &&
	    !strncmp(pc->main.err, "peer reported", 13))
		return fail(pc, r, "destination: %s", pc->main.err);
	return fail(pc, r, "multifd channel %u: %s", i, pc->chans[i].s.err);
}

static double bandwidth(struct precopy *pc)
{
	if (pc->sample_bytes >= MIN_BW_SAMPLE && pc->sample_ns)
		return pc->sample_bytes / (pc->sample_ns / 1e9);
	return pc->o->max_bandwidth ? (double)pc->o->max_bandwidth : 1e9;
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
 */
static int predict(struct precopy *pc, uint64_t dirty_bytes, bool postcopy)
{
	const struct precopy_opts *o = pc->o;
	struct sw_device dev[WIRE_MAX_DEVICES];
	struct sw_inputs in = {
		.dirty_bytes = dirty_bytes,
		.bandwidth = o->switchover_bandwidth ? (double)o->switchover_bandwidth :
			     bandwidth(pc),
		.dev_bandwidth = o->switchover_bandwidth ? (double)o->switchover_bandwidth :
				 pc->bw_peak,
		.harvest_ms = pc->harvest_cost_ns / 1e6,
		.nr_devices = pc->ds.nr_devices,
		.dev = dev,
		.threads = o->device_threads,
		.on_main = pc->ds.on_main || !pc->nr_chans,
		.postcopy = postcopy,
	};
	uint64_t t = now_ns(), left = 0;
	unsigned int i;
	int r;

	r = vmig_ctl_refresh_devices(pc->ctl, o->timeout_ms);
	if (!r)
		note_rtt(pc, now_ns() - t);
	else if (r != -EOPNOTSUPP)
		return fail(pc, r, "the VMM did not answer the device status query: %s",
			    strerror(-r));
	for (i = 0; i < in.nr_devices && i < WIRE_MAX_DEVICES; i++) {
		const struct vmig_dev_desc *v = vmig_ctl_device(pc->ctl, i);
		uint64_t sent;
		double rate;

		devstate_send_precopy_progress(&pc->ds, i, &sent, &rate);
		dev[i] = (struct sw_device){
			.remaining = v->size > sent ? v->size - sent : 0,
			.save_rate = v->save_rate ? (double)v->save_rate : rate,
			.load_rate = v->load_rate,
		};
		left += dev[i].remaining;
	}
	in.ctl_rtt_ms = ctl_rtt_ms(pc);
	sw_predict(&in, &pc->rep->pred);
	pc->rep->predicted = true;
	pc->rep->expected_downtime_ms = sw_total(&pc->rep->pred);
	pc->rep->device_left_bytes = left;
	pc->rep->downtime_limit_ms = o->downtime_limit_ms;
	pc->prog.predicted_ms = pc->rep->expected_downtime_ms;
	pc->prog.device_left = left;
	return 0;
}

/* --json: the decision of one round, as a figure an orchestrator can poll. */
static void round_event(struct precopy *pc, unsigned int round, uint64_t dirty_bytes,
			bool fits)
{
	const struct sw_parts *p = &pc->rep->pred;

	if (!pc->o->round_events)
		return;
	report_event(pc->rep, "round", "\"round\":%u,\"dirty_bytes\":%llu,"
		     "\"device_left_bytes\":%llu,\"remaining_bytes\":%llu,"
		     "\"bandwidth_bps\":%.0f,\"predicted_downtime_ms\":%.3f,\"limit_ms\":%.0f,"
		     "\"fits\":%s,\"predicted_parts_ms\":{\"stop\":%.3f,\"final_pages\":%.3f,"
		     "\"device_save\":%.3f,\"transfer\":%.3f,\"load\":%.3f,\"resume\":%.3f}",
		     round, (unsigned long long)dirty_bytes,
		     (unsigned long long)pc->rep->device_left_bytes,
		     (unsigned long long)(dirty_bytes + pc->rep->device_left_bytes),
		     pc->rep->bandwidth, sw_total(p), pc->o->downtime_limit_ms,
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
	int r;

	while (now_ns() < until) {
		r = check_main(pc);
		if (r)
			return r;
		usleep(10000);
	}
	r = stream_send_pkt(&pc->main, WIRE_PKT_NOP, NULL, 0);
	return r ? fail(pc, r, "main channel: %s", pc->main.err) : 0;
}

/* Wait until every channel is idle; measure the round; keep the main channel alive. */
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

static int bulk_throttle(struct precopy *pc, struct bulk_sample *s);

static int wait_round(struct precopy *pc, unsigned int round, uint64_t pages)
{
	uint64_t done0 = chans_pages_done(pc), bytes0 = chans_bytes(pc), t0 = now_ns();
	uint64_t last_nop = t0;
	struct bulk_sample bs = { .on = !round && pc->o->auto_converge, .t = t0, .sent = done0 };
	unsigned int i = 0;
	int r;

	if (bs.on && vmig_ram_redirtied(pc->ram, &bs.redirtied))
		bs.on = false;
	while (i < pc->nr_chans) {
		r = send_chan_wait_idle(&pc->chans[i], 100);
		if (r < 0)
			return channel_failed(pc, i, r);
		if (r == 1)
			i++;
		r = check_main(pc);
		if (!r)
			r = bulk_throttle(pc, &bs);
		if (r)
			return r;
		if (now_ns() - last_nop > 1000000000ull) {
			last_nop = now_ns();
			r = stream_send_pkt(&pc->main, WIRE_PKT_NOP, NULL, 0);
			if (r)
				return fail(pc, r, "main channel: %s", pc->main.err);
		}
		{
			uint64_t dt = now_ns() - t0;

			progress_update(&pc->prog, round, chans_pages_done(pc) - done0, pages,
					dt ? (chans_bytes(pc) - bytes0) / (dt / 1e9) : 0);
		}
	}
	if (chans_bytes(pc) - bytes0 >= MIN_BW_SAMPLE) {
		double rate = (chans_bytes(pc) - bytes0) / ((now_ns() - t0) / 1e9 + 1e-9);

		pc->sample_bytes += chans_bytes(pc) - bytes0;
		pc->sample_ns += now_ns() - t0;
		if (rate > pc->bw_peak)
			pc->bw_peak = rate;
	}
	return 0;
}

static int send_round_info(struct precopy *pc, unsigned int round, uint64_t pages)
{
	struct wire_round wr = { .round = round, .dirty_pages = pages };
	int r = stream_send_pkt(&pc->main, WIRE_PKT_ROUND, &wr, sizeof(wr));

	return r ? fail(pc, r, "main channel: %s", pc->main.err) : 0;
}

static int setup(struct precopy *pc)
{
	const struct precopy_opts *o = pc->o;
	struct hs_offer offer = {
		.version_min = o->test.wire_version ? o->test.wire_version : WIRE_VERSION_MIN,
		.version_max = o->test.wire_version ? o->test.wire_version : WIRE_VERSION_MAX,
		.caps = WIRE_CAPS_V1 | (o->postcopy ? WIRE_CAP_POSTCOPY | WIRE_CAP_RETURN_PATH |
					WIRE_CAP_DONE_ACK |
					(o->no_preempt ? 0 : WIRE_CAP_PREEMPT) : 0),
		.nr_multifd = o->channels,
	};
	uint64_t want_pc = o->postcopy ? WIRE_CAP_POSTCOPY | WIRE_CAP_RETURN_PATH |
				       (o->no_preempt ? 0 : WIRE_CAP_PREEMPT) : 0;
	uint64_t t_query;
	char err[256];
	unsigned int i;
	int fd, r;

	pc->ctl = vmig_ctl_connect(o->vmm_path, o->timeout_ms);
	if (!pc->ctl)
		return fail(pc, errno, "cannot reach the VMM at %s: %s", o->vmm_path,
			    strerror(errno));
	if (vmig_ctl_role(pc->ctl) != VMIG_ROLE_SOURCE)
		return fail(pc, EINVAL, "the VMM at %s is not a migration source (started "
			    "with --incoming?)", o->vmm_path);
	if (o->dirty_mode == VMIG_DIRTY_MODE_HWDIRTY && vmig_ctl_mirrored(pc->ctl))
		return fail(pc, EOPNOTSUPP, "--dirty-mode hwdirty cannot see this VMM's guest "
			    "writes: they go through a secondary MMU (KVM's own page tables), "
			    "which never sets the host page-table dirty bits hwdirty reads; use "
			    "manual-init, manual or protect");
	pc->ram = vmig_ram_open(pc->ctl, o->backend, o->dirty_mode);
	if (!pc->ram && errno == EMEDIUMTYPE)
		return fail(pc, errno, "--backend %s: the VMM's guest RAM is %s",
			    vmig_backend_name(o->backend),
			    o->backend == VMIG_BACKEND_KMOD ? "not vmig.ko regions (memfds)" :
			    "vmig.ko regions, not memfds");
	if (!pc->ram)
		return fail(pc, errno, "cannot map guest RAM: %s", strerror(errno));
	trace("src: ram mapped");
	t_query = now_ns();
	r = devstate_send_setup(&pc->ds, pc->ctl, o->device_threads, o->device_state_on_main,
				o->timeout_ms);
	if (r)
		return fail(pc, r, "%s", pc->ds.error);
	note_rtt(pc, now_ns() - t_query);	/* a round trip every VMM answers */
	pc->rep->devices = pc->ds.nr_devices;
	pc->rep->backend = vmig_ram_backend(pc->ram);
	offer.nr_regions = vmig_ram_region_count(pc->ram);
	for (i = 0; i < offer.nr_regions; i++) {
		offer.region_pages[i] = vmig_ram_region_pages(pc->ram, i);
		pc->rep->guest_bytes += offer.region_pages[i] * WIRE_PAGE_SIZE;
	}

	if (getrandom(&pc->session, sizeof(pc->session), 0) != sizeof(pc->session))
		pc->session = now_ns() ^ ((uint64_t)getpid() << 32);
	pc->session |= 1;
	fd = chan_connect(o->to, o->timeout_ms, err, sizeof(err));
	if (fd < 0)
		return fail(pc, fd, "%s", err);
	trace("src: main connected");
	stream_init_fd(&pc->main, fd, o->timeout_ms);
	pc->main_open = true;
	r = chan_send_hdr(&pc->main, WIRE_CHAN_MAIN, pc->session, 0);
	if (!r)
		r = hs_send_offer(&pc->main, &offer);
	if (!r)
		r = hs_recv_reply(&pc->main, &offer, &pc->hs);
	if (r)
		return fail(pc, r, "handshake with %s: %s", o->to, pc->main.err);
	if ((pc->hs.caps & want_pc) != want_pc)
		return fail(pc, EPROTONOSUPPORT, "the destination does not accept postcopy%s "
			    "(vmig listen --no-postcopy, or an older vmig)",
			    o->no_preempt ? "" : " with a preempt channel");
	if (pc->hs.caps & WIRE_CAP_DEVICE_STATE)
		r = devstate_send_announce(&pc->ds, &pc->main);
	else if (pc->ds.nr_devices)
		return fail(pc, EPROTONOSUPPORT, "the destination does not take device state");
	if (r)
		return fail(pc, r, "main channel: %s", pc->main.err);

	pc->chans = calloc(o->channels, sizeof(*pc->chans));
	if (!pc->chans)
		return fail(pc, ENOMEM, "out of memory");
	for (i = 0; i < o->channels; i++) {
		struct stream tmp;

		fd = chan_connect(o->to, o->timeout_ms, err, sizeof(err));
		if (fd < 0)
			return fail(pc, fd, "multifd channel %u: %s", i, err);
		stream_init_fd(&tmp, fd, o->timeout_ms);
		r = chan_send_hdr(&tmp, WIRE_CHAN_MULTIFD, pc->session, i);
		pc->chans[i].corrupt_after = i == 0 ? o->test.inject_corrupt : 0;
		if (!r)
			r = send_chan_start(&pc->chans[i], i, fd, o->timeout_ms, pc->ram,
					    pc->hs.caps & WIRE_CAP_ZERO_PAGES,
					    o->max_bandwidth / o->channels);
		if (r) {
			close(fd);
			return fail(pc, r, "multifd channel %u: %s", i,
				    tmp.err[0] ? tmp.err : strerror(-r));
		}
		pc->nr_chans++;
	}

	if (want_pc) {
		r = pcs_connect(&pc->ps, o->to, pc->session, o->timeout_ms, err, sizeof(err));
		if (r)
			return fail(pc, r, "%s", err);
	}
	trace("src: channels up");
	if (o->test.hint_before_tracking && !o->no_free_hints) {
		r = freepage_query(&pc->fp, pc->ctl, o->timeout_ms);
		if (r)
			return fail(pc, r, "free-page hint: %s", strerror(-r));
	}
	r = vmig_ram_track_start(pc->ram, o->track, o->timeout_ms);
	trace("src: tracking");
	if (r)
		return fail(pc, r, "cannot start dirty tracking (%s): %s",
			    o->track == VMIG_TRACK_ASYNC ? "async" :
			    o->track == VMIG_TRACK_SYNC ? "sync" : "auto", strerror(-r));
	pc->rep->tracking = vmig_ram_track_name(pc->ram);
	/* Tracking is on: only now may the hint be taken (helper/source/freepage.h). */
	if (!o->test.hint_before_tracking && !o->no_free_hints) {
		r = freepage_query(&pc->fp, pc->ctl, o->timeout_ms);
		if (r)
			return fail(pc, r, "free-page hint: %s", strerror(-r));
	}
	pc->last_harvest_ns = now_ns();
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
	struct freepage_filter ff = { .fp = &pc->fp, .fn = range_add, .arg = &pc->dirty };
	struct range_vec data = { 0 };
	uint64_t slice;
	size_t i;
	int r = 0;

	if (!pc->ds.on_main) {
		r = devstate_send_precopy_start(&pc->ds, pc->chans, pc->nr_chans, &pc->main);
		if (r)
			return fail(pc, r, "%s", pc->ds.error);
	}
	for (i = 0; i < vmig_ram_region_count(pc->ram) && !r; i++)
		r = vmig_ram_for_each_data(pc->ram, i, range_add, &data);
	if (r) {
		free(data.v);
		return fail(pc, r, "cannot list guest RAM data: %s", strerror(-r));
	}
	pc->rep->skipped_pages = pc->rep->guest_bytes / WIRE_PAGE_SIZE - data.pages;
	slice = data.pages;
	if (pc->fp.have && data.pages / BULK_SLICES > BULK_SLICE_MIN)
		slice = data.pages / BULK_SLICES;
	else if (pc->fp.have)
		slice = BULK_SLICE_MIN;
	r = send_round_info(pc, 0, data.pages);
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
		pages = pc->dirty.pages;
		if (!r)
			r = queue_vec(pc, &pc->dirty, SEND_BULK);
		if (!r && i < data.len) {
			r = freepage_update(&pc->fp, pc->ctl, pc->o->timeout_ms);
			if (r)
				r = fail(pc, r, "free-page hint update: %s", strerror(-r));
		}
		if (!r)
			r = wait_round(pc, 0, pages);
	}
	free(data.v);
	pc->rep->free_pages = pc->fp.skipped;
	pc->rep->free_pages_updated = pc->fp.skipped_updated;
	pc->rep->free_hints = pc->fp.hints;
	/*
	 * On the main channel the precopy parts go now, alone there.  Over
	 * multifd they go on during the dirty rounds: what is left of them
	 * counts in each round's prediction, and the switch waits for them.
	 */
	if (!r && pc->ds.on_main) {
		r = devstate_send_precopy_start(&pc->ds, pc->chans, pc->nr_chans, &pc->main);
		if (r)
			return fail(pc, r, "%s", pc->ds.error);
		r = devstate_send_precopy_wait(&pc->ds, false);
		if (r)
			r = fail(pc, r, "%s", pc->ds.error);
	}
	return r;
}

static int harvest(struct precopy *pc)
{
	uint64_t t = now_ns();
	int r = vmig_ram_harvest(pc->ram, range_add, &pc->dirty);

	pc->harvest_cost_ns = now_ns() - t;
	return r ? fail(pc, r, "dirty harvest failed: %s", strerror(-r)) : 0;
}

/* Auto-converge: ask the VMM to run the guest at (100 - want) %. */
static int set_throttle(struct precopy *pc, unsigned int want)
{
	int r;

	if (want == pc->thr.percent)
		return 0;
	r = vmig_ctl_throttle(pc->ctl, want, pc->o->timeout_ms);
	if (r)
		return fail(pc, r, "the VMM did not take the throttle request (%u %%): %s", want,
			    strerror(-r));
	pc->thr.percent = want;
	pc->rep->throttle_pct = want;
	progress_clear(&pc->prog);
	fprintf(stderr, "vmig migrate: auto-converge: the guest runs at %u %% now\n", 100 - want);
	return 0;
}

/* Auto-converge: throttle the guest harder when the dirty set did not shrink. */
static int auto_converge(struct precopy *pc)
{
	return set_throttle(pc, throttle_next(&pc->thr, pc->dirty.pages));
}

static int bulk_throttle(struct precopy *pc, struct bulk_sample *s)
{
	uint64_t t = now_ns(), sent = chans_pages_done(pc), redirtied;
	unsigned int want;

	if (!s->on || t - s->t < BULK_PERIOD_NS || sent - s->sent < BULK_MIN_SENT)
		return 0;
	if (vmig_ram_redirtied(pc->ram, &redirtied)) {
		s->on = false;
		return 0;
	}
	want = throttle_bulk(&pc->thr, redirtied - s->redirtied, sent - s->sent);
	if (want != pc->thr.percent) {
		progress_clear(&pc->prog);
		fprintf(stderr, "vmig migrate: auto-converge in the bulk stage: %llu pages written "
			"again of %llu sent in %.0f ms\n",
			(unsigned long long)(redirtied - s->redirtied),
			(unsigned long long)(sent - s->sent), (t - s->t) / 1e6);
	}
	s->t = t;
	s->sent = sent;
	s->redirtied = redirtied;
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
	const struct precopy_opts *o = pc->o;
	struct report *rep = pc->rep;
	unsigned int round, i;
	int r;

	/* Auto-converge: the bulk stage sent every page; round 1 must halve that. */
	for (i = 0; i < vmig_ram_region_count(pc->ram); i++)
		pc->thr.last_pages += vmig_ram_region_pages(pc->ram, i);
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

		r = harvest(pc);
		if (r)
			return r;
		bytes = pc->dirty.pages * WIRE_PAGE_SIZE;
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
		pc->history[STALL_WINDOW] = pc->dirty.pages;
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
		r = send_round_info(pc, round, pc->dirty.pages);
		if (r)
			return r;
		{
			uint64_t pages = pc->dirty.pages;

			r = queue_vec(pc, &pc->dirty, 0);
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
	const struct precopy_opts *o = pc->o;
	struct wire_complete wc = { 0 };
	struct ctl_event ev;
	uint64_t t_stop, t_dev, pages;
	unsigned int i;
	int r;

	t_stop = now_ns();
	trace("src: stop");
	r = vmig_ctl_stop(pc->ctl, o->timeout_ms);
	trace("src: stopped");
	if (r)
		return fail(pc, r, "the VMM did not stop: %s", strerror(-r));
	pc->vm_stopped = true;
	pc->rep->dt_stop_ns = now_ns() - t_stop;
	r = harvest(pc);
	if (r)
		return r;
	pages = pc->dirty.pages;
	trace("src: final harvest %llu pages", (unsigned long long)pages);
	r = send_round_info(pc, pc->rep->rounds + 1, pages);
	if (!r)
		r = queue_vec(pc, &pc->dirty, 0);
	if (!r)
		r = wait_round(pc, pc->rep->rounds + 1, pages);
	if (r)
		return r;
	trace("src: final round sent");
	t_dev = now_ns();
	pc->rep->dt_pages_ns = t_dev - t_stop - pc->rep->dt_stop_ns;
	/* Device save: what the precopy parts had left, then the rest. */
	r = devstate_send_all(&pc->ds, pc->chans, pc->nr_chans, &pc->main);
	pc->rep->dt_dev_save_ns = now_ns() - t_dev;
	pc->rep->device_bytes = pc->ds.bytes;
	pc->rep->device_precopy_bytes = pc->ds.precopy_bytes;
	pc->rep->device_precopy_ns = pc->ds.precopy_ns;
	if (r)
		return fail(pc, r, "%s", pc->ds.error);
	trace("src: device state sent");
	for (i = 0; i < pc->nr_chans; i++) {
		r = send_chan_finish(&pc->chans[i], o->timeout_ms);
		if (r)
			return fail(pc, r, "multifd channel %u: %s", i, pc->chans[i].s.err);
		wc.pages += pc->chans[i].pages_sent;
	}
	trace("src: channels ended");
	wc.rounds = pc->rep->rounds + 1;
	r = stream_send_pkt(&pc->main, WIRE_PKT_COMPLETE, &wc, sizeof(wc));
	pc->rep->dt_dev_send_ns = now_ns() - t_dev - pc->rep->dt_dev_save_ns;
	do {
		if (!r)
			r = control_recv(&pc->main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (r)
		return fail(pc, r, "destination did not resume the guest: %s", pc->main.err);
	trace("src: resumed");
	pc->rep->downtime_ns = now_ns() - t_stop;
	pc->rep->dt_load_ns = ev.resumed.load_wait_ns;
	pc->rep->dt_resume_ns = ev.resumed.resume_ns;
	pc->rep->device_buffer_peak = ev.resumed.dev_buffer_peak;
	pc->vm_stopped = false;		/* the guest now runs on the destination */
	return 0;
}

/* DISCARD packets for the pages dirtied since they were sent. */
static int send_discards(struct precopy *pc)
{
	static uint64_t buf[1 + 2 * WIRE_MAX_DISCARD];
	struct wire_discard *wd = (struct wire_discard *)buf;
	size_t i = 0;
	int r;

	while (i < pc->dirty.len) {
		uint32_t region = pc->dirty.v[i].region, n = 0;

		while (i < pc->dirty.len && pc->dirty.v[i].region == region &&
		       n < WIRE_MAX_DISCARD) {
			buf[1 + 2 * n] = pc->dirty.v[i].first;
			buf[2 + 2 * n] = pc->dirty.v[i].n;
			n++;
			i++;
		}
		*wd = (struct wire_discard){ .region = region, .count = n };
		r = stream_send_pkt(&pc->main, WIRE_PKT_DISCARD, buf, 8 + 16 * n);
		if (r)
			return fail(pc, r, "main channel: %s", pc->main.err);
	}
	return 0;
}

/* Tests: every connection of the source down at once, as a broken link would. */
static void cut_all(void *arg)
{
	struct precopy *pc = arg;
	unsigned int i;

	fprintf(stderr, "vmig migrate: test: cutting every connection\n");
	if (pc->main_open)
		shutdown(pc->main.fd, SHUT_RDWR);
	for (i = 0; i < pc->nr_chans; i++)
		if (pc->chans[i].started)
			shutdown(pc->chans[i].s.fd, SHUT_RDWR);
	if (pc->ps.rp.fd >= 0)
		shutdown(pc->ps.rp.fd, SHUT_RDWR);
	if (pc->ps.pre.fd >= 0)
		shutdown(pc->ps.pre.fd, SHUT_RDWR);
}

static void arm_req_cut(struct precopy *pc)
{
	uint64_t arg;
	unsigned int i;

	for (i = 0; i < pc->nheld; i++)
		if (pc->held[i].n == 2) {	/* CUT_REQDROP: not even on request */
			pc->ps.drop_n = 1;
			pc->ps.drop_region = pc->held[i].region;
			pc->ps.drop_page = pc->held[i].first;
		}
	if (rec_cut_armed(&pc->cuts, &arg) == CUT_REQ ||
	    rec_cut_armed(&pc->cuts, &arg) == CUT_REQHOLD ||
	    rec_cut_armed(&pc->cuts, &arg) == CUT_REQDROP) {
		pc->ps.cut_req = arg;
		pc->ps.cut = cut_all;
		pc->ps.cut_arg = pc;
	}
}

/*
 * Postcopy after the switch (and after each recovery): send what is in
 * pc->dirty in the background, end every channel, COMPLETE, DONE.
 */
static int postcopy_background(struct precopy *pc)
{
	const struct precopy_opts *o = pc->o;
	struct wire_complete wc = { 0 };
	uint64_t pages = pc->dirty.pages, done0, arg = 0, last_nop = now_ns();
	enum rec_cut_kind cut = rec_cut_armed(&pc->cuts, &arg);
	struct ctl_event ev;
	unsigned int i = 0;
	int r;

	r = send_round_info(pc, pc->rep->rounds + 1, pages);
	done0 = chans_pages_done(pc);
	for (i = 0; i < pc->cuts.n && pc->cuts.kind[i] != CUT_REQHOLD &&
		    pc->cuts.kind[i] != CUT_REQDROP; i++)
		;
	if (!r)
		r = i < pc->cuts.n ? queue_vec_reverse(pc, &pc->dirty, 0) :
		    queue_vec(pc, &pc->dirty, 0);
	i = 0;
	while (!r && i < pc->nr_chans) {
		r = send_chan_wait_idle(&pc->chans[i], 50);
		if (r < 0)
			return channel_failed(pc, i, r);
		r = r == 1 ? (i++, 0) : 0;
		if (atomic_load(&pc->ps.state) < 0)
			return fail(pc, atomic_load(&pc->ps.state), "%s", pc->ps.err);
		r = check_main(pc);
		if (!r && now_ns() - last_nop > 1000000000ull) {
			last_nop = now_ns();
			r = stream_send_pkt(&pc->main, WIRE_PKT_NOP, NULL, 0);
			if (r)
				return fail(pc, r, "main channel: %s", pc->main.err);
		}
		if (!r && cut == CUT_PAGES && chans_pages_done(pc) - done0 >= arg) {
			pc->cuts.next++;
			cut = CUT_NONE;
			cut_all(pc);
		}
	}
	if (r)
		return r;
	for (i = 0; i < pc->nr_chans; i++) {
		r = send_chan_finish(&pc->chans[i], o->timeout_ms);
		if (r)
			return fail(pc, r, "multifd channel %u: %s", i, pc->chans[i].s.err);
		wc.pages += pc->chans[i].pages_sent;
	}
	wc.rounds = pc->rep->rounds + 1;
	r = stream_send_pkt(&pc->main, WIRE_PKT_COMPLETE, &wc, sizeof(wc));
	do {
		if (!r)
			r = control_recv(&pc->main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (!r && ev.type != WIRE_PKT_DONE)
		r = stream_fail(&pc->main, EPROTO, "%s instead of DONE", wire_pkt_name(ev.type));
	if (!r && rec_cut_armed(&pc->cuts, &arg) == CUT_DONE) {
		pc->cuts.next++;
		cut_all(pc);
		r = stream_fail(&pc->main, ECONNRESET, "test cut: DONE lost on the way");
	}
	/* A bad request the return-path thread refused is the cause, not the link. */
	if (r && atomic_load(&pc->ps.state) < 0 && !rec_transient(atomic_load(&pc->ps.state)))
		return fail(pc, atomic_load(&pc->ps.state), "%s", pc->ps.err);
	if (r)
		return fail(pc, r, "destination did not finish postcopy: %s", pc->main.err);
	r = pcs_wait(&pc->ps, o->timeout_ms);
	if (r)
		return fail(pc, r, "%s", pc->ps.err);
	/* Lost, the destination would wait for a RESUME: it ends at its timeout then. */
	if ((pc->hs.caps & WIRE_CAP_DONE_ACK) &&
	    stream_send_pkt(&pc->main, WIRE_PKT_DONE, NULL, 0))
		fprintf(stderr, "vmig migrate: postcopy finished, but the destination did not get "
			"the acknowledgement: %s\n", pc->main.err);
	return 0;
}

/* Every channel of the broken connection closed; what they counted kept. */
static void drop_channels(struct precopy *pc)
{
	uint64_t requests = pc->ps.requests;
	unsigned int i;

	pcs_destroy(&pc->ps);
	pcs_init(&pc->ps, !pc->o->no_preempt, pc->o->spin_us, pc->o->sched);
	pc->ps.requests = requests;
	for (i = 0; i < pc->nr_chans; i++) {
		if (!pc->chans[i].started)
			continue;
		send_chan_destroy(&pc->chans[i]);
		pc->rep->normal_pages += pc->chans[i].normal_pages;
		pc->rep->zero_pages += pc->chans[i].zero_pages;
		pc->rep->wire_bytes += pc->chans[i].s.bytes_out;
		close(pc->chans[i].s.fd);
		memset(&pc->chans[i], 0, sizeof(pc->chans[i]));
		pc->chans[i].s.fd = -1;
	}
	if (pc->main_open) {
		pc->rep->wire_bytes += pc->main.bytes_out;
		close(pc->main.fd);
		pc->main_open = false;
	}
}

/* range_add, leaving out the held pages (tests: CUT_REQHOLD). */
static int range_add_unheld(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct precopy *pc = arg;
	uint64_t end = first + n;
	unsigned int i;

	for (i = 0; i < pc->nheld; i++) {
		uint64_t h = pc->held[i].first;
		int r;

		if (pc->held[i].region != region || h < first || h >= end)
			continue;
		r = h > first ? range_add_unheld(pc, region, first, h - first) : 0;
		return r ? r : h + 1 < end ? range_add_unheld(pc, region, h + 1, end - h - 1) : 0;
	}
	return range_add(&pc->dirty, region, first, n);
}

/*
 * One attempt: main channel with RESUME, the bitmap, then every other
 * channel.  0 resumed, 1 the destination had finished (DONE acknowledged),
 * 2 it never switched (the guest did not run there).
 */
static int resume_once(struct precopy *pc, unsigned int attempt, int wait_ms, char *err,
		       size_t errlen)
{
	const struct precopy_opts *o = pc->o;
	struct wire_resume wr = { .attempt = attempt };
	uint64_t *bm[WIRE_MAX_REGIONS] = { 0 }, arg;
	unsigned int i;
	int fd, r;

	fd = chan_connect(pc->to, wait_ms, err, errlen);
	if (fd < 0)
		return fd;
	stream_init_fd(&pc->main, fd, o->timeout_ms);
	pc->main_open = true;
	r = chan_send_hdr(&pc->main, WIRE_CHAN_MAIN, pc->session, 0);
	if (!r)
		r = auth_resume_proof(&pc->main, wr.proof);	/* only this source can */
	if (!r)
		r = stream_send_pkt(&pc->main, WIRE_PKT_RESUME, &wr, sizeof(wr));
	if (!r && rec_cut_armed(&pc->cuts, &arg) == CUT_RESUME) {
		/*
		 * A cut link fails both directions; shutdown() alone would still
		 * let a reply the peer had already queued be read, and the
		 * attempt would then "survive" its own cut.
		 */
		pc->cuts.next++;
		cut_all(pc);
		r = stream_fail(&pc->main, ECONNRESET, "test: cut during the resume handshake");
	}
	if (!r)
		r = rec_recv_bitmap(&pc->main, pc->ram, bm);
	if (r == 2) {		/* proven by the destination that holds the session */
		rec_free_bitmap(bm);
		snprintf(err, errlen, "%s", pc->main.err);
		return 2;
	}
	pc->dirty.len = pc->dirty.pages = 0;
	if (r == 1) {		/* it had finished: only the acknowledgement was missing */
		rec_free_bitmap(bm);
		r = stream_send_pkt(&pc->main, WIRE_PKT_DONE, NULL, 0);
		if (r)
			snprintf(err, errlen, "acknowledging DONE: %s", pc->main.err);
		return r ? r : 1;
	}
	if (!r)
		r = rec_missing_data(pc->ram, bm, range_add_unheld, pc);
	rec_free_bitmap(bm);
	if (r) {
		snprintf(err, errlen, "resume handshake: %s", pc->main.err[0] ? pc->main.err :
			 strerror(-r));
		return r;
	}
	auth_session_established(&pc->main);	/* a fresh binding for the channels */
	for (i = 0; i < pc->nr_chans; i++) {
		struct stream tmp;

		fd = chan_connect(pc->to, o->timeout_ms, err, errlen);
		if (fd < 0)
			return fd;
		stream_init_fd(&tmp, fd, o->timeout_ms);
		r = chan_send_hdr(&tmp, WIRE_CHAN_MULTIFD, pc->session, i);
		if (!r)
			r = send_chan_start(&pc->chans[i], i, fd, o->timeout_ms, pc->ram,
					    pc->hs.caps & WIRE_CAP_ZERO_PAGES,
					    o->max_bandwidth / o->channels);
		if (r) {
			close(fd);
			snprintf(err, errlen, "multifd channel %u: %s", i,
				 tmp.err[0] ? tmp.err : strerror(-r));
			return r;
		}
		pc->chans[i].max_batch = o->postcopy_batch;
	}
	r = pcs_connect(&pc->ps, pc->to, pc->session, o->timeout_ms, err, errlen);
	if (r)
		return r;
	arm_req_cut(pc);
	r = pcs_start(&pc->ps, pc->ram, pc->chans, pc->nr_chans, o->timeout_ms);
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
static int postcopy_recover(struct precopy *pc, int err)
{
	const struct precopy_opts *o = pc->o;
	uint64_t t0 = now_ns(), deadline = t0 + o->recovery_timeout_ms * 1000000ull;
	uint64_t manual_until = 0, a;
	char reason[sizeof(pc->rep->error)], why[256] = "", ctl[108], to[256], q[4][320];
	unsigned int attempt = 0, backoff_ms = 50;
	const char *where = pc->switch_confirmed ? "the guest runs on the destination" :
			    "the guest may run on the destination (the switch is unconfirmed; "
			    "it stays stopped here)";
	int lfd, cfd = -1, r;

	if (atomic_load(&pc->ps.cut_fired)) {
		enum rec_cut_kind k = rec_cut_armed(&pc->cuts, &a);

		/* n: 1 held from the background, 2 also never sent on request */
		if ((k == CUT_REQHOLD || k == CUT_REQDROP) && pc->nheld < REC_MAX_CUTS)
			pc->held[pc->nheld++] = (struct range){ .region = pc->ps.cut_region,
								.first = pc->ps.cut_page,
								.n = k == CUT_REQDROP ? 2 : 1 };
		pc->cuts.next++;
	}
	snprintf(reason, sizeof(reason), "%s", pc->rep->error);
	drop_channels(pc);
	if (o->control_path)
		snprintf(ctl, sizeof(ctl), "%s", o->control_path);
	else
		rec_ctl_default_path(ctl, sizeof(ctl), pc->session);
	lfd = rec_ctl_listen(ctl, !o->control_path);
	if (lfd < 0) {
		fprintf(stderr, "vmig migrate: cannot listen on the control socket %s: %s\n", ctl,
			strerror(-lfd));
		if (o->no_auto_resume) {
			pc->rep->error[0] = 0;
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
			"--resume %s [--to HOST:PORT]')\n", reason, where, pc->to,
			o->recovery_timeout_ms / 1000, ctl);
	report_event(pc->rep, "paused", "\"reason\":%s,\"to\":%s,\"control\":%s,"
		     "\"auto_resume\":%s,\"timeout_s\":%d",
		     json_quote(q[0], sizeof(q[0]), reason), json_quote(q[1], sizeof(q[1]), pc->to),
		     json_quote(q[2], sizeof(q[2]), lfd >= 0 ? ctl : ""),
		     o->no_auto_resume ? "false" : "true", o->recovery_timeout_ms / 1000);
	for (;;) {
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;

		if (left <= 0 || vmig_ctl_lost(pc->ctl)) {
			if (cfd >= 0) {
				rec_ctl_reply(cfd, "error not resumed within --recovery-timeout: %s",
					      why);
				close(cfd);
			}
			if (lfd >= 0) {
				close(lfd);
				unlink(ctl);
			}
			pc->rep->error[0] = 0;
			return fail(pc, err, "%s; postcopy paused and not resumed within %d s (%s)",
				    reason, o->recovery_timeout_ms / 1000,
				    vmig_ctl_lost(pc->ctl) ? "the source VMM went away" :
				    why[0] ? why : "no resume asked for");
		}
		if (cfd < 0 && (o->no_auto_resume || attempt)) {
			/* Until a request comes (manual) or the backoff passes (auto). */
			int ms = o->no_auto_resume ? 1000 : (int)backoff_ms;

			if (rec_ctl_wait(lfd, ms < left ? ms : left, &cfd, to, sizeof(to)) == 1) {
				if (*to)
					snprintf(pc->to, sizeof(pc->to), "%s", to);
				manual_until = now_ns() + 10000000000ull;
				backoff_ms = 50;
				fprintf(stderr, "vmig migrate: resume requested: reconnecting to %s\n",
					pc->to);
				report_event(pc->rep, "resume_requested", "\"to\":%s",
					     json_quote(q[1], sizeof(q[1]), pc->to));
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
		report_event(pc->rep, "resume_attempt", "\"attempt\":%u,\"to\":%s", attempt,
			     json_quote(q[1], sizeof(q[1]), pc->to));
		r = resume_once(pc, attempt, left < 1000 ? left : 1000, why, sizeof(why));
		if (r == 2) {
			fprintf(stderr, "vmig migrate: the destination answered: %s\n", why);
			report_event(pc->rep, "not_switched", "\"attempt\":%u", attempt);
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
		report_event(pc->rep, "resume_failed", "\"attempt\":%u,\"error\":%s", attempt,
			     json_quote(q[3], sizeof(q[3]), why));
		drop_channels(pc);
		if (cfd >= 0 && now_ns() > manual_until) {
			rec_ctl_reply(cfd, "error cannot resume through %s: %s", pc->to, why);
			close(cfd);
			cfd = -1;
		}
	}
	pc->rep->error[0] = 0;
	pc->rep->pc.recoveries++;
	pc->rep->pc.last_pause_ns = now_ns() - t0;
	pc->rep->pc.paused_ns += pc->rep->pc.last_pause_ns;
	if (r == 1)
		fprintf(stderr, "vmig migrate: postcopy had finished on the destination; its "
			"DONE was lost with the link and is now acknowledged (after %.3f s)\n",
			pc->rep->pc.last_pause_ns / 1e9);
	else
		fprintf(stderr, "vmig migrate: postcopy resumed after %.3f s (attempt %u): %llu "
			"pages to send again\n", pc->rep->pc.last_pause_ns / 1e9, attempt,
			(unsigned long long)pc->dirty.pages);
	report_event(pc->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,\"to\":%s,"
		     "\"pages_to_send\":%llu,\"complete\":%s", attempt,
		     pc->rep->pc.last_pause_ns / 1e6, json_quote(q[1], sizeof(q[1]), pc->to),
		     (unsigned long long)(r == 1 ? 0 : pc->dirty.pages), r == 1 ? "true" : "false");
	if (cfd >= 0) {
		rec_ctl_reply(cfd, "ok %s after %.3f s (attempt %u, %s)",
			      r == 1 ? "completed" : "resumed", pc->rep->pc.last_pause_ns / 1e9,
			      attempt, pc->to);
		close(cfd);
	}
	if (lfd >= 0) {
		close(lfd);
		unlink(ctl);
	}
	return r;
}

/*
 * Leave with the source VMM what a helper needs to take this postcopy over
 * if we die (handover.h): from here the guest may run on the destination,
 * so the VMM must stay stopped even if we vanish.
 */
static int handover_leave(struct precopy *pc)
{
	struct handover h = {
		.magic = HANDOVER_MAGIC, .wire_version = pc->hs.version,
		.session = pc->session, .caps = pc->hs.caps, .nr_chans = pc->nr_chans,
		.flags = pc->o->no_preempt ? 0 : HANDOVER_PREEMPT,
	};
	int r;

	snprintf(h.to, sizeof(h.to), "%s", pc->to);
	/* What a replacing helper's RESUME must prove (auth.h). */
	if (auth_root_export(h.secret))
		h.secret_len = AUTH_ROOT_LEN;
	r = vmig_ctl_handover(pc->ctl, &h, sizeof(h), pc->o->timeout_ms);
	explicit_bzero(h.secret, sizeof(h.secret));
	if (!r)
		pc->handed_over = true;
	return r;
}

/* The destination never ran the guest: the VMM may resume it again. */
static void handover_drop(struct precopy *pc)
{
	if (pc->handed_over && !vmig_ctl_handover(pc->ctl, NULL, 0, pc->o->timeout_ms))
		pc->handed_over = false;
}

/*
 * Postcopy: stop the guest, tell the destination what it holds is stale
 * (DISCARD), mark the switch on every channel, wait until the guest runs
 * there, then serve requests (return-path thread) while the rest goes in
 * the background in small packets.
 */
static int postcopy_switchover(struct precopy *pc)
{
	const struct precopy_opts *o = pc->o;
	struct wire_postcopy wpc = { 0 };
	struct ctl_event ev = { 0 };
	uint64_t t_stop, t_dev, t_sent, discard_ns, arg;
	unsigned int i;
	int r;

	pc->rep->pc.on = true;
	pc->rep->pc.preempt = !o->no_preempt;
	r = predict(pc, 0, true);	/* the pages go after the switch */
	if (r)
		return r;
	t_stop = now_ns();
	r = vmig_ctl_stop(pc->ctl, o->timeout_ms);
	if (r)
		return fail(pc, r, "the VMM did not stop: %s", strerror(-r));
	pc->vm_stopped = true;
	pc->rep->dt_stop_ns = now_ns() - t_stop;
	r = harvest(pc);
	if (r)
		return r;
	/*
	 * Device state before each channel's marker (or on the main channel
	 * before POSTCOPY): the destination loads it before the guest resumes.
	 */
	t_dev = now_ns();
	r = devstate_send_all(&pc->ds, pc->chans, pc->nr_chans, &pc->main);
	pc->rep->dt_dev_save_ns = now_ns() - t_dev;
	pc->rep->device_bytes = pc->ds.bytes;
	pc->rep->device_precopy_bytes = pc->ds.precopy_bytes;
	pc->rep->device_precopy_ns = pc->ds.precopy_ns;
	if (r)
		return fail(pc, r, "%s", pc->ds.error);
	for (i = 0; i < pc->nr_chans && !r; i++)
		r = send_chan_queue(&pc->chans[i], 0, 0, 0, SEND_MARK);
	if (r)
		return fail(pc, r, "out of memory");
	discard_ns = now_ns();
	if (o->postcopy_after) {
		r = send_discards(pc);
		if (r)
			return r;
		wpc.discarded = pc->dirty.pages;
	} else {
		/* Nothing was sent yet: everything holding data goes in the background. */
		for (i = 0; i < vmig_ram_region_count(pc->ram) && !r; i++)
			r = vmig_ram_for_each_data(pc->ram, i, range_add, &pc->dirty);
		if (r)
			return fail(pc, r, "cannot list guest RAM data: %s", strerror(-r));
	}
	discard_ns = now_ns() - discard_ns;
	pc->rep->pc.discarded = wpc.discarded;
	/* Before the switch can reach the destination: see handover.h. */
	r = handover_leave(pc);
	if (r)
		return fail(pc, r, "the source VMM did not take the handover record (%s): a "
			    "VMM must keep it to go on after a helper crash in postcopy",
			    strerror(-r));
	if (rec_cut_armed(&pc->cuts, &arg) != CUT_SWITCH_LOST)
		r = stream_send_pkt(&pc->main, WIRE_PKT_POSTCOPY, &wpc, sizeof(wpc));
	/*
	 * The parts of the downtime: stop; final dirty pages (the harvest and
	 * the discards); device state; transfer (the markers and POSTCOPY);
	 * the destination's device load and resume come with its RESUMED.
	 */
	t_sent = now_ns();
	pc->rep->dt_pages_ns = t_dev - t_stop - pc->rep->dt_stop_ns + discard_ns;
	pc->rep->dt_dev_send_ns = t_sent - t_dev - pc->rep->dt_dev_save_ns - discard_ns;
	if (r)	/* not all of it went out: the destination cannot have the switch */
		return fail(pc, r, "main channel: %s", pc->main.err);
	/*
	 * The switch is decided: the destination resumes the guest as soon as
	 * POSTCOPY arrives, before its RESUMED can come back.  From here a
	 * broken link pauses (this guest stays stopped) and recovery finds out;
	 * only an ERROR from the destination says it did not switch.
	 */
	pc->dest_runs = true;
	for (i = 0; i < pc->nr_chans; i++)
		pc->chans[i].max_batch = o->postcopy_batch;
	if (rec_cut_armed(&pc->cuts, &arg) == CUT_SWITCH ||
	    rec_cut_armed(&pc->cuts, &arg) == CUT_SWITCH_LOST) {
		/* Tests: after every marker went out, so the destination switches. */
		for (i = 0; i < pc->nr_chans && r >= 0; i++)
			while (!(r = send_chan_wait_idle(&pc->chans[i], 50)))
				;
		r = r < 0 ? r : 0;
		pc->cuts.next++;
		cut_all(pc);
	}
	/*
	 * Page requests are served from here on, not only after RESUMED: the
	 * destination's VMM may touch missing pages while it loads the device
	 * state, before it resumes (QEMU does).  Pages sent to a destination
	 * that then fails change nothing here.
	 */
	if (!r) {
		arm_req_cut(pc);
		r = pcs_start(&pc->ps, pc->ram, pc->chans, pc->nr_chans, o->timeout_ms);
		if (r)
			return fail(pc, r, "cannot start the return-path thread");
	}
	do {
		if (!r)
			r = control_recv(&pc->main, true, &ev);
	} while (!r && ev.type == WIRE_PKT_NOP);
	if (!r && ev.type != WIRE_PKT_RESUMED)
		r = stream_fail(&pc->main, EPROTO, "%s instead of RESUMED",
				wire_pkt_name(ev.type));
	if (r && ev.type == WIRE_PKT_ERROR) {
		/* It failed before the guest ran there, unless it says otherwise. */
		pc->dest_runs = pc->main.peer_code == WIRE_ERR_GUEST_RAN;
		return fail(pc, r, "destination: %s", pc->main.err);
	}
	if (r) {
		r = fail(pc, r, "destination did not confirm the switch: %s", pc->main.err[0] ?
			 pc->main.err : strerror(-r));
	} else {
		pc->switch_confirmed = true;
		pc->rep->downtime_ns = now_ns() - t_stop;
		pc->rep->dt_load_ns = ev.resumed.load_wait_ns;
		pc->rep->dt_resume_ns = ev.resumed.resume_ns;
		pc->rep->device_buffer_peak = ev.resumed.dev_buffer_peak;
		trace("src: postcopy, guest runs on the destination");
		r = postcopy_background(pc);
	}
	/* A broken link: pause, reconnect, re-send what the destination lacks. */
	while (r && o->recovery_timeout_ms > 0 && rec_transient(r) && !vmig_ctl_lost(pc->ctl) &&
	       strncmp(pc->rep->error, "destination:", 12)) {
		r = postcopy_recover(pc, r);
		if (r == 2 && !pc->switch_confirmed) {
			pc->dest_runs = false;	/* the destination says it never switched */
			pc->rep->error[0] = 0;
			return fail(pc, ECONNRESET, "the postcopy switch did not reach the "
				    "destination (the link broke); its guest never ran");
		}
		if (r == 2) {
			pc->rep->error[0] = 0;
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
			pc->rep->downtime_ns = now_ns() - t_stop;
		}
		r = postcopy_background(pc);
	}
	if (r)
		return r;
	pc->rep->pc.requests = pc->ps.requests;
	pc->rep->pc.sched = pc->ps.sched_got;
	pc->rep->pc.switch_ns = now_ns() - t_stop;
	pc->vm_stopped = false;
	return 0;
}

static void collect(struct precopy *pc)
{
	struct vmig_ram_stats st;
	unsigned int i;

	for (i = 0; i < pc->nr_chans; i++) {
		pc->rep->normal_pages += pc->chans[i].normal_pages;
		pc->rep->zero_pages += pc->chans[i].zero_pages;
		pc->rep->wire_bytes += pc->chans[i].s.bytes_out;
	}
	if (pc->main_open)
		pc->rep->wire_bytes += pc->main.bytes_out;
	if (pc->ram) {
		vmig_ram_stats(pc->ram, &st);
		pc->rep->wp_faults = st.wp_faults;
		pc->rep->harvests = st.harvests;
		pc->rep->harvest_ns = st.harvest_ns;
	}
}

int precopy_migrate(const struct precopy_opts *o, struct report *rep)
{
	struct precopy pc = { .o = o, .rep = rep };
	uint64_t t0 = now_ns();
	unsigned int i;
	int r;

	rep->role = "source";
	rep->backend = "uffd";
	rep->tracking = "";
	rep->channels = o->channels;
	progress_init(&pc.prog, o->progress);
	pcs_init(&pc.ps, !o->no_preempt, o->spin_us, o->sched);
	pc.cuts = o->test.cuts;
	snprintf(pc.to, sizeof(pc.to), "%s", o->to);
	r = setup(&pc);
	rep->setup_ns = now_ns() - t0;
	pc.go_postcopy = o->postcopy && !o->postcopy_after;
	if (!r && !pc.go_postcopy)
		r = bulk_stage(&pc);
	if (!r && !pc.go_postcopy)
		r = dirty_rounds(&pc);
	if (!r)
		r = pc.go_postcopy ? postcopy_switchover(&pc) : switchover(&pc);
	progress_clear(&pc.prog);
	if (r && pc.main_open)
		dest_reason(&pc);
	if (r) {
		/* Nothing was written to the source's memory: let the guest run on. */
		for (i = 0; i < pc.nr_chans; i++)
			send_chan_cancel(&pc.chans[i]);
		devstate_send_precopy_wait(&pc.ds, true);
		if (pc.main_open)
			stream_send_error(&pc.main, r, rep->error);
		if (pc.dest_runs)
			snprintf(rep->error + strlen(rep->error),
				 sizeof(rep->error) - strlen(rep->error), "; %s: not resumed here",
				 pc.switch_confirmed ? "the guest was already running on the "
				 "destination (postcopy)" : "the destination may have started the "
				 "guest (postcopy switch sent, not confirmed)");
		else if (pc.ctl && pc.vm_stopped) {
			handover_drop(&pc);	/* before RESUME, which it would refuse */
			if (vmig_ctl_resume(pc.ctl, o->timeout_ms))
				fprintf(stderr, "vmig migrate: the source VMM did not confirm "
					"resuming\n");
		}
		if (pc.ctl)
			vmig_ctl_error(pc.ctl, rep->error);
	} else {
		vmig_ctl_complete(pc.ctl);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - t0;
	collect(&pc);
	pcs_destroy(&pc.ps);	/* before the channels its thread queues on */
	for (i = 0; i < pc.nr_chans; i++) {
		send_chan_destroy(&pc.chans[i]);
		close(pc.chans[i].s.fd);
	}
	free(pc.chans);
	free(pc.dirty.v);
	freepage_free(&pc.fp);
	if (pc.main_open)
		close(pc.main.fd);
	vmig_ram_close(pc.ram);
	vmig_ctl_close(pc.ctl);
	return r;
}

/*
 * vmig migrate --attach: take over a postcopy migration whose source helper
 * died.  The source VMM still holds the guest memory (its vCPUs stopped)
 * and the dead helper's handover record; the destination, paused as after
 * a broken link, holds its received bitmap.  So this is a recovery with a
 * new process: reconnect with RESUME, send every page the destination
 * lacks (from the bitmap, not from anything the dead helper knew), serve
 * its requests, complete.  If the destination says it never ran the guest
 * (the switch did not reach it), the guest resumes here instead.
 */
static int attach_setup(struct precopy *pc, struct precopy_opts *ao)
{
	struct handover h;
	int r;

	pc->ctl = vmig_ctl_connect(ao->vmm_path, ao->timeout_ms);
	if (!pc->ctl)
		return fail(pc, errno, "cannot reach the VMM at %s: %s", ao->vmm_path,
			    strerror(errno));
	if (vmig_ctl_role(pc->ctl) != VMIG_ROLE_SOURCE)
		return fail(pc, EINVAL, "the VMM at %s is not a migration source (started "
			    "with --incoming?)", ao->vmm_path);
	r = vmig_ctl_handover_query(pc->ctl, &h, sizeof(h), ao->timeout_ms);
	if (r == -ENOENT)
		return fail(pc, r, "the VMM at %s has no postcopy migration to take over (no "
			    "helper died after a postcopy switch)", ao->vmm_path);
	if (r < 0)
		return fail(pc, r, "the VMM at %s did not give its handover record: %s "
			    "(a libvmig without HANDOVER?)", ao->vmm_path, strerror(-r));
	if (!handover_valid(&h, r))
		return fail(pc, EPROTO, "the VMM at %s holds a handover record this vmig "
			    "cannot use (%d bytes; another version?)", ao->vmm_path, r);
	if (auth_mode() != AUTH_UNSET && h.secret_len != AUTH_ROOT_LEN)
		return fail(pc, EPROTO, "the VMM at %s holds no session key in its handover "
			    "record: the destination would refuse this helper's RESUME",
			    ao->vmm_path);
	if (h.secret_len == AUTH_ROOT_LEN)
		auth_root_import(h.secret);
	explicit_bzero(h.secret, sizeof(h.secret));
	pc->handed_over = true;
	pc->vm_stopped = true;
	pc->dest_runs = true;
	pc->session = h.session;
	pc->hs.version = h.wire_version;
	pc->hs.caps = h.caps;
	ao->postcopy = true;
	ao->channels = h.nr_chans;
	ao->no_preempt = !(h.flags & HANDOVER_PREEMPT);
	pc->ps.preempt = !ao->no_preempt;
	if (!ao->to)
		snprintf(pc->to, sizeof(pc->to), "%s", h.to);
	pc->ram = vmig_ram_open(pc->ctl, ao->backend, ao->dirty_mode);
	if (!pc->ram)
		return fail(pc, errno, "cannot map guest RAM: %s", strerror(errno));
	pc->rep->backend = vmig_ram_backend(pc->ram);
	pc->rep->channels = ao->channels;
	for (r = 0; r < (int)vmig_ram_region_count(pc->ram); r++)
		pc->rep->guest_bytes += vmig_ram_region_pages(pc->ram, r) * WIRE_PAGE_SIZE;
	pc->chans = calloc(ao->channels, sizeof(*pc->chans));
	if (!pc->chans)
		return fail(pc, ENOMEM, "out of memory");
	for (r = 0; r < (int)ao->channels; r++)
		pc->chans[r].s.fd = -1;
	pc->nr_chans = ao->channels;
	fprintf(stderr, "vmig migrate: taking over postcopy session %016llx from a helper "
		"that went away; the destination was %s%s%s\n",
		(unsigned long long)pc->session, h.to, ao->to ? ", now " : "",
		ao->to ? ao->to : "");
	return 0;
}

int precopy_attach(const struct precopy_opts *o, struct report *rep)
{
	struct precopy_opts ao = *o;
	struct precopy pc = { .o = &ao, .rep = rep };
	uint64_t t0 = now_ns();
	unsigned int i;
	int r;

	rep->role = "source";
	rep->backend = "uffd";
	rep->tracking = "";
	rep->pc.on = true;
	progress_init(&pc.prog, false);
	pcs_init(&pc.ps, !o->no_preempt, o->spin_us, o->sched);
	if (o->to)
		snprintf(pc.to, sizeof(pc.to), "%s", o->to);
	r = attach_setup(&pc, &ao);
	rep->setup_ns = now_ns() - t0;
	rep->pc.preempt = !ao.no_preempt;
	if (!r) {
		snprintf(rep->error, sizeof(rep->error), "the previous source helper went away");
		r = -ECONNRESET;
	}
	/* As after a broken link in postcopy_switchover(), with nothing sent yet. */
	while (r == -ECONNRESET || (r && ao.recovery_timeout_ms > 0 && rec_transient(r) &&
				    !vmig_ctl_lost(pc.ctl) &&
				    strncmp(rep->error, "destination:", 12))) {
		if (ao.recovery_timeout_ms <= 0)
			ao.recovery_timeout_ms = 30000;
		r = postcopy_recover(&pc, r);
		if (r == 2) {
			pc.dest_runs = false;
			rep->error[0] = 0;
			r = fail(&pc, ECONNRESET, "the destination never ran the guest (the "
				 "postcopy switch had not reached it when the helper went away)");
			break;
		}
		if (r == 1) {	/* it had finished: only DONE was missing */
			r = 0;
			break;
		}
		if (r)
			break;
		pc.switch_confirmed = true;
		r = postcopy_background(&pc);
	}
	if (!r) {
		rep->pc.requests = pc.ps.requests;
		rep->pc.switch_ns = now_ns() - t0;
	}
	if (r && pc.main_open)
		dest_reason(&pc);
	if (r) {
		for (i = 0; i < pc.nr_chans; i++)
			send_chan_cancel(&pc.chans[i]);
		if (pc.main_open)
			stream_send_error(&pc.main, r, rep->error);
		if (pc.dest_runs && pc.handed_over)
			snprintf(rep->error + strlen(rep->error),
				 sizeof(rep->error) - strlen(rep->error), "; the guest may run "
				 "on the destination: the source VMM stays stopped (try "
				 "--attach again)");
		else if (pc.ctl && pc.handed_over) {
			handover_drop(&pc);
			if (vmig_ctl_resume(pc.ctl, ao.timeout_ms))
				fprintf(stderr, "vmig migrate: the source VMM did not confirm "
					"resuming\n");
		}
		if (pc.ctl)
			vmig_ctl_error(pc.ctl, rep->error);
	} else {
		vmig_ctl_complete(pc.ctl);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - t0;
	collect(&pc);
	pcs_destroy(&pc.ps);
	for (i = 0; i < pc.nr_chans; i++) {
		send_chan_destroy(&pc.chans[i]);
		if (pc.chans[i].s.fd >= 0)
			close(pc.chans[i].s.fd);
	}
	free(pc.chans);
	free(pc.dirty.v);
	if (pc.main_open)
		close(pc.main.fd);
	vmig_ram_close(pc.ram);
	vmig_ctl_close(pc.ctl);
	return r;
}
