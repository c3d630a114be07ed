// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty logging, in every mode: a harvest reports exactly the pages written
 * since the previous one; no write is ever lost while writers in several
 * threads and a second process race with a harvester (the precopy
 * invariant); counters and tracepoints; and every bad input fails with a
 * clear errno and changes nothing.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "kselftest_harness.h"

#define NPAGES		1024	/* pages of the exactness region */
#define RACE_PAGES	2048	/* pages of the no-lost-write region */
#define RACE_SECONDS	2.5
#define RACE_THREADS	2

FIXTURE(dirty) {
	int dev, fd;
	long ps;
	unsigned char *map;
	uint64_t bm[NPAGES / 64];
};

FIXTURE_VARIANT(dirty) {
	uint32_t flags;
};

FIXTURE_VARIANT_ADD(dirty, default_mode) {
	.flags = 0,
};

FIXTURE_VARIANT_ADD(dirty, manual_protect) {
	.flags = VMIG_DIRTY_MANUAL_PROTECT,
};

FIXTURE_VARIANT_ADD(dirty, initially_set) {
	.flags = VMIG_DIRTY_MANUAL_PROTECT | VMIG_DIRTY_INITIALLY_SET,
};

FIXTURE_VARIANT_ADD(dirty, hwdirty) {
	.flags = VMIG_DIRTY_HWDIRTY,
};

FIXTURE_SETUP(dirty)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	self->ps = vmig_page_size();
	self->fd = vmig_region_new(self->dev, NPAGES * self->ps, 0);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, NPAGES * self->ps, 0);
	ASSERT_NE(NULL, self->map);
	/* Half the pages exist and were written before logging starts. */
	for (int i = 0; i < NPAGES; i += 2)
		self->map[i * self->ps] = 1;
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, variant->flags));
	/* Start every test from "nothing written since the last harvest". */
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					 self->bm, NULL));
}

FIXTURE_TEARDOWN(dirty)
{
	munmap(self->map, NPAGES * self->ps);
	close(self->fd);
	close(self->dev);
}

enum pattern { ALL, NONE, EVERY_3RD, RANDOM, NPATTERNS };
static const char *const pattern_name[] = { "all", "none", "every 3rd", "random" };

/* Write the pages of @p (at a varying offset) and note them in @want. */
static void write_pattern(unsigned char *map, long ps, enum pattern p,
			  unsigned int seed, uint64_t *want)
{
	memset(want, 0, NPAGES / 8);
	srand(seed);
	for (int i = 0; i < NPAGES; i++) {
		int w = p == ALL || (p == EVERY_3RD && i % 3 == 0) ||
			(p == RANDOM && rand() % 4 == 0);

		if (!w)
			continue;
		map[i * ps + (seed * 8 + 16) % ps] = (unsigned char)seed;
		vmig_set_bit(want, i);
	}
}

static int first_difference(const uint64_t *a, const uint64_t *b)
{
	for (int i = 0; i < NPAGES; i++)
		if (vmig_bit(a, i) != vmig_bit(b, i))
			return i;
	return -1;
}

TEST_F(dirty, harvest_reports_exactly_the_pages_written)
{
	uint64_t want[NPAGES / 64], dirty, n;

	/* Twice through: the second round proves the first re-armed. */
	for (int round = 0; round < 2; round++) {
		for (int p = 0; p < NPATTERNS; p++) {
			write_pattern(self->map, self->ps, p, round * 10 + p + 1,
				      want);
			ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags,
							NPAGES, self->bm, &dirty));
			n = 0;
			for (int i = 0; i < NPAGES; i++)
				n += vmig_bit(want, i);
			EXPECT_EQ(n, dirty) TH_LOG("pattern %s", pattern_name[p]);
			EXPECT_EQ(-1, first_difference(want, self->bm))
				TH_LOG("pattern %s round %d: page %d differs",
				       pattern_name[p], round,
				       first_difference(want, self->bm));
		}
	}
}

TEST_F(dirty, harvest_of_a_subrange_leaves_the_rest)
{
	uint64_t bm[2], dirty;

	self->map[10 * self->ps] = 2;		/* outside the range */
	self->map[130 * self->ps] = 2;		/* inside [128, 256) */
	ASSERT_EQ(0, vmig_dirty_get(self->fd, 128, 128, bm, &dirty));
	EXPECT_EQ(1, dirty);
	EXPECT_EQ(1ULL << 2, bm[0]);
	EXPECT_EQ(0, bm[1]);
	ASSERT_EQ(0, vmig_dirty_get(self->fd, 0, 64, bm, &dirty));
	EXPECT_EQ(1, dirty);
	EXPECT_EQ(1ULL << 10, bm[0]);
}

TEST_F(dirty, write_then_munmap_is_still_reported)
{
	unsigned char *second = vmig_region_map(self->fd, NPAGES * self->ps, 0);
	uint64_t dirty;

	ASSERT_NE(NULL, second);
	second[77 * self->ps] = 3;		/* a page never touched... */
	second[500 * self->ps] = 3;		/* ...and one written before */
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	EXPECT_EQ(2, dirty);
	/* Now mapped writable (HWDIRTY): these writes take no fault. */
	second[77 * self->ps] = 4;
	second[500 * self->ps] = 4;
	ASSERT_EQ(0, munmap(second, NPAGES * self->ps));
	ASSERT_EQ(0, madvise(self->map, NPAGES * self->ps, MADV_DONTNEED));
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	EXPECT_EQ(2, dirty);
	EXPECT_TRUE(vmig_bit(self->bm, 77));
	EXPECT_TRUE(vmig_bit(self->bm, 500));
	EXPECT_EQ(4, self->map[77 * self->ps]);
}

/*
 * mprotect() giving write access back must not make a write-protected page
 * writable behind the log's back.
 */
TEST_F(dirty, write_after_mprotect_round_trip_is_reported)
{
	uint64_t dirty;

	self->map[20 * self->ps] = 5;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	EXPECT_EQ(1, dirty);
	ASSERT_EQ(0, mprotect(self->map, NPAGES * self->ps, PROT_READ));
	ASSERT_EQ(0, mprotect(self->map, NPAGES * self->ps,
			      PROT_READ | PROT_WRITE));
	self->map[20 * self->ps] = 6;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	EXPECT_EQ(1, dirty);
	EXPECT_TRUE(vmig_bit(self->bm, 20));
}

TEST_F(dirty, reads_are_not_reported)
{
	volatile unsigned char *p = self->map;
	unsigned int sum = 0;
	uint64_t dirty;

	for (int i = 0; i < NPAGES; i++)
		sum += p[i * self->ps + 9];
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	EXPECT_EQ(0, dirty) TH_LOG("sum %u", sum);
}

TEST_F(dirty, stats_count_faults_harvests_and_protection)
{
	struct vmig_stats st0, st;
	uint64_t dirty;

	ASSERT_EQ(0, vmig_region_stats(self->fd, &st0));
	EXPECT_EQ(1, st0.dirty_on);
	EXPECT_EQ(variant->flags, st0.dirty_flags);
	/* Pages that existed before logging started. */
	for (int i = 0; i < 100; i++)
		self->map[2 * i * self->ps] = 4;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, &dirty));
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(100, dirty);
	EXPECT_EQ(st0.harvest_calls + 1, st.harvest_calls);
	EXPECT_EQ(st0.pages_harvested + 100, st.pages_harvested);
	if (variant->flags & VMIG_DIRTY_HWDIRTY) {
		/* Mapped writable already: no fault, nothing to protect. */
		EXPECT_EQ(st0.write_faults, st.write_faults);
		EXPECT_EQ(st0.pages_protected, st.pages_protected);
	} else {
		EXPECT_EQ(st0.write_faults + 100, st.write_faults);
		EXPECT_EQ(st0.pages_protected + 100, st.pages_protected);
		EXPECT_LT(0, st.max_protect_ns);
	}
	if (variant->flags & VMIG_DIRTY_MANUAL_PROTECT)
		EXPECT_EQ(st0.clear_calls + 1, st.clear_calls);
}

/*
 * VMIG_DIRTY_LOG_FINAL: the last harvest reports the same pages but
 * protects none of them; in the default mode a page it reported is then
 * written without a fault and not reported again (nothing re-armed), as in
 * the manual modes, where GET never protects; HWDIRTY sees the write in
 * the page tables as always.
 */
TEST_F(dirty, final_harvest_reports_and_protects_nothing)
{
	struct vmig_dirty_log log = { .first_page = 0, .num_pages = NPAGES,
				      .bitmap = (uintptr_t)self->bm,
				      .flags = VMIG_DIRTY_LOG_FINAL };
	struct vmig_stats st0, st1, st2;
	uint64_t want[NPAGES / 64], n = 0, dirty;

	write_pattern(self->map, self->ps, EVERY_3RD, 7, want);
	for (int i = 0; i < NPAGES; i++)
		n += vmig_bit(want, i);
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st0));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_DIRTY_LOG, &log));
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st1));
	EXPECT_EQ(n, log.dirty);
	EXPECT_EQ(-1, first_difference(want, self->bm));
	EXPECT_EQ(st0.pages_protected, st1.pages_protected);

	/* The same pages once more. */
	write_pattern(self->map, self->ps, EVERY_3RD, 8, want);
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st2));
	ASSERT_EQ(0, vmig_dirty_get(self->fd, 0, NPAGES, self->bm, &dirty));
	if (variant->flags & VMIG_DIRTY_HWDIRTY) {
		EXPECT_EQ(n, dirty);
	} else {
		EXPECT_EQ(st1.write_faults, st2.write_faults);
		EXPECT_EQ(0, dirty);
	}
}

/* ---- no lost write under concurrency ------------------------------- */

struct race {
	unsigned char *map;
	long ps;
	volatile int *stop;		/* shared with the writer process */
	int id;
	uint64_t npages;
};

/* Write random pages, each write a new generation of this writer's slot. */
static void race_write(struct race *w)
{
	uint64_t gen = 0, seed = 0x9e3779b97f4a7c15ULL * (w->id + 1);

	while (!*w->stop) {
		uint64_t *slot;

		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		slot = (uint64_t *)(w->map + (seed % w->npages) * w->ps) +
		       w->id + 8 * (gen % 64);
		*(volatile uint64_t *)slot = ++gen;
	}
}

static void *race_thread(void *arg)
{
	race_write(arg);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Copy the pages set in @bm to @shadow, as a precopy round sends them. */
static void copy_harvested(unsigned char *shadow, const unsigned char *map,
			   long ps, const uint64_t *bm)
{
	for (int i = 0; i < RACE_PAGES; i++)
		if (vmig_bit(bm, i))
			memcpy(shadow + i * ps, map + i * ps, ps);
}

TEST_F_TIMEOUT(dirty, no_write_is_lost_while_harvesting, 60)
{
	size_t len = RACE_PAGES * self->ps;
	struct race w[RACE_THREADS + 1];
	pthread_t th[RACE_THREADS];
	uint64_t bm[RACE_PAGES / 64], rounds = 0;
	unsigned char *map, *shadow;
	volatile int *stop;
	int fd, status, i;
	size_t diff;
	pid_t pid;
	double end;

	fd = vmig_region_new(self->dev, len, 0);
	ASSERT_LE(0, fd);
	map = vmig_region_map(fd, len, 0);
	ASSERT_NE(NULL, map);
	shadow = malloc(len);
	ASSERT_NE(NULL, shadow);
	stop = mmap(NULL, self->ps, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, stop);

	/* Writers run from before logging starts until after the last round. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct race cw = { .ps = self->ps, .stop = stop,
				   .id = RACE_THREADS, .npages = RACE_PAGES };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		cw.map = vmig_region_map(fd, len, 0);
		if (!cw.map)
			_exit(2);
		race_write(&cw);
		_exit(0);
	}
	for (i = 0; i < RACE_THREADS; i++) {
		w[i] = (struct race){ .map = map, .ps = self->ps, .stop = stop,
				      .id = i, .npages = RACE_PAGES };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, race_thread, &w[i]));
	}

	ASSERT_EQ(0, vmig_dirty_enable(fd, variant->flags));
	if (variant->flags & VMIG_DIRTY_INITIALLY_SET) {
		/* The first round reports every page. */
		ASSERT_EQ(0, vmig_dirty_harvest(fd, variant->flags, RACE_PAGES,
						bm, NULL));
		for (i = 0; i < RACE_PAGES; i++)
			ASSERT_TRUE(vmig_bit(bm, i));
	} else {
		/* ENABLE armed every page: the bulk copy may start now. */
		memset(bm, 0xff, sizeof(bm));
	}
	copy_harvested(shadow, map, self->ps, bm);

	end = now_s() + RACE_SECONDS;
	while (now_s() < end) {
		ASSERT_EQ(0, vmig_dirty_harvest(fd, variant->flags, RACE_PAGES,
						bm, NULL));
		copy_harvested(shadow, map, self->ps, bm);
		rounds++;
	}

	*stop = 1;
	for (i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);

	/* Stop-and-copy: the last round must complete the shadow. */
	ASSERT_EQ(0, vmig_dirty_harvest(fd, variant->flags, RACE_PAGES, bm, NULL));
	copy_harvested(shadow, map, self->ps, bm);
	for (diff = 0; diff < len; diff++)
		if (shadow[diff] != map[diff])
			break;
	EXPECT_EQ(len, diff) TH_LOG("page %zu differs after %llu rounds",
				    diff / self->ps, (unsigned long long)rounds);
	TH_LOG("%llu harvest rounds", (unsigned long long)rounds);

	ASSERT_EQ(0, vmig_dirty_disable(fd));
	munmap((void *)stop, self->ps);
	free(shadow);
	munmap(map, len);
	close(fd);
}

/* Enabling and disabling while writers fault never crashes or leaks. */
TEST_F(dirty, enable_disable_races_with_writers)
{
	struct race w = { .map = self->map, .ps = self->ps, .npages = NPAGES };
	volatile int stop = 0;
	pthread_t th;

	w.stop = &stop;
	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	ASSERT_EQ(0, pthread_create(&th, NULL, race_thread, &w));
	for (int i = 0; i < 100; i++) {
		ASSERT_EQ(0, vmig_dirty_enable(self->fd, variant->flags));
		ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags,
						NPAGES, self->bm, NULL));
		ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	}
	stop = 1;
	pthread_join(th, NULL);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, variant->flags));
}

/* ---- tracepoints and the wp_chunk parameter ------------------------- */

#define TRACEFS "/sys/kernel/tracing"

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

TEST_F(dirty, tracepoints_show_write_faults_and_harvests)
{
	char buf[1 << 16];
	ssize_t n;
	int fd;

	if (access(TRACEFS "/events/vmig", F_OK))
		SKIP(return, "no %s/events/vmig (tracefs not mounted)", TRACEFS);
	ASSERT_EQ(0, write_file(TRACEFS "/trace", ""));
	ASSERT_EQ(0, write_file(TRACEFS "/events/vmig/enable", "1"));
	self->map[5 * self->ps] = 7;
	ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags, NPAGES,
					self->bm, NULL));
	ASSERT_EQ(0, write_file(TRACEFS "/events/vmig/enable", "0"));
	fd = open(TRACEFS "/trace", O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, n);
	buf[n] = 0;
	/* Page 5 was never touched: its first write faults in every mode. */
	EXPECT_NE(NULL, strstr(buf, "vmig_write_fault: region=")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "vmig_harvest: region=")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "dirty=1 ")) TH_LOG("%s", buf);
}

#define WP_CHUNK "/sys/module/vmig/parameters/wp_chunk"

/* Small chunks split one walk into many; the result must not change. */
TEST_F(dirty, tiny_wp_chunk_still_reports_exactly)
{
	uint64_t want[NPAGES / 64], dirty;
	char old[32] = "512";
	int fd = open(WP_CHUNK, O_RDONLY);

	ASSERT_LE(0, fd);
	ASSERT_LT(0, read(fd, old, sizeof(old) - 1));
	close(fd);
	ASSERT_EQ(0, write_file(WP_CHUNK, "3"));
	for (int round = 0; round < 2; round++) {
		write_pattern(self->map, self->ps, RANDOM, 40 + round, want);
		ASSERT_EQ(0, vmig_dirty_harvest(self->fd, variant->flags,
						NPAGES, self->bm, &dirty));
		EXPECT_EQ(-1, first_difference(want, self->bm));
	}
	write_file(WP_CHUNK, old);
}

/* ---- bad input: a clear errno, no state change ---------------------- */

FIXTURE(bad) {
	int dev, fd;
	long ps;
	unsigned char *map;
	uint64_t bm[NPAGES / 64 + 1];
};

FIXTURE_SETUP(bad)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	self->ps = vmig_page_size();
	/* Not a multiple of 64 pages, so the last word is partial. */
	self->fd = vmig_region_new(self->dev, (NPAGES - 24) * self->ps, 0);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, (NPAGES - 24) * self->ps, 0);
	ASSERT_NE(NULL, self->map);
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, VMIG_DIRTY_MANUAL_PROTECT));
	/* One page written: it must stay reported after every failure. */
	self->map[3 * self->ps] = 1;
}

FIXTURE_TEARDOWN(bad)
{
	munmap(self->map, (NPAGES - 24) * self->ps);
	close(self->fd);
	close(self->dev);
}

static int get_log(int fd, uint64_t first, uint64_t num, uint64_t bitmap,
		   uint64_t flags)
{
	struct vmig_dirty_log log = {
		.first_page = first, .num_pages = num, .bitmap = bitmap,
		.flags = flags,
	};

	return ioctl(fd, VMIG_GET_DIRTY_LOG, &log) ? -errno : 0;
}

static int clear_log(int fd, uint64_t first, uint64_t num, uint64_t bitmap)
{
	struct vmig_dirty_log log = {
		.first_page = first, .num_pages = num, .bitmap = bitmap,
	};

	return ioctl(fd, VMIG_CLEAR_DIRTY_LOG, &log) ? -errno : 0;
}

/* Logging still on in manual mode, and page 3 still reported. */
#define EXPECT_UNCHANGED() do {						\
	struct vmig_stats st;						\
	uint64_t d;							\
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));			\
	EXPECT_EQ(1, st.dirty_on);					\
	EXPECT_EQ(VMIG_DIRTY_MANUAL_PROTECT, st.dirty_flags);		\
	ASSERT_EQ(0, vmig_dirty_get(self->fd, 0, NPAGES - 24, self->bm, &d)); \
	EXPECT_EQ(1, d);						\
	EXPECT_EQ(1ULL << 3, self->bm[0]);				\
} while (0)

#define BM ((uintptr_t)self->bm)

TEST_F(bad, unaligned_first_page_is_einval)
{
	EXPECT_EQ(-EINVAL, get_log(self->fd, 1, 64, BM, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, zero_pages_is_einval)
{
	EXPECT_EQ(-EINVAL, get_log(self->fd, 0, 0, BM, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, count_not_a_multiple_of_64_before_the_end_is_einval)
{
	EXPECT_EQ(-EINVAL, get_log(self->fd, 0, 65, BM, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, partial_last_word_at_the_end_is_fine)
{
	uint64_t d;

	self->map[(NPAGES - 25) * self->ps] = 1;
	ASSERT_EQ(0, vmig_dirty_get(self->fd, NPAGES - 64, 40, self->bm, &d));
	EXPECT_EQ(1, d);
	EXPECT_EQ(1ULL << 39, self->bm[0]);
	EXPECT_UNCHANGED();
}

TEST_F(bad, range_past_the_region_is_einval)
{
	EXPECT_EQ(-EINVAL, get_log(self->fd, 0, NPAGES, BM, 0));
	EXPECT_EQ(-EINVAL, get_log(self->fd, NPAGES, 64, BM, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, overflowing_range_is_einval)
{
	EXPECT_EQ(-EINVAL, get_log(self->fd, 64, UINT64_MAX - 63, BM, 0));
	EXPECT_EQ(-EINVAL, get_log(self->fd, UINT64_MAX - 63, 128, BM, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, unknown_flags_are_einval)
{
	struct vmig_dirty_log log = { .first_page = 0, .num_pages = 64, .bitmap = BM,
				      .flags = VMIG_DIRTY_LOG_FINAL };

	EXPECT_EQ(-EINVAL, get_log(self->fd, 0, 64, BM, VMIG_DIRTY_LOG_FINAL << 1));
	EXPECT_EQ(-EINVAL, get_log(self->fd, 0, 64, BM, 1ULL << 63));
	/* CLEAR takes no flag. */
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_CLEAR_DIRTY_LOG, &log));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_UNCHANGED();
}

TEST_F(bad, bad_bitmap_pointer_is_efault_and_keeps_the_bits)
{
	EXPECT_EQ(-EFAULT, get_log(self->fd, 0, 64, 8, 0));
	EXPECT_EQ(-EFAULT, get_log(self->fd, 0, 64, (uintptr_t)-4096, 0));
	EXPECT_EQ(-EFAULT, clear_log(self->fd, 0, 64, 8));
	EXPECT_UNCHANGED();
}

TEST_F(bad, read_only_bitmap_is_efault_and_keeps_the_bits)
{
	void *ro = mmap(NULL, self->ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, ro);
	EXPECT_EQ(-EFAULT, get_log(self->fd, 0, 64, (uintptr_t)ro, 0));
	EXPECT_UNCHANGED();
	munmap(ro, self->ps);
}

TEST_F(bad, bad_argument_pointer_is_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_GET_DIRTY_LOG, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_CLEAR_DIRTY_LOG, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DIRTY_ENABLE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_UNCHANGED();
}

TEST_F(bad, enable_while_on_is_ebusy)
{
	EXPECT_EQ(-EBUSY, vmig_dirty_enable(self->fd, 0));
	EXPECT_UNCHANGED();
}

TEST_F(bad, bad_enable_flags_are_einval)
{
	struct vmig_dirty_enable en = { .reserved = 1 };

	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	EXPECT_EQ(-EINVAL, vmig_dirty_enable(self->fd, 1U << 31));
	EXPECT_EQ(-EINVAL, vmig_dirty_enable(self->fd, VMIG_DIRTY_INITIALLY_SET));
	EXPECT_EQ(-EINVAL, vmig_dirty_enable(self->fd, VMIG_DIRTY_HWDIRTY |
					     VMIG_DIRTY_MANUAL_PROTECT));
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DIRTY_ENABLE, &en));
	EXPECT_EQ(EINVAL, errno);
	/* Still off. */
	EXPECT_EQ(-ENOENT, get_log(self->fd, 0, 64, BM, 0));
}

TEST_F(bad, logging_ioctls_while_off_are_enoent)
{
	struct vmig_stats st;

	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	EXPECT_EQ(-ENOENT, get_log(self->fd, 0, 64, BM, 0));
	EXPECT_EQ(-ENOENT, clear_log(self->fd, 0, 64, BM));
	EXPECT_EQ(-ENOENT, vmig_dirty_disable(self->fd));
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(0, st.dirty_on);
	EXPECT_EQ(0, st.dirty_flags);
}

TEST_F(bad, clear_without_manual_protect_is_einval)
{
	uint64_t d;

	ASSERT_EQ(0, vmig_dirty_disable(self->fd));
	ASSERT_EQ(0, vmig_dirty_enable(self->fd, 0));
	self->map[3 * self->ps] = 2;
	memset(self->bm, 0xff, sizeof(self->bm));
	EXPECT_EQ(-EINVAL, clear_log(self->fd, 0, 64, BM));
	ASSERT_EQ(0, vmig_dirty_get(self->fd, 0, 64, self->bm, &d));
	EXPECT_EQ(1, d);
}

TEST_F(bad, logging_ioctl_on_the_device_is_enotty)
{
	EXPECT_EQ(-ENOTTY, get_log(self->dev, 0, 64, BM, 0));
	EXPECT_EQ(-1, ioctl(self->dev, VMIG_DIRTY_DISABLE));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_UNCHANGED();
}

TEST_F(bad, device_ioctl_on_a_region_is_enotty)
{
	struct vmig_region_create c = { .size = 4096 };

	EXPECT_EQ(-1, ioctl(self->fd, VMIG_CREATE_REGION, &c));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_UNCHANGED();
}

TEST_HARNESS_MAIN
