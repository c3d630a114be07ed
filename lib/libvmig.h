/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvmig: the library under the vmig helper, and the calls a VMM uses to
 * take part in a migration.
 *
 * Every public name is vmig_<object>_<verb>.  Functions that can fail
 * return a negative errno (or NULL with errno set) and never print.
 * Structures are opaque unless declared here in full.
 */
#ifndef LIBVMIG_H
#define LIBVMIG_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *vmig_version(void);

/*
 * The kernel module's device.
 */
struct vmig_dev_info {
	uint32_t api_version;
	uint64_t features;		/* VMIG_FEATURE_* of <linux/vmig.h> */
	uint64_t page_size;
	uint64_t max_region_bytes;
};

/* Open /dev/vmig (O_CLOEXEC); returns the fd or -errno. */
int vmig_dev_open(void);
/* Ask the module what it speaks. */
int vmig_dev_query(int dev_fd, struct vmig_dev_info *info);

/*
 * userfaultfd, the backend used when the module is not there.
 */
struct vmig_uffd_info {
	uint64_t api;			/* UFFD_API the kernel answered */
	uint64_t features;		/* UFFD_FEATURE_* the kernel offers */
	bool missing_shmem;		/* MISSING faults on memfd: postcopy */
	bool wp_shmem;			/* WP on memfd: synchronous dirty tracking */
	bool wp_async;			/* UFFD_FEATURE_WP_ASYNC */
	bool pagemap_scan;		/* PAGEMAP_SCAN ioctl on /proc/pid/pagemap */
};

/* Probe what this kernel's userfaultfd offers; 0 or -errno. */
int vmig_uffd_probe(struct vmig_uffd_info *info);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMIG_H */
