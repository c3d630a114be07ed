/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * vmig: guest-RAM regions with dirty logging and a missing-page service,
 * for live migration of virtual machines.
 *
 * Objects
 * -------
 * /dev/vmig (the device) creates regions.  A region is a file descriptor
 * standing for a fixed-size, page-granular memory object.  Any number of
 * processes may mmap() it MAP_SHARED (the fd can be passed with SCM_RIGHTS);
 * all of them see the same pages.  A page is allocated, zero-filled, on its
 * first touch, charged to the memory cgroup of the task that touched it, and
 * freed when the last fd and the last mapping of the region are gone.
 * MAP_PRIVATE mappings are refused (-EINVAL): a private copy would escape
 * dirty logging.
 *
 * Device ioctls (on the /dev/vmig fd):
 *   VMIG_GET_API          ABI version and feature bits.
 *   VMIG_CREATE_REGION    a new region; returns its fd.
 *   VMIG_GET_GLOBAL_STATS module-wide counters (regions, pages held).
 *
 * Region ioctls (on a region fd):
 *   VMIG_DIRTY_ENABLE, VMIG_DIRTY_DISABLE, VMIG_GET_DIRTY_LOG,
 *   VMIG_CLEAR_DIRTY_LOG  dirty logging (precopy source).
 *   VMIG_PLACE, VMIG_PLACE_BATCH, VMIG_ABORT, read()/poll()
 *                         missing-page service (postcopy destination).
 *   VMIG_GET_STATS        the region's counters and histograms.
 *
 * A device ioctl on a region fd, or a region ioctl on the device fd, fails
 * with -ENOTTY.  Every structure has reserved fields that must be zero
 * (-EINVAL otherwise), so they can be given a meaning later.
 *
 * Page numbers and offsets are in units of the kernel's PAGE_SIZE, which
 * VMIG_GET_API reports.
 */
#ifndef _UAPI_LINUX_VMIG_H
#define _UAPI_LINUX_VMIG_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define VMIG_API_VERSION	1

#define VMIG_IOC_MAGIC		0xB7

/* Feature bits reported in vmig_api.features. */
#define VMIG_FEATURE_DIRTY_LOG		_BITULL(0)
#define VMIG_FEATURE_MANUAL_PROTECT	_BITULL(1)
#define VMIG_FEATURE_INITIALLY_SET	_BITULL(2)
#define VMIG_FEATURE_HWDIRTY		_BITULL(3)
#define VMIG_FEATURE_POSTCOPY		_BITULL(4)
#define VMIG_FEATURE_PLACE_BATCH	_BITULL(5)
#define VMIG_FEATURE_NETLINK		_BITULL(6)

/**
 * struct vmig_api - what this module speaks (VMIG_GET_API)
 * @version:	VMIG_API_VERSION of the module.  A later version only adds.
 * @reserved:	zero.
 * @features:	VMIG_FEATURE_* bits this module implements.
 * @page_size:	the unit of every page number and page count.
 * @max_region_bytes: the module's cap on the bytes all regions may hold
 *		(module parameter max_region_mb), 0 for no cap.
 */
struct vmig_api {
	__u32 version;
	__u32 reserved;
	__u64 features;
	__u64 page_size;
	__u64 max_region_bytes;
};

/* Flags of vmig_region_create.flags */
#define VMIG_REGION_POSTCOPY	_BITUL(0) /* pages start missing, see below */
#define VMIG_REGION_CLOEXEC	_BITUL(1) /* the new fd is O_CLOEXEC */
#define VMIG_REGION_NONBLOCK	_BITUL(2) /* read() of requests never sleeps */
#define VMIG_REGION_FLAGS_ALL	(VMIG_REGION_POSTCOPY | VMIG_REGION_CLOEXEC | \
				 VMIG_REGION_NONBLOCK)

/**
 * struct vmig_region_create - argument of VMIG_CREATE_REGION
 * @size:	bytes; a non-zero multiple of the page size.
 * @flags:	VMIG_REGION_*; unknown bits fail with -EINVAL.
 * @reserved:	zero.
 *
 * Returns the new region's fd.  -ENOMEM when @size does not fit under the
 * module's cap (max_region_bytes less what other regions reserve); the cap
 * counts a region's whole size from creation, so a later fault never fails
 * for want of room under the cap.
 */
struct vmig_region_create {
	__u64 size;
	__u32 flags;
	__u32 reserved;
	__u64 reserved2[2];
};

/**
 * struct vmig_global_stats - module-wide counters (VMIG_GET_GLOBAL_STATS)
 * @regions:		regions alive (fd or mapping still held).
 * @reserved_bytes:	bytes reserved under the cap by live regions.
 * @pages_allocated:	pages the module currently holds for all regions.
 *			Zero again once every region is gone: a leak check.
 * @max_region_bytes:	the cap, 0 for none.
 */
struct vmig_global_stats {
	__u64 regions;
	__u64 reserved_bytes;
	__u64 pages_allocated;
	__u64 max_region_bytes;
	__u64 reserved[4];
};

/*
 * Dirty logging
 * -------------
 * Once enabled, the module records in a bitmap, one bit per page, every page
 * written through any mapping of the region.  In the default mode the first
 * write to a page after the page was write-protected takes one write fault,
 * which sets the page's bit atomically; no module lock is taken on that path.
 *
 * VMIG_GET_DIRTY_LOG fetches and clears the bits of a range, one 64-bit word
 * at a time, atomically, and then write-protects exactly the pages it
 * harvested, so the next write to each of them is seen again.
 *
 * THE RULE: userspace may read a page's data for sending only after the call
 * that re-armed its protection (VMIG_GET_DIRTY_LOG in the default mode,
 * VMIG_CLEAR_DIRTY_LOG with VMIG_DIRTY_MANUAL_PROTECT) has returned.  A write
 * that lands after that point is reported by the next harvest; a copy taken
 * before it may miss a write that is then never reported again.
 *
 * Modes (vmig_dirty_enable.flags):
 *   0: GET harvests and re-protects.
 *   VMIG_DIRTY_MANUAL_PROTECT: GET only harvests (fetch-and-clear);
 *	VMIG_CLEAR_DIRTY_LOG write-protects the pages whose bits it is given.
 *	Userspace clears a chunk just before sending it.  The rule above holds
 *	with CLEAR as the re-arming call.
 *   VMIG_DIRTY_INITIALLY_SET (with MANUAL_PROTECT only): enabling is O(1):
 *	every bit starts set and nothing is write-protected.  Protection
 *	happens lazily, as userspace clears chunks before sending them.
 *   VMIG_DIRTY_HWDIRTY: no write protection; harvest reads and cleans the
 *	page-table dirty bits of every mapping.  No fault cost for writers;
 *	harvest cost grows with the number of mapped pages.
 */
#define VMIG_DIRTY_MANUAL_PROTECT	_BITUL(0)
#define VMIG_DIRTY_INITIALLY_SET	_BITUL(1)
#define VMIG_DIRTY_HWDIRTY		_BITUL(2)
#define VMIG_DIRTY_FLAGS_ALL		(VMIG_DIRTY_MANUAL_PROTECT | \
					 VMIG_DIRTY_INITIALLY_SET | \
					 VMIG_DIRTY_HWDIRTY)

/**
 * struct vmig_dirty_enable - argument of VMIG_DIRTY_ENABLE
 * @flags:	VMIG_DIRTY_*.  -EINVAL for unknown bits or INITIALLY_SET
 *		without MANUAL_PROTECT; -EBUSY if logging is already on.
 * @reserved:	zero.
 */
struct vmig_dirty_enable {
	__u32 flags;
	__u32 reserved;
};

/**
 * struct vmig_dirty_log - argument of VMIG_GET_DIRTY_LOG / VMIG_CLEAR_DIRTY_LOG
 * @first_page:	first page of the range; a multiple of 64.
 * @num_pages:	pages in the range; first_page + num_pages must not pass the
 *		region's end.  A multiple of 64 unless the range ends at the
 *		region's end.
 * @bitmap:	user address of ceil(num_pages / 64) __u64 words; bit i of
 *		word w stands for page first_page + 64 * w + i.  GET writes
 *		it; CLEAR reads it.
 * @dirty:	out: pages set in the returned bitmap (GET), pages cleared (CLEAR).
 * @reserved:	zero.
 *
 * Both fail with -ENOENT while logging is off, -EINVAL for a bad range,
 * -EFAULT for a bad bitmap address.  CLEAR without MANUAL_PROTECT: -EINVAL.
 */
struct vmig_dirty_log {
	__u64 first_page;
	__u64 num_pages;
	__u64 bitmap;
	__u64 dirty;
	__u64 reserved;
};

/*
 * Postcopy
 * --------
 * In a region created with VMIG_REGION_POSTCOPY every page starts missing.
 * A fault on a missing page (read or write, from any process mapping the
 * region, and from get_user_pages callers such as process_vm_readv,
 * /proc/pid/mem or KVM) queues one request for the page, however
 * many threads and processes fault on it, and the faulting threads sleep
 * until the page is placed.  The sleep is killable; a user-mode access may
 * also be interrupted by a signal handler, after which it faults again.
 * While it sleeps a fault does not hold the mm's mmap_lock when the fault
 * can be retried (always for user-mode accesses), so mmap()/munmap() in the
 * faulting process go on; a get_user_pages caller that cannot retry (such
 * as a read of /proc/pid/mem) sleeps with the lock held for reading, and
 * until its page is placed, mmap()/munmap() in that mm wait too.  A fault
 * that may not sleep (FAULT_FLAG_RETRY_NOWAIT, KVM's asynchronous page
 * faults) queues the request and returns at once.
 *
 * Requests are read from the region fd with read() as struct vmig_request
 * records: whole records only, as many as are queued and fit in the buffer
 * (a buffer smaller than one record fails with -EINVAL; a bad buffer with
 * -EFAULT, and the requests stay queued).  Each request is returned once.
 * read() sleeps while none is queued unless the fd is nonblocking
 * (VMIG_REGION_NONBLOCK or O_NONBLOCK: -EAGAIN then); poll()/epoll report
 * EPOLLIN while requests are queued.  A request stays pending until its
 * page is placed, even if every thread that faulted on it was killed.
 *
 * VMIG_PLACE copies data in and maps it atomically: no process ever sees a
 * page half filled.  It wakes the page's waiters, and removes the page's
 * request if it was not read yet (read() never returns a request for a
 * present page).  Placing over a present page fails with -EEXIST and
 * changes nothing.  PLACE works in any phase and in any region; in a region
 * without VMIG_REGION_POSTCOPY it fills pages that were never touched.  A
 * placed page counts as written for dirty logging, so a destination region
 * can enable logging later and become a source.
 *
 * VMIG_ABORT wakes every waiter, which gets SIGBUS; later faults on missing
 * pages get SIGBUS at once; read() returns 0 (end of file) and poll()
 * reports EPOLLHUP.  Pages already present stay, and PLACE still works.
 * ABORT again is a no-op.  A waiting fault holds a reference to the region,
 * as a mapping does, so the region is never released under a waiter (its
 * release drops the requests that faults which could not wait left
 * queued).  A thread whose mapping another thread unmapped while it waited
 * still waits for its page, ABORT, or a fatal signal.
 *
 * In a region without VMIG_REGION_POSTCOPY, read() and VMIG_ABORT fail
 * with -EINVAL and poll() reports EPOLLERR.
 *
 * The module parameter wait_spin_ns (writable at runtime) makes a faulting
 * thread spin for up to that long for its page before it sleeps.
 */
#define VMIG_REQ_WRITE		_BITUL(0) /* the page was first wanted for writing */

/**
 * struct vmig_request - a missing-page request, read() from a region fd
 * @offset:	byte offset of the missing page in the region (page aligned).
 * @flags:	VMIG_REQ_*.  VMIG_REQ_WRITE is set if a write fault on the
 *		page came before the request was read.
 * @reserved:	zero.
 * @time_ns:	CLOCK_MONOTONIC time of the first fault on the page.
 */
struct vmig_request {
	__u64 offset;
	__u32 flags;
	__u32 reserved;
	__u64 time_ns;
};

#define VMIG_PLACE_ZERO		_BITUL(0) /* fill with zeroes; src must be 0 */
#define VMIG_PLACE_FLAGS_ALL	(VMIG_PLACE_ZERO)

/**
 * struct vmig_place - argument of VMIG_PLACE, and one entry of a batch
 * @offset:	byte offset in the region, page aligned.
 * @len:	bytes, a non-zero multiple of the page size; the range must lie
 *		inside the region.
 * @src:	user address of @len bytes, any alignment, not 0.  Must be 0
 *		with VMIG_PLACE_ZERO.  It must not lie in a missing page of a
 *		postcopy region: the copy would wait for that page.
 * @flags:	VMIG_PLACE_*.
 * @reserved:	zero.
 * @placed:	out: bytes placed.  Pages are placed in order; on error the
 *		call stops at the first page it could not place and @placed
 *		says how far it got (-EEXIST: that page was already present).
 *
 * Errors: -EINVAL for a bad offset, length, range, flag or reserved field,
 * -EFAULT for a bad @src or argument pointer (nothing is placed for any of
 * these); -EEXIST, -ENOMEM, or -EINTR when a fatal signal stopped a long
 * range, with @placed telling how far it got.
 */
struct vmig_place {
	__u64 offset;
	__u64 len;
	__u64 src;
	__u32 flags;
	__u32 reserved;
	__u64 placed;
};

/**
 * struct vmig_place_batch - argument of VMIG_PLACE_BATCH
 * @entries:	user address of @count struct vmig_place.
 * @count:	entries, 1 to VMIG_PLACE_BATCH_MAX (else -EINVAL).
 * @flags:	zero.
 * @done:	out: entries fully handled.  An entry that fails with -EEXIST
 *		is skipped (its @placed tells how far it got) and counted in
 *		@exist; any other error stops the batch and is returned.
 * @exist:	out: entries that met an already present page.
 *
 * Every entry is checked before any is placed: one bad entry fails the
 * whole batch (-EINVAL or -EFAULT) with nothing placed.  Each entry's
 * @placed is written back.
 */
#define VMIG_PLACE_BATCH_MAX	1024
struct vmig_place_batch {
	__u64 entries;
	__u32 count;
	__u32 flags;
	__u32 done;
	__u32 exist;
};

/**
 * struct vmig_stats - a region's counters (VMIG_GET_STATS)
 * @size:		region size in bytes.
 * @pages_present:	pages currently allocated.
 * @dirty_flags:	VMIG_DIRTY_* of the current logging, if on.
 * @dirty_on:		1 while logging is on.
 * @write_faults:	write faults that set a dirty bit.
 * @harvest_calls:	VMIG_GET_DIRTY_LOG calls.
 * @pages_harvested:	bits returned set by GET.
 * @clear_calls:	VMIG_CLEAR_DIRTY_LOG calls.
 * @pages_protected:	pages whose write protection was re-armed.
 * @max_protect_ns:	the longest single protection walk (one chunk).
 * @missing_faults:	faults that found their page missing (each faulting
 *			thread counts, and counts again after a signal).
 * @requests:		requests queued (one per page).
 * @pages_placed:	pages placed by VMIG_PLACE / VMIG_PLACE_BATCH.
 * @place_exist:	placements refused with -EEXIST.
 * @wait_hist:		fault-to-wake latency of missing faults, measured by
 *			each faulting thread from its fault until it runs
 *			again, for waits that ended with the page placed:
 *			bucket i counts waits of [2^i, 2^(i+1)) ns (bucket 0
 *			also counts 0 ns); the last bucket also counts
 *			everything longer.
 */
#define VMIG_HIST_BUCKETS	40
struct vmig_stats {
	__u64 size;
	__u64 pages_present;
	__u32 dirty_flags;
	__u32 dirty_on;
	__u64 write_faults;
	__u64 harvest_calls;
	__u64 pages_harvested;
	__u64 clear_calls;
	__u64 pages_protected;
	__u64 max_protect_ns;
	__u64 missing_faults;
	__u64 requests;
	__u64 pages_placed;
	__u64 place_exist;
	__u64 wait_hist[VMIG_HIST_BUCKETS];
	__u64 reserved[8];
};

/* Device ioctls */
#define VMIG_GET_API		_IOR(VMIG_IOC_MAGIC, 0x00, struct vmig_api)
#define VMIG_CREATE_REGION	_IOW(VMIG_IOC_MAGIC, 0x01, struct vmig_region_create)
#define VMIG_GET_GLOBAL_STATS	_IOR(VMIG_IOC_MAGIC, 0x02, struct vmig_global_stats)

/* Region ioctls */
#define VMIG_DIRTY_ENABLE	_IOW(VMIG_IOC_MAGIC, 0x10, struct vmig_dirty_enable)
#define VMIG_DIRTY_DISABLE	_IO(VMIG_IOC_MAGIC, 0x11)
#define VMIG_GET_DIRTY_LOG	_IOWR(VMIG_IOC_MAGIC, 0x12, struct vmig_dirty_log)
#define VMIG_CLEAR_DIRTY_LOG	_IOWR(VMIG_IOC_MAGIC, 0x13, struct vmig_dirty_log)
#define VMIG_GET_STATS		_IOR(VMIG_IOC_MAGIC, 0x14, struct vmig_stats)
#define VMIG_PLACE		_IOWR(VMIG_IOC_MAGIC, 0x20, struct vmig_place)
#define VMIG_PLACE_BATCH	_IOWR(VMIG_IOC_MAGIC, 0x21, struct vmig_place_batch)
#define VMIG_ABORT		_IO(VMIG_IOC_MAGIC, 0x22)

#endif /* _UAPI_LINUX_VMIG_H */
