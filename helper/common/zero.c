// SPDX-License-Identifier: GPL-2.0
#include <stdint.h>

#include "wire.h"
#include "zero.h"

bool page_is_zero(const void *p)
{
	const uint64_t *w = p;
	unsigned int i;

	if (w[0] | w[WIRE_PAGE_SIZE / 16])
		return false;
	for (i = 0; i < WIRE_PAGE_SIZE / 8; i += 8) {
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] |
		    w[i + 7])
			return false;
	}
	return true;
}
