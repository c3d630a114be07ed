// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the migration sessions.  The guest waits for helpers on its
 * control socket and answers each one's requests (stop, resume, complete)
 * through libvmig's VMM protocol, as the source (it runs until migrated
 * away, and runs on after a failure) or as the destination (it resumes,
 * runs --run seconds and reports what its vCPUs found).  A helper lost
 * during postcopy leaves the guest waiting for the next.  Also here: the
 * thread that resizes device state on SIGUSR1 and tells the helper.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guest_int.h"
#include "util.h"

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

/* Why a session ended: the helper's own word, or the local error. */
static const char *ev_reason(struct vmig_vmm *vmm, int ev)
{
	return ev == VMIG_VMM_ERROR || ev == VMIG_VMM_DISCONNECT ?
	       vmig_vmm_error(vmm) : strerror(-ev);
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
					ev_reason(vmm, ev));
				return false;
			}
			set_state(g, ST_RUN);
			fprintf(stderr, "guest: migration failed (%s); running on here\n",
				ev_reason(vmm, ev));
			verify_all(g, "memory intact after the failed migration");
			return false;
		}
	}
}

/*
 * Returns 1 resumed, 0 failed (discard), -1 timeout, 2 the helper died in
 * postcopy with its record left here: the guest runs on, wait for the next.
 * Under postcopy (g->postcopy, from the resume) --verify-all waits until
 * every page is here (g->verify_pending): the vCPUs run the workload
 * meanwhile, and its page accesses are the ones timed.
 */
static int session_dest(struct guest *g, struct vmig_vmm *vmm, uint64_t deadline, bool verify)
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
			/* Registered for missing pages: postcopy, from this resume. */
			if (vmig_vmm_track_mode(vmm) == VMIG_TRACK_MISSING) {
				g->t_postcopy = now_ns();
				atomic_store_explicit(&g->postcopy, true, memory_order_release);
			}
			set_state(g, ST_RUN);
			vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
			resumed = true;
			/* Postcopy: keep serving the helper while the vCPUs fault pages in. */
			if (verify && atomic_load(&g->postcopy))
				g->verify_pending = true;
			else if (verify)
				verify_all(g, "verify-all after resume");
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
					ev_reason(vmm, ev));
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

/* Start the device-resize thread if a device asked for one; 0 or -1. */
static int guest_resize_start(struct guest *g)
{
	unsigned int i;
	sigset_t set;
	pthread_t t;

	for (i = 0; i < g->nr_devs && !g->devs[i].resize; i++)
		;
	if (i == g->nr_devs)
		return 0;
	/* Before any other thread starts: every one inherits SIGUSR1 blocked. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (pthread_create(&t, NULL, resize_thread, g) || pthread_detach(t)) {
		fprintf(stderr, "vmig guest: cannot start the resize thread\n");
		return -1;
	}
	return 0;
}

/*
 * The control socket, with guest RAM, the devices and the free-page hint
 * declared on it, and the resize thread started; 0 or the exit status.
 */
int guest_vmm_open(struct guest_args *a, int fd, struct vmig_vmm **vmmp)
{
	struct guest *g = &a->g;
	struct vmig_vmm *vmm;
	unsigned int i;

	vmm = vmig_vmm_listen(a->sock, a->incoming ? VMIG_ROLE_DEST : VMIG_ROLE_SOURCE);
	if (!vmm || vmig_vmm_add_region(vmm, fd, g->ram, a->mem)) {
		fprintf(stderr, "vmig guest: cannot listen on %s: %s\n", a->sock,
			strerror(errno));
		return 1;
	}
	*vmmp = vmm;
	g->vmm = vmm;
	if (g->kvm)
		vmig_vmm_set_mirrored(vmm, true);
	if (!a->incoming)
		guest_vmm_log_offer(g, vmm);
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
	if (g->free_pct && !a->incoming)
		vmig_vmm_set_free_hint(vmm, guest_free_hint, g);
	return guest_resize_start(g) ? 1 : 0;
}

/* Every page is here: the postcopy is over; what the workload did meanwhile. */
static void postcopy_done(struct guest *g)
{
	if (!atomic_exchange(&g->postcopy, false))
		return;
	fprintf(stderr, "guest: postcopy complete after %.0f ms here: %llu page writes, %llu "
		"pages checked on touch meanwhile\n", (now_ns() - g->t_postcopy) / 1e6,
		(unsigned long long)atomic_load(&g->writes),
		(unsigned long long)atomic_load(&g->checked));
}

/* The destination has run its --run seconds: what it found; the exit status. */
static int dest_report(struct guest *g)
{
	unsigned int i;
	int status;

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
	return status;
}

/*
 * Serve helpers until the guest is migrated away (source) or has resumed
 * here and run its --run seconds (destination); the exit status.
 */
int guest_serve(struct guest_args *a, struct vmig_vmm *vmm, uint64_t deadline)
{
	struct guest *g = &a->g;
	int status = 2;

	for (;;) {
		int r = vmig_vmm_accept(vmm, 500);

		if (r == -ETIMEDOUT) {
			if (now_ns() > deadline && a->incoming && vmig_vmm_handed_over(vmm)) {
				fprintf(stderr, "guest: no helper took the postcopy over within "
					"%llu s; the guest's memory is incomplete: exiting with "
					"status 4\n", (unsigned long long)a->life_s);
				fflush(stderr);
				_exit(4);
			}
			if (now_ns() > deadline) {
				fprintf(stderr, "guest: no migration within %llu s; exiting\n",
					(unsigned long long)a->life_s);
				status = 2;
				break;
			}
			continue;
		}
		if (r) {
			fprintf(stderr, "guest: helper connection failed: %s\n", strerror(-r));
			continue;
		}
		if (!a->incoming) {
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
		r = session_dest(g, vmm, deadline, a->verify);
		if (r == 2)
			continue;
		if (r <= 0) {
			status = r < 0 ? 2 : 3;
			break;
		}
		postcopy_done(g);
		if (g->verify_pending)
			verify_all(g, "verify-all after resume");
		fprintf(stderr, "guest: resumed here; running %llu s\n",
			(unsigned long long)a->run_s);
		usleep(a->run_s * 1000000);
		stop_vcpus(g);
		status = dest_report(g);
		break;
	}
	return status;
}
