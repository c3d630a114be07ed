/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Test-only hooks of the postcopy source (vmig migrate --inject-cut):
 * where to cut every connection, and pages held back from the background
 * transfer so that only a request (or nothing: CUT_REQDROP) brings them.
 * None of this runs unless a test armed it; the state lives here, apart
 * from the postcopy source's own (postcopy_send.h embeds it).
 */
#ifndef VMIG_SRC_TEST_H
#define VMIG_SRC_TEST_H

#include <stdbool.h>
#include <stdint.h>

#include "recovery.h"
#include "src.h"

struct postcopy;

struct src_test {
	struct rec_cuts cuts;		/* cut every connection at these points */
	/* pages never sent in the background (one each; n 2: nor on request) */
	struct range held[REC_MAX_CUTS];
	unsigned int nheld;
};

/* Every connection of the source down at once, as a broken link would (arg: the postcopy). */
void src_test_cut_all(void *arg);
/* Arm the return-path thread for the armed request cut and the dropped pages, if any. */
void src_test_arm_req_cut(struct postcopy *pc);
/* After a pause: count the request cut that fired, holding its page (reqhold, reqdrop). */
void src_test_note_cut(struct postcopy *pc);
/* Is a reqhold or reqdrop cut armed: the background then goes backwards. */
bool src_test_reverse(const struct src_test *t);
/* src_queue_vec from the last chunk backwards, so a guest reading from the first waits. */
int src_test_queue_reverse(struct src *s, struct range_vec *rv, uint32_t flags);
/* range_add into pc's dirty set, leaving out the held pages (arg: the postcopy). */
int src_test_add_unheld(void *arg, unsigned int region, uint64_t first, uint64_t n);

#endif
