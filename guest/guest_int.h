/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The reference VMM's private interface between its rooms: the guest's
 * state (struct guest, one per run, passed to every room), its vCPUs, the
 * command line (struct guest_args), and what each room offers the others.
 * Rooms: guest_vcpu.c runs and parks the vCPUs, guest_verify.c checks
 * pages, guest_free.c keeps the free set (churn and hints), guest_opts.c
 * reads the command line, guest_session.c serves the helper, and
 * cmd_guest.c sequences them.
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

/* A verification under way (verify_begin .. verify_end). */
struct verify {
	uint64_t t0, e0, v0;
	bool was_stopped;
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

/* guest_verify.c: page checks, and how slow page accesses were. */
void access_page(struct guest *g, const uint8_t *p);
void report_bad(struct guest *g, uint64_t i, const char *when);
void report_slow(struct guest *g);
void verify_own(struct vcpu *v);
void verify_begin(struct guest *g, struct verify *v);
uint64_t verify_end(struct guest *g, struct verify *v, const char *what);
uint64_t verify_all(struct guest *g, const char *what);

/* guest_free.c: the free set. */
void guest_free_churn(struct vcpu *v);
int guest_free_hint(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages);

/* guest_session.c: the control socket, then helpers served until the guest is done. */
int guest_vmm_open(struct guest_args *a, int fd, struct vmig_vmm **vmmp);
int guest_serve(struct guest_args *a, struct vmig_vmm *vmm, uint64_t deadline);

#endif
