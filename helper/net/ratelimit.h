/* SPDX-License-Identifier: GPL-2.0 */
/* A token bucket per channel (no shared state: each gets its share). */
#ifndef VMIG_RATELIMIT_H
#define VMIG_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	uint64_t bytes_per_sec;		/* 0: unlimited */
	uint64_t t_last;		/* ns */
	double tokens;			/* bytes allowed now; capped at 50 ms worth */
};

void ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec);
/* Sleep until len bytes may go. */
void ratelimit_wait(struct ratelimit *rl, uint64_t len);

#endif
