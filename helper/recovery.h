/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy recovery (wire.h: RESUME, RECEIVED): a channel that breaks
 * during postcopy pauses both helpers instead of failing them.  The
 * destination's guest runs on (threads touching missing pages wait in
 * userfaultfd), the source keeps every page; the source reconnects with
 * backoff, the destination sends its received bitmap, the source re-sends
 * what is missing and the destination re-sends its outstanding requests.
 */
#ifndef VMIG_RECOVERY_H
#define VMIG_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "postcopy_dst.h"
#include "stream.h"

/* A failure a reconnection may cure (the peer or the link went away). */
bool rec_transient(int err);

/* Destination: the received bitmap as RECEIVED packets, then RESUMED. */
int rec_send_bitmap(struct stream *s, struct pc_dst *pc);
/*
 * Source: read RECEIVED* up to RESUMED into per-region bitmaps (allocated
 * here, freed with rec_free_bitmap), checked against guest RAM's shape.
 */
int rec_recv_bitmap(struct stream *s, struct vmig_ram *ram, uint64_t **bm);
void rec_free_bitmap(uint64_t **bm);
/* Source: fn for every page range that holds data here and is missing there. */
int rec_missing_data(struct vmig_ram *ram, uint64_t **bm,
		     int (*fn)(void *, unsigned int, uint64_t, uint64_t), void *arg);

/* Tests: where to cut every connection of the source (--inject-cut). */
enum rec_cut_kind { CUT_NONE, CUT_PAGES, CUT_REQ, CUT_RESUME };
#define REC_MAX_CUTS	8
struct rec_cuts {
	unsigned int n, next;
	enum rec_cut_kind kind[REC_MAX_CUTS];
	uint64_t arg[REC_MAX_CUTS];
};
/* "pages:N,req:N,resume,...": 0 or -EINVAL. */
int rec_parse_cuts(struct rec_cuts *c, const char *spec);
/* The armed cut's kind (CUT_NONE when none is left) and its argument. */
enum rec_cut_kind rec_cut_armed(const struct rec_cuts *c, uint64_t *arg);

#endif
