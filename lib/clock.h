/* SPDX-License-Identifier: GPL-2.0 */
/* libvmig's clock (internal; the helper has its own in helper/common/util.h). */
#ifndef VMIG_LIB_CLOCK_H
#define VMIG_LIB_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ull + t.tv_nsec;
}

#endif
