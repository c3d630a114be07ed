// SPDX-License-Identifier: GPL-2.0
/*
 * Destination: postcopy as the session sees it: prepared after the
 * handshake, switched on DISCARD/POSTCOPY (the guest resumes here), and
 * the handover record left with the VMM.  postcopy_dst.c does the paging.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "dest_postcopy.h"
#include "handover.h"
#include "libvmig.h"
#include "util.h"

/* After the handshake: postcopy state (received bitmap from the first page) if negotiated. */
int dest_pc_prepare(struct dest *d)
{
	int r;

	if (!(d->ses.hs.caps & WIRE_CAP_POSTCOPY))
		return 0;
	r = pcd_init(&d->pc, &d->mem, d->ram, d->ses.hs.caps & WIRE_CAP_PREEMPT, d->o->spin_us);
	if (r)
		return fail(d, r, "out of memory");
	d->pc.sched = d->o->sched;
	d->pc.follow = !d->o->cpu_any;
	d->pc.sink_wanted = d->o->kernel_requests;
	d->pc.nr_chans = d->ses.nr_chans;
	d->pc_ready = true;
	d->rep->pc.preempt = d->ses.hs.caps & WIRE_CAP_PREEMPT;
	d->pc.reply_rp = d->rep->pc.preempt && (d->ses.hs.caps & WIRE_CAP_REPLY_RETURN);
	d->rep->pc.reply_return = d->pc.reply_rp;
	return 0;
}

/*
 * Leave with the VMM what a helper needs to take this postcopy over if we
 * die (handover.h): the guest runs here, the source holds what it lacks.
 * The session's root key and the source's identity (auth.h) go in
 * h.secret, so attach_session can check the source's RESUME as we would.
 */
int dest_handover_leave(struct dest *d)
{
	struct handover h = {
		.magic = HANDOVER_MAGIC, .wire_version = d->ses.hs.version,
		.session = d->ses.id, .caps = d->ses.hs.caps, .nr_chans = d->ses.nr_chans,
		.flags = HANDOVER_DEST | (d->ses.hs.caps & WIRE_CAP_PREEMPT ? HANDOVER_PREEMPT : 0),
	};

	int r;

	snprintf(h.to, sizeof(h.to), "%s", d->listen_addr);
	/* What the source's RESUME must prove to a helper that replaces us (auth.h). */
	if (auth_root_export(h.secret))
		h.secret_len = AUTH_ROOT_LEN;
	r = vmig_ctl_handover(d->ctl, &h, sizeof(h), d->o->timeout_ms);
	explicit_bzero(h.secret, sizeof(h.secret));
	return r;
}

/*
 * Postcopy switch.  DISCARDs are kept until POSTCOPY; then, with every
 * receiver parked at its POSTCOPY marker (no precopy write in flight), the
 * received bitmap is built, the discarded pages punched out, guest RAM
 * registered for missing pages in the VMM, the fault thread started, the
 * receivers released, the devices loaded (their state precedes the
 * markers) and the guest resumed.
 */
int dest_pc_event(struct dest *d, const struct ctl_event *ev)
{
	const struct dest_opts *o = d->o;
	struct wire_resumed rs = { 0 };
	uint64_t t_load, t_wait;
	uint32_t i;
	int r;

	if (!d->pc_ready || d->pc_running)
		return fail(d, EPROTO, "main channel: %s %s", wire_pkt_name(ev->type),
			    d->pc_running ? "after the switch" : "but postcopy was not negotiated");
	if (ev->type == WIRE_PKT_DISCARD) {
		if (!d->t_switch) {
			d->t_switch = now_ns();
			r = pcd_wait_parked(&d->pc, o->timeout_ms);
			if (r)
				return fail(d, r, "multifd channels did not reach the postcopy switch");
			r = pcd_mark_received(&d->pc);
			if (r)
				return fail(d, r, "cannot punch out the pages that never arrived: %s",
					    strerror(-r));
		}
		for (i = 0; i < ev->discard.count; i++) {
			r = pcd_discard(&d->pc, ev->discard.region, ev->ranges[2 * i],
					ev->ranges[2 * i + 1]);
			if (r)
				return fail(d, EPROTO, "DISCARD of pages %llu+%llu in region %u: %s",
					    (unsigned long long)ev->ranges[2 * i],
					    (unsigned long long)ev->ranges[2 * i + 1],
					    ev->discard.region, strerror(-r));
			d->rep->pc.discarded += ev->ranges[2 * i + 1];
		}
		return 0;
	}
	if (!d->t_switch) {
		d->t_switch = now_ns();
		r = pcd_wait_parked(&d->pc, o->timeout_ms);
		if (!r)
			r = pcd_mark_received(&d->pc);
		if (r)
			return fail(d, r, "postcopy switch failed: %s", strerror(-r));
	}
	if (ev->postcopy.discarded != d->rep->pc.discarded)
		return fail(d, EPROTO, "POSTCOPY says %llu pages were discarded, %llu arrived",
			    (unsigned long long)ev->postcopy.discarded,
			    (unsigned long long)d->rep->pc.discarded);
	/* The resume part counts from here: registration, load, resume (below). */
	t_load = now_ns();
	r = vmig_ram_postcopy_register(d->ram, o->timeout_ms);
	if (r == -EPROTO)
		return fail(d, EPROTO, "the VMM answered the postcopy registration in a way "
			    "that does not fit the %s backend", vmig_ram_backend(d->ram));
	if (r)
		return fail(d, r, "the VMM cannot register guest RAM for missing pages: %s",
			    strerror(-r));
	r = pcd_start(&d->pc, &d->rp, &d->pre, o->timeout_ms);
	if (r)
		return fail(d, r, "cannot start the postcopy fault thread: %s", strerror(-r));
	pcd_release(&d->pc, false);
	/*
	 * Device state came before every marker: loaded before the guest runs,
	 * with missing pages already served, since a real VMM's load may touch
	 * guest RAM (QEMU's does: its accesses wait in the module like a vCPU's).
	 */
	t_wait = now_ns();
	r = devstate_recv_finish(&d->ds);
	if (r) {
		pcd_stop(&d->pc);
		return fail(d, r, "%s", d->ds.error);
	}
	rs.load_wait_ns = now_ns() - t_wait;
	d->pc_running = true;
	d->rep->pc.on = true;
	trace("dst: resuming");
	r = vmig_ctl_resume(d->ctl, o->timeout_ms);
	trace("dst: resumed");
	if (r)
		return fail(d, r, "the VMM did not resume: %s", strerror(-r));
	/* resume: from the devices loaded (the registration included) to running */
	rs.resume_ns = now_ns() - t_load - rs.load_wait_ns;
	rs.dev_buffer_peak = d->ds.peak;
	/* From here a helper that dies leaves the guest to the next one. */
	r = dest_handover_leave(d);
	if (r)
		return fail(d, r, "the VMM did not take the handover record (%s): a libvmig "
			    "without HANDOVER for destinations?", strerror(-r));
	fprintf(stderr, "vmig listen: postcopy: the guest runs here; missing pages are "
		"fetched on demand\n");
	/* Sources from before the parts took an empty RESUMED and take this too. */
	r = stream_send_pkt(&d->ses.main, WIRE_PKT_RESUMED, &rs, sizeof(rs));
	if (r)
		return fail(d, r, "main channel: %s", d->ses.main.err);
	return 0;
}
