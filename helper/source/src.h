/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the source's rooms share for one migration: the options and the
 * report, the source VMM and its guest RAM, the session (main channel,
 * handshake), the multifd channels, the pages to send next, and the
 * device state sender.  The sequencer (precopy.c) owns it; the bulk stage
 * and dirty rounds (precopy.c), the postcopy source (postcopy_send.h),
 * recovery (src_recover.h) and --attach (src_attach.c) are passed it.
 *
 * Lifetime: src_setup (or --attach's own setup) fills it, src_collect
 * adds what the channels counted to the report, src_close frees it.
 */
#ifndef VMIG_SRC_H
#define VMIG_SRC_H

#include <stdbool.h>
#include <stdint.h>

#include "devstate_send.h"
#include "freepage.h"
#include "libvmig.h"
#include "multifd_send.h"
#include "postcopy_src.h"
#include "precopy.h"
#include "report.h"
#include "session.h"

struct range {
	uint32_t region;
	uint64_t first, n;
};

struct range_vec {
	struct range *v;
	size_t len, cap;
	uint64_t pages;
};

struct src {
	const struct precopy_opts *o;
	struct report *rep;
	struct vmig_ctl *ctl;		/* the source VMM */
	struct vmig_ram *ram;
	struct session ses;		/* main channel, id, handshake, peer */
	struct send_chan *chans;	/* ses.nr_chans of them started */
	struct range_vec dirty;		/* the pages to send (or discard) next */
	struct devstate_send ds;
	bool vm_stopped;		/* stopped by us: resume it if we fail */
	bool tracking;			/* dirty tracking on (src_setup) */
	uint64_t harvest_cost_ns;	/* the latest harvest */
	/* The module's pages_protected at the stop (vmig_ram_pages_protected), if it has one. */
	bool protected_known;
	uint64_t protected_at_stop;
};

/* A range_vec's callback for vmig_ram_* listings: append, merging neighbours. */
int range_add(void *arg, unsigned int region, uint64_t first, uint64_t n);

/*
 * Connect to the VMM, map guest RAM, set up device state, open the session
 * (main channel, handshake, multifd channels, and ps's return path for
 * postcopy), start dirty tracking; fp takes the free-page hint (before or
 * after tracking starts, as o->hint_before_tracking says).  Postcopy from
 * the start sends no page before the switch: neither tracking nor hint.  *rtt_ns: the
 * device query's round trip to the VMM.  0 or -errno (s->rep says why).
 */
int src_setup(struct src *s, struct pc_src *ps, struct freepage *fp, uint64_t *rtt_ns);
/* Queue a range, split at chunk boundaries: a chunk always goes to the same channel. */
int src_queue_range(struct src *s, uint32_t region, uint64_t first, uint64_t n, uint32_t flags);
/* Queue every range of rv (emptied). */
int src_queue_vec(struct src *s, struct range_vec *rv, uint32_t flags);
/* Pages processed and bytes written by every channel so far. */
uint64_t src_pages_done(struct src *s);
uint64_t src_bytes(struct src *s);
/* A ROUND packet on the main channel. */
int src_send_round_info(struct src *s, unsigned int round, uint64_t pages);
/* Harvest the dirty pages into s->dirty (timed: s->harvest_cost_ns). */
int src_harvest(struct src *s);
/*
 * Stop the guest (s->rep->dt_stop_ns: how long the VMM took once the vCPUs
 * were stopped; s->rep->stop_ran_ns: how long they ran on before, the
 * downtime starts that much after the call), then the last harvest if
 * tracking is on.
 */
int src_stop_vm(struct src *s);
/*
 * The rest of the device state, on every channel before its marker or
 * end (devstate_send_all); its time and sizes go in the report.
 */
int src_send_devstate(struct src *s);
/* Between waits: the VMM still there, and nothing but NOPs on the main channel. */
int src_check_main(struct src *s);
/* Multifd channel i failed with r: report it, in the destination's words if it said why. */
int src_channel_failed(struct src *s, unsigned int i, int r);
/* After a failure: the destination's reason, if it gave one on the main channel. */
void src_dest_reason(struct src *s);
/* Add what the channels, the main channel and the backend counted to the report. */
void src_collect(struct src *s);
/* Stop the channels' threads, close every connection, the RAM and the VMM. */
void src_close(struct src *s);

#endif
