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
 *   VMIG_PLACE, VMIG_PLACE_BATCH, VMIG_ABORT, read()/poll(),
 *   VMIG_POSTCOPY_ENABLE, VMIG_POSTCOPY_DISABLE, VMIG_DISCARD, VMIG_REQUEUE,
 *   VMIG_POSTCOPY_SET_SINK
 *                         missing-page service (postcopy destination).
 *   VMIG_GET_STATS        the region's counters and histograms.
 *
 * A device ioctl on a region fd, or a region ioctl on the device fd, fails
 * with -ENOTTY.  Every structure has reserved fields that must be zero
 * (-EINVAL otherwise), so they can be given a meaning later.
 *
 * The generic netlink family "vmig" (at the end of this file) shows regions
 * and their counters to operators and sends events.
 *
 * Page numbers and offsets are in units of the kernel's PAGE_SIZE, which
 * VMIG_GET_API reports.
 *
 * Regions by path (vmigfs)
 * ------------------------
 * For a VMM that takes guest RAM as a file (QEMU's memory-backend-file
 * mem-path=PATH,share=on), the module registers the filesystem type
 * "vmigfs" (VMIGFS_MAGIC in statfs' f_type).  Each mount is a namespace of
 * its own, as with tmpfs:
 *	mount -t vmigfs none /run/vmig
 * Only root may mount it; an installed module is loaded by the mount
 * (alias fs-vmigfs); while one is mounted the module cannot unload.
 * The root directory starts 0755 root:root, or as the mount options
 * mode=OCTAL, uid=N, gid=N say (shown in /proc/mounts; unknown options:
 * -EINVAL); chmod/chown it, or mount with e.g. mode=1770,gid=GID, to let
 * others create regions.  It holds regular files only (no subdirectories, links
 * or device nodes: -EPERM); rename and unlink work as usual.
 *
 * Creating.  open(O_CREAT) (or mkstemp) makes an empty file: no region
 * yet, and mmap() and every region ioctl fail with -ENODEV, read() with
 * -EINVAL.  The first truncate (ftruncate, truncate, O_TRUNC) to a
 * non-zero size makes the region, as VMIG_CREATE_REGION would with flags
 * 0: the size must be a multiple of the page size (-EINVAL), at most the
 * module's cap (-EFBIG), and fit under the cap beside every other region
 * (-ENOSPC); the truncating user is charged and capped as a creator of
 * VMIG_CREATE_REGION is (RLIMIT_MEMLOCK: -ENOMEM, max_regions_per_user:
 * -EMFILE), and the pages go to the truncating process's memory cgroup.
 * Truncating an empty file to 0 changes nothing.  The size is
 * then fixed: a truncate to any other size, including 0 and O_TRUNC,
 * fails with -EPERM; to the same size it succeeds and changes nothing.
 * stat() and lseek(SEEK_END) report the size; statfs() reports f_bsize =
 * the page size.
 *
 * Using.  Every open file of a region is a region fd, exactly as one from
 * VMIG_CREATE_REGION: mmap(MAP_SHARED) from any number of processes, the
 * region ioctls, read()/poll() of postcopy requests (a request is returned
 * by one read(), whichever open file it is read from; VMIG_ABORT, PLACE,
 * POSTCOPY_ENABLE/DISABLE act on the region, through any open file).
 * Dirty logging, postcopy waits and discards cover every mapping of every
 * process.  fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) is
 * VMIG_DISCARD (page aligned, else -EINVAL; the part past the end is
 * ignored; -EBUSY while dirty logging is on); fallocate() mode 0 or
 * KEEP_SIZE inside the size succeeds at once (the whole size is reserved
 * under the cap already), past it fails with -EPERM; other modes
 * -EOPNOTSUPP.  write() is not supported (-EINVAL).
 *
 * Permissions.  Who may open a region is the VFS's ordinary check of the
 * file's mode, owner and group (a new file's owner is its creator).  A
 * file opened read-only may map the region read-only and VMIG_GET_STATS;
 * every other region ioctl and read() of requests fail with -EBADF on it,
 * so read access never lets a process change a region or take its
 * requests.  This holds for anonymous region fds too (they are O_RDWR).
 *
 * Lifetime.  The region lives as long as its inode: unlink removes the
 * name at once, and the region (its pages, its reservation under the cap)
 * goes when the last open file and the last mapping are gone, in any
 * order.  A mapping made before the unlink keeps working meanwhile,
 * postcopy and dirty logging included.  umount of a vmigfs with an open or
 * mapped file fails with -EBUSY; a lazy umount (MNT_DETACH) removes the
 * mount point at once and the regions stay until their last user.
 *
 * Operators see path regions in the netlink dump with VMIG_A_REGION_DEV
 * (st_dev of the vmigfs) and VMIG_A_REGION_NAME (the path inside it, with
 * " (deleted)" after unlink); "vmig region create|list|remove" wraps the
 * calls above.
 */
#ifndef _UAPI_LINUX_VMIG_H
#define _UAPI_LINUX_VMIG_H

#include <linux/const.h>
#include <linux/ioctl.h>
#include <linux/types.h>

#define VMIG_API_VERSION	1

#define VMIG_IOC_MAGIC		0xB7

#define VMIGFS_MAGIC		0x766d6673	/* statfs f_type of a vmigfs */

/* Feature bits reported in vmig_api.features. */
#define VMIG_FEATURE_DIRTY_LOG		_BITULL(0)
#define VMIG_FEATURE_MANUAL_PROTECT	_BITULL(1)
#define VMIG_FEATURE_INITIALLY_SET	_BITULL(2)
#define VMIG_FEATURE_HWDIRTY		_BITULL(3)
#define VMIG_FEATURE_POSTCOPY		_BITULL(4)
#define VMIG_FEATURE_PLACE_BATCH	_BITULL(5)
#define VMIG_FEATURE_NETLINK		_BITULL(6)
#define VMIG_FEATURE_POSTCOPY_MODE	_BITULL(7) /* POSTCOPY_ENABLE/DISABLE, DISCARD */
#define VMIG_FEATURE_REGIONFS		_BITULL(8) /* regions by path: vmigfs */
#define VMIG_FEATURE_REQUEUE		_BITULL(9) /* VMIG_REQUEUE */
#define VMIG_FEATURE_DIRTY_LOG_FINAL	_BITULL(10) /* VMIG_DIRTY_LOG_FINAL */
#define VMIG_FEATURE_NOWAIT_WAIT	_BITULL(11) /* stats nowait_placed/_fallbacks */
#define VMIG_FEATURE_REQ_SINK		_BITULL(12) /* VMIG_POSTCOPY_SET_SINK */

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
#define VMIG_REGION_POSTCOPY	_BITUL(0) /* postcopy mode from the start, see below */
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
 * for want of room under the cap.  The whole size is also charged from
 * creation to the creating user's locked memory (the user's locked_vm,
 * shared with io_uring, against the creator's RLIMIT_MEMLOCK; CAP_IPC_LOCK
 * is exempt): -ENOMEM when it does not fit.  -EMFILE when the user already
 * holds the module parameter max_regions_per_user regions (CAP_SYS_RESOURCE
 * is exempt).  The region's pages are charged to the creator's memory
 * cgroup, whoever faults or places them.
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
 * written through any mapping of the region, by any process.  In the
 * protection modes (all but HWDIRTY) the first write to a page after the
 * page was write-protected takes one write fault, which sets the page's bit
 * atomically; no module lock is taken on that path.
 *
 * VMIG_GET_DIRTY_LOG fetches and clears the bits of a range, one 64-bit word
 * at a time, atomically, and then (default mode) write-protects exactly the
 * pages it harvested, so the next write to each of them is seen again.
 * Protection walks the region's own reverse map in chunks of at most
 * wp_chunk pages (module parameter, writable at runtime) with a reschedule
 * point between chunks, so a writer never waits behind one long walk.
 *
 * THE RULE: userspace may read a page's data for sending only after the call
 * that re-armed its protection (VMIG_DIRTY_ENABLE for the first copy,
 * VMIG_GET_DIRTY_LOG in the default mode, VMIG_CLEAR_DIRTY_LOG with
 * VMIG_DIRTY_MANUAL_PROTECT; in HWDIRTY mode, the VMIG_GET_DIRTY_LOG that
 * reported the page) has returned.  A write that lands after that point is
 * reported by a later harvest; a copy taken before it may miss a write that
 * is then never reported again.  Bits are never under-reported; rarely (a
 * write fault racing with a harvest) a page is reported once more than
 * needed.
 *
 * Modes (vmig_dirty_enable.flags):
 *   0: ENABLE write-protects every page and starts with every bit clear;
 *	GET harvests and re-protects what it harvested.
 *   VMIG_DIRTY_MANUAL_PROTECT: ENABLE as above; GET only harvests
 *	(fetch-and-clear, no protection); VMIG_CLEAR_DIRTY_LOG clears the
 *	bits it is given and write-protects those pages, whatever their bit
 *	said.  Userspace CLEARs a chunk of what GET returned just before
 *	sending it, and must CLEAR every page GET returned before copying it
 *	(GET alone leaves the page writable and its bit clear).
 *   VMIG_DIRTY_INITIALLY_SET (with MANUAL_PROTECT only): ENABLE protects
 *	nothing and sets every bit, so it costs no page-table work: the first
 *	GET reports every page, and protection happens lazily, as userspace
 *	CLEARs chunks before sending them.
 *   VMIG_DIRTY_HWDIRTY (alone): no write protection and no fault cost for
 *	writers.  ENABLE cleans the page-table dirty bits of every mapping;
 *	GET reads and cleans them again (harvest cost grows with the number of
 *	mapped pages) and adds the pages whose first write went through a
 *	fault or whose dirty page-table entry went away (munmap,
 *	MADV_DONTNEED, exit, page migration).  CLEAR is refused.
 *
 * The last harvest of a migration, with every writer stopped, need not
 * re-arm anything: VMIG_GET_DIRTY_LOG with VMIG_DIRTY_LOG_FINAL in
 * vmig_dirty_log.flags harvests as above but (default mode) leaves the
 * pages it reports writable, so the write-protection work is not done
 * inside the downtime.  A later write to such a page is not reported:
 * call it only when no harvest is to follow, or harvest those pages by
 * other means.  In the manual modes GET protects nothing anyway and in
 * HWDIRTY it cleans as always: there the flag changes nothing.
 *
 * VMIG_DIRTY_DISABLE stops logging and frees the bitmap; data and mappings
 * stay; a page still write-protected takes one more (unlogged) fault.
 *
 * Limits: writes made through a page pinned with get_user_pages (O_DIRECT,
 * RDMA, a hypervisor's own mapping of the page) after the pin was taken do
 * not pass through the region's page tables and are not seen.
 */
#define VMIG_DIRTY_MANUAL_PROTECT	_BITUL(0)
#define VMIG_DIRTY_INITIALLY_SET	_BITUL(1)
#define VMIG_DIRTY_HWDIRTY		_BITUL(2)
#define VMIG_DIRTY_FLAGS_ALL		(VMIG_DIRTY_MANUAL_PROTECT | \
					 VMIG_DIRTY_INITIALLY_SET | \
					 VMIG_DIRTY_HWDIRTY)

/**
 * struct vmig_dirty_enable - argument of VMIG_DIRTY_ENABLE
 * @flags:	VMIG_DIRTY_*.  -EINVAL for unknown bits, INITIALLY_SET
 *		without MANUAL_PROTECT, or HWDIRTY with any other flag;
 *		-EBUSY if logging is already on; -ENOMEM for the bitmap.
 * @reserved:	zero (-EINVAL otherwise).
 *
 * VMIG_DIRTY_DISABLE takes no argument; -ENOENT while logging is off.
 */
struct vmig_dirty_enable {
	__u32 flags;
	__u32 reserved;
};

/**
 * struct vmig_dirty_log - argument of VMIG_GET_DIRTY_LOG / VMIG_CLEAR_DIRTY_LOG
 * @first_page:	first page of the range; a multiple of 64.
 * @num_pages:	pages in the range, non-zero; first_page + num_pages must not
 *		pass the region's end.  A multiple of 64 unless the range ends
 *		at the region's end.
 * @bitmap:	user address of ceil(num_pages / 64) __u64 words; bit i of
 *		word w stands for page first_page + 64 * w + i.  GET writes
 *		it (bits past num_pages written zero); CLEAR reads it (bits
 *		past num_pages ignored).
 * @dirty:	out: pages set in the returned bitmap (GET); pages given to
 *		CLEAR, whose bits were cleared and protection re-armed.
 * @flags:	GET: VMIG_DIRTY_LOG_FINAL or zero (modules without
 *		VMIG_FEATURE_DIRTY_LOG_FINAL: zero); CLEAR: zero.
 *
 * Both fail with -ENOENT while logging is off; -EINVAL for unknown @flags
 * or a bad range (unaligned, empty, past the end, overflowing);
 * -EFAULT for a bad @bitmap or argument address.  CLEAR without
 * MANUAL_PROTECT: -EINVAL.  A failed call changes nothing: GET checks
 * that it can write @bitmap before it takes any bit.
 */
struct vmig_dirty_log {
	__u64 first_page;
	__u64 num_pages;
	__u64 bitmap;
	__u64 dirty;
	__u64 flags;
};

#define VMIG_DIRTY_LOG_FINAL		_BITULL(0)
#define VMIG_DIRTY_LOG_FLAGS_ALL	VMIG_DIRTY_LOG_FINAL

/*
 * Postcopy
 * --------
 * In a region created with VMIG_REGION_POSTCOPY every page starts missing.
 * In postcopy mode (such a region, or one switched by VMIG_POSTCOPY_ENABLE,
 * see "Postcopy mode" below) a fault on a missing page (read or write, from any process mapping the
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
 * The module parameter wait_spin_ns (writable at runtime) makes a faulting
 * thread spin for up to that long for its page before it sleeps.
 *
 * Postcopy mode.  A region created with VMIG_REGION_POSTCOPY is in
 * postcopy mode from the start; any region can enter it later with
 * VMIG_POSTCOPY_ENABLE and leave it with VMIG_POSTCOPY_DISABLE.  Outside
 * postcopy mode the first fault on a missing page allocates it
 * zero-filled (an ordinary region), read() and VMIG_ABORT fail with
 * -EINVAL and poll() reports EPOLLERR.  A page is missing until it is
 * touched or placed, and again after VMIG_DISCARD dropped it.
 *
 * This is how a destination that first received precopy rounds switches
 * to postcopy (the helper's kmod backend does it; the VMM need not know):
 *   1. during precopy the region is ordinary and pages are written
 *	through a mapping (a page may be sent again in a later round);
 *   2. at the switch, with the guest stopped: VMIG_POSTCOPY_ENABLE, then
 *	VMIG_DISCARD of every page that never arrived or was dirtied again
 *	on the source after it was sent: those pages are missing now;
 *   3. the guest resumes; its faults on missing pages become requests,
 *	answered with VMIG_PLACE / VMIG_PLACE_BATCH (-EEXIST for a page that
 *	is present already: it is never overwritten);
 *   4. once every page is present: VMIG_POSTCOPY_DISABLE.  The region is
 *	ordinary again (and may be a migration source later).
 * The order in 2 matters: ENABLE waits for every fault that was about to
 * zero-fill a page under the old mode, so once it returns no zero page can
 * appear behind a later DISCARD.  A DISCARD before ENABLE could be
 * refilled with zeroes by a fault racing with it.
 *
 * VMIG_POSTCOPY_ENABLE takes a struct vmig_postcopy_enable whose fields
 * must all be zero (-EINVAL otherwise); -EBUSY while postcopy mode is on
 * already.  It clears an earlier ABORT.  VMIG_POSTCOPY_DISABLE takes no
 * argument; -ENOENT while the mode is off.  It drops every request, queued
 * or read, and wakes every waiting fault, which faults again and finds its
 * page if it was placed, or else gets a zero-filled one; a read() sleeping
 * for requests returns 0 (end of file), a poll() sleeping sees EPOLLHUP.
 * Both are reported to netlink listeners (VMIG_CMD_POSTCOPY).
 *
 * VMIG_DISCARD (struct vmig_discard) drops the pages of a range, in either
 * mode: every mapping's page-table entries for them go (so KVM and other
 * secondary MMUs drop theirs, through the MMU notifiers) and the pages are
 * freed.  A fault or VMIG_PLACE racing with it leaves each page present or
 * missing, never half filled; missing pages stay missing and requests stay
 * as they are.  -EBUSY while dirty logging is on: the data would change
 * behind the log.
 *
 * VMIG_REQUEUE takes no argument: every request already read whose page
 * is still missing goes back on the read queue (in no particular order,
 * after the unread ones), and a sleeping read() or poll() wakes.  A helper
 * that read requests and died took them with it; its successor calls this
 * once before it reads, and answers them again.  Waiting faults keep
 * waiting.  Returns how many requests were queued again; -EINVAL while
 * postcopy mode is off.  Requests it queues again, and every unread one,
 * lose VMIG_REQ_SENT: whatever the module wrote to a sink may have been
 * lost with the helper or its connection, so the reader asks again; and
 * a sink attached is detached first (VMIG_POSTCOPY_SET_SINK).
 *
 * VMIG_POSTCOPY_SET_SINK (struct vmig_sink) attaches a connected TCP
 * socket to the region: from then on the module writes each new request
 * to it itself, as a record the caller formats, and the request no longer
 * waits for a helper thread to wake, read it and write it.  A kernel
 * worker writes it right after the fault queued it, on the faulting CPU
 * unless the worker is already busy elsewhere (the fault itself takes no
 * socket lock).  A request is written whole or not at all, so records
 * never interleave, whichever regions share the socket.  Each request is
 * still queued for read() as ever, with VMIG_REQ_SENT set, but one queued
 * for the sink does not wake read() or poll(): the reader learns of it on
 * its next read.  Its answer may come first, and if the page is placed
 * before the reader reads the request, the request leaves the read queue
 * unread (as every request does when its page is placed): a reader using
 * a sink must expect answers to requests it never saw.  A request the
 * module could not write (its queue of VMIG_SINK_QUEUE full, the socket's
 * send buffer full, the socket broken) is queued for read() again without
 * VMIG_REQ_SENT, waking the reader, which then writes it itself; so is
 * every request still queued when the socket is detached; a reader may so
 * read a request twice, first with the flag and then without.  Requests
 * whose page was placed meanwhile are not written.  The module stops
 * writing to a socket on which a write failed; if a write stopped half
 * way (out of memory, or the socket at its memory limit) it shuts the
 * socket down, as a broken network would.  While a socket is attached to
 * any region, nothing else may write to it (the records would
 * interleave): a reader that gets an unsent request detaches first (fd -1
 * waits for a write in progress), then writes.  fd -1,
 * VMIG_POSTCOPY_DISABLE, VMIG_ABORT, VMIG_REQUEUE, the region's end, and
 * the process that attached the socket closing any descriptor of the
 * region, a duplicate too (its exit closes them all), detach the socket
 * and drop the module's reference to it: a helper that dies lets its
 * connection end, as it would without a sink, and the peer sees it go.
 * Another process's close leaves the sink attached.
 */
#define VMIG_POSTCOPY_ENABLE_FLAGS_ALL	0

/**
 * struct vmig_postcopy_enable - argument of VMIG_POSTCOPY_ENABLE
 * @flags:	zero (no flag is defined yet; -EINVAL otherwise).
 * @reserved:	zero.
 * @reserved2:	zero.
 */
struct vmig_postcopy_enable {
	__u32 flags;
	__u32 reserved;
	__u64 reserved2;
};

#define VMIG_SINK_RECORD_MAX	32
#define VMIG_SINK_QUEUE		1024

/**
 * struct vmig_sink - argument of VMIG_POSTCOPY_SET_SINK
 * @fd:		a connected TCP socket (IPv4 or IPv6, no upper-layer
 *		protocol such as kTLS) of the caller, or -1 to detach.  Other
 *		sockets: -EINVAL; not a socket: -ENOTSOCK; not connected:
 *		-ENOTCONN.  Attaching replaces a socket attached before; an
 *		attach that fails after these checks (-EINVAL: postcopy mode
 *		off or aborted; -ENOMEM) leaves none attached.
 * @flags:	zero.
 * @len:	bytes of a record, 8 to VMIG_SINK_RECORD_MAX.
 * @page_at:	where in a record the module stores the page number, as a
 *		little-endian __u64; @page_at + 8 <= @len.  With fd -1,
 *		@len, @page_at and @record are zero.
 * @record:	the record; the module copies it for each request and
 *		fills in the page number.  Zero past @len.
 * @reserved:	zero.
 *
 * -EINVAL while postcopy mode is off (attaching only; detaching always
 * succeeds).
 */
struct vmig_sink {
	__s32 fd;
	__u32 flags;
	__u32 len;
	__u32 page_at;
	__u8 record[VMIG_SINK_RECORD_MAX];
	__u64 reserved;
};

/**
 * struct vmig_discard - argument of VMIG_DISCARD
 * @offset:	byte offset in the region, page aligned.
 * @len:	bytes, a non-zero multiple of the page size; the range must lie
 *		inside the region.  -EINVAL otherwise, with nothing dropped.
 * @flags:	zero.
 * @reserved:	zero.
 * @discarded:	out: pages of the range that were present and were dropped.
 */
struct vmig_discard {
	__u64 offset;
	__u64 len;
	__u32 flags;
	__u32 reserved;
	__u64 discarded;
};

#define VMIG_REQ_WRITE		_BITUL(0) /* the page was first wanted for writing */
#define VMIG_REQ_SENT		_BITUL(1) /* the module wrote it to the sink */

/**
 * struct vmig_request - a missing-page request, read() from a region fd
 * @offset:	byte offset of the missing page in the region (page aligned).
 * @flags:	VMIG_REQ_*.  VMIG_REQ_WRITE is set if a write fault on the
 *		page came before the request was read.  VMIG_REQ_SENT is
 *		set if the request was queued for the region's sink
 *		(VMIG_POSTCOPY_SET_SINK), which writes it; if the sink
 *		cannot, the request is read again without it.
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
 * @write_faults:	write faults that set a dirty bit (page_mkwrite while
 *			logging is on; in HWDIRTY mode only first writes to
 *			pages not yet mapped writable fault).
 * @harvest_calls:	successful VMIG_GET_DIRTY_LOG calls.
 * @pages_harvested:	bits returned set by GET.
 * @clear_calls:	successful VMIG_CLEAR_DIRTY_LOG calls.
 * @pages_protected:	pages whose write protection was re-armed (by
 *			ENABLE, GET in the default mode, CLEAR).
 * @max_protect_ns:	the longest single page-table walk of dirty logging
 *			(one chunk of at most wp_chunk pages: write-protect
 *			and clean, or HWDIRTY's clean-and-record), in ns,
 *			since the region was created.
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
 * @postcopy_on:	1 while the region is in postcopy mode.
 * @postcopy_aborted:	1 while the region is in postcopy mode and aborted
 *			(VMIG_ABORT); read together with @postcopy_on, so
 *			never 1 while @postcopy_on is 0.  Modules before it
 *			report 0.
 * @pages_discarded:	present pages dropped by VMIG_DISCARD.
 * @nowait_placed:	faults that asked not to wait (FAULT_FLAG_RETRY_NOWAIT:
 *			KVM's first try at a guest page) and got their page
 *			within the module's nowait_wait_us.
 * @nowait_fallbacks:	such faults whose page did not come in that time (or
 *			a signal came first): they returned for KVM's async
 *			fault.  Both 0 with nowait_wait_us 0, and on modules
 *			without VMIG_FEATURE_NOWAIT_WAIT.
 * @sink_sent:		requests the module wrote to the region's sink
 *			(VMIG_POSTCOPY_SET_SINK).
 * @sink_unsent:	requests queued for the sink that went back to read()
 *			unsent, their page still missing (the sink failed or
 *			was detached first).  Both
 *			0 on modules without VMIG_FEATURE_REQ_SINK.
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
	__u32 postcopy_on;
	__u32 postcopy_aborted;
	__u64 pages_discarded;
	__u64 nowait_placed;
	__u64 nowait_fallbacks;
	__u64 sink_sent;
	__u64 sink_unsent;
	__u64 reserved[2];
};

/*
 * Generic netlink family "vmig"
 * -----------------------------
 * What an operator sees: the module's settings, every live region with its
 * size, mode and counters, and a multicast group of events.  The family is
 * resolved by name (VMIG_GENL_NAME) with the generic netlink controller and
 * exists only in the initial network namespace.  Messages carry no family
 * header after struct genlmsghdr, whose version is VMIG_GENL_VERSION and
 * whose reserved field must be zero.
 *
 * Requests are validated strictly: an attribute the command does not take,
 * an unknown attribute type, a wrong length, or trailing bytes fail with
 * -EINVAL and an extended-ack message naming the attribute; an unknown
 * command fails with -EOPNOTSUPP.
 *
 * Commands (struct genlmsghdr.cmd):
 *   VMIG_CMD_GET_INFO	   do: the module's version, ABI, parameters and
 *			   totals.  Takes no attribute.  Answered with
 *			   VMIG_A_MOD_VERSION, VMIG_A_API_VERSION, VMIG_A_FEATURES,
 *			   VMIG_A_PAGE_SIZE, VMIG_A_MAX_REGION_BYTES,
 *			   VMIG_A_RESERVED_BYTES, VMIG_A_PAGES_ALLOCATED,
 *			   VMIG_A_REGION_COUNT, VMIG_A_STALL_THRESHOLD_NS.
 *   VMIG_CMD_GET_REGION   do (VMIG_A_REGION_ID required; -ENOENT if no such
 *			   region) or dump (NLM_F_DUMP, no attribute): one
 *			   message per region, in increasing id order (without
 *			   CAP_NET_ADMIN only the regions the sender's uid
 *			   created; others read as absent), with
 *			   VMIG_A_REGION_ID, VMIG_A_REGION_SIZE, VMIG_A_REGION_FLAGS,
 *			   VMIG_A_DIRTY_ON, VMIG_A_DIRTY_FLAGS and VMIG_A_STATS.
 *			   The dirty state is a snapshot: a dump never waits
 *			   for a harvest in progress.
 *   VMIG_CMD_RESET_STATS  do: zero the counters (VMIG_A_STATS) of the region
 *			   VMIG_A_REGION_ID, or of every region without it.
 *			   Needs CAP_NET_ADMIN (-EPERM otherwise).
 *
 * Events, sent to the multicast group VMIG_GENL_MCGRP_EVENTS (joining it
 * needs CAP_NET_ADMIN, -EPERM otherwise), best effort: a listener whose socket buffer is full loses
 * events and reads -ENOBUFS once.
 *   VMIG_CMD_REGION_NEW   a region was created: VMIG_A_REGION_ID,
 *			   VMIG_A_REGION_SIZE, VMIG_A_REGION_FLAGS and VMIG_A_PID
 *			   (the creating process, in the initial pid namespace).
 *   VMIG_CMD_REGION_DEL   a region's last fd and mapping are gone:
 *			   VMIG_A_REGION_ID, VMIG_A_REGION_SIZE, VMIG_A_REGION_FLAGS
 *			   and its final VMIG_A_STATS.  Always after the
 *			   region's VMIG_CMD_REGION_NEW.
 *   VMIG_CMD_DIRTY	   dirty logging turned on or off: VMIG_A_REGION_ID,
 *			   VMIG_A_DIRTY_ON, VMIG_A_DIRTY_FLAGS.
 *   VMIG_CMD_STALL	   a postcopy fault waited longer than the module
 *			   parameter stall_event_us (0: never sent):
 *			   VMIG_A_REGION_ID, VMIG_A_STALL_NS.  At most 100 per
 *			   second are sent.
 *   VMIG_CMD_POSTCOPY	   postcopy mode turned on or off (VMIG_POSTCOPY_ENABLE
 *			   or _DISABLE): VMIG_A_REGION_ID, VMIG_A_POSTCOPY_ON.
 *
 * VMIG_A_REGION_FLAGS (in GET_REGION and the events) carries the flags the
 * region was created with, except that VMIG_REGION_POSTCOPY says whether
 * postcopy mode is on at the time.
 */
#define VMIG_GENL_NAME		"vmig"
#define VMIG_GENL_VERSION	1
#define VMIG_GENL_MCGRP_EVENTS	"events"

enum vmig_genl_cmd {
	VMIG_CMD_UNSPEC,
	VMIG_CMD_GET_INFO,
	VMIG_CMD_GET_REGION,
	VMIG_CMD_RESET_STATS,
	VMIG_CMD_REGION_NEW,
	VMIG_CMD_REGION_DEL,
	VMIG_CMD_DIRTY,
	VMIG_CMD_STALL,
	VMIG_CMD_POSTCOPY,

	__VMIG_CMD_MAX,
	VMIG_CMD_MAX = __VMIG_CMD_MAX - 1
};

/*
 * Attributes.  Integers are in host byte order; 64-bit ones are aligned
 * with VMIG_A_PAD (or VMIG_STAT_PAD inside VMIG_A_STATS).
 */
enum vmig_genl_attr {
	VMIG_A_UNSPEC,
	VMIG_A_PAD,
	VMIG_A_MOD_VERSION,		/* string: MODULE_VERSION of vmig.ko */
	VMIG_A_API_VERSION,		/* u32: VMIG_API_VERSION */
	VMIG_A_FEATURES,		/* u64: VMIG_FEATURE_* */
	VMIG_A_PAGE_SIZE,		/* u64: bytes */
	VMIG_A_MAX_REGION_BYTES,	/* u64: the cap (max_region_mb) */
	VMIG_A_RESERVED_BYTES,		/* u64: reserved by live regions */
	VMIG_A_PAGES_ALLOCATED,		/* u64: pages held by all regions */
	VMIG_A_REGION_COUNT,		/* u64: live regions */
	VMIG_A_STALL_THRESHOLD_NS,	/* u64: stall_event_us in ns, 0: off */
	VMIG_A_REGION_ID,		/* u32: a region's id, unique while it lives */
	VMIG_A_REGION_SIZE,		/* u64: bytes */
	VMIG_A_REGION_FLAGS,		/* u32: VMIG_REGION_* it was created with */
	VMIG_A_DIRTY_ON,		/* u8: 1 while dirty logging is on */
	VMIG_A_DIRTY_FLAGS,		/* u32: VMIG_DIRTY_* of the logging */
	VMIG_A_STATS,			/* nested: VMIG_STAT_* */
	VMIG_A_STALL_NS,		/* u64: how long the fault waited */
	VMIG_A_PID,			/* u32: a process id */
	VMIG_A_POSTCOPY_ON,		/* u8: 1 while postcopy mode is on */
	VMIG_A_REGION_DEV,		/* u32: st_dev of a path region's vmigfs */
	VMIG_A_REGION_NAME,		/* string: its path inside that vmigfs */

	__VMIG_A_MAX,
	VMIG_A_MAX = __VMIG_A_MAX - 1
};

/* Inside VMIG_A_STATS: the fields of struct vmig_stats, u64 each. */
enum vmig_genl_stat {
	VMIG_STAT_UNSPEC,
	VMIG_STAT_PAD,
	VMIG_STAT_PAGES_PRESENT,
	VMIG_STAT_WRITE_FAULTS,
	VMIG_STAT_HARVEST_CALLS,
	VMIG_STAT_PAGES_HARVESTED,
	VMIG_STAT_CLEAR_CALLS,
	VMIG_STAT_PAGES_PROTECTED,
	VMIG_STAT_MAX_PROTECT_NS,
	VMIG_STAT_MISSING_FAULTS,
	VMIG_STAT_REQUESTS,
	VMIG_STAT_PAGES_PLACED,
	VMIG_STAT_PLACE_EXIST,
	VMIG_STAT_WAIT_HIST,		/* binary: __u64[VMIG_HIST_BUCKETS] */
	VMIG_STAT_PAGES_DISCARDED,
	VMIG_STAT_NOWAIT_PLACED,
	VMIG_STAT_NOWAIT_FALLBACKS,
	VMIG_STAT_SINK_SENT,
	VMIG_STAT_SINK_UNSENT,

	__VMIG_STAT_MAX,
	VMIG_STAT_MAX = __VMIG_STAT_MAX - 1
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
#define VMIG_POSTCOPY_ENABLE	_IOW(VMIG_IOC_MAGIC, 0x23, struct vmig_postcopy_enable)
#define VMIG_POSTCOPY_DISABLE	_IO(VMIG_IOC_MAGIC, 0x24)
#define VMIG_DISCARD		_IOWR(VMIG_IOC_MAGIC, 0x25, struct vmig_discard)
#define VMIG_REQUEUE		_IO(VMIG_IOC_MAGIC, 0x26)
#define VMIG_POSTCOPY_SET_SINK	_IOW(VMIG_IOC_MAGIC, 0x27, struct vmig_sink)

#endif /* _UAPI_LINUX_VMIG_H */
