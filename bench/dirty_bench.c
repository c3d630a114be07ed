// SPDX-License-Identifier: GPL-2.0
/*
 * dirty_bench: what dirty logging costs, vmig.ko against userfaultfd.
 *
 * Runs in the vmcheck guest (make bench-dirty) and prints one table:
 *   - cost per write fault (first write to a write-protected page);
 *   - harvest time (GET of the whole region, re-protect included) at 0, 1,
 *     10 and 100 % of the pages dirty, and per dirty page;
 *   - reading every page after a harvest of a fully dirty region (what
 *     re-protection leaves for the guest's next access to pay);
 *   - CLEAR (MANUAL_PROTECT) time, and HWDIRTY harvest time;
 *   - the longest stall one writer thread (on CPU 1) sees while another
 *     thread (on CPU 0) harvests a fully dirty region, with wp_chunk = the
 *     whole region (one unbroken walk) and with the default chunk.
 * The same write/harvest loop runs on a memfd with userfaultfd
 * write-protect, sync: a handler thread takes each write-protect fault,
 * sets the page's bit and unprotects the page (UFFDIO_WRITEPROTECT, which
 * wakes the writer); a harvest fetches and clears the bits and re-protects
 * each run of dirty pages with UFFDIO_WRITEPROTECT.  Where the kernel has
 * UFFD_FEATURE_WP_ASYNC and PAGEMAP_SCAN (6.7+: the 6.12 guest, not the
 * 6.1 one) it runs a third time in async mode, the uffd backend's best:
 * a write un-protects its page in the kernel with no message, and a
 * harvest is one PAGEMAP_SCAN of /proc/self/pagemap that reports the
 * written pages and write-protects them again (PM_SCAN_WP_MATCHING).
 *
 * The writer and the handler share one CPU (sched_setaffinity): a wake-up
 * across CPUs costs tens of microseconds here, which would swamp the
 * figures; on one CPU uffd-wp shows its best case.
 *
 * usage: dirty_bench [MiB [kmod]]   (default 256; "kmod": skip uffd-wp)
 * Prints figures and exits 0; no figure is checked.
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "../lib/uffd_compat.h"

#define REPS		3
#define STALL_MAX_X	4	/* stall region: up to 4x, if RAM allows */
#define WP_CHUNK	"/sys/module/vmig/parameters/wp_chunk"

static long ps;
static uint64_t npages;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Read one byte of every page; returns ns per page. */
static double read_pages(const unsigned char *map)
{
	uint64_t t0 = now_ns(), i;
	unsigned int sum = 0;

	for (i = 0; i < npages; i++)
		sum += ((const volatile unsigned char *)map)[i * ps + 8];
	__asm__ volatile("" : : "r"(sum));
	return (double)(now_ns() - t0) / npages;
}

/* Write one byte to @pct percent of the pages (a fixed random choice). */
static uint64_t dirty_pages(unsigned char *map, int pct, unsigned int seed)
{
	uint64_t i, n = 0;

	srand(seed);
	for (i = 0; i < npages; i++) {
		if (pct < 100 && (uint64_t)rand() % 1000 >= (uint64_t)pct * 10)
			continue;
		map[i * ps + 8] ^= 1;
		n++;
	}
	return n;
}

/* Progress on stderr, so a slow guest shows where it is. */
static void stage(const char *what)
{
	static uint64_t t0;
	uint64_t t = now_ns();

	if (!t0)
		t0 = t;
	fprintf(stderr, "# %7.1f s: %s\n", (t - t0) / 1e9, what);
}

/* A row of the main table; a negative figure prints as "-". */
static void print_row3(const char *what, double a, const char *unit_a,
		       double b, const char *unit_b, double c, const char *unit_c)
{
	char x[32] = "-", y[32] = "-", z[32] = "-";

	if (a >= 0)
		snprintf(x, sizeof(x), "%.3f %s", a, unit_a);
	if (b >= 0)
		snprintf(y, sizeof(y), "%.3f %s", b, unit_b);
	if (c >= 0)
		snprintf(z, sizeof(z), "%.3f %s", c, unit_c);
	printf("| %-44s | %-16s | %-16s | %-16s |\n", what, x, y, z);
}

static void print_row(const char *what, double a, const char *unit_a,
		      double b, const char *unit_b)
{
	char x[32] = "-", y[32] = "-";

	if (a >= 0)
		snprintf(x, sizeof(x), "%.3f %s", a, unit_a);
	if (b >= 0)
		snprintf(y, sizeof(y), "%.3f %s", b, unit_b);
	printf("| %-44s | %-16s | %-16s |\n", what, x, y);
}

/* ---- vmig.ko --------------------------------------------------------- */

struct stall_result {
	double longest_ms;	/* worst of STALL_REPS harvests */
	double best_ms;		/* best of the per-harvest worsts */
	double median_ms;	/* their median */
	double walk_ms;		/* max_protect_ns */
	double floor_ms;	/* worst with no harvest at all */
};

struct kmod_result {
	double fault_us, reread_us;
	double harvest_ms[4], clear_ms, hw_ms[4];
	uint64_t harvest_dirty[4];
	struct stall_result whole, chunked;
	uint64_t stall_mib;
	char chunk[32];
};

static const int pcts[4] = { 0, 1, 10, 100 };

static int kmod_region(int dev, unsigned char **map)
{
	int fd = vmig_region_new(dev, npages * ps, VMIG_REGION_CLOEXEC);

	if (fd < 0) {
		errno = -fd;
		die("VMIG_CREATE_REGION");
	}
	*map = vmig_region_map(fd, npages * ps, 0);
	if (!*map)
		die("mmap region");
	memset(*map, 1, npages * ps);
	return fd;
}

static double time_get(int fd, uint64_t *bm, uint64_t *dirty)
{
	uint64_t t0 = now_ns();

	if (vmig_dirty_get(fd, 0, npages, bm, dirty))
		die("VMIG_GET_DIRTY_LOG");
	return (now_ns() - t0) / 1e6;
}

static void kmod_harvests(int dev, uint64_t *bm, struct kmod_result *res)
{
	unsigned char *map;
	uint64_t t0, n, d;
	int fd, p, rep;
	double best;

	/* Default mode: faults and harvest with re-protection. */
	fd = kmod_region(dev, &map);
	if (vmig_dirty_enable(fd, 0))
		die("VMIG_DIRTY_ENABLE");
	t0 = now_ns();
	n = dirty_pages(map, 100, 1);
	res->fault_us = (now_ns() - t0) / 1e3 / n;
	time_get(fd, bm, &d);
	for (p = 0; p < 4; p++) {
		best = 1e18;
		for (rep = 0; rep < REPS; rep++) {
			dirty_pages(map, pcts[p], 10 + rep);
			double ms = time_get(fd, bm, &d);

			if (ms < best)
				best = ms;
		}
		res->harvest_ms[p] = best;
		res->harvest_dirty[p] = d;
	}
	/* The last harvest above took a fully dirty region. */
	res->reread_us = read_pages(map) / 1e3;
	munmap(map, npages * ps);
	close(fd);

	stage("vmig.ko: clear");
	/* MANUAL_PROTECT: CLEAR of a fully dirty region. */
	fd = kmod_region(dev, &map);
	if (vmig_dirty_enable(fd, VMIG_DIRTY_MANUAL_PROTECT))
		die("VMIG_DIRTY_ENABLE manual");
	best = 1e18;
	for (rep = 0; rep < REPS; rep++) {
		dirty_pages(map, 100, 20 + rep);
		time_get(fd, bm, &d);
		t0 = now_ns();
		if (vmig_dirty_clear(fd, 0, npages, bm, NULL))
			die("VMIG_CLEAR_DIRTY_LOG");
		if ((now_ns() - t0) / 1e6 < best)
			best = (now_ns() - t0) / 1e6;
	}
	res->clear_ms = best;
	munmap(map, npages * ps);
	close(fd);

	stage("vmig.ko: hwdirty");
	/* HWDIRTY: no faults; harvest cleans PTE dirty bits. */
	fd = kmod_region(dev, &map);
	if (vmig_dirty_enable(fd, VMIG_DIRTY_HWDIRTY))
		die("VMIG_DIRTY_ENABLE hwdirty");
	for (p = 0; p < 4; p++) {
		best = 1e18;
		for (rep = 0; rep < REPS; rep++) {
			dirty_pages(map, pcts[p], 30 + rep);
			double ms = time_get(fd, bm, &d);

			if (ms < best)
				best = ms;
		}
		res->hw_ms[p] = best;
	}
	munmap(map, npages * ps);
	close(fd);
}

struct stall_writer {
	unsigned char *map;
	volatile int stop, measure;
	volatile uint64_t max_gap, seq;
};

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % sysconf(_SC_NPROCESSORS_ONLN), &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* A vCPU: writes random pages, notes the longest gap between two writes. */
static void *stall_writer(void *arg)
{
	struct stall_writer *w = arg;
	uint64_t seed = 88172645463325252ULL, prev = now_ns(), t, gap;

	pin_to_cpu(1);
	while (!w->stop) {
		w->seq++;
		t = now_ns();
		gap = t - prev;
		prev = t;
		if (w->measure && gap > w->max_gap)
			w->max_gap = gap;
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		w->map[(seed % npages) * ps + 16]++;
	}
	return NULL;
}

static int write_param(const char *v)
{
	int fd = open(WP_CHUNK, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, v, strlen(v));
	close(fd);
	return n == (ssize_t)strlen(v) ? 0 : -1;
}

/*
 * Longest writer stall while the whole, fully dirty, region is harvested:
 * the worst over STALL_REPS harvests, and the best and the median of the
 * per-harvest worsts.  The guest's vCPUs are host threads on a shared
 * machine; the host preempting one for tens of ms shows up in any single
 * figure, the median and best-of figures filter that out.
 */
#define STALL_REPS	7

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Let the writer finish the write in flight, then stop measuring. */
static void stall_window_end(struct stall_writer *w)
{
	uint64_t seq = w->seq;

	while (w->seq < seq + 2)
		;
	w->measure = 0;
}

static void kmod_stall(int dev, uint64_t *bm, const char *chunk,
		       struct stall_result *res)
{
	struct stall_writer w = { 0 };
	uint64_t d, worst = 0, best = UINT64_MAX, t0, gaps[STALL_REPS];
	struct vmig_stats st;
	pthread_t th;
	int fd, rep;

	if (write_param(chunk))
		die("write " WP_CHUNK);
	fd = kmod_region(dev, &w.map);
	if (vmig_dirty_enable(fd, 0))
		die("VMIG_DIRTY_ENABLE");
	if (pthread_create(&th, NULL, stall_writer, &w))
		die("pthread_create");
	pin_to_cpu(0);
	for (rep = 0; rep < STALL_REPS; rep++) {
		dirty_pages(w.map, 100, 40 + rep);
		w.max_gap = 0;
		w.measure = 1;
		time_get(fd, bm, &d);
		stall_window_end(&w);
		gaps[rep] = w.max_gap;
		if (w.max_gap > worst)
			worst = w.max_gap;
		if (w.max_gap < best)
			best = w.max_gap;
	}
	res->longest_ms = worst / 1e6;
	res->best_ms = best / 1e6;
	qsort(gaps, STALL_REPS, sizeof(gaps[0]), cmp_u64);
	res->median_ms = gaps[STALL_REPS / 2] / 1e6;

	/* The same writer with no harvest at all: the machine's own noise. */
	worst = 0;
	for (rep = 0; rep < STALL_REPS; rep++) {
		w.max_gap = 0;
		w.measure = 1;
		t0 = now_ns();
		while (now_ns() - t0 < 50000000ULL)
			;
		stall_window_end(&w);
		if (w.max_gap > worst)
			worst = w.max_gap;
	}
	res->floor_ms = worst / 1e6;

	w.stop = 1;
	pthread_join(th, NULL);
	vmig_region_stats(fd, &st);
	res->walk_ms = st.max_protect_ns / 1e6;
	munmap(w.map, npages * ps);
	close(fd);
}

/* ---- userfaultfd write-protect on a memfd ---------------------------- */

struct uffd_log {
	int uffd;
	unsigned char *map;
	uint64_t *bm;
	volatile int stop;
};

static void uffd_wp(int uffd, void *addr, uint64_t len, int protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT");
}

/* Take write-protect faults: unprotect (waking the writer), then log. */
static void *uffd_handler(void *arg)
{
	struct uffd_log *u = arg;
	struct pollfd pfd = { .fd = u->uffd, .events = POLLIN };
	struct uffd_msg msg;

	pin_to_cpu(0);
	while (!u->stop) {
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		if (read(u->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT ||
		    !(msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP))
			continue;
		uint64_t page = (msg.arg.pagefault.address - (uintptr_t)u->map) / ps;

		uffd_wp(u->uffd, u->map + page * ps, ps, 0);
		__atomic_fetch_or(&u->bm[page / 64], 1ULL << (page % 64),
				  __ATOMIC_SEQ_CST);
	}
	return NULL;
}

/* Fetch and clear the bits, re-protect each run of dirty pages. */
static uint64_t uffd_harvest(struct uffd_log *u, uint64_t *out)
{
	uint64_t w, i, run = 0, n = 0;

	for (w = 0; w < vmig_bm_words(npages); w++)
		out[w] = __atomic_exchange_n(&u->bm[w], 0, __ATOMIC_SEQ_CST);
	for (i = 0; i <= npages; i++) {
		if (i < npages && vmig_bit(out, i)) {
			n++;
			continue;
		}
		if (n > run)
			uffd_wp(u->uffd, u->map + (i - (n - run)) * ps,
				(n - run) * ps, 1);
		run = n;
	}
	return n;
}

static void uffd_bench(double *fault_us, double *harvest_ms, double *reread_us)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP |
					      UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register reg = { 0 };
	struct uffd_log u = { 0 };
	uint64_t *out, t0, n;
	pthread_t th;
	int mfd, p, rep;
	double best;

	mfd = memfd_create("dirty_bench", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, npages * ps))
		die("memfd");
	u.map = mmap(NULL, npages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (u.map == MAP_FAILED)
		die("mmap memfd");
	memset(u.map, 1, npages * ps);
	u.bm = calloc(vmig_bm_words(npages), 8);
	out = calloc(vmig_bm_words(npages), 8);
	u.uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (u.uffd < 0 || ioctl(u.uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg.range.start = (uintptr_t)u.map;
	reg.range.len = npages * ps;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(u.uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	uffd_wp(u.uffd, u.map, npages * ps, 1);
	pin_to_cpu(0);
	if (pthread_create(&th, NULL, uffd_handler, &u))
		die("pthread_create");

	stage("userfaultfd-wp: faults");
	t0 = now_ns();
	n = dirty_pages(u.map, 100, 1);
	stage("userfaultfd-wp: harvests");
	*fault_us = (now_ns() - t0) / 1e3 / n;
	uffd_harvest(&u, out);
	for (p = 0; p < 4; p++) {
		best = 1e18;
		for (rep = 0; rep < REPS; rep++) {
			dirty_pages(u.map, pcts[p], 10 + rep);
			t0 = now_ns();
			uffd_harvest(&u, out);
			if ((now_ns() - t0) / 1e6 < best)
				best = (now_ns() - t0) / 1e6;
		}
		harvest_ms[p] = best;
	}
	*reread_us = read_pages(u.map) / 1e3;
	u.stop = 1;
	pthread_join(th, NULL);
	close(u.uffd);
	munmap(u.map, npages * ps);
	close(mfd);
	free(u.bm);
	free(out);
}

/* ---- userfaultfd async write-protect + PAGEMAP_SCAN (6.7+) --------- */

#define SCAN_VEC_LEN	512

/* One harvest: report the written pages and write-protect them again. */
static uint64_t scan_harvest(int pagemap, unsigned char *map, struct page_region *vec)
{
	uint64_t start = (uintptr_t)map, end = start + npages * ps, n = 0;

	while (start < end) {
		struct pm_scan_arg a = {
			.size = sizeof(a),
			.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
			.start = start, .end = end,
			.vec = (uintptr_t)vec, .vec_len = SCAN_VEC_LEN,
			.category_mask = PAGE_IS_WRITTEN,
			.return_mask = PAGE_IS_WRITTEN,
		};
		long r = ioctl(pagemap, PAGEMAP_SCAN, &a), i;

		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("PAGEMAP_SCAN");
		}
		for (i = 0; i < r; i++)
			n += (vec[i].end - vec[i].start) / ps;
		/* walk_end can be wrong when the vector fills: go on from the last region. */
		if (r < SCAN_VEC_LEN)
			break;
		start = vec[r - 1].end;
	}
	return n;
}

/* Returns 0 when the kernel lacks WP_ASYNC or PAGEMAP_SCAN (figures left as they are). */
static int uffd_async_bench(double *fault_us, double *harvest_ms, double *reread_us)
{
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURE_WP_ASYNC |
					      UFFD_FEATURE_WP_HUGETLBFS_SHMEM };
	struct uffdio_register reg = { 0 };
	struct page_region *vec = calloc(SCAN_VEC_LEN, sizeof(*vec));
	int mfd, uffd, pagemap, p, rep;
	unsigned char *map;
	uint64_t t0, n;
	double best;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || !vec)
		die("userfaultfd");
	if (ioctl(uffd, UFFDIO_API, &api)) {
		close(uffd);
		free(vec);
		return 0;
	}
	pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	mfd = memfd_create("dirty_bench_async", MFD_CLOEXEC);
	if (pagemap < 0 || mfd < 0 || ftruncate(mfd, npages * ps))
		die("pagemap/memfd");
	map = mmap(NULL, npages * ps, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		die("mmap memfd");
	memset(map, 1, npages * ps);
	reg.range.start = (uintptr_t)map;
	reg.range.len = npages * ps;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER");
	/* Protected once before any scan, or every page reads as written. */
	uffd_wp(uffd, map, npages * ps, 1);
	if (scan_harvest(pagemap, map, vec))
		fprintf(stderr, "# uffd async: pages written before any write\n");

	stage("userfaultfd async: faults");
	t0 = now_ns();
	n = dirty_pages(map, 100, 1);
	*fault_us = (now_ns() - t0) / 1e3 / n;
	stage("userfaultfd async: harvests");
	scan_harvest(pagemap, map, vec);
	for (p = 0; p < 4; p++) {
		best = 1e18;
		for (rep = 0; rep < REPS; rep++) {
			dirty_pages(map, pcts[p], 10 + rep);
			t0 = now_ns();
			scan_harvest(pagemap, map, vec);
			if ((now_ns() - t0) / 1e6 < best)
				best = (now_ns() - t0) / 1e6;
		}
		harvest_ms[p] = best;
	}
	*reread_us = read_pages(map) / 1e3;
	close(uffd);
	close(pagemap);
	munmap(map, npages * ps);
	close(mfd);
	free(vec);
	return 1;
}

int main(int argc, char **argv)
{
	struct kmod_result k = { 0 };
	double ufault = -1, uharvest[4] = { -1, -1, -1, -1 }, ureread = -1;
	double afault = -1, aharvest[4] = { -1, -1, -1, -1 }, areread = -1;
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 256;
	uint64_t *bm;
	char whole[32], buf[96];
	int dev, fd, p;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ps = vmig_page_size();
	npages = (mib << 20) / ps;
	bm = calloc(vmig_bm_words(STALL_MAX_X * npages), 8);
	dev = vmig_dev_open();
	if (dev < 0 || !bm) {
		errno = dev < 0 ? -dev : ENOMEM;
		die("open /dev/vmig");
	}
	fd = open(WP_CHUNK, O_RDONLY);
	if (fd < 0 || read(fd, k.chunk, sizeof(k.chunk) - 1) <= 0)
		die("read " WP_CHUNK);
	close(fd);
	k.chunk[strcspn(k.chunk, "\n")] = 0;

	stage("vmig.ko: faults, harvests, clear, hwdirty");
	kmod_harvests(dev, bm, &k);
	/*
	 * The stall test runs on a larger region when the guest has room:
	 * one unbroken walk then clearly outlasts the host's scheduling noise.
	 */
	k.stall_mib = mib;
	while (k.stall_mib < STALL_MAX_X * mib &&
	       (uint64_t)sysconf(_SC_PHYS_PAGES) * ps >= 2 * (k.stall_mib << 21))
		k.stall_mib *= 2;
	npages = (k.stall_mib << 20) / ps;
	stage("vmig.ko: writer stall, one walk");
	snprintf(whole, sizeof(whole), "%llu", (unsigned long long)npages);
	kmod_stall(dev, bm, whole, &k.whole);
	stage("vmig.ko: writer stall, default chunk");
	kmod_stall(dev, bm, k.chunk, &k.chunked);
	npages = (mib << 20) / ps;
	write_param(k.chunk);
	if (argc < 3 || strcmp(argv[2], "kmod")) {
		stage("userfaultfd-wp");
		uffd_bench(&ufault, uharvest, &ureread);
		stage("userfaultfd async");
		if (!uffd_async_bench(&afault, aharvest, &areread))
			stage("userfaultfd async: not offered by this kernel");
	}
	stage("done");

	printf("\ndirty logging, %llu MiB region (%llu pages of %ld B), %ld CPUs, best of %d\n",
	       (unsigned long long)mib, (unsigned long long)npages, ps,
	       sysconf(_SC_NPROCESSORS_ONLN), REPS);
	printf("uffd-wp: memfd, sync UFFDIO_WRITEPROTECT + handler thread; "
	       "uffd async: WP_ASYNC + PAGEMAP_SCAN (%s)\n\n",
	       afault >= 0 ? "offered by this kernel" : "not offered by this kernel");
	printf("| %-44s | %-16s | %-16s | %-16s |\n", "measure", "vmig.ko", "uffd-wp",
	       "uffd async");
	printf("| %-44s | %-16s | %-16s | %-16s |\n", "---", "---", "---", "---");
	print_row3("write fault, per page", k.fault_us, "us", ufault, "us", afault, "us");
	for (p = 0; p < 4; p++) {
		snprintf(buf, sizeof(buf), "harvest + re-protect, %d %% dirty", pcts[p]);
		print_row3(buf, k.harvest_ms[p], "ms", uharvest[p], "ms", aharvest[p], "ms");
	}
	for (p = 1; p < 4; p++) {
		uint64_t d = k.harvest_dirty[p] ? k.harvest_dirty[p] : 1;

		snprintf(buf, sizeof(buf), "  per dirty page, %d %% dirty", pcts[p]);
		print_row3(buf, k.harvest_ms[p] * 1e3 / d, "us",
			   uharvest[p] >= 0 ? uharvest[p] * 1e3 / d : -1, "us",
			   aharvest[p] >= 0 ? aharvest[p] * 1e3 / d : -1, "us");
	}
	{
		uint64_t chunk = strtoull(k.chunk, NULL, 0);
		uint64_t walks = chunk ? (npages + chunk - 1) / chunk : 1;

		snprintf(buf, sizeof(buf), "  per wp_chunk (%s pages), 100 %% dirty", k.chunk);
		print_row(buf, k.harvest_ms[3] / walks, "ms", -1, "");
	}
	print_row3("read every page after a 100 % harvest, per page",
		   k.reread_us, "us", ureread, "us", areread, "us");
	print_row("CLEAR (manual-protect), 100 % dirty", k.clear_ms, "ms", -1, "");
	for (p = 0; p < 4; p++) {
		snprintf(buf, sizeof(buf), "HWDIRTY harvest, %d %% dirty", pcts[p]);
		print_row(buf, k.hw_ms[p], "ms", -1, "");
	}
	printf("\nwriter stall (CPU 1) during a harvest (CPU 0) of a fully dirty %llu MiB region:\n\n",
	       (unsigned long long)k.stall_mib);
	printf("| %-44s | %-16s | %-16s |\n", "measure",
	       "one walk", "default chunk");
	printf("| %-44s | %-16s | %-16s |\n", "---", "---", "---");
	snprintf(buf, sizeof(buf), "wp_chunk (pages)");
	printf("| %-44s | %-16s | %-16s |\n", buf, whole, k.chunk);
	print_row("longest stall, worst of 7 harvests",
		  k.whole.longest_ms, "ms", k.chunked.longest_ms, "ms");
	print_row("longest stall, median of 7 harvests",
		  k.whole.median_ms, "ms", k.chunked.median_ms, "ms");
	print_row("longest stall, best of 7 harvests",
		  k.whole.best_ms, "ms", k.chunked.best_ms, "ms");
	print_row("longest protection walk (max_protect_ns)",
		  k.whole.walk_ms, "ms", k.chunked.walk_ms, "ms");
	print_row("longest gap with no harvest (noise floor)",
		  k.whole.floor_ms, "ms", k.chunked.floor_ms, "ms");
	printf("\nstall ratio one walk / default chunk: worst %.1fx, median %.1fx, best %.1fx\n",
	       k.chunked.longest_ms > 0 ? k.whole.longest_ms / k.chunked.longest_ms : 0,
	       k.chunked.median_ms > 0 ? k.whole.median_ms / k.chunked.median_ms : 0,
	       k.chunked.best_ms > 0 ? k.whole.best_ms / k.chunked.best_ms : 0);
	close(dev);
	free(bm);
	return 0;
}
