/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the helper: clocks, waits on one fd, argument parsing. */
#ifndef VMIG_UTIL_H
#define VMIG_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t now_ns(void);
struct timespec;
/*
 * @ms from now on CLOCK_MONOTONIC, for pthread_cond_timedwait() on a
 * condition variable whose clock was set to CLOCK_MONOTONIC.
 */
void cond_deadline_in(struct timespec *ts, int ms);
/*
 * poll() one fd for @events, at most @timeout_ms (-1: unbounded), EINTR
 * retried: 0 once ready, -ETIMEDOUT, or -errno.
 */
int poll_fd(int fd, short events, int timeout_ms);
/*
 * Exactly @n bytes from @fd, each wait bounded by @timeout_ms: 0, -ETIMEDOUT,
 * -ECONNRESET (the peer closed), -ECANCELED once *@stop is set (checked after
 * every wait; NULL: never), or -errno.
 */
int read_full(int fd, void *buf, size_t n, int timeout_ms, const _Atomic bool *stop);
/* "256M", "1G", "4096", "2k": bytes; -1 on a bad string. */
int64_t parse_size(const char *s);
/* A non-negative integer within [min, max]; false if not. */
bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
struct option;
/*
 * "vmig CMD: bad value 'V' for --NAME (see --help)" on stderr, NAME looked up
 * in @opts by the getopt_long() return value @opt.
 */
void bad_option_value(const char *cmd, const struct option *opts, int opt,
		      const char *value);
/* Human-readable bytes ("1.5 GiB") into buf. */
const char *fmt_bytes(double bytes, char *buf, unsigned int len);

/* With VMIG_TRACE set in the environment: a timestamped line on stderr. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
