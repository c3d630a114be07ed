// SPDX-License-Identifier: GPL-2.0
/*
 * postcopy_bench: the missing-page round trip a postcopy destination pays
 * for every page the guest touches before it arrives:
 *
 *	fault -> request read by the server thread -> page placed -> waiter wakes
 *
 * measured by the faulting thread around one read access, with 1 and with
 * 4 faulting threads on disjoint pages, for
 *	vmig	a VMIG_REGION_POSTCOPY region; the server read()s struct
 *		vmig_request records and calls VMIG_PLACE;
 *	uffd	userfaultfd MISSING on a memfd (shmem) mapping; the server
 *		read()s struct uffd_msg and calls UFFDIO_COPY.
 * Both servers block in read() (no polling loop), both place one 4 KiB page
 * per call.  Then the bulk rate of placing 64 MiB without faults (precopy
 * pages arriving) through each call and size.  vmig is also run with the module's wait_spin_ns set, if the
 * parameter is writable.  Configurations alternate round by round so slow
 * drift of the machine hits all alike.
 *
 * usage: postcopy_bench [-n FAULTS] [-r ROUNDS] [-s SPIN_NS[,SPIN_NS...]]
 *	FAULTS per configuration and round (default 200), ROUNDS (default 30),
 *	spin values for vmig besides 0 (default 20000).
 * Prints a table in microseconds; exits 0 unless a backend fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <linux/vmig.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_PARAM	"/sys/module/vmig/parameters/wait_spin_ns"
#define MAX_CONFIGS	16
#define SKIP_FIRST	2	/* per thread: page-table warm-up */

enum backend { VMIG, UFFD };

struct config {
	enum backend backend;
	int threads;
	long spin_ns;		/* -1: not applicable */
	uint64_t *lat;		/* ns, all rounds */
	size_t nlat;
	uint64_t *round_p50;	/* ns, the median of each round */
	struct config *base;	/* uffd with the same threads, or NULL */
};

struct run {
	enum backend backend;
	int fd;			/* region fd or userfaultfd */
	int memfd;
	char *map;
	size_t npages;		/* the last one is the stop sentinel */
	char *src;		/* one page of data */
	int error;
};

struct faulter {
	struct run *run;
	size_t first, count;
	uint64_t *lat;
	pthread_t thread;
};

static long ps;
static int vmig_dev = -1;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int vmig_serve(struct run *r)
{
	struct vmig_request req[16];
	struct vmig_place pl;
	ssize_t n, i;
	int stop = 0;

	while (!stop) {
		n = read(r->fd, req, sizeof(req));
		if (n <= 0)
			return n ? -errno : -EPIPE;
		for (i = 0; i < n / (ssize_t)sizeof(req[0]); i++) {
			memset(&pl, 0, sizeof(pl));
			pl.offset = req[i].offset;
			pl.len = ps;
			pl.src = (uintptr_t)r->src;
			if (ioctl(r->fd, VMIG_PLACE, &pl) && errno != EEXIST)
				return -errno;
			if (req[i].offset / ps == r->npages - 1)
				stop = 1;
		}
	}
	return 0;
}

static int uffd_serve(struct run *r)
{
	struct uffd_msg msg[16];
	struct uffdio_copy cp;
	ssize_t n, i;
	uint64_t addr;
	int stop = 0;

	while (!stop) {
		n = read(r->fd, msg, sizeof(msg));
		if (n <= 0)
			return n ? -errno : -EPIPE;
		for (i = 0; i < n / (ssize_t)sizeof(msg[0]); i++) {
			if (msg[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			addr = msg[i].arg.pagefault.address & ~(uint64_t)(ps - 1);
			memset(&cp, 0, sizeof(cp));
			cp.dst = addr;
			cp.src = (uintptr_t)r->src;
			cp.len = ps;
			if (ioctl(r->fd, UFFDIO_COPY, &cp) && errno != EEXIST)
				return -errno;
			if ((addr - (uintptr_t)r->map) / ps == r->npages - 1)
				stop = 1;
		}
	}
	return 0;
}

static void *server_main(void *arg)
{
	struct run *r = arg;

	r->error = r->backend == VMIG ? vmig_serve(r) : uffd_serve(r);
	return NULL;
}

static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	volatile char *p;
	uint64_t t0;
	size_t i;

	for (i = 0; i < f->count; i++) {
		p = f->run->map + (f->first + i) * ps;
		t0 = now_ns();
		(void)*p;
		f->lat[i] = now_ns() - t0;
	}
	return NULL;
}

static int run_setup(struct run *r, enum backend b, size_t npages)
{
	size_t size = npages * ps;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->backend = b;
	r->npages = npages;
	r->memfd = -1;
	r->src = aligned_alloc(ps, ps);
	if (!r->src)
		return -ENOMEM;
	memset(r->src, 0x42, ps);
	if (b == VMIG) {
		struct vmig_region_create c = {
			.size = size, .flags = VMIG_REGION_POSTCOPY,
		};

		r->fd = ioctl(vmig_dev, VMIG_CREATE_REGION, &c);
		if (r->fd < 0)
			return -errno;
		r->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      r->fd, 0);
	} else {
		struct uffdio_api api = { .api = UFFD_API };
		struct uffdio_register reg;

		r->fd = syscall(SYS_userfaultfd, O_CLOEXEC);
		if (r->fd < 0 || ioctl(r->fd, UFFDIO_API, &api))
			return -errno;
		r->memfd = memfd_create("postcopy_bench", MFD_CLOEXEC);
		if (r->memfd < 0 || ftruncate(r->memfd, size))
			return -errno;
		r->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      r->memfd, 0);
		if (r->map == MAP_FAILED)
			return -errno;
		memset(&reg, 0, sizeof(reg));
		reg.range.start = (uintptr_t)r->map;
		reg.range.len = size;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		if (ioctl(r->fd, UFFDIO_REGISTER, &reg))
			return -errno;
	}
	return r->map == MAP_FAILED ? -errno : 0;
}

static void run_teardown(struct run *r)
{
	if (r->map && r->map != MAP_FAILED)
		munmap(r->map, r->npages * ps);
	if (r->fd >= 0)
		close(r->fd);
	if (r->memfd >= 0)
		close(r->memfd);
	free(r->src);
}

static int set_spin(long ns)
{
	FILE *f = fopen(SPIN_PARAM, "w");
	int ok;

	if (!f)
		return -errno;
	ok = fprintf(f, "%ld\n", ns) > 0;
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

/* One measurement: @faults page faults by c->threads threads. */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int measure(struct config *c, size_t faults, int round)
{
	size_t from = c->nlat;
	size_t per = faults / c->threads, i;
	struct faulter f[8];
	pthread_t server;
	struct run r;
	int t, err;

	err = run_setup(&r, c->backend, per * c->threads + 1);
	if (err)
		goto out;
	if (c->backend == VMIG) {
		err = set_spin(c->spin_ns);
		if (err && c->spin_ns)
			goto out;
	}
	err = -pthread_create(&server, NULL, server_main, &r);
	if (err)
		goto out;
	for (t = 0; t < c->threads; t++) {
		f[t] = (struct faulter){ .run = &r, .first = t * per, .count = per };
		f[t].lat = calloc(per, sizeof(uint64_t));
		pthread_create(&f[t].thread, NULL, faulter_main, &f[t]);
	}
	for (t = 0; t < c->threads; t++) {
		pthread_join(f[t].thread, NULL);
		for (i = SKIP_FIRST; i < per; i++)
			c->lat[c->nlat++] = f[t].lat[i];
		free(f[t].lat);
	}
	qsort(c->lat + from, c->nlat - from, sizeof(uint64_t), cmp_u64);
	c->round_p50[round] = c->lat[from + (c->nlat - from) / 2];
	(void)*(volatile char *)(r.map + (r.npages - 1) * ps);	/* stop */
	pthread_join(server, NULL);
	err = r.error;
out:
	run_teardown(&r);
	return err;
}

/* Rounds in which @c's median beat or matched its uffd baseline's. */
static int rounds_won(const struct config *c, int rounds)
{
	int i, won = 0;

	for (i = 0; i < rounds; i++)
		won += c->round_p50[i] <= c->base->round_p50[i];
	return won;
}

static void report(struct config *c, int rounds)
{
	uint64_t sum = 0;
	size_t i;
	char spin[24], won[24] = "-";

	qsort(c->lat, c->nlat, sizeof(uint64_t), cmp_u64);
	for (i = 0; i < c->nlat; i++)
		sum += c->lat[i];
	if (c->spin_ns < 0)
		snprintf(spin, sizeof(spin), "-");
	else
		snprintf(spin, sizeof(spin), "%ld", c->spin_ns);
	if (c->base)
		snprintf(won, sizeof(won), "%d/%d", rounds_won(c, rounds), rounds);
	printf("%-12s %7d %8s %7zu %9.1f %9.1f %9.1f %9.1f %10s\n",
	       c->backend == VMIG ? "vmig" : "uffd-shmem", c->threads, spin,
	       c->nlat, sum / 1e3 / c->nlat, c->lat[c->nlat / 2] / 1e3,
	       c->lat[c->nlat * 99 / 100] / 1e3, c->lat[c->nlat - 1] / 1e3, won);
}

/*
 * Bulk placement throughput, no faults involved (precopy pages arriving, or
 * a postcopy background stream): @mib MiB placed into a fresh region or
 * registered memfd in calls of @chunk bytes; @batch > 1 uses
 * VMIG_PLACE_BATCH with that many 4 KiB entries per call.  GiB/s.
 */
static double fill_rate(enum backend b, size_t mib, size_t chunk, int batch)
{
	size_t size = mib << 20, off, i;
	struct vmig_place ent[256];
	struct run r = { .fd = -1, .memfd = -1 };
	char *src;
	uint64_t t0, ns;
	double rate = -1;

	src = aligned_alloc(ps, chunk > (size_t)ps * batch ? chunk : (size_t)ps * batch);
	if (!src || run_setup(&r, b, size / ps))
		goto out;
	memset(src, 0x5a, chunk > (size_t)ps * batch ? chunk : (size_t)ps * batch);
	t0 = now_ns();
	for (off = 0; off < size; ) {
		if (b == UFFD) {
			struct uffdio_copy cp = {
				.dst = (uintptr_t)r.map + off, .src = (uintptr_t)src,
				.len = chunk,
			};

			if (ioctl(r.fd, UFFDIO_COPY, &cp))
				goto out;
			off += chunk;
		} else if (batch > 1) {
			struct vmig_place_batch pb = {
				.entries = (uintptr_t)ent, .count = batch,
			};

			for (i = 0; i < (size_t)batch; i++)
				ent[i] = (struct vmig_place){
					.offset = off + i * ps, .len = ps,
					.src = (uintptr_t)src + i * ps,
				};
			if (ioctl(r.fd, VMIG_PLACE_BATCH, &pb) || pb.exist)
				goto out;
			off += (size_t)batch * ps;
		} else {
			struct vmig_place pl = {
				.offset = off, .len = chunk, .src = (uintptr_t)src,
			};

			if (ioctl(r.fd, VMIG_PLACE, &pl))
				goto out;
			off += chunk;
		}
	}
	ns = now_ns() - t0;
	rate = (double)size / (1 << 30) / (ns / 1e9);
out:
	run_teardown(&r);
	free(src);
	return rate;
}

static void report_fill(size_t mib)
{
	static const struct {
		enum backend b;
		size_t chunk;
		int batch;
		const char *what;
	} rows[] = {
		{ UFFD, 4096, 1, "uffd-shmem  UFFDIO_COPY, 4 KiB per call" },
		{ VMIG, 4096, 1, "vmig        VMIG_PLACE, 4 KiB per call" },
		{ VMIG, 4096, 256, "vmig        VMIG_PLACE_BATCH, 256 x 4 KiB per call" },
		{ UFFD, 2 << 20, 1, "uffd-shmem  UFFDIO_COPY, 2 MiB per call" },
		{ VMIG, 2 << 20, 1, "vmig        VMIG_PLACE, 2 MiB per call" },
	};
	size_t i;

	printf("# bulk placement into fresh memory, %zu MiB, GiB/s\n", mib);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		printf("%-52s %6.2f\n", rows[i].what,
		       fill_rate(rows[i].b, mib, rows[i].batch > 1 ? 4096 : rows[i].chunk,
				 rows[i].batch));
}

int main(int argc, char **argv)
{
	long spins[MAX_CONFIGS] = { 0, 20000 };
	int nspins = 2, rounds = 30, threads[] = { 1, 4 };
	struct config cfg[MAX_CONFIGS];
	size_t faults = 200;
	uint64_t t0, clock_ns;
	int ncfg = 0, i, rd, o, c, err, order[MAX_CONFIGS];
	unsigned int seed = 1;
	char *tok;

	while ((o = getopt(argc, argv, "n:r:s:")) != -1) {
		switch (o) {
		case 'n':
			faults = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 's':
			nspins = 1;
			for (tok = strtok(optarg, ","); tok && nspins < 6;
			     tok = strtok(NULL, ","))
				spins[nspins++] = strtol(tok, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-n FAULTS] [-r ROUNDS] [-s SPIN_NS,...]\n",
				argv[0]);
			return 2;
		}
	}
	if (faults < 64 || rounds < 1)
		return 2;
	ps = sysconf(_SC_PAGESIZE);
	vmig_dev = open("/dev/vmig", O_RDWR | O_CLOEXEC);
	if (vmig_dev < 0) {
		perror("/dev/vmig");
		return 1;
	}
	if (access(SPIN_PARAM, W_OK)) {
		printf("# %s not writable: vmig runs without spinning only\n",
		       SPIN_PARAM);
		nspins = 1;
	}
	for (i = 0; i < 2; i++) {
		struct config *base = &cfg[ncfg];

		cfg[ncfg++] = (struct config){ .backend = UFFD, .threads = threads[i], .spin_ns = -1 };
		for (o = 0; o < nspins; o++)
			cfg[ncfg++] = (struct config){ .backend = VMIG, .threads = threads[i],
						       .spin_ns = spins[o], .base = base };
	}
	for (i = 0; i < ncfg; i++) {
		cfg[i].lat = calloc(faults * rounds, sizeof(uint64_t));
		cfg[i].round_p50 = calloc(rounds, sizeof(uint64_t));
		if (!cfg[i].lat || !cfg[i].round_p50)
			return 1;
	}
	for (i = 0; i < ncfg; i++)
		order[i] = i;
	for (rd = 0; rd < rounds; rd++) {
		/* A new order each round: no config always follows another. */
		for (i = ncfg - 1; i > 0; i--) {
			o = rand_r(&seed) % (i + 1);
			c = order[i];
			order[i] = order[o];
			order[o] = c;
		}
		for (i = 0; i < ncfg; i++) {
			c = order[i];
			/* Let the last run's teardown (page freeing) settle. */
			usleep(10000);
			err = measure(&cfg[c], faults, rd);
			if (err) {
				fprintf(stderr, "%s, %d threads: %s\n",
					cfg[c].backend == VMIG ? "vmig" : "uffd",
					cfg[c].threads, strerror(-err));
				return 1;
			}
		}
	}
	set_spin(0);
	t0 = now_ns();
	for (i = 0; i < 1000; i++)
		now_ns();
	clock_ns = (now_ns() - t0) / 1001;
	printf("# postcopy round trip: fault -> request read -> place -> wake, one 4 KiB read fault each\n");
	printf("# one clock_gettime(CLOCK_MONOTONIC) here: %llu ns (included twice in each figure)\n",
	       (unsigned long long)clock_ns);
	printf("# %ld cpus online, %zu faults x %d rounds per row, microseconds\n",
	       sysconf(_SC_NPROCESSORS_ONLN), faults, rounds);
	printf("# won: rounds whose median was no slower than uffd's in the same round\n");
	printf("%-12s %7s %8s %7s %9s %9s %9s %9s %10s\n", "backend", "threads",
	       "spin_ns", "faults", "avg", "p50", "p99", "max", "won");
	for (i = 0; i < ncfg; i++)
		report(&cfg[i], rounds);
	report_fill(64);
	return 0;
}
