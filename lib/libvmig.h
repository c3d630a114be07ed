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

/*
 * The module's generic netlink family "vmig": module info, regions and their
 * counters, and events.  Needs the module loaded: vmig_nl_open() fails with
 * ENOENT when the family is not registered.
 */
struct vmig_nl;

struct vmig_nl_info {
	char mod_version[32];		/* the module's MODULE_VERSION */
	uint32_t api_version;
	uint64_t features;		/* VMIG_FEATURE_* */
	uint64_t page_size;
	uint64_t max_region_bytes;	/* the cap on all regions, bytes */
	uint64_t reserved_bytes;	/* reserved by live regions */
	uint64_t pages_allocated;	/* pages held by all regions */
	uint64_t region_count;		/* live regions */
	uint64_t stall_threshold_ns;	/* postcopy stall events above this; 0 off */
};

#define VMIG_NL_HIST_BUCKETS	40

/* A region's counters: the fields of struct vmig_stats of <linux/vmig.h>. */
struct vmig_nl_stats {
	uint64_t pages_present;
	uint64_t write_faults;
	uint64_t harvest_calls;
	uint64_t pages_harvested;
	uint64_t clear_calls;
	uint64_t pages_protected;
	uint64_t max_protect_ns;
	uint64_t missing_faults;
	uint64_t requests;
	uint64_t pages_placed;
	uint64_t place_exist;
	uint64_t wait_hist[VMIG_NL_HIST_BUCKETS];	/* bucket i: [2^i, 2^(i+1)) ns */
};

struct vmig_nl_region {
	uint32_t id;
	uint64_t size;			/* bytes */
	uint32_t flags;			/* VMIG_REGION_* it was created with */
	bool dirty_on;
	uint32_t dirty_flags;		/* VMIG_DIRTY_* while on */
	bool has_stats;			/* @stats was sent */
	struct vmig_nl_stats stats;
};

enum vmig_nl_event_kind {
	VMIG_NL_EV_REGION_NEW = 1,	/* region: id, size, flags; pid */
	VMIG_NL_EV_REGION_DEL,		/* region: id, size, flags, final stats */
	VMIG_NL_EV_DIRTY,		/* region: id, dirty_on, dirty_flags */
	VMIG_NL_EV_STALL,		/* region: id; stall_ns */
};

struct vmig_nl_event {
	enum vmig_nl_event_kind kind;
	struct vmig_nl_region region;	/* the fields the kind lists */
	uint32_t pid;			/* REGION_NEW: the creating process */
	uint64_t stall_ns;		/* STALL: how long the fault waited */
};

/* Return 0 to go on; anything else stops and is returned to the caller. */
typedef int (*vmig_nl_region_cb)(const struct vmig_nl_region *r, void *arg);
typedef int (*vmig_nl_event_cb)(const struct vmig_nl_event *ev, void *arg);

/* Connect and resolve the family; NULL with errno (ENOENT: module absent). */
struct vmig_nl *vmig_nl_open(void);
void vmig_nl_close(struct vmig_nl *nl);
/* The kernel's extended-ack message for the last failed request, or "". */
const char *vmig_nl_errmsg(const struct vmig_nl *nl);
int vmig_nl_info(struct vmig_nl *nl, struct vmig_nl_info *info);
/* Call @cb for every live region, in increasing id order. */
int vmig_nl_dump(struct vmig_nl *nl, vmig_nl_region_cb cb, void *arg);
/* Call @cb for region @id; -ENOENT if there is none. */
int vmig_nl_region(struct vmig_nl *nl, uint32_t id, vmig_nl_region_cb cb, void *arg);
/* Zero the counters of region @id, or of all regions if @id < 0 (CAP_NET_ADMIN). */
int vmig_nl_reset_stats(struct vmig_nl *nl, int64_t id);
/* Join the events group, on a socket of its own. */
int vmig_nl_subscribe(struct vmig_nl *nl);
/* The events socket, for poll(); -EBADF before vmig_nl_subscribe(). */
int vmig_nl_event_fd(const struct vmig_nl *nl);
/*
 * Read one batch of events (blocks until one arrives), calling @cb for each;
 * the number of events, or -errno (-ENOBUFS: the socket overflowed and
 * events were lost; reading again goes on).
 */
int vmig_nl_read_events(struct vmig_nl *nl, vmig_nl_event_cb cb, void *arg);

/*
 * Loading and unloading vmig.ko, with libkmod.  Root (CAP_SYS_MODULE)
 * is needed to load or unload: -EPERM otherwise.
 */
struct vmig_module_status {
	bool loaded;
	char state[16];			/* "live", "coming", "going", "builtin" */
	char version[32];		/* /sys/module/vmig/version */
	int refcnt;			/* users: open /dev/vmig, regions */
	char installed[512];		/* the module file modprobe would load, or "" */
};

/*
 * Load vmig.ko: from @ko_path if non-NULL, else by name from the installed
 * module tree (as modprobe, with its dependencies and configured options).
 * @options: module parameters ("max_region_mb=512"), or NULL.
 * -EEXIST if loaded already, -ENOENT if not installed (or no @ko_path),
 * -EPERM without privilege, -ENOEXEC for a module built for another kernel.
 */
int vmig_module_load(const char *ko_path, const char *options);
/* Unload vmig.ko; -ENOENT if not loaded, -EBUSY while in use. */
int vmig_module_unload(void);
int vmig_module_status(struct vmig_module_status *st);
/* Call @cb for each parameter in /sys/module/vmig/parameters; 0 or -errno. */
int vmig_module_params(int (*cb)(const char *name, const char *value, void *arg),
		       void *arg);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMIG_H */
