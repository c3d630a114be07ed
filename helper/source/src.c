// SPDX-License-Identifier: GPL-2.0
/*
 * The source's shared state (src.h): setting up a migration, queueing
 * pages on the channels, watching the main channel, tearing down.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "control.h"
#include "src.h"
#include "util.h"

/* The first reason given is the one reported (report_fail). */
#define fail(s, err, ...)	report_fail((s)->rep, err, __VA_ARGS__)

int range_add(void *arg, unsigned int region, uint64_t first, uint64_t n)
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

int src_queue_range(struct src *s, uint32_t region, uint64_t first, uint64_t n, uint32_t flags)
{
	while (n) {
		uint64_t chunk = first / WIRE_CHUNK_PAGES;
		uint64_t k = (chunk + 1) * WIRE_CHUNK_PAGES - first;
		int r;

		if (k > n)
			k = n;
		r = send_chan_queue(&s->chans[(chunk + region) % s->ses.nr_chans], region, first,
				    k, flags);
		if (r)
			return fail(s, r, "out of memory queueing pages");
		first += k;
		n -= k;
	}
	return 0;
}

int src_queue_vec(struct src *s, struct range_vec *rv, uint32_t flags)
{
	size_t i;
	int r;

	for (i = 0; i < rv->len; i++) {
		r = src_queue_range(s, rv->v[i].region, rv->v[i].first, rv->v[i].n, flags);
		if (r)
			return r;
	}
	rv->len = 0;
	rv->pages = 0;
	return 0;
}

uint64_t src_pages_done(struct src *s)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < s->ses.nr_chans; i++)
		sum += atomic_load(&s->chans[i].pages_done);
	return sum;
}

uint64_t src_bytes(struct src *s)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < s->ses.nr_chans; i++)
		sum += __atomic_load_n(&s->chans[i].s.bytes_out, __ATOMIC_RELAXED);
	return sum;
}

/* The destination speaks on the main channel only to refuse: read why. */
int src_check_main(struct src *s)
{
	struct ctl_event ev;
	int r;

	if (vmig_ctl_lost(s->ctl))
		return fail(s, ECONNRESET, "the source VMM went away");
	if (!stream_ready(&s->ses.main))
		return 0;
	r = control_recv(&s->ses.main, true, &ev);
	/* Only its ERROR is the destination's word; a broken link may recover. */
	if (r)
		return fail(s, r, "%s: %s", ev.type == WIRE_PKT_ERROR ? "destination" :
			    "main channel", s->ses.main.err);
	return fail(s, EPROTO, "destination sent RESUMED before COMPLETE");
}

/*
 * After a failure: if the destination said why on the main channel (it
 * refused the devices, say), that is the better message.
 */
void src_dest_reason(struct src *s)
{
	struct pollfd p = { .fd = s->ses.main.fd, .events = POLLIN };
	struct ctl_event ev;

	if (!strncmp(s->rep->error, "destination:", 12) ||
	    (!stream_ready(&s->ses.main) && poll(&p, 1, 200) <= 0))
		return;
	s->ses.main.err[0] = 0;
	if (control_recv(&s->ses.main, true, &ev) && ev.type == WIRE_PKT_ERROR)
		snprintf(s->rep->error, sizeof(s->rep->error), "destination: %s", s->ses.main.err);
}

/*
 * A channel broke.  A destination that gives up says why on the main
 * channel before it drops the others: prefer its words when they come soon.
 */
int src_channel_failed(struct src *s, unsigned int i, int r)
{
	struct pollfd p = { .fd = s->ses.main.fd, .events = POLLIN };
	struct ctl_event ev;

	if ((stream_ready(&s->ses.main) || poll(&p, 1, 500) > 0) &&
	    control_recv(&s->ses.main, true, &ev) &&
	    !strncmp(s->ses.main.err, "peer reported", 13))
		return fail(s, r, "destination: %s", s->ses.main.err);
	return fail(s, r, "multifd channel %u: %s", i, s->chans[i].s.err);
}

int src_send_round_info(struct src *s, unsigned int round, uint64_t pages)
{
	struct wire_round wr = { .round = round, .dirty_pages = pages };
	int r = stream_send_pkt(&s->ses.main, WIRE_PKT_ROUND, &wr, sizeof(wr));

	return r ? fail(s, r, "main channel: %s", s->ses.main.err) : 0;
}

static int harvest(struct src *s, bool final)
{
	uint64_t t = now_ns();
	int r = final ? vmig_ram_harvest_final(s->ram, range_add, &s->dirty) :
			vmig_ram_harvest(s->ram, range_add, &s->dirty);

	s->harvest_cost_ns = now_ns() - t;
	return r ? fail(s, r, "dirty harvest failed: %s", strerror(-r)) : 0;
}

int src_harvest(struct src *s)
{
	return harvest(s, false);
}

int src_stop_vm(struct src *s)
{
	uint64_t t = now_ns(), ran;
	unsigned int i;
	int r = vmig_ctl_stop_ran(s->ctl, s->o->timeout_ms, &ran);

	if (r)
		return fail(s, r, "the VMM did not stop: %s", strerror(-r));
	s->vm_stopped = true;
	s->rep->stop_ran_ns = ran;
	s->rep->dt_stop_ns = now_ns() - t - ran;
	/* No precopy round follows a stop (a failure ends the migration): see send_chan_freeze. */
	for (i = 0; i < s->ses.nr_chans; i++)
		send_chan_freeze(&s->chans[i]);
	/*
	 * The last harvest: no harvest follows a stop, so it re-arms nothing,
	 * and the frozen channels CLEAR nothing either (the report counts
	 * what the module protected from here: none).
	 */
	if (!s->protected_known)
		s->protected_known = !vmig_ram_pages_protected(s->ram, &s->protected_at_stop);
	return s->tracking ? harvest(s, true) : 0;
}

int src_send_devstate(struct src *s)
{
	uint64_t t = now_ns();
	int r = devstate_send_all(&s->ds, s->chans, s->ses.nr_chans, &s->ses.main);

	s->rep->dt_dev_save_ns = now_ns() - t;
	s->rep->device_bytes = s->ds.bytes;
	s->rep->device_precopy_bytes = s->ds.precopy_bytes;
	s->rep->device_precopy_ns = s->ds.precopy_ns;
	return r ? fail(s, r, "%s", s->ds.error) : 0;
}

int src_setup(struct src *s, struct pc_src *ps, struct freepage *fp, uint64_t *rtt_ns)
{
	const struct precopy_opts *o = s->o;
	struct hs_offer offer = {
		.version_min = o->test.wire_version ? o->test.wire_version : WIRE_VERSION_MIN,
		.version_max = o->test.wire_version ? o->test.wire_version : WIRE_VERSION_MAX,
		.caps = WIRE_CAPS_V1 | (o->postcopy ? WIRE_CAP_POSTCOPY | WIRE_CAP_RETURN_PATH |
					WIRE_CAP_DONE_ACK |
					(o->postcopy_after ? 0 : WIRE_CAP_POSTCOPY_NOW) |
					(o->no_preempt ? 0 : WIRE_CAP_PREEMPT |
					 (o->test.no_reply_return ? 0 : WIRE_CAP_REPLY_RETURN)) : 0),
		.nr_multifd = o->channels,
	};
	uint64_t want_pc = o->postcopy ? WIRE_CAP_POSTCOPY | WIRE_CAP_RETURN_PATH |
				       (o->no_preempt ? 0 : WIRE_CAP_PREEMPT) : 0;
	uint64_t t_query;
	char err[256];
	unsigned int i;
	int r;

	s->ctl = vmig_ctl_connect(o->vmm_path, o->timeout_ms);
	if (!s->ctl)
		return fail(s, errno, "cannot reach the VMM at %s: %s", o->vmm_path,
			    strerror(errno));
	if (vmig_ctl_role(s->ctl) != VMIG_ROLE_SOURCE)
		return fail(s, EINVAL, "the VMM at %s is not a migration source (started "
			    "with --incoming?)", o->vmm_path);
	if (o->track == VMIG_TRACK_VMM && !vmig_ctl_dirty_log_offered(s->ctl))
		return fail(s, EOPNOTSUPP, "--track vmm: the VMM at %s does not offer a dirty log "
			    "of its own (a VMM offers one with vmig_vmm_set_dirty_log(), as "
			    "'vmig guest --kvm' does); use --track auto", o->vmm_path);
	if (o->dirty_mode == VMIG_DIRTY_MODE_HWDIRTY && vmig_ctl_mirrored(s->ctl))
		return fail(s, EOPNOTSUPP, "--dirty-mode hwdirty cannot see this VMM's guest "
			    "writes: they go through a secondary MMU (KVM's own page tables), "
			    "which never sets the host page-table dirty bits hwdirty reads; use "
			    "manual-init, manual or protect");
	s->ram = vmig_ram_open(s->ctl, o->backend, o->dirty_mode);
	if (!s->ram && errno == EMEDIUMTYPE)
		return fail(s, errno, "--backend %s: the VMM's guest RAM is %s",
			    vmig_backend_name(o->backend),
			    o->backend == VMIG_BACKEND_KMOD ? "not vmig.ko regions (memfds)" :
			    "vmig.ko regions, not memfds");
	if (!s->ram)
		return fail(s, errno, "cannot map guest RAM: %s", strerror(errno));
	trace("src: ram mapped");
	t_query = now_ns();
	r = devstate_send_setup(&s->ds, s->ctl, o->device_threads, o->device_state_on_main,
				o->timeout_ms);
	if (r)
		return fail(s, r, "%s", s->ds.error);
	*rtt_ns = now_ns() - t_query;	/* a round trip every VMM answers */
	trace("src: devices queried");
	s->rep->devices = s->ds.nr_devices;
	s->rep->backend = vmig_ram_backend(s->ram);
	offer.nr_regions = vmig_ram_region_count(s->ram);
	for (i = 0; i < offer.nr_regions; i++) {
		offer.region_pages[i] = vmig_ram_region_pages(s->ram, i);
		s->rep->guest_bytes += offer.region_pages[i] * WIRE_PAGE_SIZE;
	}

	session_new_id(&s->ses);
	r = session_connect_main(&s->ses, o->timeout_ms, err, sizeof(err));
	if (r && !s->ses.main_open)
		return fail(s, r, "%s", err);
	trace("src: main connected");
	if (!r)
		r = hs_send_offer(&s->ses.main, &offer);
	if (!r)
		r = hs_recv_reply(&s->ses.main, &offer, &s->ses.hs);
	if (r)
		return fail(s, r, "handshake with %s: %s", o->to, s->ses.main.err);
	if ((s->ses.hs.caps & want_pc) != want_pc)
		return fail(s, EPROTONOSUPPORT, "the destination does not accept postcopy%s "
			    "(vmig listen --no-postcopy, or an older vmig)",
			    o->no_preempt ? "" : " with a preempt channel");
	if (s->ses.hs.caps & WIRE_CAP_DEVICE_STATE)
		r = devstate_send_announce(&s->ds, &s->ses.main);
	else if (s->ds.nr_devices)
		return fail(s, EPROTONOSUPPORT, "the destination does not take device state");
	if (r)
		return fail(s, r, "main channel: %s", s->ses.main.err);

	s->chans = calloc(o->channels, sizeof(*s->chans));
	if (!s->chans)
		return fail(s, ENOMEM, "out of memory");
	for (i = 0; i < o->channels; i++) {
		struct stream tmp;

		r = session_connect_chan(&s->ses, WIRE_CHAN_MULTIFD, i, &tmp, err, sizeof(err));
		if (r)
			return fail(s, r, "multifd channel %u: %s", i, err);
		s->chans[i].corrupt_after = i == 0 ? o->test.inject_corrupt : 0;
		r = send_chan_start(&s->chans[i], i, &tmp, o->timeout_ms, s->ram,
					    s->ses.hs.caps & WIRE_CAP_ZERO_PAGES,
					    o->max_bandwidth / o->channels);
		if (r) {
			stream_close(&s->chans[i].s);
			return fail(s, r, "multifd channel %u: %s", i,
				    tmp.err[0] ? tmp.err : strerror(-r));
		}
		s->ses.nr_chans++;
	}

	if (want_pc) {
		r = pcs_connect(ps, o->to, s->ses.id, o->timeout_ms, err, sizeof(err));
		if (r)
			return fail(s, r, "%s", err);
	}
	trace("src: channels up");
	/*
	 * Postcopy from the start: every page holding data goes after the
	 * switch, listed with the guest stopped, so nothing is tracked (the
	 * write protection of all guest RAM was half of this setup) and no
	 * page goes twice.
	 */
	if (o->postcopy && !o->postcopy_after)
		return 0;
	if (o->test.hint_before_tracking && !o->no_free_hints) {
		r = freepage_query(fp, s->ctl, o->timeout_ms);
		if (r)
			return fail(s, r, "free-page hint: %s", strerror(-r));
	}
	r = vmig_ram_track_start(s->ram, o->track, o->timeout_ms);
	trace("src: tracking");
	if (r)
		return fail(s, r, "cannot start dirty tracking (%s): %s",
			    o->track == VMIG_TRACK_ASYNC ? "async" :
			    o->track == VMIG_TRACK_SYNC ? "sync" :
			    o->track == VMIG_TRACK_VMM ? "the VMM's own log" : "auto", strerror(-r));
	s->rep->tracking = vmig_ram_track_name(s->ram);
	s->tracking = true;
	/* Tracking is on: only now may the hint be taken (helper/source/freepage.h). */
	if (!o->test.hint_before_tracking && !o->no_free_hints) {
		r = freepage_query(fp, s->ctl, o->timeout_ms);
		if (r)
			return fail(s, r, "free-page hint: %s", strerror(-r));
	}
	return 0;
}

void src_collect(struct src *s)
{
	struct vmig_ram_stats st;
	unsigned int i;

	for (i = 0; i < s->ses.nr_chans; i++) {
		s->rep->normal_pages += s->chans[i].normal_pages;
		s->rep->zero_pages += s->chans[i].zero_pages;
		s->rep->wire_bytes += s->chans[i].s.bytes_out;
	}
	if (s->ses.main_open)
		s->rep->wire_bytes += s->ses.main.bytes_out;
	if (s->ram) {
		vmig_ram_stats(s->ram, &st);
		s->rep->wp_faults = st.wp_faults;
		s->rep->harvests = st.harvests;
		s->rep->harvest_ns = st.harvest_ns;
		if (s->protected_known &&
		    !vmig_ram_pages_protected(s->ram, &s->rep->protected_after_stop)) {
			s->rep->protected_after_stop -= s->protected_at_stop;
			s->rep->protected_known = true;
		}
	}
}

void src_close(struct src *s)
{
	unsigned int i;

	for (i = 0; i < s->ses.nr_chans; i++) {
		send_chan_destroy(&s->chans[i]);
		stream_close(&s->chans[i].s);
	}
	free(s->chans);
	free(s->dirty.v);
	session_close_main(&s->ses);
	vmig_ram_close(s->ram);
	vmig_ctl_close(s->ctl);
}
