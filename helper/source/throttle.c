// SPDX-License-Identifier: GPL-2.0
/* Auto-converge: how much to throttle the source guest, round by round. */
#include "throttle.h"

unsigned int throttle_next(struct throttle *t, uint64_t dirty_pages)
{
	uint64_t last = t->last_pages;

	t->last_pages = dirty_pages;
	/* No reference yet, or the set halved: no more throttling needed. */
	if (!last || dirty_pages < THROTTLE_SHRINK * last)
		return t->percent;
	if (!t->percent)
		return THROTTLE_INITIAL;
	return t->percent + THROTTLE_STEP > THROTTLE_MAX ? THROTTLE_MAX :
	       t->percent + THROTTLE_STEP;
}

unsigned int throttle_bulk(struct throttle *t, uint64_t redirtied, uint64_t sent)
{
	double run, want;
	unsigned int pct;

	if (!sent || redirtied <= THROTTLE_BULK_SHARE * sent)
		return t->percent;
	/* run' / run = threshold / measured: the rate scales with the share run. */
	run = (100 - t->percent) * (THROTTLE_BULK_SHARE * sent / redirtied);
	want = 100 - run;
	pct = want >= THROTTLE_MAX ? THROTTLE_MAX : (unsigned int)(want + 0.5);
	if (pct < THROTTLE_INITIAL)
		pct = THROTTLE_INITIAL;
	return pct > t->percent ? pct : t->percent;
}

bool throttle_maxed(const struct throttle *t)
{
	return t->percent >= THROTTLE_MAX;
}
