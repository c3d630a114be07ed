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

bool throttle_maxed(const struct throttle *t)
{
	return t->percent >= THROTTLE_MAX;
}
