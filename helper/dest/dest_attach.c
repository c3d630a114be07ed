// SPDX-License-Identifier: GPL-2.0
/* Destination: vmig listen --attach, taking over from a helper that died. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "auth.h"
#include "dest_attach.h"
#include "dest_postcopy.h"
#include "handover.h"
#include "libvmig.h"
#include "util.h"

/* vmig.ko regions: a page is present when it is in the region's page cache. */
static int received_from_mincore(struct dest *d, unsigned int i)
{
	unsigned char *vec = malloc(d->mem.pages[i]);
	uint64_t p;

	if (!vec)
		return -ENOMEM;
	if (mincore(d->mem.base[i], d->mem.pages[i] * WIRE_PAGE_SIZE, vec)) {
		free(vec);
		return -errno;
	}
	for (p = 0; p < d->mem.pages[i]; p++)
		if (vec[p] & 1)
			pcd_note_received(&d->pc, i, p);
	free(vec);
	return 0;
}

/*
 * Mark received what guest RAM holds: pages are placed whole or not at
 * all, and what never arrived was punched out at the switch.  A page
 * reported missing that is there is only sent again and refused (EEXIST),
 * never overwritten; the other way round is what must not happen.
 */
static int received_from_presence(struct dest *d)
{
	uint64_t size, base;
	off_t data, hole;
	unsigned int i;
	int fd, r;

	for (i = 0; i < d->mem.nr_regions; i++) {
		vmig_ctl_region(d->ctl, i, &fd, &size, &base);
		if (d->pc.kmod) {
			r = received_from_mincore(d, i);
			if (r)
				return r;
			continue;
		}
		for (hole = 0; (uint64_t)hole < size; ) {
			data = lseek(fd, hole, SEEK_DATA);
			if (data < 0 && errno == ENXIO)
				break;
			if (data < 0)
				return -errno;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				return -errno;
			for (; data < hole; data += WIRE_PAGE_SIZE)
				pcd_note_received(&d->pc, i, data / WIRE_PAGE_SIZE);
		}
	}
	return 0;
}

/*
 * vmig listen --attach: take over a postcopy whose destination helper died.
 * The VMM still runs the guest on its registration and holds the dead
 * helper's record; the source, paused as after a broken link, reconnects
 * with RESUME by itself.  So this is the state of a paused recovery,
 * rebuilt without the dead helper: session and channel layout from the
 * record, the received bitmap from what guest RAM holds, the same uffd
 * with its waiters woken to fault again.  The caller then waits for RESUME.
 */
int dest_attach(struct dest *d)
{
	const struct dest_opts *o = d->o;
	struct handover h;
	int r, uffd;

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
	d->session = h.session;
	d->hs.version = h.wire_version;
	d->hs.caps = h.caps;
	d->nr_chans = h.nr_chans;
	d->rep->channels = d->nr_chans;
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
	/* vmig.ko regions: no uffd, they stayed in postcopy mode. */
	uffd = vmig_ctl_postcopy(d->ctl, o->timeout_ms);
	if (uffd < 0 || !uffd != d->pc.kmod) {
		if (uffd > 0)
			close(uffd);
		return fail(d, uffd < 0 ? uffd : EPROTO, "the VMM did not hand over its "
			    "registration: %s", uffd < 0 ? strerror(-uffd) : d->pc.kmod ?
			    "a userfaultfd for vmig.ko regions" : "no userfaultfd");
	}
	if (d->pc.kmod)
		uffd = -1;
	r = pcd_adopt(&d->pc, uffd);
	if (r == -ENOTTY)
		return fail(d, r, "this vmig.ko cannot queue again the requests the dead helper "
			    "had read (no VMIG_REQUEUE): load a newer module");
	if (r)
		return fail(d, r, "cannot take over the %s: %s", d->pc.kmod ? "regions' requests" :
			    "userfaultfd", strerror(-r));
	if (d->pc_done && d->pc.kmod)
		pck_disable(&d->pc);	/* the regions become ordinary, as after pcd_finish */
	d->pc_running = true;
	d->rep->pc.on = true;
	d->rep->pc.preempt = d->hs.caps & WIRE_CAP_PREEMPT;
	d->t_switch = now_ns();
	/* Ours now: where we listen, for the next one. */
	r = dest_handover_leave(d);
	if (r)
		return fail(d, r, "the VMM did not take the new handover record: %s",
			    strerror(-r));
	return 0;
}
