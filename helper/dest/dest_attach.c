// SPDX-License-Identifier: GPL-2.0
/* Destination: vmig listen --attach, taking over from a helper that died. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "dest_attach.h"
#include "dest_postcopy.h"
#include "handover.h"
#include "libvmig.h"
#include "util.h"

static int note_present(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct pc_dst *pc = arg;

	while (n--)
		pcd_note_received(pc, region, first++);
	return 0;
}

/*
 * Mark received what guest RAM holds (the backend says: memfd data, or a
 * region's resident pages): pages are placed whole or not at all, and what
 * never arrived was punched out at the switch.  A page reported missing
 * that is there is only sent again and refused (EEXIST), never
 * overwritten; the other way round is what must not happen.
 */
static int received_from_presence(struct dest *d)
{
	unsigned int i;
	int r;

	for (i = 0; i < d->mem.nr_regions; i++) {
		r = vmig_ram_for_each_data(d->ram, i, note_present, &d->pc);
		if (r)
			return r;
	}
	return 0;
}

/*
 * vmig listen --attach: take over a postcopy whose destination helper died.
 * The VMM still runs the guest on its registration and holds the dead
 * helper's record; the source, paused as after a broken link, reconnects
 * with RESUME by itself.  So this is the state of a paused recovery,
 * rebuilt without the dead helper: session and channel layout from the
 * record, the received bitmap from what guest RAM holds, the VMM's
 * registration handed over and the requests the dead helper had read
 * raised again.  The caller then waits for RESUME.
 */
int dest_attach(struct dest *d)
{
	const struct dest_opts *o = d->o;
	struct handover h;
	int r;

	r = vmig_ctl_handover_query(d->ctl, &h, sizeof(h), o->timeout_ms);
	if (r < 0)
		return fail(d, r, "the VMM at %s did not give its handover record: %s",
			    o->vmm_path, strerror(-r));
	if (!handover_valid(&h, r) || !(h.flags & HANDOVER_DEST) ||
	    !(h.caps & WIRE_CAP_POSTCOPY))
		return fail(d, EPROTO, "the VMM at %s holds a handover record this vmig cannot "
			    "use (%d bytes; another version?)", o->vmm_path, r);
	if (auth_mode() != AUTH_UNSET && h.secret_len != AUTH_ROOT_LEN)
		return fail(d, EPROTO, "the VMM at %s holds no session key in its handover "
			    "record: the source's RESUME could not be checked", o->vmm_path);
	if (h.secret_len == AUTH_ROOT_LEN)
		auth_root_import(h.secret);
	explicit_bzero(h.secret, sizeof(h.secret));
	d->ses.id = h.session;
	d->ses.hs.version = h.wire_version;
	d->ses.hs.caps = h.caps;
	d->ses.nr_chans = h.nr_chans;
	d->rep->channels = d->ses.nr_chans;
	if (!d->listen_addr[0])
		snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", h.to);
	r = dest_pc_prepare(d);
	if (r)
		return r;
	r = received_from_presence(d);
	if (r)
		return fail(d, r, "cannot tell which pages guest RAM holds: %s", strerror(-r));
	/*
	 * Every page here: the dead helper had finished (it may have sent DONE);
	 * the source, if it comes back, only has to hear it (dest_recover()).
	 */
	d->pc_done = !pcd_missing(&d->pc);
	/* The registration the guest runs on (vmig.ko regions: they stayed in postcopy mode). */
	r = vmig_ram_postcopy_register(d->ram, o->timeout_ms);
	if (r)
		return fail(d, r, "the VMM did not hand over its registration: %s",
			    r == -EPROTO ? "not one that fits the backend" : strerror(-r));
	r = pcd_adopt(&d->pc);
	if (r == -ENOTTY)
		return fail(d, r, "this vmig.ko cannot queue again the requests the dead helper "
			    "had read (no VMIG_REQUEUE): load a newer module");
	if (r)
		return fail(d, r, "cannot take over the guest's page requests: %s", strerror(-r));
	if (d->pc_done)		/* guest RAM leaves postcopy mode, as after pcd_finish */
		vmig_ram_postcopy_disable(d->ram);
	d->pc_running = true;
	d->rep->pc.on = true;
	d->rep->pc.preempt = d->ses.hs.caps & WIRE_CAP_PREEMPT;
	d->t_switch = now_ns();
	/* Ours now: where we listen, for the next one. */
	r = dest_handover_leave(d);
	if (r)
		return fail(d, r, "the VMM did not take the new handover record: %s",
			    strerror(-r));
	return 0;
}
