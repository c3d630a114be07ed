/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy destination: request latency samples (postcopy_stats.c).  The
 * owner serializes the calls (struct pc_dst: under its lock).
 */
#ifndef VMIG_POSTCOPY_STATS_H
#define VMIG_POSTCOPY_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"

struct pcd_lat {
	uint64_t *lat;		/* fault-read-to-wake samples, ns (both backends) */
	size_t nlat, lat_cap;
	uint64_t *flat;		/* fault-to-wake samples, ns (where the backend stamps faults) */
	size_t nflat, flat_cap;
};

/*
 * A request answered now: t_read when the helper read its fault, t_fault
 * when the fault happened (0: unknown).  Best effort: a sample that finds
 * no memory is dropped.
 */
void pcd_lat_add(struct pcd_lat *l, uint64_t t_read, uint64_t t_fault);
/* Counts, average, percentiles and histogram into the report (sorts the samples). */
void pcd_lat_report(struct pcd_lat *l, struct report_pc *r);
void pcd_lat_free(struct pcd_lat *l);

#endif
