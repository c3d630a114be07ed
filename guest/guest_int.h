/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reference VMM's private interface between its rooms: the guest's
 * state (struct guest, one per run, passed to every room), its vCPUs, the
 * command line (struct guest_args), and what each room offers the others.
 * Rooms: guest_vcpu.c runs and parks the vCPUs, guest_verify.c checks
 * pages, guest_slow.c times the workload's accesses, guest_free.c keeps
 * the free set (churn and hints), guest_opts.c reads the command line,
 * guest_session.c serves the helper, and cmd_guest.c sequences them.
 */
#ifndef VMIG_GUEST_INT_H
#define VMIG_GUEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "guest_dev.h"
#include "guest_kvm.h"
#include "libvmig.h"

enum pattern { PAT_RANDOM, PAT_SEQUENTIAL, PAT_IDLE, PAT_HOT };
#define GUEST_FREE	0xffffffffu	/* table entry: the page is free, its content moot */

#define SLOW_NS		20000u		/* a page access this slow is counted */
#define SLOW_LOG2	24		/* log2-us buckets, 1 us .. 8 s and above */
#define SLOW_SUB_BITS	3
#define SLOW_SUB	(1u << SLOW_SUB_BITS)	/* log-linear: sub-buckets per power of two */
#define SLOW_HIST	((36 - SLOW_SUB_BITS + 2) * SLOW_SUB)	/* ns, up to 2^37 (137 s) */
enum run_state { ST_RUN, ST_STOP, ST_EXIT };

struct guest;

/* Page accesses of SLOW_NS or more of one kind (guest_slow.c). */
struct slow_stats {
	_Atomic uint64_t n, sum_ns, max_ns;
	_Atomic uint64_t log2_us[SLOW_LOG2], hist[SLOW_HIST];
};

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
	enum guest_kvm_log vmm_log;	/* --kvm: the log offered to the helper (--vmm-log) */
	_Atomic(_Atomic uint64_t *) user_dirty;	/* while it is on: what the VMM wrote itself */
	_Atomic uint64_t *user_dirty_buf;	/* its bitmap, allocated at the first start */
	_Atomic unsigned int throttled_max;	/* the highest throttle applied, percent */

	/* incoming: the workload's page accesses slower than SLOW_NS (guest_slow.c) */
	bool measure;
	_Atomic bool postcopy;		/* pages may be missing: resume .. COMPLETE */
	uint64_t t_postcopy;		/* when the postcopy resume came */
	struct slow_stats slow_fetch, slow_other;
	bool verify_pending;		/* --verify-all once the postcopy is complete */
};

/* What the command line sets: the guest's own knobs, and the run's. */
struct guest_args {
	struct guest g;
	const char *sock;
	uint64_t mem, rate, run_s, life_s;
	bool incoming, verify, kvm;
	uint64_t check_rounds, bench_rounds;
	const char *sources;
	const char *vmm_log;
	const char *mem_path;
	enum vmig_backend backend;
};

/* The data pages vCPU id owns: every nvcpus-th one, from first_data + id. */
static inline uint64_t owned_pages(const struct guest *g, unsigned int id)
{
	uint64_t data = g->npages - g->first_data;

	return data / g->nvcpus + (id < data % g->nvcpus);
}

static inline uint64_t owned_index(const struct guest *g, unsigned int id, uint64_t k)
{
	return g->first_data + k * g->nvcpus + id;
}

/* guest_opts.c: the command line. */
extern const char *const pattern_names[];
/* 0 to run, else the command's exit status (0 after --help). */
int guest_opts_parse(struct guest_args *a, int argc, char **argv);

/* guest_vcpu.c: the vCPU threads. */
int guest_vcpus_start(struct guest *g);
void set_state(struct guest *g, enum run_state st);
int stop_vcpus(struct guest *g);
void guest_vcpus_join(struct guest *g);

/* guest_verify.c: page checks. */
void report_bad(struct guest *g, uint64_t i, const char *when);
void verify_own(struct vcpu *v);
uint64_t verify_all(struct guest *g, const char *what);

/* guest_slow.c: how slow the workload's page accesses were, and why. */
void access_page(struct guest *g, const uint8_t *p);
void report_slow(struct guest *g);

/* guest_free.c: the free set. */
void guest_free_churn(struct vcpu *v);
int guest_free_hint(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages);

/* guest_vmm_log.c: KVM's dirty log as the VMM's (--vmm-log), and our own writes in it. */
void guest_vmm_log_offer(struct guest *g, struct vmig_vmm *vmm);
void guest_user_wrote(struct guest *g, uint64_t i);
void guest_vmm_log_free(struct guest *g);	/* after the VMM closed */

/* guest_session.c: the control socket, then helpers served until the guest is done. */
int guest_vmm_open(struct guest_args *a, int fd, struct vmig_vmm **vmmp);
int guest_serve(struct guest_args *a, struct vmig_vmm *vmm, uint64_t deadline);

#endif
