/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * userfaultfd registration in the process that writes guest RAM (the VMM).
 * Write-protect tracking must be registered in the writer's mm; the fd is
 * then passed to the helper, which protects, scans and resolves through it.
 */
#ifndef VMIG_UFFD_TRACK_H
#define VMIG_UFFD_TRACK_H

#include <stdint.h>

#include "libvmig.h"

struct uffd_span {
	void *addr;
	uint64_t size;
};

/*
 * Create a userfaultfd for mode (AUTO picks ASYNC when the kernel has
 * WP_ASYNC and PAGEMAP_SCAN) and register every span for write-protect.
 * Returns the fd and stores the mode chosen, or -errno.
 */
int uffd_track_register(const struct uffd_span *spans, unsigned int n, enum vmig_track mode,
			enum vmig_track *chosen);
/* Postcopy destination: register every span for MISSING faults; the fd or -errno. */
int uffd_missing_register(const struct uffd_span *spans, unsigned int n);
/*
 * A userfaultfd with the API handshake for @features done: kernel-mode
 * faults too where this process may (KVM writes guest RAM through
 * get_user_pages), user-mode ones only otherwise.  The fd or -errno.
 */
int uffd_create(uint64_t features);
/*
 * Register every span of @fd (a result of uffd_create: a -errno passes
 * through) for @mode, each offering the @ioctls bits (_UFFDIO_*); on
 * failure unregister what was and close @fd.  @fd or -errno.
 */
int uffd_register_spans(int fd, const struct uffd_span *spans, unsigned int n,
			uint64_t mode, uint64_t ioctls);
/* Unregister (wakes any thread blocked on a protected page) and close. */
void uffd_track_unregister(int uffd, const struct uffd_span *spans, unsigned int n);

#endif
