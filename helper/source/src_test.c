// SPDX-License-Identifier: GPL-2.0
/* Test-only hooks of the postcopy source (src_test.h). */
#include <stdio.h>
#include <sys/socket.h>

#include "postcopy_send.h"
#include "src_test.h"
#include "wire.h"

/*
 * CUT_REQHOLD: src_queue_vec from the last chunk backwards, so that a
 * guest verifying its pages from the first finds them not sent yet.
 */
int src_test_queue_reverse(struct src *s, struct range_vec *rv, uint32_t flags)
{
	size_t i = rv->len;
	int r;

	while (i--) {
		uint64_t first = rv->v[i].first, end = first + rv->v[i].n;

		while (end > first) {
			uint64_t c0 = (end - 1) / WIRE_CHUNK_PAGES * WIRE_CHUNK_PAGES;

			if (c0 < first)
				c0 = first;
			r = src_queue_range(s, rv->v[i].region, c0, end - c0, flags);
			if (r)
				return r;
			end = c0;
		}
	}
	rv->len = 0;
	rv->pages = 0;
	return 0;
}

/* Every connection of the source down at once, as a broken link would. */
void src_test_cut_all(void *arg)
{
	struct postcopy *pc = arg;
	unsigned int i;

	fprintf(stderr, "vmig migrate: test: cutting every connection\n");
	session_shutdown_main(&pc->src->ses);
	for (i = 0; i < pc->src->ses.nr_chans; i++)
		if (pc->src->chans[i].started)
			shutdown(pc->src->chans[i].s.fd, SHUT_RDWR);
	if (pc->ps.rp.fd >= 0)
		shutdown(pc->ps.rp.fd, SHUT_RDWR);
	if (pc->ps.pre.fd >= 0)
		shutdown(pc->ps.pre.fd, SHUT_RDWR);
}

void src_test_arm_req_cut(struct postcopy *pc)
{
	uint64_t arg;
	unsigned int i;

	for (i = 0; i < pc->test.nheld; i++)
		if (pc->test.held[i].n == 2) {	/* CUT_REQDROP: not even on request */
			pc->ps.drop_n = 1;
			pc->ps.drop_region = pc->test.held[i].region;
			pc->ps.drop_page = pc->test.held[i].first;
		}
	if (rec_cut_armed(&pc->test.cuts, &arg) == CUT_REQ ||
	    rec_cut_armed(&pc->test.cuts, &arg) == CUT_REQHOLD ||
	    rec_cut_armed(&pc->test.cuts, &arg) == CUT_REQDROP) {
		pc->ps.cut_req = arg;
		pc->ps.cut = src_test_cut_all;
		pc->ps.cut_arg = pc;
	}
}

/* range_add, leaving out the held pages (CUT_REQHOLD). */
int src_test_add_unheld(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct postcopy *pc = arg;
	uint64_t end = first + n;
	unsigned int i;

	for (i = 0; i < pc->test.nheld; i++) {
		uint64_t h = pc->test.held[i].first;
		int r;

		if (pc->test.held[i].region != region || h < first || h >= end)
			continue;
		r = h > first ? src_test_add_unheld(pc, region, first, h - first) : 0;
		if (r || h + 1 >= end)
			return r;
		return src_test_add_unheld(pc, region, h + 1, end - h - 1);
	}
	return range_add(&pc->src->dirty, region, first, n);
}

void src_test_note_cut(struct postcopy *pc)
{
	enum rec_cut_kind k;
	uint64_t a;

	if (!atomic_load(&pc->ps.cut_fired))
		return;
	k = rec_cut_armed(&pc->test.cuts, &a);
	/* n: 1 held from the background, 2 also never sent on request */
	if ((k == CUT_REQHOLD || k == CUT_REQDROP) && pc->test.nheld < REC_MAX_CUTS)
		pc->test.held[pc->test.nheld++] = (struct range){ .region = pc->ps.cut_region,
								  .first = pc->ps.cut_page,
								  .n = k == CUT_REQDROP ? 2 : 1 };
	pc->test.cuts.next++;
}

bool src_test_reverse(const struct src_test *t)
{
	unsigned int i;

	for (i = 0; i < t->cuts.n; i++)
		if (t->cuts.kind[i] == CUT_REQHOLD || t->cuts.kind[i] == CUT_REQDROP)
			return true;
	return false;
}
