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
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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
	uint64_t pages_discarded;	/* present pages dropped by VMIG_DISCARD */
	uint64_t nowait_placed;		/* KVM's first try got its page in time */
	uint64_t nowait_fallbacks;	/* ... did not: KVM's async fault */
	uint64_t sink_sent;		/* requests vmig.ko wrote to the sink itself */
	uint64_t sink_unsent;		/* ... that went back to the reader unsent */
};

struct vmig_nl_region {
	uint32_t id;
	uint64_t size;			/* bytes */
	uint32_t flags;			/* VMIG_REGION_* it was created with; POSTCOPY: mode on now */
	bool dirty_on;
	uint32_t dirty_flags;		/* VMIG_DIRTY_* while on */
	bool postcopy_on;		/* POSTCOPY event: the new mode */
	bool has_stats;			/* @stats was sent */
	struct vmig_nl_stats stats;
};

enum vmig_nl_event_kind {
	VMIG_NL_EV_REGION_NEW = 1,	/* region: id, size, flags; pid */
	VMIG_NL_EV_REGION_DEL,		/* region: id, size, flags, final stats */
	VMIG_NL_EV_DIRTY,		/* region: id, dirty_on, dirty_flags */
	VMIG_NL_EV_STALL,		/* region: id; stall_ns */
	VMIG_NL_EV_POSTCOPY,		/* region: id, postcopy_on */
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

/*
 * The VMM control protocol (UNIX socket).  The VMM listens; the helper
 * connects.  The VMM announces its role and guest-RAM regions (memfds passed
 * with SCM_RIGHTS); the helper then asks for dirty tracking (the VMM's
 * library creates and registers a userfaultfd and passes it), stops and
 * resumes the vCPUs, and ends the session with complete or error.  Every
 * message and its order: lib/vmm_proto.h.
 */
enum vmig_role {
	VMIG_ROLE_SOURCE = 1,		/* guest runs here now, memory goes out */
	VMIG_ROLE_DEST = 2,		/* memory comes in, guest resumes here */
};

/*
 * How writes to guest RAM are tracked: on the uffd backend, or by the VMM's
 * own dirty log on either backend.
 */
enum vmig_track {
	VMIG_TRACK_AUTO = 0,		/* async if the kernel has it, else sync */
	VMIG_TRACK_ASYNC = 1,		/* WP_ASYNC + PAGEMAP_SCAN: no fault cost in the helper */
	VMIG_TRACK_SYNC = 2,		/* WP faults resolved by the helper */
	VMIG_TRACK_MISSING = 3,		/* destination, postcopy: MISSING faults (not tracking) */
	VMIG_TRACK_VMM = 4,		/* the VMM's own log (vmig_vmm_set_dirty_log) */
};

/* What the helper asks of the VMM (vmig_vmm_poll) */
enum vmig_vmm_event {
	VMIG_VMM_NONE = 0,		/* timeout, nothing happened */
	VMIG_VMM_STOP,			/* stop the vCPUs, then vmig_vmm_ack() */
	VMIG_VMM_RESUME,		/* (re)start the vCPUs, then vmig_vmm_ack() */
	VMIG_VMM_COMPLETE,		/* source: the guest now lives elsewhere */
	VMIG_VMM_ERROR,			/* migration failed; message in vmig_vmm_error() */
	VMIG_VMM_DISCONNECT,		/* the helper went away without a verdict */
};

struct vmig_vmm;

/* VMM side: listen on a UNIX socket path (replaced if it exists). */
struct vmig_vmm *vmig_vmm_listen(const char *path, enum vmig_role role);
/* Add one guest-RAM region: its memfd and where the VMM maps it. */
int vmig_vmm_add_region(struct vmig_vmm *vmm, int memfd, void *addr, uint64_t size);
/* Wait up to timeout_ms (-1: forever) for a helper; announce the regions. */
int vmig_vmm_accept(struct vmig_vmm *vmm, int timeout_ms);
/*
 * Wait up to timeout_ms for the helper's next request.  Tracking requests
 * are served inside; on ERROR or DISCONNECT tracking is torn down (writes no
 * longer fault) before returning.  Returns the event or -errno.
 */
int vmig_vmm_poll(struct vmig_vmm *vmm, int timeout_ms);
/* Tell the helper a STOP or RESUME has been done. */
int vmig_vmm_ack(struct vmig_vmm *vmm, enum vmig_vmm_event ev);
/*
 * STOP done, but the vCPUs ran on ran_ns after it came: the VMM prepared
 * the switchover with the guest running, then stopped it (vmig qemu runs
 * QEMU's migration setup so).  The helper counts the downtime from the
 * real stop; one from before gets a plain acknowledgement.
 */
int vmig_vmm_ack_stop(struct vmig_vmm *vmm, uint64_t ran_ns);
/* The last ERROR's message ("" if none). */
const char *vmig_vmm_error(const struct vmig_vmm *vmm);
/*
 * Postcopy: true once the helper registered guest RAM for missing pages and
 * the guest resumed.  Then an ERROR or DISCONNECT leaves the registration in
 * place (threads touching a page that never arrived stay blocked rather than
 * read zeros): the guest is incomplete and the VMM must not run it on; it
 * should report the error and exit.
 */
bool vmig_vmm_postcopy_active(const struct vmig_vmm *vmm);
/*
 * Postcopy source: true from the moment a helper said the guest may run on
 * the destination (it is about to switch) until a helper completes the
 * migration, or says the destination never ran the guest.  Meanwhile the
 * VMM must keep its vCPUs stopped, also after an ERROR or a hang-up, and
 * wait for the next helper: 'vmig migrate --attach' finishes the migration
 * from the guest memory the VMM still holds.  libvmig refuses RESUME (and
 * tracking) meanwhile.
 * Postcopy destination: true from the helper's record (after RESUMED) until
 * COMPLETE or an ERROR.  A hang-up meanwhile (the helper died) is not the
 * end: the guest runs on, on the same registration, and the VMM should
 * accept the next helper ('vmig listen --attach').
 */
bool vmig_vmm_handed_over(const struct vmig_vmm *vmm);
/*
 * Auto-converge: the share of time, in percent (0..99), the helper asks the
 * VMM to keep its vCPUs stopped so that precopy converges; 0 when not
 * throttled.  Cheap: vCPU threads may read it as often as they like.  It
 * goes back to 0 when the session ends (COMPLETE, ERROR, hang-up).
 */
unsigned int vmig_vmm_throttle(const struct vmig_vmm *vmm);
/* Which tracking the helper asked for and got (VMIG_TRACK_AUTO: none yet). */
enum vmig_track vmig_vmm_track_mode(const struct vmig_vmm *vmm);
/* Drop the helper's connection (keep listening). */
void vmig_vmm_hangup(struct vmig_vmm *vmm);
void vmig_vmm_close(struct vmig_vmm *vmm);

/*
 * Device state (VMM side).  A VMM declares its devices before accepting a
 * helper; vmig never looks inside the state.  At switchover the helper asks
 * for each device's state: libvmig runs ops->save in a thread of its own,
 * which hands the state over chunk by chunk with vmig_dev_put().  On the
 * destination ops->load runs in a thread per device and takes the chunks,
 * in the order they were put, with vmig_dev_get().  Both may block (a
 * device's DMA engine); several devices run in parallel.
 *
 * A device declared with VMIG_DEV_PRECOPY has state to send before
 * switchover: during precopy, while the guest still runs, the helper asks
 * once for ops->save_precopy (the bulk of a large device); at switchover
 * ops->save then sends only what remains, which vmig_dev_io_after_precopy()
 * tells it (false: this migration took no precopy part, send everything).
 * The destination's ops->load sees one stream: the precopy part's chunks,
 * then the rest's, in order; it may start loading before switchover.
 */
#define VMIG_DEV_NAME_MAX	32
#define VMIG_DEV_CHUNK_MAX	(256u << 10)	/* bytes per vmig_dev_put() */
#define VMIG_DEV_PRECOPY	(1u << 0)	/* has state to send before switchover
						 * (ops->save_precopy) */
struct vmig_dev_io;

struct vmig_dev_ops {
	int (*save)(void *opaque, struct vmig_dev_io *io);	/* 0 or -errno */
	int (*load)(void *opaque, struct vmig_dev_io *io);	/* 0 or -errno */
	int (*save_precopy)(void *opaque, struct vmig_dev_io *io);	/* VMIG_DEV_PRECOPY */
};

/*
 * Declare a device: name (< 32 bytes) + instance unique; size approximate;
 * flags VMIG_DEV_PRECOPY exactly when ops->save_precopy is set.
 */
int vmig_vmm_add_device(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			uint64_t size, uint32_t flags, const struct vmig_dev_ops *ops,
			void *opaque);
/*
 * While the guest runs (any thread, any time after vmig_vmm_add_device):
 * a device's state changed size (its whole state, approximate), or how
 * fast its save and load run (bytes/s, 0: unknown).  The helper asks for
 * both before each switchover decision and predicts the downtime from
 * them (less what the device's precopy part already sent).  0 or -ENOENT.
 */
int vmig_vmm_set_device_size(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			     uint64_t size);
int vmig_vmm_set_device_rates(struct vmig_vmm *vmm, const char *name, uint32_t instance,
			      uint64_t save_rate, uint64_t load_rate);
/* Save: one chunk of 1..VMIG_DEV_CHUNK_MAX bytes.  0 or -errno (helper gone). */
int vmig_dev_put(struct vmig_dev_io *io, const void *buf, size_t len);
/*
 * Load: the next chunk into buf (cap >= VMIG_DEV_CHUNK_MAX): its length, 0 at
 * the end, -errno.  The end comes only once guest RAM may be read: every page
 * is placed (precopy), or the RAM is in postcopy mode with missing pages
 * served on demand.  A load that reads guest RAM does so after the end.
 */
long vmig_dev_get(struct vmig_dev_io *io, void *buf, size_t cap);
/* In ops->save: true when this migration already took the device's precopy part. */
bool vmig_dev_io_after_precopy(const struct vmig_dev_io *io);

/*
 * Free-page hints (VMM side).  fn fills bitmap (one bit per page of region,
 * set: the guest does not use the page, its content does not matter) when
 * the helper asks.  It asks only once dirty tracking is on, and asks again
 * before each slice of its bulk stage, so a guest whose free set changes
 * is followed: each slice skips what the latest hint calls free.  The rule,
 * for the first hint and every update: dirty logging must be on before the
 * hint is taken, so a hinted page the guest writes afterwards is dirty and
 * still sent.  A VMM must therefore compute the hint when asked, never
 * earlier (no cached bitmap), and must not send a hint unasked (the helper
 * treats that as a broken session).
 */
typedef int (*vmig_free_hint_fn)(void *opaque, unsigned int region, uint64_t *bitmap,
				 uint64_t pages);
void vmig_vmm_set_free_hint(struct vmig_vmm *vmm, vmig_free_hint_fn fn, void *opaque);
/*
 * Guest RAM is also written through a secondary MMU (KVM's own page tables,
 * a device's): say so before vmig_vmm_accept(), and the helper refuses the
 * dirty-logging modes that cannot see such writes (hwdirty).
 */
void vmig_vmm_set_mirrored(struct vmig_vmm *vmm, bool mirrored);
/*
 * The VMM's own dirty log, offered to the helper in place of vmig's
 * tracking ('vmig migrate --track vmm'): a KVM VMM's dirty bitmap or ring,
 * which write-protects KVM's own page tables instead of the host's.  Set
 * before vmig_vmm_accept().  All three run in the thread that calls
 * vmig_vmm_poll(), on the helper's requests:
 *   start    turn the log on: from now on every write to guest RAM, by the
 *            vCPUs and by the VMM itself (device emulation), must show in a
 *            later collect.  0 or -errno (the helper fails with it).
 *   collect  set in bitmap (zeroed, one bit per page of region) every page
 *            written since the previous collect, or since start, and arm
 *            the tracking of those pages again before returning (KVM's
 *            manual protect: KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of
 *            what it returned), so that a write after collect returns shows
 *            in a later one.  0 or -errno.
 *   stop     the migration ended (done, failed, helper gone): turn it off.
 */
struct vmig_dirty_log_ops {
	int (*start)(void *opaque);
	int (*collect)(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages);
	void (*stop)(void *opaque);
};
void vmig_vmm_set_dirty_log(struct vmig_vmm *vmm, const struct vmig_dirty_log_ops *ops,
			    void *opaque);

/*
 * Helper side of the control protocol.
 */
struct vmig_ctl;

/* Connect to the VMM at path, retrying up to timeout_ms; read its announcement. */
struct vmig_ctl *vmig_ctl_connect(const char *path, int timeout_ms);
enum vmig_role vmig_ctl_role(const struct vmig_ctl *ctl);
/*
 * Destination: the VMM runs a postcopy guest whose helper died; only a
 * helper that takes it over (vmig_ctl_handover_query) may do anything.
 */
bool vmig_ctl_handed_over(const struct vmig_ctl *ctl);
unsigned int vmig_ctl_region_count(const struct vmig_ctl *ctl);
/* Region i: its memfd (owned by ctl), size, and the VMM's address for it. */
int vmig_ctl_region(const struct vmig_ctl *ctl, unsigned int i, int *memfd,
		    uint64_t *size, uint64_t *vmm_addr);
int vmig_ctl_vmm_pid(const struct vmig_ctl *ctl);
/*
 * Ask the VMM to register its RAM for tracking; returns the uffd or -errno.
 * VMIG_TRACK_VMM: the VMM's own log; returns the memfd of its bitmaps
 * (one bit per page, region after region, each padded to 8 bytes), which
 * vmig_ctl_dirty_log() fills.
 */
int vmig_ctl_track(struct vmig_ctl *ctl, enum vmig_track mode, int timeout_ms,
		   enum vmig_track *chosen);
/*
 * Destination, postcopy: ask the VMM to register its RAM for missing-page
 * faults.  On vmig.ko regions the VMM registers nothing (the helper puts
 * the regions in postcopy mode itself) and this returns 0 once the VMM has
 * taken note; on memfds it returns the uffd (faults and UFFDIO_COPY in the VMM's address
 * space, see vmig_ctl_region's vmm_addr) or -errno.
 */
int vmig_ctl_postcopy(struct vmig_ctl *ctl, int timeout_ms);
/*
 * Source, auto-converge: ask the VMM to keep its vCPUs stopped @percent of
 * the time (0..99; 0 ends throttling); returns once the VMM has it.  Only
 * for VMMs linked with a libvmig that knows the request.
 */
int vmig_ctl_throttle(struct vmig_ctl *ctl, unsigned int percent, int timeout_ms);
/* Stop / resume the vCPUs; return once the VMM acknowledged. */
int vmig_ctl_stop(struct vmig_ctl *ctl, int timeout_ms);
/*
 * The same, and *ran_ns: how long the vCPUs ran on after STOP came (the
 * VMM's own preparation; 0 from a VMM that stops at once or does not say),
 * never more than the call took.
 */
int vmig_ctl_stop_ran(struct vmig_ctl *ctl, int timeout_ms, uint64_t *ran_ns);
int vmig_ctl_resume(struct vmig_ctl *ctl, int timeout_ms);
/* End the session: success, or failure with a message for the VMM. */
int vmig_ctl_complete(struct vmig_ctl *ctl);
int vmig_ctl_error(struct vmig_ctl *ctl, const char *msg);
/* Device state: ask for the VMM's device list (0 or -errno), then read it. */
struct vmig_dev_desc {
	char name[VMIG_DEV_NAME_MAX];
	uint32_t instance;
	uint32_t flags;
	uint64_t size;
	uint64_t save_rate, load_rate;	/* bytes/s the VMM declared; 0: unknown */
};
int vmig_ctl_query_devices(struct vmig_ctl *ctl, int timeout_ms);
/*
 * Refresh every device's size and rates from the VMM (DEV_PENDING): 0,
 * -EOPNOTSUPP when the VMM's libvmig predates it (nothing is sent then),
 * or -errno.
 */
int vmig_ctl_refresh_devices(struct vmig_ctl *ctl, int timeout_ms);
unsigned int vmig_ctl_device_count(const struct vmig_ctl *ctl);
const struct vmig_dev_desc *vmig_ctl_device(const struct vmig_ctl *ctl, unsigned int i);
/*
 * Start saving (load false) or loading device i: returns the helper's end
 * of the device's stream (records: lib/vmm_proto.h struct vmm_dev_rec).
 * Safe to call from several threads at once.
 */
int vmig_ctl_device_open(struct vmig_ctl *ctl, unsigned int i, bool load);
/* The same for the precopy part of a VMIG_DEV_PRECOPY device (save only). */
int vmig_ctl_device_open_precopy(struct vmig_ctl *ctl, unsigned int i);
/*
 * Free-page hint: a malloc'ed array of per-region bitmaps (*bitmaps[r],
 * region r's pages bits), or -ENOENT when the VMM has none.
 */
int vmig_ctl_free_hint(struct vmig_ctl *ctl, int timeout_ms, uint64_t **bitmaps);
#define VMIG_HANDOVER_MAX	1024	/* bytes of a handover record */
/*
 * Source, postcopy: give the VMM the record a helper needs to take over if
 * this one dies (@len bytes, at most VMIG_HANDOVER_MAX), before the switch can reach
 * the destination; @len 0 drops it (the destination never ran the guest).
 * Destination: the same once the guest runs here.
 * Returns once the VMM has it, 0 or -errno.
 */
int vmig_ctl_handover(struct vmig_ctl *ctl, const void *rec, size_t len, int timeout_ms);
/*
 * Either side: the handover record the VMM holds (a helper died during
 * postcopy; on a destination this takes it over), copied to @rec (@max bytes); its length, or -ENOENT when the
 * VMM holds none, or -errno.
 */
int vmig_ctl_handover_query(struct vmig_ctl *ctl, void *rec, size_t max, int timeout_ms);
/* True if the VMM hung up (or sent something unasked): poll without waiting. */
bool vmig_ctl_lost(struct vmig_ctl *ctl);
/* Did the VMM say a secondary MMU writes its guest RAM (vmig_vmm_set_mirrored)? */
bool vmig_ctl_mirrored(const struct vmig_ctl *ctl);
/* Does the VMM offer its own dirty log (vmig_vmm_set_dirty_log)? */
bool vmig_ctl_dirty_log_offered(const struct vmig_ctl *ctl);
/*
 * VMIG_TRACK_VMM: the pages written since the last call into the bitmaps,
 * each re-armed by the VMM before it answered.  0 or -errno.
 */
int vmig_ctl_dirty_log(struct vmig_ctl *ctl, int timeout_ms);
void vmig_ctl_close(struct vmig_ctl *ctl);

/*
 * Guest RAM as the migration engine sees it: regions of pages, whatever the
 * backend.  Source: start tracking, read pages, harvest dirty ranges (each
 * harvested range is write-protected again before the call returns, so
 * reading it afterwards is safe).  Destination: place pages.
 */
struct vmig_ram;

/* Called for each range found; a non-zero return stops the walk and is returned. */
typedef int (*vmig_range_fn)(void *arg, unsigned int region, uint64_t first_page,
			     uint64_t num_pages);

/* The uffd backend on the regions a VMM announced through ctl. */
struct vmig_ram *vmig_ram_open_uffd(struct vmig_ctl *ctl);

/*
 * The kmod backend: the VMM's RAM is vmig.ko regions (vmig_ram_create).
 * Dirty logging runs in the module on the region fds the VMM passed; no
 * request goes to the VMM for it.
 */
enum vmig_backend {
	VMIG_BACKEND_AUTO = 0,		/* kmod if the RAM is vmig.ko regions, else uffd */
	VMIG_BACKEND_KMOD,
	VMIG_BACKEND_UFFD,
};

/* The module's dirty-logging modes (VMIG_DIRTY_* of <linux/vmig.h>). */
enum vmig_dirty_mode {
	VMIG_DIRTY_MODE_MANUAL_INIT = 0,	/* MANUAL_PROTECT | INITIALLY_SET (default) */
	VMIG_DIRTY_MODE_MANUAL,			/* MANUAL_PROTECT */
	VMIG_DIRTY_MODE_PROTECT,		/* 0: GET re-protects */
	VMIG_DIRTY_MODE_HWDIRTY,		/* HWDIRTY: page-table dirty bits */
};

/* "manual-init", "manual", "protect", "hwdirty"; NULL for an unknown mode. */
const char *vmig_dirty_mode_name(enum vmig_dirty_mode m);
/* Parse one of those names; -EINVAL if unknown. */
int vmig_dirty_mode_parse(const char *s, enum vmig_dirty_mode *m);
/* "auto", "kmod", "uffd"; parse: -EINVAL if unknown. */
const char *vmig_backend_name(enum vmig_backend be);
int vmig_backend_parse(const char *s, enum vmig_backend *be);

/* A vmig.ko region of size bytes on the open /dev/vmig dev_fd (O_CLOEXEC); fd or -errno. */
int vmig_region_create(int dev_fd, uint64_t size);
/* Is fd a vmig.ko region? */
bool vmig_fd_is_region(int fd);

/*
 * Regions by path: the files of a vmigfs mount ("Regions by path" in
 * <linux/vmig.h>).  QEMU maps one with -object memory-backend-file,
 * mem-path=PATH,size=SIZE,share=on.
 */
#define VMIG_REGIONFS_DIR	"/run/vmig"	/* where vmig mounts one on demand */
/* 1 if path is on a vmigfs, 0 if not, -errno if it cannot be looked at. */
int vmig_regionfs_check(const char *path);
/* Mount a vmigfs on dir (made if missing; the module loaded if needed); 0 if one is there. */
int vmig_regionfs_mount(const char *dir);
/*
 * A region of size bytes (page aligned) at path on a vmigfs, mode and owner
 * set before it has a size (uid/gid -1: the caller's).  Returns an O_RDWR fd
 * (O_CLOEXEC), or -errno with nothing left behind: -EEXIST, -ENOTTY (not on a
 * vmigfs), -EINVAL (size), -EFBIG (over the module's cap), -ENOSPC (no room
 * under the cap), -EPERM/-EACCES.
 */
int vmig_region_file_create(const char *path, uint64_t size, mode_t mode,
			    uid_t uid, gid_t gid);
/* Unlink a region file (-ENOTTY if path is not on a vmigfs); mappings keep it alive. */
int vmig_region_file_remove(const char *path);
/*
 * VMM side: guest RAM of size bytes for backend be: a vmig.ko region
 * (kmod; loads the module if /dev/vmig is missing and it is installed) or a
 * memfd (uffd).  AUTO takes kmod when /dev/vmig exists or the module can be
 * loaded, else uffd.  Returns the fd and stores the backend chosen, or
 * -errno (kmod asked and unavailable: -ENODEV, or the load's error).
 */
int vmig_ram_create(enum vmig_backend be, uint64_t size, enum vmig_backend *chosen);
/* The kmod backend on the regions announced through ctl (all must be regions). */
struct vmig_ram *vmig_ram_open_kmod(struct vmig_ctl *ctl, enum vmig_dirty_mode mode);
/*
 * Open the backend be on ctl's regions.  AUTO: kmod when the VMM's RAM is
 * regions, else uffd.  -EMEDIUMTYPE (errno) when the RAM does not fit be.
 */
struct vmig_ram *vmig_ram_open(struct vmig_ctl *ctl, enum vmig_backend be,
			       enum vmig_dirty_mode mode);
const char *vmig_ram_backend(const struct vmig_ram *ram);
unsigned int vmig_ram_region_count(const struct vmig_ram *ram);
uint64_t vmig_ram_region_pages(const struct vmig_ram *ram, unsigned int region);
uint64_t vmig_ram_page_size(const struct vmig_ram *ram);
/*
 * Start dirty tracking (source); every page starts clean and protected.
 * VMIG_TRACK_VMM, on any backend: the VMM's own log (vmig_vmm_set_dirty_log);
 * -EOPNOTSUPP from a VMM without one, -EPROTO if its bitmaps do not fit.
 */
int vmig_ram_track_start(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms);
/* The tracking in use: "async", "sync", "vmm" (or "none"). */
enum vmig_track vmig_ram_track_mode(const struct vmig_ram *ram);
/* Ranges holding data (holes were never written and read as zero). */
int vmig_ram_for_each_data(struct vmig_ram *ram, unsigned int region, vmig_range_fn fn,
			   void *arg);
/* Harvest pages written since the last harvest and re-protect them. */
int vmig_ram_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg);
/*
 * The last harvest, with the VMM stopped: the same, but what it reports
 * is not write-protected again (uffd: no re-arming in either mode; kmod:
 * VMIG_DIRTY_LOG_FINAL where the module offers it), which keeps that work
 * out of the downtime.  A write after it may go unreported, and a later
 * harvest may report its pages again: no harvest may follow it.
 */
int vmig_ram_harvest_final(struct vmig_ram *ram, vmig_range_fn fn, void *arg);
/*
 * Source: call just before reading pages for sending: those of
 * [first, first+num_pages) whose bit is set in bitmap (bit i: page
 * first+i).  first is a multiple of 64, num_pages too unless the range ends
 * at the region's end.  kmod manual modes re-arm their protection here
 * (THE RULE of <linux/vmig.h>); a no-op where harvest already did.
 */
int vmig_ram_prepare_send(struct vmig_ram *ram, unsigned int region, uint64_t first,
			  uint64_t num_pages, const uint64_t *bitmap);
/* The tracking in use, as a name: "async", "sync", "kmod-manual-init", ... */
const char *vmig_ram_track_name(const struct vmig_ram *ram);
/* The page's bytes: readable on a source, writable on a destination. */
void *vmig_ram_page(struct vmig_ram *ram, unsigned int region, uint64_t page);
/*
 * Source: copy the page into buf (vmig_ram_page_size() bytes) by reading
 * the region's file, not through the helper's mapping.  For a page read
 * once, at random, as postcopy's requests are: through the mapping it
 * costs a page fault (mapping up to 16 pages around it) if the helper has
 * not touched it yet, where the file read copies it from the page cache.
 * -ENOTSUP where the backend's files are not read so (vmig.ko's) or a
 * read failed once (then read vmig_ram_page()); -EINVAL out of range.
 */
int vmig_ram_read_page(struct vmig_ram *ram, unsigned int region, uint64_t page, void *buf);
/* Destination: copy num_pages pages in (src NULL: zero them). */
int vmig_ram_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
		   const void *src, uint64_t num_pages);
/* Destination: allocate all pages up front so placing never faults. */
int vmig_ram_prefault(struct vmig_ram *ram);
/* Counters of the tracking (write faults resolved, scans). */
struct vmig_ram_stats {
	uint64_t wp_faults;
	uint64_t harvests;
	uint64_t harvest_ns;
};
void vmig_ram_stats(const struct vmig_ram *ram, struct vmig_ram_stats *st);
/*
 * Source, live: how many pages were written after being handed to
 * vmig_ram_prepare_send() since tracking started (write faults on re-armed
 * pages), which a later round must send again.  Only where protection is
 * armed on sent pages alone, so that the count means exactly that (kmod
 * manual-init); elsewhere -ENOTSUP (sync write-protect faults on the first
 * write to any page, sent or not).
 */
int vmig_ram_redirtied(struct vmig_ram *ram, uint64_t *pages);
/*
 * Source, kmod backend: the pages the module has write-protected in these
 * regions since they were created (struct vmig_stats' pages_protected,
 * summed): every protection walk, a harvest's or a CLEAR's.  Read it twice
 * to learn what a stretch of the migration cost.  -ENOTSUP elsewhere.
 */
int vmig_ram_pages_protected(struct vmig_ram *ram, uint64_t *pages);

/*
 * Destination, postcopy: the guest runs here while pages are missing, and
 * the backend serves its faults (uffd: the VMM's userfaultfd; kmod: the
 * regions themselves).  In order: at the switch (guest stopped) enable,
 * then discard what never arrived (no fault can refill a dropped page with
 * zeroes); register before the guest resumes (or, taking over from a dead
 * helper, register then requeue); then read requests when the fds poll
 * readable and place pages; disable once every page is here.  0 or -errno
 * unless said.
 */
/* Guest RAM enters postcopy mode: from now on a missing page faults. */
int vmig_ram_postcopy_enable(struct vmig_ram *ram);
/* Make n pages from first missing, so that the guest's next touch faults. */
int vmig_ram_postcopy_discard(struct vmig_ram *ram, unsigned int region, uint64_t first,
			      uint64_t n);
/*
 * Ask the VMM to register its RAM for missing pages (a helper taking over:
 * to hand over the registration the guest runs on).  -EPROTO when what the
 * VMM answers does not fit the backend.
 */
int vmig_ram_postcopy_register(struct vmig_ram *ram, int timeout_ms);
/* Taking over from a dead helper: the requests it had read come again. */
int vmig_ram_postcopy_requeue(struct vmig_ram *ram);
/* The fds that poll readable (POLLIN) when requests wait: into fds (room for max); how many. */
int vmig_ram_postcopy_fds(const struct vmig_ram *ram, int *fds, unsigned int max);
/*
 * What poll() returned in revents for fds[i]: 0, or -errno when no request
 * can come from that fd any more (the registration failed, or a region
 * left postcopy mode).
 */
int vmig_ram_postcopy_poll_error(const struct vmig_ram *ram, unsigned int i, short revents);
/* A page the guest waits for. */
struct vmig_ram_request {
	uint32_t region;
	bool sent;		/* vmig.ko wrote it to the sink (vmig_ram_postcopy_set_sink) */
	uint64_t page;
	uint64_t fault_ns;	/* the first fault, CLOCK_MONOTONIC; 0 if unknown (uffd) */
};
/*
 * The requests waiting (nonblocking), up to max into req: how many, 0 if
 * none; -ESHUTDOWN when guest RAM left postcopy mode with pages missing,
 * -EFAULT for a fault outside guest RAM.
 */
/*
 * Let vmig.ko write the guest's new requests to fd, a connected plain TCP
 * socket, itself (VMIG_POSTCOPY_SET_SINK on every region): each a copy of
 * the len-byte rec with the region's index stored at region_at (le32) and
 * the page at page_at (le64).  Such requests come from
 * vmig_ram_postcopy_requests with sent set and wake nobody; one the module
 * could not write comes unsent.  While fd is attached nothing else may
 * write to it: fd -1 detaches (and waits for a write in progress) before
 * the caller writes.  -EOPNOTSUPP on the uffd backend or a module without
 * it.
 */
int vmig_ram_postcopy_set_sink(struct vmig_ram *ram, int fd, const void *rec, uint32_t len,
			       uint32_t region_at, uint32_t page_at);
int vmig_ram_postcopy_requests(struct vmig_ram *ram, struct vmig_ram_request *req,
			       unsigned int max);
/* A request for a page that is here already: let its threads go (no-op where placing woke them). */
void vmig_ram_postcopy_wake(struct vmig_ram *ram, unsigned int region, uint64_t page);
/*
 * Place one page atomically (src NULL: zeroes) and wake the threads waiting
 * for it: 0, or -EEXIST when it was present already (never overwritten).
 */
int vmig_ram_postcopy_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
			    const void *src);
/*
 * The same for n pages of one region (pages[i], data src[i]): placed[i]
 * false for a page present already; returns how many those were.
 */
int vmig_ram_postcopy_place_batch(struct vmig_ram *ram, unsigned int region,
				  const uint64_t *pages, uint8_t *const *src, unsigned int n,
				  bool *placed);
/* Every page arrived: guest RAM leaves postcopy mode. */
void vmig_ram_postcopy_disable(struct vmig_ram *ram);
void vmig_ram_close(struct vmig_ram *ram);

#ifdef __cplusplus
}
#endif

#endif /* LIBVMIG_H */
