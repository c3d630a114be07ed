/* SPDX-License-Identifier: GPL-2.0 */
/* What a person (progress bar, text report) or a program (--json) sees. */
#ifndef VMIG_REPORT_H
#define VMIG_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "switchover.h"

#define REPORT_LAT_BUCKETS	24	/* log2 µs: [2^i, 2^(i+1)) µs; bucket 0 also < 1 µs */

/* Postcopy: what the page requests cost (destination) or served (source). */
struct report_pc {
	bool on, preempt;
	bool reply_return;		/* preempt: the pages came on the return path (REPLY_RETURN) */
	uint64_t switch_ns;		/* switch to postcopy end */
	uint64_t discarded;		/* pages dirtied after they were sent */
	uint64_t released;		/* prefaulted pages released at the handshake */
	uint64_t faults, requests, coalesced, urgent_pages, eexist;
	uint64_t kernel_requests;	/* of requests: written by vmig.ko itself */
	/* recovery: reconnections after a cut, time paused in all, requests asked again */
	uint64_t recoveries, paused_ns, last_pause_ns, resent;
	const char *sched;		/* the urgent thread's scheduling (NULL: none ran) */
	int cpu;			/* the CPU it followed last (-1: none) */
	unsigned int cpu_moves;		/* times it moved (--postcopy-cpu follow) */
	uint64_t lat_count;		/* requests answered: fault read by the helper to page placed */
	double lat_avg_us, lat_p50_us, lat_p99_us, lat_max_us;
	uint64_t lat_hist[REPORT_LAT_BUCKETS];
	/* kmod only: from the fault itself (the module's time stamp) to page placed */
	uint64_t flat_count;
	double flat_avg_us, flat_p99_us;
};

struct report {
	const char *role;		/* "source" or "destination" */
	bool events;			/* --json: events as JSON lines on stdout too */
	const char *backend;		/* "uffd" */
	const char *tracking;		/* "async", "sync" ("" on a destination) */
	bool ok;
	char error[256];
	unsigned int channels;
	uint64_t guest_bytes;
	uint64_t total_ns, setup_ns, downtime_ns;
	double cpu_s;			/* the helper's CPU time up to the end (report_note_cpu) */
	double prefault_cpu_s;		/* destination: of it, allocating guest RAM up front */
	uint64_t prefault_ns;		/* ... and how long that took, before any source came */
	uint64_t normal_pages, zero_pages, skipped_pages;
	uint64_t wire_bytes;
	unsigned int rounds;		/* dirty rounds after the bulk stage */
	bool stalled;
	unsigned int throttle_pct;	/* auto-converge: the highest throttle asked for */
	char switchover[128];		/* why precopy ended */
	double bandwidth;		/* bytes/s measured */
	double dirty_rate;		/* bytes/s at the last harvest */
	double expected_downtime_ms;
	uint64_t wp_faults, harvests, harvest_ns;
	/* kmod: pages the module write-protected from the stop to the end (the last harvest's) */
	bool protected_known;
	uint64_t protected_after_stop;
	/* device state, free-page hints, the parts of the downtime */
	unsigned int devices;
	uint64_t device_bytes, device_buffer_peak, free_pages;
	uint64_t device_precopy_bytes, device_precopy_ns;	/* sent before switchover */
	unsigned int free_hints;	/* hints taken (the first and its updates) */
	uint64_t free_pages_updated;	/* of free_pages, skipped only thanks to an update */
	uint64_t dt_stop_ns, dt_pages_ns, dt_dev_save_ns, dt_dev_send_ns, dt_load_ns, dt_resume_ns;
	uint64_t stop_ran_ns;		/* the guest ran on after STOP: the VMM's preparation */
	/* the switchover's prediction (switchover.h), made just before the switch */
	bool predicted;
	struct sw_parts pred;		/* ms, part by part; the total is expected_downtime_ms */
	double downtime_limit_ms;
	bool over_limit;		/* switched with the prediction over the limit (policy) */
	uint64_t device_left_bytes;	/* device state left for the downtime, predicted */
	struct report_pc pc;
};

/*
 * Record why the migration failed (the first reason wins; later ones are
 * consequences) and return err as a negative errno, so that a caller can
 * write `return report_fail(rep, r, "...: %s", ...);`.
 */
int report_fail(struct report *r, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
double report_throughput(const struct report *r);
/*
 * At the migration's end, before guest RAM is unmapped and closed (freeing
 * it is no cost of the migration): note the CPU seconds (user + system)
 * this process has used, all its threads, not its children (getrusage
 * RUSAGE_SELF: what /proc/PID/stat counts).  The reports print them as cpu_s.
 */
void report_note_cpu(struct report *r);
/* This process's CPU seconds so far (user + system, all threads). */
double report_cpu_now(void);
void report_print_text(const struct report *r, FILE *f);
void report_print_json(const struct report *r, FILE *f);
/*
 * A command's ending: the report on stdout (JSON or text), the failure on
 * stderr after @who; returns the exit status, 0 or 1.
 */
int report_finish(const struct report *r, bool json, const char *who);

/*
 * With r->events (--json): one line {"event":EVENT,"time":UNIX_SECONDS,...}
 * on stdout, flushed; fmt gives the rest of the fields (JSON, no leading
 * comma).  The final report stays the last line.
 */
void report_event(const struct report *r, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* s as a JSON string literal (quoted, escaped) in buf. */
const char *json_quote(char *buf, size_t len, const char *s);

/* A one-line progress bar on a terminal (stderr); silent elsewhere. */
struct progress {
	bool enabled;
	bool shown;
	uint64_t last_ns;
	double predicted_ms;		/* source: the predicted downtime (< 0: none yet) */
	uint64_t device_left;		/* ... and the device state still to send */
};

void progress_init(struct progress *p, bool want);
/* done/total of the current round (pages). */
void progress_update(struct progress *p, unsigned int round, uint64_t done, uint64_t total,
		     double rate);
void progress_clear(struct progress *p);

#endif
