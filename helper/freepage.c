// SPDX-License-Identifier: GPL-2.0
/* Free-page hints: ask the VMM, and leave hinted pages out of the bulk stage. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "freepage.h"

int freepage_query(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms)
{
	int r;

	memset(fp, 0, sizeof(*fp));
	fp->nr_regions = vmig_ctl_region_count(ctl);
	if (fp->nr_regions > WIRE_MAX_REGIONS)
		return -EINVAL;
	r = vmig_ctl_free_hint(ctl, timeout_ms, fp->bits);
	if (r == -ENOENT) {
		memset(fp->bits, 0, sizeof(fp->bits));
		return 0;
	}
	return r;
}

static bool is_free(const uint64_t *bits, uint64_t page)
{
	return bits[page / 64] >> (page % 64) & 1;
}

int freepage_filter_cb(void *filter, unsigned int region, uint64_t first, uint64_t n)
{
	struct freepage_filter *f = filter;
	const uint64_t *bits = region < f->fp->nr_regions ? f->fp->bits[region] : NULL;
	uint64_t end = first + n, p = first;
	int r;

	if (!bits)
		return f->fn(f->arg, region, first, n);
	while (p < end) {
		uint64_t q = p;

		while (q < end && is_free(bits, q))
			q++;
		f->fp->skipped += q - p;
		p = q;
		while (q < end && !is_free(bits, q))
			q++;
		if (q > p) {
			r = f->fn(f->arg, region, p, q - p);
			if (r)
				return r;
		}
		p = q;
	}
	return 0;
}

void freepage_free(struct freepage *fp)
{
	unsigned int i;

	for (i = 0; i < WIRE_MAX_REGIONS; i++) {
		free(fp->bits[i]);
		fp->bits[i] = NULL;
	}
}
