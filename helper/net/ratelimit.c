// SPDX-License-Identifier: GPL-2.0
#include <time.h>

#include "ratelimit.h"
#include "util.h"

void ratelimit_init(struct ratelimit *rl, uint64_t bytes_per_sec)
{
	rl->bytes_per_sec = bytes_per_sec;
	rl->t_last = now_ns();
	rl->tokens = 0;
}

void ratelimit_wait(struct ratelimit *rl, uint64_t len)
{
	double cap;

	if (!rl->bytes_per_sec)
		return;
	cap = rl->bytes_per_sec * 0.05;
	for (;;) {
		uint64_t t = now_ns();

		rl->tokens += (t - rl->t_last) * 1e-9 * rl->bytes_per_sec;
		rl->t_last = t;
		if (rl->tokens > cap && rl->tokens > len)
			rl->tokens = cap > len ? cap : len;
		if (rl->tokens >= len) {
			rl->tokens -= len;
			return;
		}
		{
			double wait = (len - rl->tokens) / rl->bytes_per_sec;
			struct timespec ts = { .tv_sec = (time_t)wait,
					       .tv_nsec = (long)((wait - (time_t)wait) * 1e9) };

			nanosleep(&ts, NULL);
		}
	}
}
