/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Debug: the stages of each postcopy page request, for finding where its
 * latency goes.  Off unless VMIG_PC_TRACE=PREFIX is set; then each side
 * keeps one record per request (CLOCK_REALTIME, ns, so both hosts' or
 * namespaces' stamps line up on one machine) and writes them at the end to
 * PREFIX.src / PREFIX.dst, one "region page t0 t1 t2" line each:
 *   dst "R": fault read, request written to the return path, the fault
 *            itself (kmod: the module's stamp; 0 on uffd);
 *   src "S": request arrived (kernel receive stamp), read, page written;
 *   dst "P": page arrived (kernel receive stamp), read, placed;
 *   dst "B": a request answered by the background stream: the placing
 *            call began, returned (the latency's end), 0.
 * bench/pc_stages.py joins them.  A traced helper reads those sockets
 * without read-ahead (stream_readahead), a packet's parts one at a time,
 * since each stamp is read off the socket: a few syscalls more per request.
 */
#ifndef VMIG_PCTRACE_H
#define VMIG_PCTRACE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct pct_rec {
	char tag;
	uint32_t region;
	uint64_t page, t[3];
};

struct pctrace {
	struct pct_rec *v;		/* NULL: tracing off */
	size_t n, cap;
	pthread_mutex_t lock;		/* pct_add from several threads */
	char path[256];
};

/* Tracing on if VMIG_PC_TRACE is set; records go to $VMIG_PC_TRACE.suffix. */
void pct_open(struct pctrace *t, const char *suffix);
static inline bool pct_on(const struct pctrace *t)
{
	return t->v;
}
uint64_t pct_now(void);
/* Ask the kernel to stamp what fd receives (SO_TIMESTAMPNS). */
void pct_rx_enable(int fd);
/* The receive stamp of the first byte queued on fd (0: none). */
uint64_t pct_rx_stamp(int fd);
void pct_add(struct pctrace *t, char tag, uint32_t region, uint64_t page,
	     uint64_t t0, uint64_t t1, uint64_t t2);
/* Write the records (if on) and free them. */
void pct_close(struct pctrace *t);

#endif
