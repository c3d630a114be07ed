// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty tracking under KVM, checked and measured in the reference VMM.
 *
 * KVM writes guest RAM through its own (nested) page tables.  vmig.ko's
 * write protection reaches those only through the MMU notifiers (a
 * protected host PTE zaps KVM's mapping) and KVM's next write reaches the
 * module only through get_user_pages faulting the page writable
 * (page_mkwrite).  The check proves that path exact against the pages the
 * guest code was told to write and against KVM's own dirty log, and that a
 * harvest racing the vCPUs loses nothing.
 */
#include <errno.h>
#include <linux/vmig.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "guest_kvm_check.h"
#include "util.h"

#define PAGE		4096ull
#define MAX_SOURCES	8

enum src_kind { SRC_VMIG, SRC_KVM };

struct dirty_source {
	const char *name;
	enum src_kind kind;
	uint32_t vmig_flags;		/* SRC_VMIG: VMIG_DIRTY_* */
	enum guest_kvm_log kvm;		/* SRC_KVM */
};

static const struct dirty_source known[] = {
	{ "protect", SRC_VMIG, 0, 0 },
	{ "manual", SRC_VMIG, VMIG_DIRTY_MANUAL_PROTECT, 0 },
	{ "manual-init", SRC_VMIG, VMIG_DIRTY_MANUAL_PROTECT | VMIG_DIRTY_INITIALLY_SET, 0 },
	{ "hwdirty", SRC_VMIG, VMIG_DIRTY_HWDIRTY, 0 },
	{ "kvm-get", SRC_KVM, 0, GUEST_KVM_LOG_GET },
	{ "kvm-clear", SRC_KVM, 0, GUEST_KVM_LOG_CLEAR },
	{ "kvm-ring", SRC_KVM, 0, GUEST_KVM_LOG_RING },
};

static const struct dirty_source *source_find(const char *name, size_t len)
{
	unsigned int i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i].name) == len && !strncmp(known[i].name, name, len))
			return &known[i];
	return NULL;
}

static int sources_get(const char *list, int region_fd, const struct dirty_source **out,
		       unsigned int *count, bool *ring, char *err, size_t errlen)
{
	const char *p = list;
	unsigned int n = 0, kvm = 0;

	*ring = false;
	while (*p) {
		size_t len = strcspn(p, ",");
		const struct dirty_source *s = source_find(p, len);

		if (!s || n == MAX_SOURCES) {
			snprintf(err, errlen, "unknown source '%.*s' (protect, manual, manual-init, "
				 "kvm-get, kvm-clear, kvm-ring)", (int)len, p);
			return -EINVAL;
		}
		if (s->kind == SRC_VMIG && region_fd < 0) {
			snprintf(err, errlen, "%s is a vmig.ko mode: it needs --backend kmod",
				 s->name);
			return -EINVAL;
		}
		if (s->kind == SRC_VMIG && (s->vmig_flags & VMIG_DIRTY_HWDIRTY)) {
			snprintf(err, errlen, "hwdirty cannot see a KVM guest's writes: KVM writes "
				 "through its own nested page tables and maps a page writable "
				 "through get_user_pages, which never sets the host page-table "
				 "dirty bit hwdirty reads (use protect, manual or manual-init)");
			return -EOPNOTSUPP;
		}
		if (s->kind == SRC_KVM) {
			kvm++;
			*ring |= s->kvm == GUEST_KVM_LOG_RING;
		}
		out[n++] = s;
		p += len;
		if (*p == ',')
			p++;
	}
	if (kvm > 1) {
		snprintf(err, errlen, "one KVM source at a time (a VM has either the rings or "
			 "the bitmap log, and manual protection changes what KVM_GET_DIRTY_LOG "
			 "does for the whole VM)");
		return -EINVAL;
	}
	if (!n) {
		snprintf(err, errlen, "no source given");
		return -EINVAL;
	}
	*count = n;
	return 0;
}

int guest_kvm_sources_parse(const char *list, int region_fd, unsigned int *count,
			    bool *ring, char *err, size_t errlen)
{
	const struct dirty_source *s[MAX_SOURCES];

	return sources_get(list, region_fd, s, count, ring, err, errlen);
}

static int source_enable(const struct dirty_source *s, struct guest_kvm *k, int region_fd)
{
	struct vmig_dirty_enable en = { .flags = s->vmig_flags };

	if (s->kind == SRC_KVM)
		return guest_kvm_log_enable(k, s->kvm);
	return ioctl(region_fd, VMIG_DIRTY_ENABLE, &en) ? -errno : 0;
}

static void source_disable(const struct dirty_source *s, struct guest_kvm *k, int region_fd)
{
	if (s->kind == SRC_KVM)
		guest_kvm_log_disable(k);
	else
		ioctl(region_fd, VMIG_DIRTY_DISABLE);
}

static long popcount(const uint64_t *bm, uint64_t words)
{
	long n = 0;
	uint64_t w;

	for (w = 0; w < words; w++)
		n += __builtin_popcountll(bm[w]);
	return n;
}

/*
 * Pages written since the last harvest, protected again before it returns:
 * vmig's manual modes GET then CLEAR what they got, as a precopy does just
 * before reading the pages.
 */
static long source_harvest(const struct dirty_source *s, struct guest_kvm *k, int region_fd,
			   uint64_t npages, uint64_t *bm)
{
	struct vmig_dirty_log log = { .first_page = 0, .num_pages = npages,
				      .bitmap = (uintptr_t)bm };

	if (s->kind == SRC_KVM)
		return guest_kvm_log_harvest(k, bm);
	if (ioctl(region_fd, VMIG_GET_DIRTY_LOG, &log))
		return -errno;
	if ((s->vmig_flags & VMIG_DIRTY_MANUAL_PROTECT) && log.dirty &&
	    ioctl(region_fd, VMIG_CLEAR_DIRTY_LOG, &log))
		return -errno;
	return popcount(bm, (npages + 63) / 64);
}

/* Compare a harvest with the truth; print the first differences. */
static bool same_pages(const char *name, unsigned int round, const uint64_t *got,
		       const uint64_t *want, uint64_t words)
{
	uint64_t w, missed = 0, extra = 0, shown = 0;

	for (w = 0; w < words; w++) {
		uint64_t m = want[w] & ~got[w], x = got[w] & ~want[w];

		missed += __builtin_popcountll(m);
		extra += __builtin_popcountll(x);
		while ((m | x) && shown < 4) {
			uint64_t b = __builtin_ctzll(m | x);

			fprintf(stderr, "dirty-check: %s: round %u: page %llu %s\n", name, round,
				(unsigned long long)(w * 64 + b),
				m & (1ull << b) ? "written but not harvested" :
				"harvested but not written");
			m &= ~(1ull << b);
			x &= ~(1ull << b);
			shown++;
		}
	}
	if (missed || extra)
		fprintf(stderr, "dirty-check: %s: round %u: %llu written pages missed, %llu "
			"extra\n", name, round, (unsigned long long)missed,
			(unsigned long long)extra);
	return !missed && !extra;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void sleep_us(uint64_t us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000 };

	nanosleep(&ts, NULL);
}

int guest_kvm_check(struct guest_kvm *k, int region_fd, const char *sources,
		    unsigned int rounds, uint8_t *ram, uint64_t size,
		    const struct guest_kvm_check_ops *ops)
{
	const struct dirty_source *src[MAX_SOURCES];
	uint64_t npages = size / PAGE, words = (npages + 63) / 64, seed = now_ns() | 1;
	uint64_t *truth = calloc(words, 8), *bm = calloc(words, 8);
	uint8_t *shadow[MAX_SOURCES] = { NULL };
	unsigned int n = 0, i, r, enabled = 0;
	uint64_t harvested[MAX_SOURCES] = { 0 }, written = 0, copied[MAX_SOURCES] = { 0 };
	bool ring, ok = true;
	char err[256] = "";
	int status = 2;
	long got;

	if (!truth || !bm || sources_get(sources, region_fd, src, &n, &ring, err, sizeof(err)))
		goto out;
	if (ops->stop(ops->opaque)) {
		fprintf(stderr, "dirty-check: the vCPUs do not stop\n");
		goto out;
	}
	for (i = 0; i < n; i++) {
		int e = source_enable(src[i], k, region_fd);

		if (e) {
			fprintf(stderr, "dirty-check: cannot enable %s: %s\n", src[i]->name,
				strerror(-e));
			goto out;
		}
		enabled++;
		/* Start clean: INITIALLY_SET reports every page once. */
		if (source_harvest(src[i], k, region_fd, npages, bm) < 0)
			goto out;
	}
	guest_kvm_written_take(k, truth);

	/* Intervals with the vCPUs stopped at both ends: exact equality. */
	for (r = 0; r < rounds; r++) {
		ops->resume(ops->opaque);
		sleep_us(rnd(&seed) % 30000);
		if (ops->stop(ops->opaque)) {
			fprintf(stderr, "dirty-check: the vCPUs do not stop\n");
			goto out;
		}
		guest_kvm_written_take(k, truth);
		written += popcount(truth, words);
		for (i = 0; i < n; i++) {
			got = source_harvest(src[i], k, region_fd, npages, bm);
			if (got < 0) {
				fprintf(stderr, "dirty-check: %s: harvest: %s\n", src[i]->name,
					strerror(-got));
				goto out;
			}
			harvested[i] += got;
			ok &= same_pages(src[i]->name, r, bm, truth, words);
		}
	}
	for (i = 0; i < n; i++)
		fprintf(stderr, "dirty-check: %s: %u stopped intervals, %llu pages written, "
			"%llu harvested%s\n", src[i]->name, rounds, (unsigned long long)written,
			(unsigned long long)harvested[i], ok ? ", equal in every round" : "");

	/*
	 * Harvests racing the vCPUs: each source refreshes its own shadow from
	 * what it harvested (after the harvest re-armed the pages, as a precopy
	 * reads them); stopped at the end, a last harvest, and every shadow
	 * must equal guest RAM.  A write a harvest lost leaves an old page.
	 */
	for (i = 0; i < n; i++) {
		shadow[i] = malloc(size);
		if (!shadow[i])
			goto out;
		memcpy(shadow[i], ram, size);
	}
	ops->resume(ops->opaque);
	for (r = 0; r <= rounds; r++) {
		if (r == rounds && ops->stop(ops->opaque))
			goto out;
		for (i = 0; i < n; i++) {
			uint64_t w;

			got = source_harvest(src[i], k, region_fd, npages, bm);
			if (got < 0)
				goto out;
			for (w = 0; w < words; w++) {
				uint64_t m = bm[w];

				while (m) {
					uint64_t p = w * 64 + __builtin_ctzll(m);

					memcpy(shadow[i] + p * PAGE, ram + p * PAGE, PAGE);
					copied[i]++;
					m &= m - 1;
				}
			}
		}
		if (r < rounds)
			sleep_us(rnd(&seed) % 10000);
	}
	for (i = 0; i < n; i++) {
		uint64_t p, lost = 0;

		for (p = 0; p < npages; p++) {
			if (memcmp(shadow[i] + p * PAGE, ram + p * PAGE, PAGE))
				if (lost++ < 4)
					fprintf(stderr, "dirty-check: %s: page %llu lost a write "
						"during a harvest\n", src[i]->name,
						(unsigned long long)p);
		}
		fprintf(stderr, "dirty-check: %s: %u harvests while the vCPUs wrote, %llu pages "
			"copied, %llu lost writes\n", src[i]->name, rounds,
			(unsigned long long)copied[i], (unsigned long long)lost);
		ok &= !lost;
	}
	status = ok ? 0 : 1;
out:
	if (status == 2 && err[0] && n == 0)
		fprintf(stderr, "dirty-check: %s\n", err);
	for (i = 0; i < enabled; i++)
		source_disable(src[i], k, region_fd);
	for (i = 0; i < MAX_SOURCES; i++)
		free(shadow[i]);
	free(truth);
	free(bm);
	return status;
}

static double ns_per_page(uint64_t ns, long pages)
{
	return pages > 0 ? (double)ns / pages : 0;
}

int guest_kvm_bench(struct guest_kvm *k, int region_fd, const char *sources,
		    unsigned int rounds, uint64_t size, const struct guest_kvm_check_ops *ops)
{
	static const unsigned int pcts[] = { 1, 10, 100 };
	const struct dirty_source *src[MAX_SOURCES];
	uint64_t npages = size / PAGE, words = (npages + 63) / 64;
	uint64_t *bm = calloc(words, 8), *truth = calloc(words, 8);
	unsigned int n = 0, i, p, r;
	bool ring;
	char err[256] = "";
	int status = 2;

	if (!bm || !truth)
		goto out;
	if (sources_get(sources, region_fd, src, &n, &ring, err, sizeof(err))) {
		fprintf(stderr, "dirty-bench: %s\n", err);
		goto out;
	}
	printf("dirty-bench: %llu MiB guest, %u rounds per case; harvest = get (+ clear) of "
	       "the whole RAM with the vCPUs stopped; max_stall = the longest page write a "
	       "vCPU made in 300 ms of harvests back to back; idle_stall = the same without "
	       "harvests (the noise floor)\n", (unsigned long long)(size >> 20),
	       rounds);
	printf("%-12s %6s %10s %14s %12s %14s %14s\n", "source", "dirty", "pages", "harvest_us",
	       "ns_per_page", "max_stall_us", "idle_stall_us");
	for (i = 0; i < n; i++) {
		int e;

		if (ops->stop(ops->opaque))
			goto out;
		e = source_enable(src[i], k, region_fd);
		if (e) {
			fprintf(stderr, "dirty-bench: cannot enable %s: %s\n", src[i]->name,
				strerror(-e));
			goto out;
		}
		source_harvest(src[i], k, region_fd, npages, bm);
		for (p = 0; p < sizeof(pcts) / sizeof(pcts[0]); p++) {
			uint64_t t_all = 0, stall = 0, base, t_end;
			long pages = 0;

			ops->set_span(ops->opaque, pcts[p]);
			for (r = 0; r < rounds; r++) {
				uint64_t t0;
				long got;

				/* Let the vCPUs write their whole span (sequential), then stop. */
				guest_kvm_written_take(k, truth);
				ops->resume(ops->opaque);
				for (;;) {
					uint64_t target = (npages - npages / 1024) * pcts[p] / 100;

					sleep_us(2000);
					if (guest_kvm_written_count(k) >= target)
						break;
				}
				if (ops->stop(ops->opaque))
					goto out_disable;
				t0 = now_ns();
				got = source_harvest(src[i], k, region_fd, npages, bm);
				t_all += now_ns() - t0;
				if (got < 0)
					goto out_disable;
				pages += got;
			}
			/*
			 * The longest page write with no harvest running (the noise
			 * floor), then with harvests back to back.
			 */
			ops->resume(ops->opaque);
			guest_kvm_stall_take(k);
			sleep_us(300000);
			base = guest_kvm_stall_take(k);
			t_end = now_ns() + 300000000ull;
			while (now_ns() < t_end)
				if (source_harvest(src[i], k, region_fd, npages, bm) < 0)
					goto out_disable;
			if (ops->stop(ops->opaque))
				goto out_disable;
			stall = guest_kvm_stall_take(k);
			printf("%-12s %5u%% %10ld %14.0f %12.1f %14.0f %14.0f\n", src[i]->name,
			       pcts[p], pages / (long)rounds, t_all / 1e3 / rounds,
			       ns_per_page(t_all, pages), stall / 1e3, base / 1e3);
			fflush(stdout);
		}
		source_disable(src[i], k, region_fd);
	}
	ops->set_span(ops->opaque, 0);
	status = 0;
	goto out;
out_disable:
	source_disable(src[i], k, region_fd);
out:
	free(bm);
	free(truth);
	return status;
}
