// SPDX-License-Identifier: GPL-2.0
/*
 * guest_workload: the program the inner test guest's /init runs (a Linux
 * guest under QEMU inside the module's test VM, see qemu-guest.sh).
 *
 * It fills most of the guest's memory with self-checking pages (index +
 * generation, guest/guest_page.c's format, the generation table kept in
 * its own memory), then keeps writing random pages at a set rate and
 * checking random pages at another, timing every page access.  An access
 * that takes SLOW_US or more counts as slow (a page the guest had to wait
 * for: a postcopy fetch, a stop) into a log2-microsecond histogram.
 *
 * Control: one line per request on the control tty (--ctl, /dev/ttyS1 by
 * default, QEMU's second serial port):
 *   verify SEQ   check every page now, then print the report and the
 *                kernel-log check, ending with the marker line
 *                "WL-VERIFY SEQ ok|FAIL ..." that tests grep;
 *   report SEQ   the same report without the full pass ("WL-REPORT SEQ");
 *   where SEQ    pick a data page, stop writing it, and print its guest
 *                frame ("WL-WHERE SEQ page=I pfn=P end"): a test can change it
 *                through the VMM's RAM file (offset P * 4096) and see the
 *                next verify fail, proving the check sees guest memory;
 *   quit         print a last report and exit.
 * A report's latency figures cover the window since the previous report
 * (then restart); page and write counts are totals.  Everything goes to
 * stdout (the serial console), one "WL-" line each:
 *   WL-READY pages=N table=T mib=M          filling done, the loops run
 *   WL-BAD page=I gen=G found=I',G'         a page failed its check
 *   WL-STATS SEQ pages=N checked=C bad=B writes=W passes=P
 *   WL-LAT SEQ accesses=A slow=S avg_us=.. p50_us=.. p99_us=.. max_us=..
 *   WL-HIST SEQ [1 us: n] [2 us: n] ...     log2-us buckets of slow accesses
 *   WL-DMESG SEQ clean | errors=N, then the matching lines as WL-KLOG
 *   WL-VERIFY SEQ ok|FAIL pages=N bad=B dmesg=clean|errors
 *   WL-WHERE SEQ page=I pfn=P|none end
 *
 * Single-threaded on purpose (plus the control reader): the generation
 * table needs no locking, and a full pass sees a still memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest_page.h"

#define SLOW_US_DEFAULT	20
#define HIST_BUCKETS	24
#define MAX_SAMPLES	65536	/* slow samples kept per window for p50/p99 */
#define TICK_NS		1000000	/* the loops pace themselves per ms */

enum req { REQ_NONE, REQ_REPORT, REQ_VERIFY, REQ_WHERE, REQ_QUIT };

struct window {
	uint64_t accesses, slow, slow_ns, max_ns;
	uint64_t hist[HIST_BUCKETS];
	uint32_t samples[MAX_SAMPLES];	/* slow accesses, ns (capped) */
	unsigned int nsamples;
};

struct workload {
	uint8_t *mem;		/* npages data pages */
	uint32_t *gen;		/* generation of each page (0 = never written) */
	uint64_t npages;
	uint64_t frozen;	/* a page no longer written (where), or npages */
	uint64_t checked, bad, writes, passes;
	uint64_t slow_ns;	/* threshold */
	struct window win;
	uint64_t rng;
	_Atomic int req;
	_Atomic unsigned long req_seq;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t rnd(struct workload *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

static void account(struct workload *w, uint64_t dt)
{
	struct window *win = &w->win;
	uint64_t us;
	unsigned int b = 0;

	win->accesses++;
	if (dt < w->slow_ns)
		return;
	win->slow++;
	win->slow_ns += dt;
	if (dt > win->max_ns)
		win->max_ns = dt;
	for (us = dt / 1000; us > 1 && b < HIST_BUCKETS - 1; us >>= 1)
		b++;
	win->hist[b]++;
	if (win->nsamples < MAX_SAMPLES)
		win->samples[win->nsamples++] = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
}

static void write_page(struct workload *w, uint64_t i)
{
	uint64_t t0 = now_ns();

	guest_page_write(w->mem + i * GUEST_PAGE_SIZE, i, ++w->gen[i]);
	account(w, now_ns() - t0);
	w->writes++;
}

/* The guest frame behind a page of ours (root: /proc/self/pagemap has PFNs). */
static void where(struct workload *w, unsigned long seq)
{
	uint64_t i = rnd(w) % w->npages, ent = 0;
	uintptr_t va = (uintptr_t)(w->mem + i * GUEST_PAGE_SIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY);

	w->frozen = i;
	if (fd < 0 || pread(fd, &ent, sizeof(ent), va / GUEST_PAGE_SIZE * sizeof(ent)) !=
	    sizeof(ent) || !(ent >> 63) || !(ent & ((1ull << 55) - 1)))
		printf("WL-WHERE %lu page=%llu pfn=none (%s) end\n", seq, (unsigned long long)i,
		       fd < 0 ? strerror(errno) : "not present or no PFN");
	else
		printf("WL-WHERE %lu page=%llu pfn=%llu end\n", seq, (unsigned long long)i,
		       (unsigned long long)(ent & ((1ull << 55) - 1)));
	if (fd >= 0)
		close(fd);
	fflush(stdout);
}

static void check_page(struct workload *w, uint64_t i)
{
	const uint8_t *p = w->mem + i * GUEST_PAGE_SIZE;
	uint64_t t0 = now_ns(), idx;
	uint32_t g;
	bool ok;

	ok = guest_page_check(p, i, w->gen[i]);
	account(w, now_ns() - t0);
	w->checked++;
	if (ok)
		return;
	if (w->bad++ < 20) {
		guest_page_describe(p, &idx, &g);
		printf("WL-BAD page=%llu gen=%u found=%llu,%u\n", (unsigned long long)i, w->gen[i],
		       (unsigned long long)idx, g);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void print_window(struct workload *w, unsigned long seq)
{
	struct window *win = &w->win;
	double p50 = 0, p99 = 0;
	unsigned int b;

	if (win->nsamples) {
		qsort(win->samples, win->nsamples, sizeof(win->samples[0]), cmp_u32);
		p50 = win->samples[win->nsamples / 2] / 1e3;
		p99 = win->samples[(uint64_t)win->nsamples * 99 / 100] / 1e3;
	}
	printf("WL-LAT %lu accesses=%llu slow=%llu slow_us=%llu avg_us=%.1f p50_us=%.1f "
	       "p99_us=%.1f max_us=%.1f%s\n", seq, (unsigned long long)win->accesses,
	       (unsigned long long)win->slow, (unsigned long long)(w->slow_ns / 1000),
	       win->slow ? win->slow_ns / 1e3 / win->slow : 0.0, p50, p99, win->max_ns / 1e3,
	       win->nsamples < win->slow ? " (percentiles of the first samples)" : "");
	printf("WL-HIST %lu", seq);
	for (b = 0; b < HIST_BUCKETS; b++)
		if (win->hist[b])
			printf(" [%llu us: %llu]", 1ull << b, (unsigned long long)win->hist[b]);
	printf("\n");
	memset(win, 0, sizeof(*win));
}

/* Kernel-log lines that mean the guest's kernel is unwell. */
static int check_dmesg(unsigned long seq)
{
	static const char *const bad[] = {
		/* "WARNING: CPU:" is a WARN(); advisories such as SRSO's say "WARNING:" too */
		"BUG:", "WARNING: CPU:", "Oops", "general protection", "Kernel panic",
		"Call Trace:", "segfault", "I/O error", "soft lockup", "hung_task",
		"Out of memory", "page allocation failure", "Bad page",
	};
	int len = klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
	char *buf, *line, *save;
	int n, errors = 0;
	unsigned int i;

	if (len <= 0 || !(buf = calloc(1, len + 1))) {
		printf("WL-DMESG %lu errors=1 (cannot read the kernel log: %s)\n", seq,
		       strerror(errno));
		return 1;
	}
	n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, len);
	for (line = strtok_r(n > 0 ? buf : NULL, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			if (strstr(line, bad[i])) {
				if (errors++ < 20)
					printf("WL-KLOG %lu %s\n", seq, line);
				break;
			}
		}
	}
	free(buf);
	if (errors)
		printf("WL-DMESG %lu errors=%d\n", seq, errors);
	else
		printf("WL-DMESG %lu clean\n", seq);
	return errors;
}

static void report(struct workload *w, unsigned long seq, bool full)
{
	uint64_t bad0 = w->bad, i;
	int kerr;

	if (full) {
		for (i = 0; i < w->npages; i++)
			check_page(w, i);
		w->passes++;
	}
	printf("WL-STATS %lu pages=%llu checked=%llu bad=%llu writes=%llu passes=%llu\n", seq,
	       (unsigned long long)w->npages, (unsigned long long)w->checked,
	       (unsigned long long)w->bad, (unsigned long long)w->writes,
	       (unsigned long long)w->passes);
	print_window(w, seq);
	kerr = check_dmesg(seq);
	if (full)
		printf("WL-VERIFY %lu %s pages=%llu bad=%llu pass_bad=%llu dmesg=%s\n", seq,
		       !w->bad && !kerr ? "ok" : "FAIL", (unsigned long long)w->npages,
		       (unsigned long long)w->bad, (unsigned long long)(w->bad - bad0),
		       kerr ? "errors" : "clean");
	else
		printf("WL-REPORT %lu %s\n", seq, !w->bad && !kerr ? "ok" : "FAIL");
	fflush(stdout);
}

/*
 * Open the control tty before the fill ends: the UART drops what arrived
 * while nobody had it open, so a request sent right after WL-READY would
 * lose its first bytes.
 */
static FILE *ctl_open(const char *path)
{
	struct termios t;
	FILE *f = fopen(path, "r");

	if (!f) {
		printf("WL-NOTE no control tty %s: %s\n", path, strerror(errno));
		return NULL;
	}
	/* Lines in, no echo back out (nobody reads the port's output side). */
	if (!tcgetattr(fileno(f), &t)) {
		cfmakeraw(&t);
		t.c_lflag |= ICANON;
		t.c_iflag |= ICRNL;
		tcsetattr(fileno(f), TCSANOW, &t);
	}
	return f;
}

struct ctl_arg {
	struct workload *w;
	FILE *f;
};

/* The control reader: lines from the control tty become requests. */
static void *ctl_thread(void *arg)
{
	struct ctl_arg *c = arg;
	struct workload *w = c->w;
	char line[128], cmd[16];
	unsigned long seq;

	while (fgets(line, sizeof(line), c->f)) {
		seq = 0;
		if (sscanf(line, "%15s %lu", cmd, &seq) < 1)
			continue;
		while (atomic_load(&w->req) != REQ_NONE)
			usleep(10000);
		atomic_store(&w->req_seq, seq);
		if (!strcmp(cmd, "verify"))
			atomic_store(&w->req, REQ_VERIFY);
		else if (!strcmp(cmd, "report"))
			atomic_store(&w->req, REQ_REPORT);
		else if (!strcmp(cmd, "where"))
			atomic_store(&w->req, REQ_WHERE);
		else if (!strcmp(cmd, "quit"))
			atomic_store(&w->req, REQ_QUIT);
		else
			printf("WL-NOTE unknown request: %s", line);
	}
	return NULL;
}

static uint64_t avail_pages(void)
{
	char key[64];
	unsigned long long kb;
	FILE *f = fopen("/proc/meminfo", "r");
	uint64_t r = 0;

	if (!f)
		return 0;
	while (fscanf(f, "%63s %llu kB\n", key, &kb) == 2)
		if (!strcmp(key, "MemAvailable:"))
			r = kb / 4;
	fclose(f);
	return r;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: guest_workload [--mib N | --percent P] [--write-rate PAGES/S]\n"
		"                      [--check-rate PAGES/S] [--slow-us US] [--ctl TTY]\n"
		"                      [--report-every S] [--seed N]\n"
		"Fill guest memory with self-checking pages, keep writing and checking\n"
		"them, time every access; answer 'verify SEQ', 'report SEQ', 'where SEQ'\n"
		"and 'quit' lines on the control tty (default /dev/ttyS1).  Defaults: --percent 60\n"
		"of MemAvailable, --write-rate 2000, --check-rate 4000, --slow-us 20.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mib", required_argument, NULL, 'm' },
		{ "percent", required_argument, NULL, 'p' },
		{ "write-rate", required_argument, NULL, 'w' },
		{ "check-rate", required_argument, NULL, 'c' },
		{ "slow-us", required_argument, NULL, 's' },
		{ "ctl", required_argument, NULL, 't' },
		{ "report-every", required_argument, NULL, 'r' },
		{ "seed", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static struct workload w;
	uint64_t mib = 0, percent = 60, wrate = 2000, crate = 4000, every = 0;
	uint64_t t_start, t_next_report, i, table_bytes;
	uint64_t wdone = 0, cdone = 0;
	const char *ctl = "/dev/ttyS1";
	unsigned long auto_seq = 1000000;
	struct ctl_arg carg = { &w, NULL };
	pthread_t th;
	int o, r;

	w.slow_ns = SLOW_US_DEFAULT * 1000;
	w.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'm': mib = strtoull(optarg, NULL, 0); break;
		case 'p': percent = strtoull(optarg, NULL, 0); break;
		case 'w': wrate = strtoull(optarg, NULL, 0); break;
		case 'c': crate = strtoull(optarg, NULL, 0); break;
		case 's': w.slow_ns = strtoull(optarg, NULL, 0) * 1000; break;
		case 't': ctl = optarg; break;
		case 'r': every = strtoull(optarg, NULL, 0); break;
		case 'S': w.rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	w.npages = mib ? mib * 256 : avail_pages() * percent / 100;
	if (w.npages < 16) {
		fprintf(stderr, "guest_workload: %llu pages is too little memory to fill\n",
			(unsigned long long)w.npages);
		return 1;
	}
	table_bytes = guest_table_pages(w.npages) * GUEST_PAGE_SIZE;
	w.npages -= table_bytes / GUEST_PAGE_SIZE;
	w.frozen = w.npages;
	w.gen = mmap(NULL, table_bytes, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	w.mem = mmap(NULL, w.npages * GUEST_PAGE_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w.gen == MAP_FAILED || w.mem == MAP_FAILED) {
		fprintf(stderr, "guest_workload: mmap of %llu pages: %s\n",
			(unsigned long long)w.npages, strerror(errno));
		return 1;
	}
	/* Keep the pages: an OOM kill or swap would end the test, not skew it. */
	mlockall(MCL_CURRENT | MCL_FUTURE);
	carg.f = ctl_open(ctl);
	t_start = now_ns();
	for (i = 0; i < w.npages; i++)
		write_page(&w, i);
	printf("WL-READY pages=%llu table=%llu mib=%llu fill_ms=%llu\n",
	       (unsigned long long)w.npages, (unsigned long long)table_bytes / GUEST_PAGE_SIZE,
	       (unsigned long long)(w.npages / 256),
	       (unsigned long long)((now_ns() - t_start) / 1000000));
	memset(&w.win, 0, sizeof(w.win));
	w.writes = 0;

	r = carg.f ? pthread_create(&th, NULL, ctl_thread, &carg) : 0;
	if (r) {
		fprintf(stderr, "guest_workload: control thread: %s\n", strerror(r));
		return 1;
	}
	t_start = now_ns();
	t_next_report = every ? t_start + every * 1000000000ull : UINT64_MAX;
	for (;;) {
		uint64_t t = now_ns(), el = t - t_start;
		uint64_t wdue = el / 1000 * wrate / 1000000, cdue = el / 1000 * crate / 1000000;
		struct timespec tick = { 0, TICK_NS };
		int req = atomic_load(&w.req);

		if (req != REQ_NONE) {
			unsigned long seq = atomic_load(&w.req_seq);

			if (req == REQ_WHERE)
				where(&w, seq);
			else
				report(&w, seq, req == REQ_VERIFY);
			atomic_store(&w.req, REQ_NONE);
			if (req == REQ_QUIT)
				return w.bad ? 1 : 0;
			continue;
		}
		if (t >= t_next_report) {
			report(&w, auto_seq++, false);
			t_next_report += every * 1000000000ull;
		}
		/* Catch up at most one second's worth after a pause (a full pass, a stop). */
		if (wdue > wdone + wrate)
			wdone = wdue - wrate;
		if (cdue > cdone + crate)
			cdone = cdue - crate;
		while (wdone < wdue || cdone < cdue) {
			if (wdone < wdue) {
				i = rnd(&w) % w.npages;
				if (i != w.frozen)
					write_page(&w, i);
				wdone++;
			}
			if (cdone < cdue) {
				check_page(&w, rnd(&w) % w.npages);
				cdone++;
			}
		}
		nanosleep(&tick, NULL);
	}
}
