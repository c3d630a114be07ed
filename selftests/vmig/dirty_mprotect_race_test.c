// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty logging against a concurrent mprotect(): mprotect() giving write
 * access back turns a read-only but *dirty* shared PTE writable without a
 * fault.  If that happens to a page while a harvest re-arms its
 * protection, the page must still end write-protected and clean, so the
 * next write to it faults and is reported.  The second test adds a writer
 * that keeps writing during the harvests (so PTEs are dirtied between the
 * protection walks) and checks the precopy invariant: a copy of each page
 * taken after every harvest that reported it equals the memory at the end.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "kselftest_harness.h"

#define NPAGES	512
#define ROUNDS	300

struct toggler {
	unsigned char *map;
	size_t len;
	atomic_int stop;
};

/* Flip the whole mapping read-only and back, until told to stop. */
static void *toggle(void *arg)
{
	struct toggler *t = arg;

	while (!atomic_load(&t->stop)) {
		mprotect(t->map, t->len, PROT_READ);
		mprotect(t->map, t->len, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

TEST(write_after_harvest_racing_mprotect_is_reported)
{
	long ps = vmig_page_size();
	size_t len = NPAGES * ps;
	uint64_t bm[NPAGES / 64], dirty;
	struct toggler t = { .len = len };
	pthread_t th;
	int dev, fd, round;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, len, 0);
	ASSERT_LE(0, fd);
	t.map = vmig_region_map(fd, len, 0);
	ASSERT_NE(NULL, t.map);
	ASSERT_EQ(0, vmig_dirty_enable(fd, 0));

	for (round = 0; round < ROUNDS; round++) {
		/* Every page written: dirty, writable PTEs, every bit set. */
		for (int i = 0; i < NPAGES; i++)
			t.map[i * ps] = round;
		/* Harvest while another thread flips the protection. */
		atomic_store(&t.stop, 0);
		ASSERT_EQ(0, pthread_create(&th, NULL, toggle, &t));
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, NPAGES, bm, &dirty));
		atomic_store(&t.stop, 1);
		ASSERT_EQ(0, pthread_join(th, NULL));

		/* Writable again: each page's next write must be reported. */
		for (int i = 0; i < NPAGES; i++)
			t.map[i * ps] = round + 1;
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, NPAGES, bm, &dirty));
		if (dirty != NPAGES)
			TH_LOG("round %d: %llu of %d writes not reported", round,
			       (unsigned long long)(NPAGES - dirty), NPAGES);
		ASSERT_EQ(NPAGES, dirty);
	}
	munmap(t.map, len);
	close(fd);
	close(dev);
}

#define STRESS_PAGES	1024
#define STRESS_SECONDS	3.0
#define TRACE_EVENT_DIR	"/sys/kernel/tracing/events/vmig/vmig_protect_race"

static unsigned char *seg_map;
static size_t seg_len;

/* A write to the mapping while it is read-only: wait and retry it. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
	unsigned char *a = si->si_addr;

	(void)uc;
	if (a < seg_map || a >= seg_map + seg_len) {
		signal(sig, SIG_DFL);
		return;
	}
	sched_yield();
}

struct writer {
	unsigned char *map;
	long ps;
	atomic_int stop;
	uint64_t writes;
};

/* Write a new value to one page after another, round and round. */
static void *write_pages(void *arg)
{
	struct writer *w = arg;
	uint64_t seq = 0, seed = 0x9e3779b97f4a7c15ULL;

	while (!atomic_load(&w->stop)) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		/* Runs of neighbours, so both taken pages and gaps are hit. */
		uint64_t p = seed % STRESS_PAGES;

		for (int k = 0; k < 8 && p + k < STRESS_PAGES; k++)
			*(volatile uint64_t *)(w->map + (p + k) * w->ps) = ++seq;
	}
	w->writes = seq;
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_file(const char *path, const char *v)
{
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -1;
	ret = fputs(v, f) < 0 ? -1 : 0;
	return fclose(f) ? -1 : ret;
}

/* Lines of the trace buffer naming the race event (informational). */
static long count_races(void)
{
	FILE *f = fopen("/sys/kernel/tracing/trace", "r");
	char line[512];
	long n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !!strstr(line, "vmig_protect_race");
	fclose(f);
	return n;
}

TEST(no_write_lost_with_writer_harvester_and_mprotect_toggler)
{
	long ps = vmig_page_size();
	size_t len = STRESS_PAGES * ps;
	uint64_t bm[STRESS_PAGES / 64], dirty, rounds = 0, reported = 0;
	struct toggler t = { .len = len };
	struct writer w = { .ps = ps };
	struct sigaction sa = { .sa_sigaction = on_segv,
				.sa_flags = SA_SIGINFO };
	unsigned char *shadow;
	pthread_t tt, wt;
	int dev, fd, traced;
	size_t bad = 0;
	double end;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, len, 0);
	ASSERT_LE(0, fd);
	t.map = vmig_region_map(fd, len, 0);
	ASSERT_NE(NULL, t.map);
	w.map = t.map;
	seg_map = t.map;
	seg_len = len;
	ASSERT_EQ(0, sigaction(SIGSEGV, &sa, NULL));
	shadow = malloc(len);
	ASSERT_NE(NULL, shadow);
	memset(t.map, 0, len);
	traced = write_file("/sys/kernel/tracing/trace", "") == 0 &&
		 write_file(TRACE_EVENT_DIR "/enable", "1") == 0;

	/* From here on, every write is reported by a later harvest. */
	ASSERT_EQ(0, vmig_dirty_enable(fd, 0));
	memcpy(shadow, t.map, len);
	ASSERT_EQ(0, pthread_create(&wt, NULL, write_pages, &w));
	ASSERT_EQ(0, pthread_create(&tt, NULL, toggle, &t));
	end = now_s() + STRESS_SECONDS;
	while (now_s() < end) {
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, STRESS_PAGES, bm, &dirty));
		for (int i = 0; i < STRESS_PAGES; i++)
			if (vmig_bit(bm, i))
				memcpy(shadow + i * ps, t.map + i * ps, ps);
		reported += dirty;
		rounds++;
	}
	atomic_store(&t.stop, 1);
	ASSERT_EQ(0, pthread_join(tt, NULL));
	ASSERT_EQ(0, mprotect(t.map, len, PROT_READ | PROT_WRITE));
	atomic_store(&w.stop, 1);
	ASSERT_EQ(0, pthread_join(wt, NULL));

	/* The last harvest: what it reports is copied, then all must match. */
	ASSERT_EQ(0, vmig_dirty_get(fd, 0, STRESS_PAGES, bm, &dirty));
	for (int i = 0; i < STRESS_PAGES; i++)
		if (vmig_bit(bm, i))
			memcpy(shadow + i * ps, t.map + i * ps, ps);
	for (int i = 0; i < STRESS_PAGES; i++)
		if (memcmp(shadow + i * ps, t.map + i * ps, ps))
			bad++;
	if (traced) {
		TH_LOG("%llu harvests, %llu pages reported, %llu writes, %ld racing re-protections",
		       (unsigned long long)rounds, (unsigned long long)reported,
		       (unsigned long long)w.writes, count_races());
		write_file(TRACE_EVENT_DIR "/enable", "0");
	} else {
		TH_LOG("%llu harvests, %llu pages reported, %llu writes (no tracefs: races not counted)",
		       (unsigned long long)rounds, (unsigned long long)reported,
		       (unsigned long long)w.writes);
	}
	if (bad)
		TH_LOG("%zu of %d pages lost a write", bad, STRESS_PAGES);
	ASSERT_EQ(0, bad);
	ASSERT_LT(0, w.writes);
	signal(SIGSEGV, SIG_DFL);
	free(shadow);
	munmap(t.map, len);
	close(fd);
	close(dev);
}

/*
 * A harvest on a region never mprotect()ed only write-protects: it leaves
 * read-only but dirty PTEs, which mprotect(PROT_WRITE) would make writable
 * without a fault.  The region's mprotect hook must clean them first, in
 * mapping of those pages, or the writes after it are never reported.  The
 * first round is the region's first such mprotect(), on the mapping the
 * pages were written through; the later rounds (the region now counts as
 * mprotect()ed) use a second mapping of the same pages, then the first.
 */
TEST(writes_after_first_mprotect_to_writable_are_reported)
{
	long ps = vmig_page_size();
	size_t len = 64 * ps;
	uint64_t bm[1], dirty;
	unsigned char *a, *b;
	int dev, fd, round;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, len, 0);
	ASSERT_LE(0, fd);
	a = vmig_region_map(fd, len, 0);
	b = vmig_region_map(fd, len, 0);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, vmig_dirty_enable(fd, 0));
	for (round = 0; round < 3; round++) {
		unsigned char *m = round == 1 ? a : b;

		/* Dirty, writable PTEs in @b; the harvest protects them. */
		for (int i = 0; i < 64; i++)
			b[i * ps] = round;
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, 64, bm, &dirty));
		ASSERT_EQ(64, dirty);
		/* Read-only and back, on one of the two mappings. */
		ASSERT_EQ(0, mprotect(m, len, PROT_READ));
		ASSERT_EQ(0, mprotect(m, len, PROT_READ | PROT_WRITE));
		/* Every page's next write must fault and be reported. */
		for (int i = 0; i < 64; i++)
			b[i * ps] = round + 100;
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, 64, bm, &dirty));
		if (dirty != 64)
			TH_LOG("round %d: %llu of 64 writes not reported", round,
			       (unsigned long long)(64 - dirty));
		ASSERT_EQ(64, dirty);
	}
	munmap(a, len);
	munmap(b, len);
	close(fd);
	close(dev);
}

TEST_HARNESS_MAIN
