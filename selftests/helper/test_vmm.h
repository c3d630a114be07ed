/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A VMM in a thread of the test, for the host tests of libvmig's VMM and
 * helper sides: guest RAM in a memfd, a vmig_vmm listening on a socket
 * with that RAM as region 0, and a thread serving one helper at a time
 * (every STOP and RESUME acknowledged, a STOP after stop_wait_us and with
 * stop_ran_ns saying the vCPUs ran on so long; each session's end counted by how
 * it ended).  Also a "vCPU": a thread reading the first word of a page,
 * which waits while the page is missing.
 *
 *   test_vmm_start(v, "name", role, size)   0, or -1 with nothing left open
 *   test_vmm_stop(v)                        the thread joined, all closed
 *   test_wait_count(&v->hangups, n)         until n (at most 5 s)
 */
#ifndef VMIG_SELFTEST_TEST_VMM_H
#define VMIG_SELFTEST_TEST_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvmig.h"

struct test_vmm {
	struct vmig_vmm *vmm;
	pthread_t thread;
	atomic_bool stop;
	atomic_int sessions, resumes, completes, errors, hangups;
	uint64_t stop_ran_ns;		/* STOP: say the vCPUs ran on this long (0: plain ack) */
	unsigned int stop_wait_us;	/* STOP: acknowledge this much later */
	char path[108];
	uint8_t *ram;
	size_t size;
	int memfd;
};

static inline void *test_vmm_main(void *arg)
{
	struct test_vmm *v = arg;

	while (!atomic_load(&v->stop)) {
		if (vmig_vmm_accept(v->vmm, 100))
			continue;
		atomic_fetch_add(&v->sessions, 1);
		for (;;) {
			int ev = vmig_vmm_poll(v->vmm, 100);

			if (ev == VMIG_VMM_NONE) {
				if (atomic_load(&v->stop))
					break;
				continue;
			}
			if (ev == VMIG_VMM_STOP || ev == VMIG_VMM_RESUME) {
				if (ev == VMIG_VMM_RESUME)
					atomic_fetch_add(&v->resumes, 1);
				if (ev == VMIG_VMM_STOP && v->stop_wait_us)
					usleep(v->stop_wait_us);
				if (ev == VMIG_VMM_STOP && v->stop_ran_ns) {
					vmig_vmm_ack_stop(v->vmm, v->stop_ran_ns);
				} else {
					vmig_vmm_ack(v->vmm, ev);
				}
				continue;
			}
			if (ev == VMIG_VMM_COMPLETE)
				atomic_fetch_add(&v->completes, 1);
			else if (ev == VMIG_VMM_ERROR)
				atomic_fetch_add(&v->errors, 1);
			else
				atomic_fetch_add(&v->hangups, 1);
			break;
		}
	}
	return NULL;
}

static inline int test_vmm_start(struct test_vmm *v, const char *name,
				 enum vmig_role role, size_t size)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->path, sizeof(v->path), "/tmp/vmig-%s-%d.sock", name, getpid());
	v->size = size;
	v->memfd = memfd_create(name, MFD_CLOEXEC);
	if (v->memfd < 0)
		return -1;
	if (ftruncate(v->memfd, size))
		goto close_fd;
	v->ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, v->memfd, 0);
	if (v->ram == MAP_FAILED)
		goto close_fd;
	v->vmm = vmig_vmm_listen(v->path, role);
	if (!v->vmm)
		goto unmap;
	if (vmig_vmm_add_region(v->vmm, v->memfd, v->ram, size) ||
	    pthread_create(&v->thread, NULL, test_vmm_main, v))
		goto close_vmm;
	return 0;
close_vmm:
	vmig_vmm_close(v->vmm);
unmap:
	munmap(v->ram, size);
close_fd:
	close(v->memfd);
	v->vmm = NULL;
	return -1;
}

static inline void test_vmm_stop(struct test_vmm *v)
{
	if (!v->vmm)
		return;
	atomic_store(&v->stop, true);
	pthread_join(v->thread, NULL);
	vmig_vmm_close(v->vmm);
	munmap(v->ram, v->size);
	close(v->memfd);
	v->vmm = NULL;
}

/* Wait until @counter reaches @n (at most 5 s); its value. */
static inline int test_wait_count(atomic_int *counter, int n)
{
	int i;

	for (i = 0; i < 500 && atomic_load(counter) < n; i++)
		usleep(10000);
	return atomic_load(counter);
}

/* A vCPU reading the first word of a page (a missing page: it waits). */
struct vcpu {
	pthread_t thread;
	volatile uint64_t *addr;
	atomic_bool done;
	uint64_t seen;
};

static inline void *vcpu_main(void *arg)
{
	struct vcpu *c = arg;

	c->seen = *c->addr;
	atomic_store(&c->done, true);
	return NULL;
}

#endif
