// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "report.h"
#include "util.h"
#include "wire.h"

static double secs(uint64_t ns)
{
	return ns / 1e9;
}

/* Page data per second of transfer (setup excluded). */
int report_fail(struct report *r, int err, const char *fmt, ...)
{
	va_list ap;

	if (!r->error[0]) {
		va_start(ap, fmt);
		vsnprintf(r->error, sizeof(r->error), fmt, ap);
		va_end(ap);
	}
	return err < 0 ? err : -err;
}

double report_cpu_now(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void report_note_cpu(struct report *r)
{
	r->cpu_s = report_cpu_now();
}

double report_throughput(const struct report *r)
{
	uint64_t ns = r->total_ns > r->setup_ns ? r->total_ns - r->setup_ns : 0;

	return ns ? r->normal_pages * (double)WIRE_PAGE_SIZE / secs(ns) : 0;
}

/* Source: what the switch was predicted to cost, and whether the limit held. */
static void print_prediction_text(const struct report *r, FILE *f)
{
	const struct sw_parts *p = &r->pred;
	double total = sw_total(p), ms = r->downtime_ns / 1e6;

	if (!r->predicted)
		return;
	fprintf(f, "    predicted: %.1f ms: stop %.1f, final dirty pages %.1f, device state save "
		"%.1f, transfer %.1f, load %.1f, resume %.1f ms (%+.0f %% off)\n", total, p->stop,
		p->pages, p->dev_save, p->transfer, p->load, p->resume,
		ms > 0 ? 100 * (total / ms - 1) : 0.0);
	if (r->over_limit)
		fprintf(f, "    LIMIT:     switched over ANYWAY (precopy stalled) with a predicted "
			"downtime of %.1f ms over the %.0f ms --downtime-limit; the downtime was "
			"%.1f ms\n", total, r->downtime_limit_ms, ms);
	else if (r->ok && !r->pc.on && ms > r->downtime_limit_ms)
		fprintf(f, "    LIMIT:     MISSED: the downtime %.1f ms exceeded the %.0f ms "
			"--downtime-limit, though %.1f ms were predicted\n", ms,
			r->downtime_limit_ms, total);
	else if (r->ok && !r->pc.on)
		fprintf(f, "    limit:     met (%.0f ms)\n", r->downtime_limit_ms);
}

static void print_pc_text(const struct report *r, FILE *f)
{
	const struct report_pc *pc = &r->pc;
	unsigned int b;

	if (!pc->on)
		return;
	fprintf(f, "  postcopy:    %s, %llu pages discarded at the switch, "
		"%.3f s from the switch to the end\n",
		!pc->preempt ? "without a preempt channel (requested pages on multifd)" :
		pc->reply_return ? "preempt, requested pages on the return path" :
		"requested pages on a preempt channel",
		(unsigned long long)pc->discarded, pc->switch_ns / 1e9);
	if (pc->released)
		fprintf(f, "  released:    %llu prefaulted pages at the handshake (postcopy from "
			"the start: none of them could arrive before the switch)\n",
			(unsigned long long)pc->released);
	if (pc->sched) {
		fprintf(f, "  urgent path: page requests served by a thread scheduled %s",
			!strcmp(pc->sched, "fifo") ? "SCHED_FIFO" :
			!strcmp(pc->sched, "nice") ? "at nice -10" : "like the others");
		if (pc->cpu >= 0)
			fprintf(f, ", on CPU %d where its socket receives (%u move%s)", pc->cpu,
				pc->cpu_moves, pc->cpu_moves == 1 ? "" : "s");
		fputc('\n', f);
	}
	if (pc->recoveries)
		fprintf(f, "  recovery:    %llu reconnection%s after a broken link, %.3f s paused "
			"(last %.3f s), %llu requests asked again\n",
			(unsigned long long)pc->recoveries, pc->recoveries == 1 ? "" : "s",
			pc->paused_ns / 1e9, pc->last_pause_ns / 1e9, (unsigned long long)pc->resent);
	if (!strcmp(r->role, "source")) {
		fprintf(f, "  requests:    %llu pages requested and served\n",
			(unsigned long long)pc->requests);
		return;
	}
	fprintf(f, "  requests:    %llu faults, %llu requests (%llu coalesced), %llu pages on the "
		"preempt channel, %llu already there\n", (unsigned long long)pc->faults,
		(unsigned long long)pc->requests, (unsigned long long)pc->coalesced,
		(unsigned long long)pc->urgent_pages, (unsigned long long)pc->eexist);
	if (pc->kernel_requests)
		fprintf(f, "               %llu requests written by vmig.ko itself (their "
			"latency counts from the fault)\n",
			(unsigned long long)pc->kernel_requests);
	fprintf(f, "  latency:     fault read to wake, %llu requests: avg %.1f us, p50 %.1f us, "
		"p99 %.1f us, max %.1f us\n", (unsigned long long)pc->lat_count, pc->lat_avg_us,
		pc->lat_p50_us, pc->lat_p99_us, pc->lat_max_us);
	if (pc->flat_count)
		fprintf(f, "  from fault:  (the module's time stamp) %llu requests: avg %.1f us, "
			"p99 %.1f us\n", (unsigned long long)pc->flat_count, pc->flat_avg_us,
			pc->flat_p99_us);
	if (pc->lat_count) {
		fprintf(f, "  histogram:  ");
		for (b = 0; b < REPORT_LAT_BUCKETS; b++)
			if (pc->lat_hist[b])
				fprintf(f, " [%llu us: %llu]", 1ull << b,
					(unsigned long long)pc->lat_hist[b]);
		fprintf(f, "\n");
	}
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
	if (!strcmp(r->role, "source")) {
		fprintf(f, "  downtime:    %.1f ms (vCPU stop to resume on the destination)\n",
			r->downtime_ns / 1e6);
		fprintf(f, "    parts:     stop %.1f, final dirty pages %.1f, device state save "
			"%.1f, transfer %.1f, load %.1f, resume %.1f ms\n", r->dt_stop_ns / 1e6,
			r->dt_pages_ns / 1e6, r->dt_dev_save_ns / 1e6, r->dt_dev_send_ns / 1e6,
			r->dt_load_ns / 1e6, r->dt_resume_ns / 1e6);
		if (r->stop_ran_ns)
			fprintf(f, "    before it: the VMM prepared the switchover %.1f ms with the "
				"guest running, then stopped it\n", r->stop_ran_ns / 1e6);
		print_prediction_text(r, f);
	}
	if (r->devices)
		fprintf(f, "  devices:     %u, state %s (at most %s buffered on the destination)\n",
			r->devices, fmt_bytes(r->device_bytes, b1, sizeof(b1)),
			fmt_bytes(r->device_buffer_peak, b2, sizeof(b2)));
	if (r->device_precopy_bytes)
		fprintf(f, "               of which %s before switchover (saved in %.1f ms while "
			"the guest ran)\n", fmt_bytes(r->device_precopy_bytes, b1, sizeof(b1)),
			r->device_precopy_ns / 1e6);
	if (r->free_pages)
		fprintf(f, "  free pages:  %s hinted free by the VMM, not sent (%u hint%s; %s "
			"free only in an update)\n",
			fmt_bytes(r->free_pages * (double)WIRE_PAGE_SIZE, b1, sizeof(b1)),
			r->free_hints, r->free_hints == 1 ? "" : "s",
			fmt_bytes(r->free_pages_updated * (double)WIRE_PAGE_SIZE, b2, sizeof(b2)));
	fprintf(f, "  pages:       normal %s, zero %s, skipped %s (wire %s)\n",
		fmt_bytes(r->normal_pages * (double)WIRE_PAGE_SIZE, b1, sizeof(b1)),
		fmt_bytes(r->zero_pages * (double)WIRE_PAGE_SIZE, b2, sizeof(b2)),
		fmt_bytes(r->skipped_pages * (double)WIRE_PAGE_SIZE, b3, sizeof(b3)),
		fmt_bytes(r->wire_bytes, b4, sizeof(b4)));
	fprintf(f, "  throughput:  %s/s of page data after setup", fmt_bytes(thr, b1, sizeof(b1)));
	if (!strcmp(r->role, "source"))
		fprintf(f, " (link measured %s/s)", fmt_bytes(r->bandwidth, b2, sizeof(b2)));
	fprintf(f, "\n");
	fprintf(f, "  cpu:         %.3f s (this process, user + system, to the end)\n", r->cpu_s);
	if (r->prefault_ns)
		fprintf(f, "  prefault:    guest RAM allocated before any source came: %.1f ms, "
			"%.3f s of the cpu\n", r->prefault_ns / 1e6, r->prefault_cpu_s);
	if (!strcmp(r->role, "source")) {
		fprintf(f, "  rounds:      %u dirty round%s after the bulk stage%s\n", r->rounds,
			r->rounds == 1 ? "" : "s", r->stalled ? " (stalled)" : "");
		if (r->switchover[0])
			fprintf(f, "  switchover:  %s\n", r->switchover);
		fprintf(f, "  tracking:    %llu harvests in %.1f ms, %llu write faults resolved",
			(unsigned long long)r->harvests, r->harvest_ns / 1e6,
			(unsigned long long)r->wp_faults);
		if (r->protected_known)
			fprintf(f, "; %llu pages write-protected after the stop",
				(unsigned long long)r->protected_after_stop);
		fprintf(f, "\n");
	}
	print_pc_text(r, f);
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
		"\"rounds\":%u,\"stalled\":%s,\"throttle_pct\":%u,\"switchover\":",
		r->backend, r->tracking, r->channels, (unsigned long long)r->guest_bytes,
		r->total_ns / 1e6, r->setup_ns / 1e6, r->downtime_ns / 1e6,
		(unsigned long long)(r->normal_pages * WIRE_PAGE_SIZE),
		(unsigned long long)(r->zero_pages * WIRE_PAGE_SIZE),
		(unsigned long long)(r->skipped_pages * WIRE_PAGE_SIZE),
		(unsigned long long)r->wire_bytes, r->rounds, r->stalled ? "true" : "false",
		r->throttle_pct);
	json_str(f, r->switchover);
	fprintf(f, ",\"throughput_bps\":%.0f,\"bandwidth_bps\":%.0f,\"dirty_rate_bps\":%.0f,"
		"\"expected_downtime_ms\":%.3f,\"wp_faults\":%llu,\"harvests\":%llu,"
		"\"harvest_ms\":%.3f,\"cpu_s\":%.3f,\"prefault_ms\":%.3f,\"prefault_cpu_s\":%.3f",
		thr, r->bandwidth, r->dirty_rate, r->expected_downtime_ms,
		(unsigned long long)r->wp_faults, (unsigned long long)r->harvests,
		r->harvest_ns / 1e6, r->cpu_s, r->prefault_ns / 1e6, r->prefault_cpu_s);
	if (r->protected_known)
		fprintf(f, ",\"protected_after_stop\":%llu",
			(unsigned long long)r->protected_after_stop);
	fprintf(f, ",\"downtime_parts_ms\":{\"stop\":%.3f,\"final_pages\":%.3f,"
		"\"device_save\":%.3f,\"transfer\":%.3f,\"load\":%.3f,\"resume\":%.3f},"
		"\"devices\":%u,\"device_bytes\":%llu,\"device_buffer_peak\":%llu,"
		"\"free_bytes\":%llu", r->dt_stop_ns / 1e6, r->dt_pages_ns / 1e6,
		r->dt_dev_save_ns / 1e6, r->dt_dev_send_ns / 1e6, r->dt_load_ns / 1e6,
		r->dt_resume_ns / 1e6, r->devices, (unsigned long long)r->device_bytes,
		(unsigned long long)r->device_buffer_peak,
		(unsigned long long)(r->free_pages * WIRE_PAGE_SIZE));
	fprintf(f, ",\"device_precopy_bytes\":%llu,\"device_precopy_ms\":%.3f,"
		"\"stop_ran_ms\":%.3f,\"free_hints\":%u,\"free_bytes_updated\":%llu",
		(unsigned long long)r->device_precopy_bytes, r->device_precopy_ns / 1e6,
		r->stop_ran_ns / 1e6,
		r->free_hints, (unsigned long long)(r->free_pages_updated * WIRE_PAGE_SIZE));
	if (r->predicted) {
		const struct sw_parts *p = &r->pred;

		fprintf(f, ",\"predicted_downtime_ms\":%.3f,\"downtime_limit_ms\":%.0f,"
			"\"over_limit\":%s,\"limit_missed\":%s,\"device_left_bytes\":%llu,"
			"\"predicted_parts_ms\":{\"stop\":%.3f,\"final_pages\":%.3f,"
			"\"device_save\":%.3f,\"transfer\":%.3f,\"load\":%.3f,\"resume\":%.3f}",
			sw_total(p), r->downtime_limit_ms, r->over_limit ? "true" : "false",
			r->ok && !r->pc.on && r->downtime_ns / 1e6 > r->downtime_limit_ms ?
			"true" : "false", (unsigned long long)r->device_left_bytes, p->stop,
			p->pages, p->dev_save, p->transfer, p->load, p->resume);
	}
	if (r->pc.on) {
		const struct report_pc *pc = &r->pc;
		unsigned int b;

		fprintf(f, ",\"postcopy\":{\"preempt\":%s,\"replies\":\"%s\","
			"\"sched\":\"%s\",\"discarded\":%llu,"
			"\"released\":%llu,\"switch_ms\":%.3f,"
			"\"faults\":%llu,\"requests\":%llu,\"kernel_requests\":%llu,"
			"\"coalesced\":%llu,\"urgent_pages\":%llu,"
			"\"eexist\":%llu,\"recoveries\":%llu,\"paused_ms\":%.3f,\"last_pause_ms\":%.3f,"
			"\"resent\":%llu,\"cpu\":%d,\"cpu_moves\":%u,"
			"\"latency_us\":{\"count\":%llu,\"avg\":%.2f,\"p50\":%.2f,"
			"\"p99\":%.2f,\"max\":%.2f,\"log2_hist\":[", pc->preempt ? "true" : "false",
			!pc->preempt ? "multifd" : pc->reply_return ? "return-path" : "preempt",
			pc->sched ? pc->sched : "",
			(unsigned long long)pc->discarded, (unsigned long long)pc->released,
			pc->switch_ns / 1e6,
			(unsigned long long)pc->faults, (unsigned long long)pc->requests,
			(unsigned long long)pc->kernel_requests, (unsigned long long)pc->coalesced, (unsigned long long)pc->urgent_pages,
			(unsigned long long)pc->eexist, (unsigned long long)pc->recoveries,
			pc->paused_ns / 1e6, pc->last_pause_ns / 1e6, (unsigned long long)pc->resent,
			pc->sched ? pc->cpu : -1, pc->cpu_moves,
			(unsigned long long)pc->lat_count,
			pc->lat_avg_us, pc->lat_p50_us, pc->lat_p99_us, pc->lat_max_us);
		for (b = 0; b < REPORT_LAT_BUCKETS; b++)
			fprintf(f, "%s%llu", b ? "," : "", (unsigned long long)pc->lat_hist[b]);
		fprintf(f, "]}");
		if (pc->flat_count)
			fprintf(f, ",\"fault_latency_us\":{\"count\":%llu,\"avg\":%.2f,\"p99\":%.2f}",
				(unsigned long long)pc->flat_count, pc->flat_avg_us, pc->flat_p99_us);
		fprintf(f, "}");
	}
	fprintf(f, "}\n");
}

void progress_init(struct progress *p, bool want)
{
	memset(p, 0, sizeof(*p));
	p->enabled = want && isatty(STDERR_FILENO);
	p->predicted_ms = -1;
}

void progress_update(struct progress *p, unsigned int round, uint64_t done, uint64_t total,
		     double rate)
{
	char bar[31], b1[32], b2[32], b3[32], what[24], dt[64] = "";
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
	if (p->predicted_ms >= 0)
		snprintf(dt, sizeof(dt), " +dev %s, downtime ~%.0f ms",
			 fmt_bytes(p->device_left, b3, sizeof(b3)), p->predicted_ms);
	fprintf(stderr, "\r[%s] %s remaining %10s%s  %10s/s ", bar, what,
		fmt_bytes((total - done) * (double)WIRE_PAGE_SIZE, b1, sizeof(b1)), dt,
		fmt_bytes(rate, b2, sizeof(b2)));
	p->shown = true;
}

void progress_clear(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r%*s\r", 120, "");
	p->shown = false;
}

const char *json_quote(char *buf, size_t len, const char *s)
{
	size_t n = 0;

	if (len < 3)
		return "\"\"";
	buf[n++] = '"';
	for (; *s && n + 8 < len; s++) {
		if (*s == '"' || *s == '\\')
			n += snprintf(buf + n, len - n, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			n += snprintf(buf + n, len - n, "\\u%04x", *s);
		else
			buf[n++] = *s;
	}
	buf[n++] = '"';
	buf[n] = 0;
	return buf;
}

void report_event(const struct report *r, const char *event, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (!r->events)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	printf("{\"event\":\"%s\",\"role\":\"%s\",\"time\":%lld.%03ld", event, r->role,
	       (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	if (fmt && *fmt) {
		putchar(',');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	printf("}\n");
	fflush(stdout);
}

int report_finish(const struct report *r, bool json, const char *who)
{
	if (json)
		report_print_json(r, stdout);
	else
		report_print_text(r, stdout);
	if (!r->ok)
		fprintf(stderr, "%s: %s\n", who, r->error);
	return r->ok ? 0 : 1;
}
