/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy helpers shared by the module selftests: the data a page carries
 * in a test (a pattern of its index and a seed), placing it, and reading
 * one missing-page request.  Each ioctl wrapper returns 0 or -errno.
 */
#ifndef VMIG_POSTCOPY_UTIL_H
#define VMIG_POSTCOPY_UTIL_H

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "vmig_test.h"

/* Fill @dst with the data page @index carries with @seed. */
static inline void vmig_pattern_fill(void *dst, uint64_t index, uint64_t seed)
{
	uint64_t *w = dst;
	size_t i, n = vmig_page_size() / 8;

	for (i = 0; i < n; i++)
		w[i] = (index << 32 | i) ^ (seed * 0x9e3779b97f4a7c15ull);
}

/* Words of @p that differ from that pattern, the last @skip words ignored. */
static inline size_t vmig_pattern_errors(const void *p, uint64_t index, uint64_t seed,
					 size_t skip)
{
	const volatile uint64_t *w = p;
	size_t i, bad = 0, n = vmig_page_size() / 8;

	for (i = 0; i < n - skip; i++)
		if (w[i] != ((index << 32 | i) ^ (seed * 0x9e3779b97f4a7c15ull)))
			bad++;
	return bad;
}

/* VMIG_PLACE; *@placed (if given) gets the bytes placed, on error too. */
static inline int vmig_place(int fd, uint64_t offset, uint64_t len, const void *src,
			     uint32_t flags, uint64_t *placed)
{
	struct vmig_place pl = {
		.offset = offset, .len = len,
		.src = (uintptr_t)src, .flags = flags,
	};
	int ret = ioctl(fd, VMIG_PLACE, &pl) ? -errno : 0;

	if (placed)
		*placed = pl.placed;
	return ret;
}

/* Place page @index with its pattern. */
static inline int vmig_place_page(int fd, uint64_t index, uint64_t seed)
{
	long ps = vmig_page_size();
	uint64_t buf[ps / 8];

	vmig_pattern_fill(buf, index, seed);
	return vmig_place(fd, index * ps, ps, buf, 0, NULL);
}

/* A thread that reads the first word of a (missing) page and keeps it. */
struct pc_toucher {
	volatile uint64_t *addr;
	atomic_int done;
	uint64_t value;
	pthread_t thread;
};

static inline void *pc_toucher_main(void *arg)
{
	struct pc_toucher *t = arg;

	t->value = *t->addr;
	atomic_store(&t->done, 1);
	return NULL;
}

static inline void pc_toucher_start(struct pc_toucher *t, void *addr)
{
	memset(t, 0, sizeof(*t));
	t->addr = addr;
	pthread_create(&t->thread, NULL, pc_toucher_main, t);
}

/* Read one request, waiting for it at most 20 s. */
static inline int vmig_read_request(int fd, struct vmig_request *req)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 20000) != 1)
		return -ETIMEDOUT;
	n = read(fd, req, sizeof(*req));
	if (n < 0)
		return -errno;
	return n == sizeof(*req) ? 0 : -EIO;
}

#endif
