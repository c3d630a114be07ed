// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "util.h"
#include "wire.h"

static double secs(uint64_t ns)
{
	return ns / 1e9;
}

/* Page data per second of transfer (setup excluded). */
double report_throughput(const struct report *r)
{
	uint64_t ns = r->total_ns > r->setup_ns ? r->total_ns - r->setup_ns : 0;

	return ns ? r->normal_pages * (double)WIRE_PAGE_SIZE / secs(ns) : 0;
}

void report_print_text(const struct report *r, FILE *f)
{
	char b1[32], b2[32], b3[32], b4[32];
	double thr = report_throughput(r);

	fprintf(f, "vmig %s: %s\n", r->role, r->ok ? "migration complete" : "migration FAILED");
	if (!r->ok)
		fprintf(f, "  error:       %s\n", r->error);
	fprintf(f, "  guest RAM:   %s, backend %s%s%s, %u multifd channel%s\n",
		fmt_bytes(r->guest_bytes, b1, sizeof(b1)), r->backend,
		r->tracking[0] ? ", tracking " : "", r->tracking, r->channels,
		r->channels == 1 ? "" : "s");
	fprintf(f, "  total time:  %.3f s (setup %.3f s)\n", secs(r->total_ns), secs(r->setup_ns));
	if (!strcmp(r->role, "source"))
		fprintf(f, "  downtime:    %.1f ms (vCPU stop to resume on the destination)\n",
			r->downtime_ns / 1e6);
	fprintf(f, "  pages:       normal %s, zero %s, skipped %s (wire %s)\n",
		fmt_bytes(r->normal_pages * (double)WIRE_PAGE_SIZE, b1, sizeof(b1)),
		fmt_bytes(r->zero_pages * (double)WIRE_PAGE_SIZE, b2, sizeof(b2)),
		fmt_bytes(r->skipped_pages * (double)WIRE_PAGE_SIZE, b3, sizeof(b3)),
		fmt_bytes(r->wire_bytes, b4, sizeof(b4)));
	fprintf(f, "  throughput:  %s/s of page data after setup", fmt_bytes(thr, b1, sizeof(b1)));
	if (!strcmp(r->role, "source"))
		fprintf(f, " (link measured %s/s)", fmt_bytes(r->bandwidth, b2, sizeof(b2)));
	fprintf(f, "\n");
	if (!strcmp(r->role, "source")) {
		fprintf(f, "  rounds:      %u dirty round%s after the bulk stage%s\n", r->rounds,
			r->rounds == 1 ? "" : "s", r->stalled ? " (stalled)" : "");
		if (r->switchover[0])
			fprintf(f, "  switchover:  %s\n", r->switchover);
		fprintf(f, "  tracking:    %llu harvests in %.1f ms, %llu write faults resolved\n",
			(unsigned long long)r->harvests, r->harvest_ns / 1e6,
			(unsigned long long)r->wp_faults);
	}
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

void report_print_json(const struct report *r, FILE *f)
{
	double thr = report_throughput(r);

	fprintf(f, "{\"role\":\"%s\",\"ok\":%s,\"error\":", r->role, r->ok ? "true" : "false");
	json_str(f, r->error);
	fprintf(f, ",\"backend\":\"%s\",\"tracking\":\"%s\",\"channels\":%u,\"guest_bytes\":%llu,"
		"\"total_ms\":%.3f,\"setup_ms\":%.3f,\"downtime_ms\":%.3f,"
		"\"bytes\":{\"normal\":%llu,\"zero\":%llu,\"skipped\":%llu,\"wire\":%llu},"
		"\"rounds\":%u,\"stalled\":%s,\"switchover\":",
		r->backend, r->tracking, r->channels, (unsigned long long)r->guest_bytes,
		r->total_ns / 1e6, r->setup_ns / 1e6, r->downtime_ns / 1e6,
		(unsigned long long)(r->normal_pages * WIRE_PAGE_SIZE),
		(unsigned long long)(r->zero_pages * WIRE_PAGE_SIZE),
		(unsigned long long)(r->skipped_pages * WIRE_PAGE_SIZE),
		(unsigned long long)r->wire_bytes, r->rounds, r->stalled ? "true" : "false");
	json_str(f, r->switchover);
	fprintf(f, ",\"throughput_bps\":%.0f,\"bandwidth_bps\":%.0f,\"dirty_rate_bps\":%.0f,"
		"\"expected_downtime_ms\":%.3f,\"wp_faults\":%llu,\"harvests\":%llu,"
		"\"harvest_ms\":%.3f}\n", thr, r->bandwidth, r->dirty_rate,
		r->expected_downtime_ms, (unsigned long long)r->wp_faults,
		(unsigned long long)r->harvests, r->harvest_ns / 1e6);
}

void progress_init(struct progress *p, bool want)
{
	memset(p, 0, sizeof(*p));
	p->enabled = want && isatty(STDERR_FILENO);
}

void progress_update(struct progress *p, unsigned int round, uint64_t done, uint64_t total,
		     double rate)
{
	char bar[31], b1[32], b2[32], what[24];
	uint64_t t = now_ns();
	unsigned int i, fill;

	if (!p->enabled || t - p->last_ns < 100000000ull)
		return;
	p->last_ns = t;
	fill = total ? (unsigned int)(30 * (double)done / total) : 30;
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = 0;
	if (round)
		snprintf(what, sizeof(what), "round %-3u", round);
	else
		snprintf(what, sizeof(what), "bulk     ");
	fprintf(stderr, "\r[%s] %s remaining %10s  %10s/s ", bar, what,
		fmt_bytes((total - done) * (double)WIRE_PAGE_SIZE, b1, sizeof(b1)),
		fmt_bytes(rate, b2, sizeof(b2)));
	p->shown = true;
}

void progress_clear(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r%*s\r", 79, "");
	p->shown = false;
}
