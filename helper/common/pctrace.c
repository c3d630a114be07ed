// SPDX-License-Identifier: GPL-2.0
/* Debug: per-request postcopy stage stamps (VMIG_PC_TRACE, see pctrace.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "pctrace.h"

#define PCT_MAX	(1u << 20)

void pct_open(struct pctrace *t, const char *suffix)
{
	const char *p = getenv("VMIG_PC_TRACE");

	memset(t, 0, sizeof(*t));
	if (!p || !*p)
		return;
	snprintf(t->path, sizeof(t->path), "%s.%s", p, suffix);
	t->cap = 1u << 14;
	t->v = calloc(t->cap, sizeof(*t->v));
	pthread_mutex_init(&t->lock, NULL);
}

uint64_t pct_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void pct_rx_enable(int fd)
{
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}

uint64_t pct_rx_stamp(int fd)
{
	char b, cbuf[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;

	if (recvmsg(fd, &m, MSG_PEEK | MSG_DONTWAIT) <= 0)
		return 0;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			return ts.tv_sec * 1000000000ull + ts.tv_nsec;
		}
	}
	return 0;
}

void pct_add(struct pctrace *t, char tag, uint32_t region, uint64_t page,
	     uint64_t t0, uint64_t t1, uint64_t t2)
{
	if (!t->v)
		return;
	pthread_mutex_lock(&t->lock);
	if (t->n == t->cap) {
		struct pct_rec *v = t->cap < PCT_MAX ?
				    realloc(t->v, 2 * t->cap * sizeof(*v)) : NULL;

		if (!v)
			goto out;
		t->v = v;
		t->cap *= 2;
	}
	t->v[t->n++] = (struct pct_rec){ .tag = tag, .region = region, .page = page,
					 .t = { t0, t1, t2 } };
out:
	pthread_mutex_unlock(&t->lock);
}

void pct_close(struct pctrace *t)
{
	FILE *f;
	size_t i;

	if (!t->v)
		return;
	f = fopen(t->path, "a");
	for (i = 0; f && i < t->n; i++)
		fprintf(f, "%c %u %llu %llu %llu %llu\n", t->v[i].tag, t->v[i].region,
			(unsigned long long)t->v[i].page, (unsigned long long)t->v[i].t[0],
			(unsigned long long)t->v[i].t[1], (unsigned long long)t->v[i].t[2]);
	if (f)
		fclose(f);
	free(t->v);
	t->v = NULL;
	pthread_mutex_destroy(&t->lock);
}
