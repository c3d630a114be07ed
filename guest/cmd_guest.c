// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the reference VMM.  Guest RAM is a memfd; vCPU threads dirty
 * it (random, sequential or not at all, at a set rate), every page
 * self-checking (guest_page.h).  It talks to the helper through libvmig's
 * VMM protocol, exactly as a real VMM would.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "guest_dev.h"
#include "guest_kvm.h"
#include "guest_kvm_check.h"
#include "guest_page.h"
#include "libvmig.h"
#include "options.h"
#include "util.h"

enum pattern { PAT_RANDOM, PAT_SEQUENTIAL, PAT_IDLE, PAT_HOT };
#define GUEST_FREE	0xffffffffu	/* table entry: the page is free, its content moot */

#define SLOW_NS		20000u		/* a page access this slow was fetched */
#define SLOW_BUCKETS	24
enum run_state { ST_RUN, ST_STOP, ST_EXIT };

struct guest;

struct vcpu {
	struct guest *g;
	unsigned int id;
	pthread_t thread;
	uint64_t rng;
	uint64_t seq;
	unsigned int verify_seen;
	uint64_t epoch;			/* of the free set (--free-churn) */
	struct guest_kvm_vcpu *kvm;	/* --kvm: the guest code writes the pages */
};

struct guest {
	uint8_t *ram;
	uint32_t *table;
	uint64_t npages, first_data;
	unsigned int nvcpus;
	enum pattern pattern;
	double pps;			/* pages per second per vCPU, 0: unlimited */
	bool fill;
	unsigned int free_pct;		/* data pages marked free after the fill */
	uint64_t free_touch;		/* hinted pages written right after the hint */
	uint64_t churn_ms;		/* the free set moves on this often (0: never) */
	uint64_t t_start;
	_Atomic uint64_t churn_freed, churn_unfreed, churn_epochs;
	unsigned int nr_devs;
	struct guest_dev devs[GUEST_MAX_DEVICES];

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* vCPUs wait here for a state change */
	pthread_cond_t ctl_cond;	/* the control thread waits here for the vCPUs */
	enum run_state state;
	unsigned int parked;
	unsigned int verify_req, verify_done, filled;

	_Atomic uint64_t writes, checked, errors, verified;
	struct vcpu *vcpus;
	struct guest_kvm *kvm;		/* --kvm */
	unsigned int span_pct;		/* --kvm checks: write only this share of pages */
	struct vmig_vmm *vmm;		/* the throttle (auto-converge) is read from here */
	_Atomic unsigned int throttled_max;	/* the highest throttle applied, percent */

	/* incoming: first accesses slower than SLOW_NS (a page fetched in postcopy) */
	bool measure;
	bool verify_pending;
	_Atomic uint64_t slow, slow_ns, slow_max_ns, slow_hist[SLOW_BUCKETS];
};

static const char *pattern_names[] = { "random", "sequential", "idle", "hot" };

/* Time the first read of a page: what a vCPU feels of a missing page. */
static void access_page(struct guest *g, const uint8_t *p)
{
	uint64_t t0, dt, us, max;
	unsigned int b = 0;

	if (!g->measure) {
		(void)*(volatile const uint8_t *)p;
		return;
	}
	t0 = now_ns();
	(void)*(volatile const uint8_t *)p;
	dt = now_ns() - t0;
	if (dt < SLOW_NS)
		return;
	atomic_fetch_add_explicit(&g->slow, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&g->slow_ns, dt, memory_order_relaxed);
	max = atomic_load_explicit(&g->slow_max_ns, memory_order_relaxed);
	while (dt > max && !atomic_compare_exchange_weak(&g->slow_max_ns, &max, dt))
		;
	for (us = dt / 1000; us > 1 && b < SLOW_BUCKETS - 1; us >>= 1)
		b++;
	atomic_fetch_add_explicit(&g->slow_hist[b], 1, memory_order_relaxed);
}

static void report_slow(struct guest *g)
{
	uint64_t n = atomic_load(&g->slow);
	unsigned int b;

	if (!g->measure)
		return;
	fprintf(stderr, "guest: %llu slow page accesses (>= %u us)", (unsigned long long)n,
		SLOW_NS / 1000);
	if (n) {
		fprintf(stderr, ": avg %.1f us, max %.1f us; log2-us histogram:",
			atomic_load(&g->slow_ns) / 1e3 / n, atomic_load(&g->slow_max_ns) / 1e3);
		for (b = 0; b < SLOW_BUCKETS; b++)
			if (atomic_load(&g->slow_hist[b]))
				fprintf(stderr, " [%llu us: %llu]", 1ull << b,
					(unsigned long long)atomic_load(&g->slow_hist[b]));
	}
	fprintf(stderr, "\n");
}

static uint64_t owned_pages(const struct guest *g, unsigned int id)
{
	uint64_t data = g->npages - g->first_data;

	return data / g->nvcpus + (id < data % g->nvcpus);
}

static uint64_t owned_index(const struct guest *g, unsigned int id, uint64_t k)
{
	return g->first_data + k * g->nvcpus + id;
}

static void report_bad(struct guest *g, uint64_t i, const char *when)
{
	uint64_t errs = atomic_fetch_add(&g->errors, 1);

	if (errs < 5) {
		uint64_t idx;
		uint32_t gen;

		guest_page_describe(g->ram + i * GUEST_PAGE_SIZE, &idx, &gen);
		fprintf(stderr, "guest: page %llu is wrong (%s): expected generation %u, found "
			"index %llu generation %u\n", (unsigned long long)i, when, g->table[i],
			(unsigned long long)idx, gen);
	}
}

static void verify_own(struct vcpu *v)
{
	struct guest *g = v->g;
	uint64_t k, n = owned_pages(g, v->id);

	for (k = 0; k < n; k++) {
		uint64_t i = owned_index(g, v->id, k);

		if (g->table[i] == GUEST_FREE)
			continue;
		access_page(g, g->ram + i * GUEST_PAGE_SIZE);
		if (!guest_page_check(g->ram + i * GUEST_PAGE_SIZE, i, g->table[i]))
			report_bad(g, i, "verify-all");
	}
	atomic_fetch_add(&g->verified, n);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void touch(struct vcpu *v, uint64_t i)
{
	struct guest *g = v->g;
	uint8_t *p = g->ram + i * GUEST_PAGE_SIZE;
	uint32_t gen;

	if (v->kvm) {
		/* The guest code checks the page, writes it, updates the table. */
		if (guest_kvm_vcpu_touch(v->kvm, i)) {
			fprintf(stderr, "guest: vCPU %u failed; the guest cannot go on\n", v->id);
			fflush(stderr);
			_exit(1);
		}
		atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&g->writes, 1, memory_order_relaxed);
		return;
	}

	access_page(g, p);
	gen = g->table[i] + 1;
	if (g->table[i] != GUEST_FREE && !guest_page_check(p, i, g->table[i]))
		report_bad(g, i, "on touch");
	atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
	if (!gen || gen == GUEST_FREE)
		gen = 1;
	guest_page_write(p, i, gen);
	g->table[i] = gen;
	atomic_fetch_add_explicit(&g->writes, 1, memory_order_relaxed);
}

#define FREE_SHIFT	2	/* --free-churn: of every 100 data pages, this many change */

/*
 * --free-churn: every churn_ms the free set moves on by FREE_SHIFT pages of
 * every 100.  Pages leaving it are written first (their content matters
 * again, after whatever hint called them free); pages joining it are given
 * up.  Each vCPU does its own pages, so no other vCPU races it.
 */
static void churn(struct vcpu *v)
{
	struct guest *g = v->g;
	uint64_t epoch = (now_ns() - g->t_start) / (g->churn_ms * 1000000ull);
	uint64_t k, n = owned_pages(g, v->id), freed = 0, unfreed = 0, max;

	if (epoch == v->epoch)
		return;
	v->epoch = epoch;
	for (k = 0; k < n; k++) {
		uint64_t i = owned_index(g, v->id, k);
		bool want = (i - g->first_data + epoch * FREE_SHIFT) % 100 < g->free_pct;

		if (want == (g->table[i] == GUEST_FREE))
			continue;
		if (want) {
			__atomic_store_n(&g->table[i], GUEST_FREE, __ATOMIC_RELAXED);
			freed++;
		} else {
			guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
			__atomic_store_n(&g->table[i], 1, __ATOMIC_RELAXED);
			unfreed++;
		}
	}
	atomic_fetch_add(&g->churn_freed, freed);
	atomic_fetch_add(&g->churn_unfreed, unfreed);
	max = atomic_load(&g->churn_epochs);
	while (epoch > max && !atomic_compare_exchange_weak(&g->churn_epochs, &max, epoch))
		;
}

/*
 * Auto-converge: after each millisecond of running, sleep long enough that
 * the vCPU runs only (100 - throttle) % of the time.  Returns true if it
 * slept (the caller then restarts its rate budget: sleeping earns none).
 */
static bool throttle_vcpu(struct guest *g, uint64_t *run_start)
{
	unsigned int pct = g->vmm ? vmig_vmm_throttle(g->vmm) : 0;
	uint64_t t = now_ns(), ran = t - *run_start;
	unsigned int max;

	if (!pct) {
		*run_start = t;
		return false;
	}
	if (ran < 1000000)
		return false;
	max = atomic_load_explicit(&g->throttled_max, memory_order_relaxed);
	while (pct > max && !atomic_compare_exchange_weak(&g->throttled_max, &max, pct))
		;
	usleep(ran * pct / (100 - pct) / 1000);
	*run_start = now_ns();
	return true;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct guest *g = v->g;
	uint64_t n = owned_pages(g, v->id), t_last = now_ns(), run_start = t_last;
	double budget = 0;

	if (g->fill) {
		uint64_t k;

		for (k = 0; k < n; k++) {
			uint64_t i = owned_index(g, v->id, k);

			guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
			g->table[i] = (i - g->first_data) % 100 < g->free_pct ? GUEST_FREE : 1;
		}
	}
	pthread_mutex_lock(&g->lock);
	g->filled++;
	pthread_cond_broadcast(&g->ctl_cond);
	pthread_mutex_unlock(&g->lock);

	for (;;) {
		if (__atomic_load_n(&g->state, __ATOMIC_ACQUIRE) != ST_RUN ||
		    __atomic_load_n(&g->verify_req, __ATOMIC_ACQUIRE) != v->verify_seen) {
			pthread_mutex_lock(&g->lock);
			if (g->state == ST_STOP) {
				g->parked++;
				pthread_cond_broadcast(&g->ctl_cond);
				while (g->state == ST_STOP)
					pthread_cond_wait(&g->cond, &g->lock);
				g->parked--;
			}
			if (g->state == ST_EXIT) {
				pthread_mutex_unlock(&g->lock);
				return NULL;
			}
			if (g->verify_req != v->verify_seen) {
				v->verify_seen = g->verify_req;
				pthread_mutex_unlock(&g->lock);
				verify_own(v);
				pthread_mutex_lock(&g->lock);
				g->verify_done++;
				pthread_cond_broadcast(&g->ctl_cond);
			}
			pthread_mutex_unlock(&g->lock);
			t_last = now_ns();
			continue;
		}
		if (g->churn_ms)
			churn(v);
		if (g->pattern == PAT_HOT) {
			/* Every vCPU reads the last page (no writes: they share it). */
			uint64_t i = g->npages - 1;

			access_page(g, g->ram + i * GUEST_PAGE_SIZE);
			if (!guest_page_check(g->ram + i * GUEST_PAGE_SIZE, i, g->table[i]))
				report_bad(g, i, "hot read");
			atomic_fetch_add_explicit(&g->checked, 1, memory_order_relaxed);
			usleep(1000);
			continue;
		}
		if (g->pattern == PAT_IDLE || !n) {
			usleep(5000);
			continue;
		}
		if (throttle_vcpu(g, &run_start))
			t_last = now_ns();
		if (g->pps > 0) {
			uint64_t t = now_ns();

			budget += (t - t_last) * 1e-9 * g->pps;
			t_last = t;
			if (budget > g->pps * 0.01 + 1)
				budget = g->pps * 0.01 + 1;
			if (budget < 1) {
				usleep(1000);
				continue;
			}
			budget -= 1;
		}
		{
			uint64_t m = g->span_pct ? (n * g->span_pct + 99) / 100 : n;

			if (g->pattern == PAT_RANDOM)
				touch(v, owned_index(g, v->id, xorshift(&v->rng) % m));
			else
				touch(v, owned_index(g, v->id, v->seq++ % m));
		}
	}
}

static void set_state(struct guest *g, enum run_state st)
{
	pthread_mutex_lock(&g->lock);
	__atomic_store_n(&g->state, st, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Stop the vCPUs and wait until every one is parked (bounded). */
static int stop_vcpus(struct guest *g)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&g->lock);
	__atomic_store_n(&g->state, ST_STOP, __ATOMIC_RELEASE);
	while (g->parked < g->nvcpus && !r)
		r = pthread_cond_timedwait(&g->ctl_cond, &g->lock, &ts);
	pthread_mutex_unlock(&g->lock);
	return r ? -ETIMEDOUT : 0;
}

struct verify {
	uint64_t t0, e0, v0;
	bool was_stopped;
};

/* Every vCPU checks every page it owns: start it ... */
static void verify_begin(struct guest *g, struct verify *v)
{
	v->t0 = now_ns();
	v->e0 = atomic_load(&g->errors);
	v->v0 = atomic_load(&g->verified);
	pthread_mutex_lock(&g->lock);
	v->was_stopped = g->state == ST_STOP;
	g->verify_done = 0;
	g->verify_req++;
	__atomic_store_n(&g->state, ST_RUN, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* ... and wait for it; returns the errors found. */
static uint64_t verify_end(struct guest *g, struct verify *v, const char *what)
{
	pthread_mutex_lock(&g->lock);
	while (g->verify_done < g->nvcpus)
		pthread_cond_wait(&g->ctl_cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	if (v->was_stopped)
		stop_vcpus(g);
	fprintf(stderr, "guest: %s: %llu pages verified in %.0f ms, %llu errors\n", what,
		(unsigned long long)(atomic_load(&g->verified) - v->v0), (now_ns() - v->t0) / 1e6,
		(unsigned long long)(atomic_load(&g->errors) - v->e0));
	return atomic_load(&g->errors) - v->e0;
}

static uint64_t verify_all(struct guest *g, const char *what)
{
	struct verify v;

	verify_begin(g, &v);
	return verify_end(g, &v, what);
}

/*
 * The free-page hint: pages whose table entry says free.  With --free-touch
 * the guest then writes some of them at once, after the bitmap was taken:
 * they must still arrive (the helper tracks writes before it asks).
 */
static int free_hint(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages)
{
	struct guest *g = opaque;
	uint64_t i, touched = 0;

	memset(bitmap, 0, (pages + 63) / 64 * 8);
	for (i = g->first_data; i < pages && region == 0; i++)
		if (__atomic_load_n(&g->table[i], __ATOMIC_RELAXED) == GUEST_FREE)
			bitmap[i / 64] |= 1ull << (i % 64);
	for (i = g->first_data; i < pages && region == 0 && touched < g->free_touch; i += 7) {
		if (g->table[i] != GUEST_FREE)
			continue;
		guest_page_write(g->ram + i * GUEST_PAGE_SIZE, i, 1);
		g->table[i] = 1;
		touched++;
	}
	if (touched)
		fprintf(stderr, "guest: wrote %llu hinted-free pages after the hint\n",
			(unsigned long long)touched);
	return 0;
}

static void kvm_bad(void *opaque, uint64_t i)
{
	report_bad(opaque, i, "checked by the KVM guest code");
}

static int check_stop(void *opaque)
{
	return stop_vcpus(opaque);
}

static void check_resume(void *opaque)
{
	set_state(opaque, ST_RUN);
}

static void check_span(void *opaque, unsigned int pct)
{
	struct guest *g = opaque;

	g->span_pct = pct;
}

/* What the command line sets: the guest's own knobs, and the run's. */
struct guest_args {
	struct guest g;
	const char *sock;
	uint64_t mem, rate, run_s, life_s;
	bool incoming, verify, kvm;
	uint64_t check_rounds, bench_rounds;
	const char *sources;
	enum vmig_backend backend;
};

#define ARG(f)	.off = offsetof(struct guest_args, f)

static int mem_set(void *p, const char *v, const char *cmd)
{
	int64_t sz = parse_size(v);

	(void)cmd;
	if (sz < (1 << 20) || sz % GUEST_PAGE_SIZE)
		return -1;
	((struct guest_args *)p)->mem = sz;
	return 0;
}

static int pattern_set(void *p, const char *v, const char *cmd)
{
	unsigned int i;

	(void)cmd;
	for (i = 0; i < 4 && strcmp(v, pattern_names[i]); i++)
		;
	if (i == 4)
		return -1;
	((struct guest_args *)p)->g.pattern = i;
	return 0;
}

static int guest_backend_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return vmig_backend_parse(v, &((struct guest_args *)p)->backend) ? -1 : 0;
}

static int device_add(void *p, const char *v, const char *cmd)
{
	struct guest *g = &((struct guest_args *)p)->g;
	char err[128] = "";

	if (g->nr_devs == GUEST_MAX_DEVICES ||
	    guest_dev_parse(v, &g->devs[g->nr_devs], err, sizeof(err))) {
		fprintf(stderr, "vmig %s: bad --device '%s': %s\n", cmd, v,
			err[0] ? err : "too many devices");
		return 2;
	}
	g->nr_devs++;
	return 0;
}

static int free_set(void *p, const char *v, const char *cmd)
{
	uint64_t n;

	(void)cmd;
	if (!parse_uint(v[0] && v[strlen(v) - 1] == '%' ? strndupa(v, strlen(v) - 1) : v,
			0, 100, &n))
		return -1;
	((struct guest_args *)p)->g.free_pct = n;
	return 0;
}

static const struct cli_opt opt_socket = {
	.name = "socket", .arg = "PATH", .kind = CLI_STR, ARG(sock),
	.help = "control socket to listen on (required)",
};
static const struct cli_opt opt_mem = {
	.name = "mem", .arg = "SIZE", .kind = CLI_FN, ARG(mem), .fn = mem_set,
	.bad = "at least 1M, whole pages",
	.help = "guest RAM, e.g. 256M, 1G (default 256M)",
};
static const struct cli_opt opt_vcpus = {
	.name = "vcpus", .arg = "N", .kind = CLI_UINT, ARG(g.nvcpus),
	.min = 1, .max = 256, .scale = 1, .bad = "1..256",
	.help = "vCPU threads (default 2)",
};
static const struct cli_opt opt_pattern = {
	.name = "pattern", .arg = "P", .kind = CLI_FN, ARG(g.pattern), .fn = pattern_set,
	.bad = "random, sequential, idle, hot",
	.help = "random | sequential | idle | hot (default random;\n"
		"hot: every vCPU reads the last page, writes nothing)",
};
static const struct cli_opt opt_dirty_rate = {
	.name = "dirty-rate", .arg = "MiB/s", .kind = CLI_U64, ARG(rate),
	.min = 0, .max = 1 << 20, .scale = 1,
	.help = "page writes per second over all vCPUs; 0 = as fast\n"
		"as possible (default 64)",
};
static const struct cli_opt opt_no_fill = {
	.name = "no-fill", .kind = CLI_FALSE, ARG(g.fill),
	.help = "start with zero pages (default: every page written once)",
};
static const struct cli_opt opt_incoming = {
	.name = "incoming", .kind = CLI_TRUE, ARG(incoming),
	.help = "be the destination",
};
static const struct cli_opt opt_verify_all = {
	.name = "verify-all", .kind = CLI_TRUE, ARG(verify),
	.help = "destination: check every page after resuming",
};
static const struct cli_opt opt_run = {
	.name = "run", .arg = "SECONDS", .kind = CLI_U64, ARG(run_s),
	.min = 0, .max = 86400, .scale = 1,
	.help = "destination: run this long after resuming (default 1)",
};
static const struct cli_opt opt_lifetime = {
	.name = "lifetime", .arg = "SECONDS", .kind = CLI_U64, ARG(life_s),
	.min = 1, .max = 86400 * 7, .scale = 1,
	.help = "give up (exit 2) after this long (default 600)",
};
static const struct cli_opt opt_backend = {
	.name = "backend", .arg = "B", .kind = CLI_FN, ARG(backend), .fn = guest_backend_set,
	.bad = "auto, kmod, uffd",
	.help = "guest RAM: kmod (a vmig.ko region; loads the module if\n"
		"it is installed), uffd (a memfd), or auto (default: kmod\n"
		"when /dev/vmig exists or the module can be loaded)",
};
static const struct cli_opt opt_device = {
	.name = "device", .arg = "SPEC", .kind = CLI_FN, ARG(g.devs), .fn = device_add,
	.help = "an emulated device (repeatable, up to 16), SPEC is\n"
		"name=N,size=S[,instance=I][,save-rate=R][,load-rate=R]\n"
		"[,precopy=PCT%][,resize=SIZE][,fail=save|load]; rates\n"
		"in bytes/s (e.g. 400M), paced by sleeping per chunk\n"
		"like a device's DMA engine, and declared to the helper;\n"
		"precopy: the first PCT % of the state goes while the\n"
		"guest runs, the rest at switchover; resize: on SIGUSR1\n"
		"the state becomes SIZE bytes and the helper is told\n"
		"(the destination declares the final size); the\n"
		"destination declares the same devices and checks\n"
		"every byte",
};
static const struct cli_opt opt_free = {
	.name = "free", .arg = "PCT", .kind = CLI_FN, ARG(g.free_pct), .fn = free_set,
	.bad = "0..100%",
	.help = "mark PCT % of the data pages free after the fill and\n"
		"hint them to the helper (not sent in the bulk stage)",
};
static const struct cli_opt opt_free_churn = {
	.name = "free-churn", .arg = "MS", .kind = CLI_U64, ARG(g.churn_ms),
	.min = 1, .max = 3600000, .scale = 1, .bad = "ms",
	.help = "every MS ms move the free set on by 2 % of the data\n"
		"pages: free some, write (unfree) as many others",
};
static const struct cli_opt opt_free_touch = {
	.name = "free-touch", .arg = "N", .kind = CLI_U64, ARG(g.free_touch),
	.min = 0, .max = 1ull << 40, .scale = 1,
	.help = "write N hinted pages right after giving a hint (tests)",
};
static const struct cli_opt opt_kvm = {
	.name = "kvm", .kind = CLI_TRUE, ARG(kvm),
	.help = "run the vCPUs as KVM vCPUs (/dev/kvm): guest RAM is KVM\n"
		"memory, and 64-bit guest code generated by vmig checks\n"
		"and writes the pages (the VMM picks which, at the\n"
		"rate asked); the vCPUs' registers migrate as the\n"
		"device kvm-vcpus and the guest goes on at the\n"
		"destination (which must use --kvm too)",
};
static const struct cli_opt opt_dirty_check = {
	.name = "dirty-check", .arg = "N", .kind = CLI_U64, ARG(check_rounds),
	.min = 1, .max = 1000000, .scale = 1, .bad = "1..1000000",
	.help = "with --kvm, instead of waiting for a helper: N intervals\n"
		"with the vCPUs stopped at both ends, where every\n"
		"--dirty-source must harvest exactly the pages the\n"
		"guest wrote, then N harvests while the vCPUs write,\n"
		"where no write may be lost; exit 0 if all held (tests)",
};
static const struct cli_opt opt_dirty_bench = {
	.name = "dirty-bench", .arg = "N", .kind = CLI_U64, ARG(bench_rounds),
	.min = 1, .max = 1000000, .scale = 1, .bad = "1..1000000",
	.help = "with --kvm: harvest cost per dirty page at 1, 10 and\n"
		"100 % dirty (N harvests each) and the longest vCPU\n"
		"stall while harvests run, per --dirty-source (bench)",
};
static const struct cli_opt opt_dirty_source = {
	.name = "dirty-source", .arg = "LIST", .kind = CLI_STR, ARG(sources),
	.help = "dirty sources for --dirty-check/--dirty-bench, comma-\n"
		"separated: vmig.ko's protect, manual, manual-init (the\n"
		"kmod backend), KVM's kvm-get (KVM_GET_DIRTY_LOG),\n"
		"kvm-clear (MANUAL_PROTECT + INITIALLY_SET, then\n"
		"KVM_CLEAR_DIRTY_LOG), kvm-ring (the dirty ring); one\n"
		"KVM source at most.  hwdirty is refused: KVM's\n"
		"writes never set the host dirty bits it reads\n"
		"(default manual-init,kvm-clear)",
};

static const struct cli_opt *const guest_opt_list[] = {
	&opt_socket, &opt_mem, &opt_vcpus, &opt_pattern, &opt_dirty_rate, &opt_no_fill,
	&opt_incoming, &opt_verify_all, &opt_run, &opt_lifetime, &opt_backend, &opt_device,
	&opt_free, &opt_free_churn, &opt_free_touch, &opt_kvm, &opt_dirty_check,
	&opt_dirty_bench, &opt_dirty_source, &cli_opt_help, NULL,
};

static const struct cli_opts guest_cli_opts = {
	.cmd = "guest", .col = 22, .opts = guest_opt_list,
};

static void guest_usage(FILE *f)
{
	fputs(
		"usage: vmig guest --socket PATH [options]\n"
		"\n"
		"The reference VMM: guest RAM in a memfd, vCPU threads writing self-checking\n"
		"pages (index + generation, with a generation table inside guest RAM), and\n"
		"the VMM control protocol on a UNIX socket for the vmig helper.\n"
		"\n"
		"As a source (default) it runs until a helper migrates it away (exit 0).  A\n"
		"failed migration leaves it running; it verifies its memory, says so, and\n"
		"waits for the next helper (after a postcopy switch it stays stopped\n"
		"instead, for a helper to take over: vmig migrate --attach).  With --incoming it waits for a helper to fill its\n"
		"RAM, resumes, checks every page it touches, runs --run seconds and exits 0\n"
		"if no page was wrong (1 if one was; 3 if the migration failed and the\n"
		"partial guest was discarded; 4 if a postcopy migration failed after it\n"
		"resumed here: its memory is incomplete).  If its helper dies during\n"
		"postcopy it runs on and waits for the next (vmig listen --attach).\n"
		"It reports the page accesses its\n"
		"vCPUs found slow (>= 20 us: pages fetched on demand).\n"
		"\n"
		"Options:\n", f);
	cli_print_options(f, &guest_cli_opts);
	fputs(
		"\n"
		"Examples:\n"
		"  vmig guest --socket /tmp/src.sock --mem 1G --pattern random --dirty-rate 100\n"
		"  vmig guest --socket /tmp/dst.sock --mem 1G --incoming --verify-all\n"
		"  vmig guest --socket /tmp/src.sock --device name=nic0,size=100M,save-rate=400M\n"
		"  vmig guest --socket /tmp/src.sock --kvm --mem 256M --dirty-rate 16\n"
		"  vmig guest --socket /tmp/k.sock --kvm --mem 64M --dirty-rate 0 --dirty-check 50 \\\n"
		"             --dirty-source protect,kvm-get\n", f);
}

/* --device ...,resize=SIZE: on SIGUSR1 (blocked elsewhere), resize and tell the helper. */
static void *resize_thread(void *arg)
{
	struct guest *g = arg;
	unsigned int i;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (!sigwait(&set, &sig)) {
		for (i = 0; i < g->nr_devs; i++) {
			struct guest_dev *d = &g->devs[i];
			int r;

			if (!d->resize)
				continue;
			r = guest_dev_resize(g->vmm, d);
			fprintf(stderr, "guest: device %s.%u: state resized to %llu bytes%s%s\n",
				d->name, d->instance, (unsigned long long)d->resize,
				r ? ", not told: " : ", helper told", r ? strerror(-r) : "");
		}
	}
	return NULL;
}

static bool session_source(struct guest *g, struct vmig_vmm *vmm, uint64_t deadline)
{
	for (;;) {
		int ev = vmig_vmm_poll(vmm, 500);

		switch (ev) {
		case VMIG_VMM_NONE:
			if (now_ns() > deadline)
				return false;
			continue;
		case VMIG_VMM_STOP:
			if (stop_vcpus(g))
				fprintf(stderr, "guest: vCPUs did not stop in time\n");
			vmig_vmm_ack(vmm, VMIG_VMM_STOP);
			continue;
		case VMIG_VMM_RESUME:
			set_state(g, ST_RUN);
			vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
			continue;
		case VMIG_VMM_COMPLETE:
			stop_vcpus(g);
			fprintf(stderr, "guest: migrated away (%llu page writes here); exiting\n",
				(unsigned long long)atomic_load(&g->writes));
			if (g->churn_ms)
				fprintf(stderr, "guest: free set moved %llu times: %llu pages freed, "
					"%llu unfreed (written)\n",
					(unsigned long long)atomic_load(&g->churn_epochs),
					(unsigned long long)atomic_load(&g->churn_freed),
					(unsigned long long)atomic_load(&g->churn_unfreed));
			if (atomic_load(&g->throttled_max))
				fprintf(stderr, "guest: vCPUs were throttled (auto-converge) up to "
					"%u %%\n", atomic_load(&g->throttled_max));
			return true;
		default:
			if (vmig_vmm_handed_over(vmm)) {
				/* Resuming here could run the guest twice. */
				fprintf(stderr, "guest: the helper went away during postcopy (%s); "
					"the guest may run on the destination: staying stopped "
					"until a helper takes over (vmig migrate --attach)\n",
					ev == VMIG_VMM_ERROR || ev == VMIG_VMM_DISCONNECT ?
					vmig_vmm_error(vmm) : strerror(-ev));
				return false;
			}
			set_state(g, ST_RUN);
			fprintf(stderr, "guest: migration failed (%s); running on here\n",
				ev == VMIG_VMM_ERROR || ev == VMIG_VMM_DISCONNECT ?
				vmig_vmm_error(vmm) : strerror(-ev));
			verify_all(g, "memory intact after the failed migration");
			return false;
		}
	}
}

/*
 * Returns 1 resumed, 0 failed (discard), -1 timeout, 2 the helper died in
 * postcopy with its record left here: the guest runs on, wait for the next.
 */
static int session_dest(struct guest *g, struct vmig_vmm *vmm, uint64_t deadline,
			bool verify, struct verify *vs)
{
	bool resumed = vmig_vmm_postcopy_active(vmm);	/* a helper taking over */

	for (;;) {
		int ev = vmig_vmm_poll(vmm, 500);

		switch (ev) {
		case VMIG_VMM_NONE:
			/* Postcopy: pages still arrive through the helper until COMPLETE. */
			if (resumed && !vmig_vmm_postcopy_active(vmm))
				return 1;	/* running here; the helper's goodbye is late */
			if (now_ns() > deadline)
				return -1;
			continue;
		case VMIG_VMM_STOP:
			stop_vcpus(g);
			vmig_vmm_ack(vmm, VMIG_VMM_STOP);
			continue;
		case VMIG_VMM_RESUME:
			set_state(g, ST_RUN);
			vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
			resumed = true;
			/* Postcopy: keep serving the helper while the vCPUs fault pages in. */
			if (verify && vmig_vmm_postcopy_active(vmm)) {
				verify_begin(g, vs);
				g->verify_pending = true;
			} else if (verify) {
				verify_all(g, "verify-all after resume");
			}
			continue;
		case VMIG_VMM_COMPLETE:
			return 1;
		default:
			if (ev == VMIG_VMM_DISCONNECT && vmig_vmm_handed_over(vmm)) {
				fprintf(stderr, "guest: the helper went away during postcopy (%s); "
					"running on, threads on missing pages wait, until a helper "
					"takes over (vmig listen --attach)\n", vmig_vmm_error(vmm));
				return 2;
			}
			if (vmig_vmm_postcopy_active(vmm)) {
				/* vCPUs may wait for pages that will never come: do not run on. */
				fprintf(stderr, "guest: postcopy failed (%s); the guest's memory is "
					"incomplete and it cannot continue: exiting with status 4\n",
					ev == VMIG_VMM_ERROR || ev == VMIG_VMM_DISCONNECT ?
					vmig_vmm_error(vmm) : strerror(-ev));
				fflush(stderr);
				_exit(4);
			}
			if (resumed)
				return 1;	/* the guest runs; the helper's goodbye got lost */
			fprintf(stderr, "guest: migration failed (%s); partial guest discarded\n",
				vmig_vmm_error(vmm));
			return 0;
		}
	}
}

static int guest_run(int argc, char **argv)
{
	struct guest_args a = {
		.g = { .nvcpus = 2, .pattern = PAT_RANDOM, .fill = true },
		.mem = 256ull << 20, .rate = 64, .run_s = 1, .life_s = 600,
		.sources = "manual-init,kvm-clear", .backend = VMIG_BACKEND_AUTO,
	};
	struct guest *g = &a.g;
	const char *sock, *sources;
	uint64_t mem, rate, run_s, life_s, deadline;
	bool incoming, verify, kvm, ring = false;
	uint64_t check_rounds, bench_rounds;
	enum vmig_backend backend, chosen = VMIG_BACKEND_UFFD;
	struct vmig_vmm *vmm;
	struct verify vs;
	unsigned int i;
	int c, fd, status = 2;

	c = cli_parse(&guest_cli_opts, NULL, &a, argc, argv, guest_usage);
	if (c)
		return c == 1 ? 0 : 2;
	sock = a.sock;
	sources = a.sources;
	mem = a.mem;
	rate = a.rate;
	run_s = a.run_s;
	life_s = a.life_s;
	incoming = a.incoming;
	verify = a.verify;
	kvm = a.kvm;
	check_rounds = a.check_rounds;
	bench_rounds = a.bench_rounds;
	backend = a.backend;
	if (optind != argc || !sock) {
		fprintf(stderr, optind != argc ? "vmig guest: unexpected argument '%s'\n" :
			"vmig guest: --socket PATH is required%s\n",
			optind != argc ? argv[optind] : "");
		return 2;
	}
	if ((check_rounds || bench_rounds) && (!kvm || incoming)) {
		fprintf(stderr, "vmig guest: --dirty-check and --dirty-bench need --kvm and a "
			"source guest\n");
		return 2;
	}
	if (kvm && g->pattern == PAT_HOT) {
		fprintf(stderr, "vmig guest: --pattern hot has no KVM guest code (random, "
			"sequential or idle with --kvm)\n");
		return 2;
	}
	deadline = now_ns() + life_s * 1000000000ull;
	g->npages = mem / GUEST_PAGE_SIZE;
	g->first_data = guest_table_pages(g->npages);
	if (g->first_data >= g->npages) {
		fprintf(stderr, "vmig guest: --mem too small\n");
		return 2;
	}
	g->pps = rate ? rate * 256.0 / g->nvcpus : 0;
	if (incoming) {
		g->fill = false;
		g->churn_ms = 0;
	}
	g->t_start = now_ns();

	fd = vmig_ram_create(backend, mem, &chosen);
	if (fd < 0) {
		fprintf(stderr, "vmig guest: cannot create guest RAM (%s): %s\n",
			vmig_backend_name(backend),
			fd == -ENODEV ? "no /dev/vmig, and vmig.ko cannot be loaded" :
			fd == -ENOENT ? "no /dev/vmig, and vmig.ko is not installed (make "
					"install, or vmig module load --ko PATH)" :
			fd == -EPERM ? "no /dev/vmig, and loading vmig.ko needs root" :
			strerror(-fd));
		return 1;
	}
	g->ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (g->ram == MAP_FAILED) {
		perror("vmig guest: mmap");
		return 1;
	}
	g->table = (uint32_t *)g->ram;
	if (kvm) {
		char err[256] = "";
		unsigned int nsrc;
		int r = 0;

		if (check_rounds || bench_rounds)
			r = guest_kvm_sources_parse(sources, chosen == VMIG_BACKEND_KMOD ? fd : -1,
						    &nsrc, &ring, err, sizeof(err));
		if (r) {
			fprintf(stderr, "vmig guest: bad --dirty-source '%s': %s\n", sources, err);
			return 2;
		}
		r = guest_kvm_create(&g->kvm, g->ram, mem, g->nvcpus, ring, kvm_bad, g, err,
				     sizeof(err));
		if (r) {
			fprintf(stderr, "vmig guest: --kvm: %s\n", err);
			return 1;
		}
	}
	vmm = vmig_vmm_listen(sock, incoming ? VMIG_ROLE_DEST : VMIG_ROLE_SOURCE);
	if (!vmm || vmig_vmm_add_region(vmm, fd, g->ram, mem)) {
		fprintf(stderr, "vmig guest: cannot listen on %s: %s\n", sock, strerror(errno));
		return 1;
	}
	g->vmm = vmm;
	if (g->kvm)
		vmig_vmm_set_mirrored(vmm, true);
	if (g->kvm && guest_kvm_register_device(g->kvm, vmm)) {
		fprintf(stderr, "vmig guest: cannot declare the kvm-vcpus device\n");
		return 2;
	}
	for (i = 0; i < g->nr_devs; i++) {
		int r = guest_dev_register(vmm, &g->devs[i]);

		if (r) {
			fprintf(stderr, "vmig guest: device %s.%u: %s\n", g->devs[i].name,
				g->devs[i].instance, strerror(-r));
			return 2;
		}
	}
	if (g->free_pct && !incoming)
		vmig_vmm_set_free_hint(vmm, free_hint, g);
	for (i = 0; i < g->nr_devs && !g->devs[i].resize; i++)
		;
	if (i < g->nr_devs) {
		sigset_t set;
		pthread_t t;

		/* Before any other thread starts: every one inherits SIGUSR1 blocked. */
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (pthread_create(&t, NULL, resize_thread, g) || pthread_detach(t)) {
			fprintf(stderr, "vmig guest: cannot start the resize thread\n");
			return 1;
		}
	}

	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	pthread_cond_init(&g->ctl_cond, NULL);
	g->state = incoming ? ST_STOP : ST_RUN;
	g->vcpus = calloc(g->nvcpus, sizeof(*g->vcpus));
	for (i = 0; i < g->nvcpus; i++) {
		g->vcpus[i] = (struct vcpu){ .g = g, .id = i,
					    .rng = 0x9e3779b97f4a7c15ull * (i + 1) ^ now_ns(),
					    .kvm = g->kvm ? guest_kvm_vcpu(g->kvm, i) : NULL };
		if (pthread_create(&g->vcpus[i].thread, NULL, vcpu_thread, &g->vcpus[i])) {
			fprintf(stderr, "vmig guest: cannot start vCPU threads\n");
			return 1;
		}
	}
	pthread_mutex_lock(&g->lock);
	while (g->filled < g->nvcpus)
		pthread_cond_wait(&g->ctl_cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	printf("guest: ready: %llu MiB, %u %svCPUs, pattern %s, dirty rate %llu MiB/s, %s, "
	       "socket %s, RAM %s\n", (unsigned long long)(mem >> 20), g->nvcpus,
	       g->kvm ? "KVM " : "", pattern_names[g->pattern], (unsigned long long)rate,
	       incoming ? "incoming" : "source", sock,
	       chosen == VMIG_BACKEND_KMOD ? "vmig.ko region (kmod)" : "memfd (uffd)");
	fflush(stdout);
	if (check_rounds || bench_rounds) {
		struct guest_kvm_check_ops ops = {
			.opaque = g, .stop = check_stop, .resume = check_resume,
			.set_span = check_span,
		};
		int kfd = chosen == VMIG_BACKEND_KMOD ? fd : -1;

		if (check_rounds)
			status = guest_kvm_check(g->kvm, kfd, sources, check_rounds, g->ram, mem,
						 &ops);
		else
			status = guest_kvm_bench(g->kvm, kfd, sources, bench_rounds, mem, &ops);
		if (verify_all(g, "verify-all after the dirty check") && !status)
			status = 1;
		fprintf(stderr, "guest: %llu page writes by the guest code, %llu wrong pages\n",
			(unsigned long long)atomic_load(&g->writes),
			(unsigned long long)atomic_load(&g->errors));
		if (atomic_load(&g->errors) && !status)
			status = 1;
		goto done;
	}

	for (;;) {
		int r = vmig_vmm_accept(vmm, 500);

		if (r == -ETIMEDOUT) {
			if (now_ns() > deadline && incoming && vmig_vmm_handed_over(vmm)) {
				fprintf(stderr, "guest: no helper took the postcopy over within "
					"%llu s; the guest's memory is incomplete: exiting with "
					"status 4\n", (unsigned long long)life_s);
				fflush(stderr);
				_exit(4);
			}
			if (now_ns() > deadline) {
				fprintf(stderr, "guest: no migration within %llu s; exiting\n",
					(unsigned long long)life_s);
				status = 2;
				break;
			}
			continue;
		}
		if (r) {
			fprintf(stderr, "guest: helper connection failed: %s\n", strerror(-r));
			continue;
		}
		if (!incoming) {
			if (session_source(g, vmm, deadline)) {
				status = 0;
				break;
			}
			if (now_ns() > deadline) {
				status = 2;
				break;
			}
			continue;
		}
		g->measure = true;
		r = session_dest(g, vmm, deadline, verify, &vs);
		if (r == 2)
			continue;
		if (r <= 0) {
			status = r < 0 ? 2 : 3;
			break;
		}
		if (g->verify_pending)
			verify_end(g, &vs, "verify-all after resume");
		fprintf(stderr, "guest: resumed here; running %llu s\n",
			(unsigned long long)run_s);
		usleep(run_s * 1000000);
		stop_vcpus(g);
		report_slow(g);
		fprintf(stderr, "guest: %llu pages checked on touch, %llu page writes, "
			"%llu wrong pages\n", (unsigned long long)atomic_load(&g->checked),
			(unsigned long long)atomic_load(&g->writes),
			(unsigned long long)atomic_load(&g->errors));
		status = atomic_load(&g->errors) ? 1 : 0;
		if (g->kvm)
			fprintf(stderr, "guest: KVM vCPU 0's guest code has written %llu pages in "
				"all, on the source and here\n",
				(unsigned long long)guest_kvm_vcpu_count(guest_kvm_vcpu(g->kvm, 0)));
		for (i = 0; i < g->nr_devs; i++) {
			if (!g->devs[i].verified) {
				fprintf(stderr, "guest: device %s.%u: state not loaded\n",
					g->devs[i].name, g->devs[i].instance);
				status = 1;
			}
		}
		if (g->nr_devs && !status)
			fprintf(stderr, "guest: %u devices loaded and verified\n", g->nr_devs);
		break;
	}
done:
	set_state(g, ST_EXIT);
	for (i = 0; i < g->nvcpus; i++)
		pthread_join(g->vcpus[i].thread, NULL);
	vmig_vmm_close(vmm);
	guest_kvm_destroy(g->kvm);
	free(g->vcpus);
	munmap(g->ram, mem);
	close(fd);
	return status;
}

const struct vmig_cmd vmig_cmd_guest = {
	.name = "guest",
	.summary = "the reference VMM: a guest dirtying self-checking pages",
	.run = guest_run,
};
