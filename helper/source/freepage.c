// SPDX-License-Identifier: GPL-2.0
/* Free-page hints: ask the VMM, and leave hinted pages out of the bulk stage. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "freepage.h"

static uint64_t region_pages(struct vmig_ctl *ctl, unsigned int i)
{
	uint64_t size = 0, addr;
	int memfd;

	vmig_ctl_region(ctl, i, &memfd, &size, &addr);
	return size / WIRE_PAGE_SIZE;
}

int freepage_query(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms)
{
	unsigned int i;
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
	if (r)
		return r;
	fp->have = true;
	fp->hints = 1;
	for (i = 0; i < fp->nr_regions; i++) {
		size_t n = (region_pages(ctl, i) + 63) / 64 * 8;

		fp->first[i] = malloc(n ? n : 8);
		if (!fp->first[i])
			return -ENOMEM;
		memcpy(fp->first[i], fp->bits[i], n);
	}
	return 0;
}

int freepage_update(struct freepage *fp, struct vmig_ctl *ctl, int timeout_ms)
{
	uint64_t *bits[WIRE_MAX_REGIONS] = { 0 };
	unsigned int i;
	int r;

	if (!fp->have)
		return 0;
	r = vmig_ctl_free_hint(ctl, timeout_ms, bits);
	if (r == -ENOENT) {		/* none this time: nothing is known free */
		for (i = 0; i < fp->nr_regions; i++) {
			free(fp->bits[i]);
			fp->bits[i] = NULL;
		}
		return 0;
	}
	if (r)
		return r;
	for (i = 0; i < fp->nr_regions; i++) {
		free(fp->bits[i]);
		fp->bits[i] = bits[i];
	}
	fp->hints++;
	return 0;
}

static bool is_free(const uint64_t *bits, uint64_t page)
{
	return bits[page / 64] >> (page % 64) & 1;
}

int freepage_filter_cb(void *filter, unsigned int region, uint64_t first, uint64_t n)
{
	struct freepage_filter *f = filter;
	const uint64_t *bits = region < f->fp->nr_regions ? f->fp->bits[region] : NULL;
	const uint64_t *bits0 = region < f->fp->nr_regions ? f->fp->first[region] : NULL;
	uint64_t end = first + n, p = first;
	int r;

	if (!bits)
		return f->fn(f->arg, region, first, n);
	while (p < end) {
		uint64_t q = p;

		while (q < end && is_free(bits, q)) {
			if (!bits0 || !is_free(bits0, q))
				f->fp->skipped_updated++;
			q++;
		}
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
		free(fp->first[i]);
		fp->bits[i] = NULL;
		fp->first[i] = NULL;
	}
}
