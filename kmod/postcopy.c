// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: the missing-page service (postcopy destination side).
 *
 * A postcopy region starts with every page missing.  A fault on a missing
 * page finds or creates the page's *pending* entry (one per page, however
 * many threads and processes fault on it), queues it for read() when it is
 * new, and sleeps on the entry's own wait queue until VMIG_PLACE inserts
 * the page or the region is aborted.
 *
 * Guarantee: no request is lost and none is stale.  The fault checks that
 * the page is absent from the page cache *under pc.lock* before it queues a
 * request; PLACE inserts the page into the page cache first and only then
 * takes pc.lock to remove the entry.  So either the fault sees the page (and
 * maps it), or PLACE sees the entry (and wakes its waiters); a page that is
 * present never has a request queued, and placing a page removes its
 * request even if nobody has read it yet.
 *
 * With a request sink (sink.c, VMIG_POSTCOPY_SET_SINK) a new request is
 * also put on the sink's queue under pc.lock, flagged VMIG_REQ_SENT before
 * any reader can see it, and the sink's worker writes it; it does not
 * wake the reader.  A request the sink gives back loses the flag and is
 * queued for read() again (vmig_postcopy_unsend).
 *
 * Wakeups are keyed: each entry has its own wait queue, so placing a page
 * wakes exactly the threads waiting for that page, in O(1), with no
 * thundering herd over all waiters of the region (vCPUs fault on different
 * pages).  The entry is refcounted (one reference for the hash, one per
 * waiter), so a waiter may outlive the entry's removal.
 *
 * mmap_lock: a fault that may retry (FAULT_FLAG_ALLOW_RETRY) drops the lock
 * (mmap_lock, or only its VMA's lock on kernels with per-VMA fault locks,
 * see compat.h) before sleeping and returns VM_FAULT_RETRY once woken; the
 * core retries and finds the page in the page cache.  With
 * FAULT_FLAG_RETRY_NOWAIT (KVM's first try at a guest page, before it
 * falls back to an async page fault) it queues the request, waits up to
 * nowait_wait_us for the page, lock held (at most 100 ms), and maps it if
 * it came; otherwise it returns VM_FAULT_RETRY, lock still held, and KVM's
 * async worker faults again and waits.  A fault that cannot retry sleeps
 * holding the lock, then returns the page;
 * since it holds the VMM's mmap_lock hostage while it sleeps (no mmap,
 * munmap or mprotect in the VMM, whose vCPUs then stall on their own
 * faults) and a dead helper would never place the page, its sleep is
 * bounded: after nowait_max_ms it fails (SIGBUS, which get_user_pages
 * callers such as /proc/pid/mem and ptrace see as -EFAULT/-EIO).  Such
 * faults come from get_user_pages callers without retry, never from a
 * vCPU's own access, so a slow network costs an error there, not a guest.
 * Like filemap_fault(), a fault pins the region's file before it drops the
 * lock, so the region (and the module's code it runs) outlive the wait
 * even if every mapping goes away meanwhile; so no region is released
 * while a fault waits on it.  A fault that cannot retry keeps its mapping.
 *
 * Postcopy mode (pc.on) can be switched on and off on any region.  The
 * mode is read under pc.lock by the fault that queues a request, so a
 * switch and a request are ordered by that lock; the switch to "off"
 * ends every entry (state ENDED: the waiters fault again and take the
 * ordinary path).  Outside postcopy mode a fault zero-fills a missing
 * page holding pc.mode_sem for reading (vmig_postcopy_fill_zero), and a
 * switch holds it for writing: so when VMIG_POSTCOPY_ENABLE returns, no
 * fault that saw the mode off is still about to insert a zero page, and
 * a page VMIG_DISCARD drops afterwards stays missing until it is placed.
 * The semaphore is taken only on that first-touch path, never on a fault
 * that finds its page, and never while a spinlock is held.
 *
 * Why KVM's first try waits (nowait_wait_us, default 2 ms): an async page
 * fault costs the guest more than the wait it saves when the page comes
 * within a network round trip or two.  KVM tells the guest "page not
 * present" (or halts the vCPU), its worker faults and sleeps, then KVM
 * injects "page ready" and the guest schedules its task back and touches
 * the page again: two more guest entries, an interrupt and two task
 * switches.  Async faults were made for swap-in, milliseconds of disk; a
 * page on its way over the network is nearer.  Measured with a nested KVM
 * guest of QEMU 7.2 (docs/performance.md): the stall per fetched page fell
 * by 14-22 % (medians of 6 and 3 rounds).  The wait is bounded: it holds
 * mmap_lock for reading, which a VMM's mmap()/munmap() (and the readers
 * queued behind them) must wait out, and within it the guest cannot run
 * another task on that vCPU; a signal ends it early.  0 restores KVM's
 * async fault at once.
 *
 * Spinning: wait_spin_ns (default 0) lets a fault spin for its page before
 * it sleeps, which saves the wakeup when the page comes back within the
 * window.  bench/postcopy_bench found no gain from 20 us of spinning and a
 * loss on a single CPU, where the spinner only delays the server; a page
 * that crosses a network rarely arrives within a few microseconds.  So
 * faults sleep at once unless the administrator asks otherwise.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/hash.h>
#include <linux/hashtable.h>
#include <linux/hrtimer.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/sched/clock.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "vmig.h"
#include "trace.h"

static unsigned int nowait_max_ms = 30000;
module_param(nowait_max_ms, uint, 0644);
MODULE_PARM_DESC(nowait_max_ms,
		 "Longest wait, in ms, of a missing-page fault that cannot retry (it holds mmap_lock); then it fails with SIGBUS/-EFAULT (0: no limit)");

/* The most a RETRY_NOWAIT fault waits, whatever nowait_wait_us says. */
#define VMIG_NOWAIT_WAIT_MAX_US	100000U

static unsigned int nowait_wait_us = 2000;
module_param(nowait_wait_us, uint, 0644);
MODULE_PARM_DESC(nowait_wait_us,
		 "Microseconds a fault that asked not to wait (KVM's first try) waits for its page anyway, mmap_lock held, before it falls back to KVM's async fault (0: return at once; at most 100000)");

static unsigned int wait_spin_ns;
module_param(wait_spin_ns, uint, 0644);
MODULE_PARM_DESC(wait_spin_ns,
		 "Nanoseconds a fault on a missing page spins for the page before it sleeps (0: sleep at once)");

enum vmig_pending_state {
	VMIG_PENDING_WAIT,	/* page missing, request queued or read */
	VMIG_PENDING_PLACED,	/* page is in the page cache */
	VMIG_PENDING_ABORTED,	/* region aborted: waiters get SIGBUS */
	VMIG_PENDING_ENDED,	/* postcopy mode off: waiters fault again */
};

/* A missing page that has been faulted on. */
struct vmig_pending {
	struct hlist_node hnode;	/* on pc.pending while WAIT */
	struct list_head unread;	/* on pc.unread until read() */
	wait_queue_head_t wq;		/* faults waiting for the page */
	refcount_t ref;			/* the hash's, plus one per waiter */
	pgoff_t index;
	u64 time_ns;			/* first fault, CLOCK_MONOTONIC */
	u32 flags;			/* VMIG_REQ_* */
	int state;			/* enum vmig_pending_state */
};

static struct hlist_head *vmig_pending_bucket(struct vmig_postcopy *pc,
					      pgoff_t index)
{
	return &pc->pending[hash_long(index, VMIG_PENDING_HASH_BITS)];
}

/* Called with pc->lock held. */
static struct vmig_pending *vmig_pending_find(struct vmig_postcopy *pc,
					      pgoff_t index)
{
	struct vmig_pending *p;

	hlist_for_each_entry(p, vmig_pending_bucket(pc, index), hnode)
		if (p->index == index)
			return p;
	return NULL;
}

static struct vmig_pending *vmig_pending_alloc(pgoff_t index, u64 now,
					       bool write)
{
	struct vmig_pending *p = kmalloc(sizeof(*p), GFP_KERNEL_ACCOUNT);

	if (!p)
		return NULL;
	INIT_HLIST_NODE(&p->hnode);
	INIT_LIST_HEAD(&p->unread);
	init_waitqueue_head(&p->wq);
	refcount_set(&p->ref, 1);
	p->index = index;
	p->time_ns = now;
	p->flags = write ? VMIG_REQ_WRITE : 0;
	p->state = VMIG_PENDING_WAIT;
	return p;
}

static void vmig_pending_put(struct vmig_pending *p)
{
	if (refcount_dec_and_test(&p->ref))
		kfree(p);
}

/* Called with pc->lock held: the entry leaves the hash and the read queue. */
static void vmig_pending_unhash(struct vmig_pending *p, int state)
{
	hlist_del_init(&p->hnode);
	list_del_init(&p->unread);
	/* Pairs with smp_load_acquire() in vmig_pending_wait(). */
	smp_store_release(&p->state, state);
}

static bool vmig_page_present(struct vmig_region *r, pgoff_t index)
{
	return xa_load(&vmig_region_mapping(r)->i_pages, index);
}

static void vmig_wait_hist_add(struct vmig_region *r, u64 ns)
{
	unsigned int b = ns ? ilog2(ns) : 0;

	atomic64_inc(&r->stats.wait_hist[min_t(unsigned int, b,
					       VMIG_HIST_BUCKETS - 1)]);
}

/*
 * Sleep until @p leaves WAIT, a signal that @state admits arrives, or
 * @timeout jiffies pass (MAX_SCHEDULE_TIMEOUT: no limit); spin first for
 * at most wait_spin_ns.  Returns the entry's state (WAIT when a signal or
 * the timeout ended the wait).
 */
static int vmig_pending_wait(struct vmig_pending *p, unsigned int state,
			     long timeout)
{
	unsigned int spin_ns = READ_ONCE(wait_spin_ns);
	DEFINE_WAIT(wait);
	int s;

	if (spin_ns) {
		u64 end = local_clock() + spin_ns;

		do {
			/* Pairs with vmig_pending_unhash(): page then state. */
			s = smp_load_acquire(&p->state);
			if (s != VMIG_PENDING_WAIT)
				return s;
			cpu_relax();
		} while (!need_resched() && local_clock() < end);
	}
	for (;;) {
		prepare_to_wait(&p->wq, &wait, state);
		/* Pairs with vmig_pending_unhash(): page then state. */
		s = smp_load_acquire(&p->state);
		if (s != VMIG_PENDING_WAIT)
			break;
		if (signal_pending_state(state, current) || !timeout)
			break;
		timeout = schedule_timeout(timeout);
	}
	finish_wait(&p->wq, &wait);
	return s;
}

/*
 * The bounded wait of a RETRY_NOWAIT fault (nowait_wait_us): sleep until
 * @p leaves WAIT, a signal arrives or @ns pass, on a high-resolution timer
 * (a jiffy is 4 ms on most distribution kernels, longer than a page takes
 * to come).  Interruptible: the fault falls back to VM_FAULT_RETRY, which
 * a signal ends no worse.  Returns the entry's state.
 */
static int vmig_pending_wait_nowait(struct vmig_pending *p, u64 ns)
{
	ktime_t end = ktime_add_ns(ktime_get(), ns);
	DEFINE_WAIT(wait);
	int s;

	for (;;) {
		prepare_to_wait(&p->wq, &wait, TASK_INTERRUPTIBLE);
		/* Pairs with vmig_pending_unhash(): page then state. */
		s = smp_load_acquire(&p->state);
		if (s != VMIG_PENDING_WAIT || signal_pending(current))
			break;
		if (!schedule_hrtimeout(&end, HRTIMER_MODE_ABS))
			break;
	}
	finish_wait(&p->wq, &wait);
	/* The timer may have raced with the page: report what it is now. */
	return smp_load_acquire(&p->state);
}

/* How long a fault may sleep: bounded only when it holds mmap_lock. */
static long vmig_wait_timeout(bool retry)
{
	unsigned int ms = READ_ONCE(nowait_max_ms);

	if (retry || !ms)
		return MAX_SCHEDULE_TIMEOUT;
	return msecs_to_jiffies(ms);
}

/*
 * Non-fatal signals may end the wait only for a user-mode fault that will
 * be retried: the signal is then delivered and the access re-executed.  A
 * kernel-mode access (copy_from_user) would just retry at once and spin.
 */
static unsigned int vmig_wait_state(unsigned int fault_flags, bool retry)
{
	if (retry && (fault_flags & FAULT_FLAG_INTERRUPTIBLE) &&
	    (fault_flags & FAULT_FLAG_USER))
		return TASK_INTERRUPTIBLE;
	return TASK_KILLABLE;
}

/*
 * A fault's wait for its page ended in state @s after @waited ns: the
 * histogram (page placed), the stall event, the tracepoint; @unplaced is
 * the tracepoint's result for a wait still in WAIT (a signal, a timeout).
 */
static void vmig_fault_woke(struct vmig_region *r, pgoff_t index, int s,
			    u64 waited, int unplaced)
{
	if (s == VMIG_PENDING_PLACED)
		vmig_wait_hist_add(r, waited);
	vmig_nl_event_stall(r, waited);
	trace_vmig_missing_wake(r->id, index, waited,
				s == VMIG_PENDING_PLACED ? 0 :
				s == VMIG_PENDING_ABORTED ? -ESHUTDOWN :
				s == VMIG_PENDING_ENDED ? -ENOENT : unplaced);
}

/* The page is present: hand it to the core locked, as ->fault does. */
static vm_fault_t vmig_postcopy_lock_page(struct vmig_region *r,
					  struct vm_fault *vmf)
{
	struct folio *folio = vmig_filemap_lock_folio(vmig_region_mapping(r),
						      vmf->pgoff);

	if (!folio)
		return VM_FAULT_NOPAGE;	/* cannot happen: pages stay */
	vmf->page = folio_file_page(folio, vmf->pgoff);
	return VM_FAULT_LOCKED;
}

/**
 * vmig_postcopy_fault - a fault found the page at vmf->pgoff missing
 * @r:		a region with VMIG_REGION_POSTCOPY
 * @vmf:	the fault, mmap_lock held for read
 *
 * Return: VM_FAULT_RETRY (mmap_lock dropped unless RETRY_NOWAIT) once the
 * page has been placed or the wait was interrupted, or for RETRY_NOWAIT
 * when its page did not come within nowait_wait_us; VM_FAULT_LOCKED with
 * the page when the fault could not retry, or was RETRY_NOWAIT and its
 * page came in time; VM_FAULT_SIGBUS after abort;
 * 0, mmap_lock still held, when postcopy mode is (or went) off and the
 * caller must fill the page as in an ordinary region.
 */
vm_fault_t vmig_postcopy_fault(struct vmig_region *r, struct vm_fault *vmf)
{
	bool nowait = vmf->flags & FAULT_FLAG_RETRY_NOWAIT;
	u64 nowait_ns = nowait ? (u64)min(READ_ONCE(nowait_wait_us),
					  VMIG_NOWAIT_WAIT_MAX_US) * NSEC_PER_USEC : 0;
	bool retry = vmf->flags & FAULT_FLAG_ALLOW_RETRY;
	bool write = vmf->flags & FAULT_FLAG_WRITE;
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_pending *p, *fresh = NULL;
	pgoff_t index = vmf->pgoff;
	struct file *pin = NULL;
	bool queued = false, sent = false;
	unsigned int state;
	u64 t0, waited;
	int s;

	/* Exiting or dumping core: nobody should wait for the network. */
	if (current->flags & (PF_EXITING | PF_DUMPCORE))
		return VM_FAULT_SIGBUS;
	if (READ_ONCE(pc->aborted))
		return VM_FAULT_SIGBUS;
	t0 = ktime_get_ns();
	atomic64_inc(&r->stats.missing_faults);

	/* Most faults are the first on their page: allocate before locking. */
	fresh = vmig_pending_alloc(index, t0, write);
	if (!fresh)
		return VM_FAULT_OOM;

	spin_lock(&pc->lock);
	if (!pc->on) {
		spin_unlock(&pc->lock);
		kfree(fresh);
		return 0;
	}
	if (pc->aborted) {
		spin_unlock(&pc->lock);
		kfree(fresh);
		return VM_FAULT_SIGBUS;
	}
	if (vmig_page_present(r, index)) {
		spin_unlock(&pc->lock);
		kfree(fresh);
		return vmig_postcopy_lock_page(r, vmf);
	}
	p = vmig_pending_find(pc, index);
	if (!p) {
		p = fresh;
		fresh = NULL;
		hlist_add_head(&p->hnode, vmig_pending_bucket(pc, index));
		list_add_tail(&p->unread, &pc->unread);
		queued = true;
		/* Flagged before any reader can see it: never written twice. */
		sent = vmig_sink_queue(r, index);
		if (sent)
			p->flags |= VMIG_REQ_SENT;
	} else if (write && !list_empty(&p->unread)) {
		p->flags |= VMIG_REQ_WRITE;
	}
	if (!nowait || nowait_ns)
		refcount_inc(&p->ref);
	spin_unlock(&pc->lock);
	kfree(fresh);

	trace_vmig_missing_fault(r->id, index, vmf->flags, queued);
	if (queued) {
		atomic64_inc(&r->stats.requests);
		/* The sink writes it; the reader sees it on its next read. */
		if (sent)
			vmig_sink_kick(r);
		/* Full barrier inside: the queued entry is seen by the reader. */
		else if (wq_has_sleeper(&pc->readq))
			wake_up_poll(&pc->readq, EPOLLIN | EPOLLRDNORM);
	}
	/*
	 * KVM's async faults: the request is queued, come back later.  They
	 * hold mmap_lock, which stays held; a fault under its VMA's lock
	 * (none sets RETRY_NOWAIT today) must drop that with VM_FAULT_RETRY.
	 * With nowait_wait_us set the fault first waits that long for its
	 * page, lock held: a page that comes in time maps at once, and KVM's
	 * async fault (a worker's fault, "page ready" to the guest, the
	 * access again) is saved; one that does not takes that path as
	 * before, its request already on its way.
	 */
	if (nowait) {
		if (nowait_ns) {
			s = vmig_pending_wait_nowait(p, nowait_ns);
			vmig_pending_put(p);
			vmig_fault_woke(r, index, s, ktime_get_ns() - t0,
					signal_pending(current) ? -EINTR : -ETIMEDOUT);
			if (s == VMIG_PENDING_PLACED) {
				atomic64_inc(&r->stats.nowait_placed);
				return vmig_postcopy_lock_page(r, vmf);
			}
			if (s == VMIG_PENDING_ABORTED)
				return VM_FAULT_SIGBUS;
			if (s == VMIG_PENDING_ENDED)
				return 0;
			atomic64_inc(&r->stats.nowait_fallbacks);
		}
		if (vmig_fault_vma_locked(vmf))
			vmig_release_fault_lock(vmf);
		return VM_FAULT_RETRY;
	}

	/* mmap_lock, or since 6.8 possibly only the VMA's lock (compat.h). */
	if (retry) {
		pin = get_file(vmf->vma->vm_file);
		vmig_release_fault_lock(vmf);
	}
	/* Without the fault's lock, vmf->vma may be gone: only p, pin and r. */
	state = vmig_wait_state(vmf->flags, retry);
	s = vmig_pending_wait(p, state, vmig_wait_timeout(retry));
	waited = ktime_get_ns() - t0;
	vmig_fault_woke(r, index, s, waited, -EINTR);
	vmig_pending_put(p);

	if (retry) {
		/* The last reference? Then release runs later, from task work. */
		fput(pin);
		return VM_FAULT_RETRY;
	}
	if (s == VMIG_PENDING_ENDED)
		return 0;
	if (s == VMIG_PENDING_WAIT && !fatal_signal_pending(current))
		pr_warn_ratelimited("region %u: a fault that cannot retry gave up on page %lu after %llu ms (nowait_max_ms)\n",
				    r->id, index, waited / NSEC_PER_MSEC);
	if (s != VMIG_PENDING_PLACED)
		return VM_FAULT_SIGBUS;
	return vmig_postcopy_lock_page(r, vmf);
}

/**
 * vmig_postcopy_fill_zero - zero-fill a missing page outside postcopy mode
 * @r:		the region
 * @index:	the page, below r->npages
 *
 * Return: the new folio, locked (as vmig_region_add_folio() returns it);
 * an ERR_PTR (-EEXIST: another fault filled it first); or NULL when
 * postcopy mode is on, and the caller must take the postcopy path.
 */
struct folio *vmig_postcopy_fill_zero(struct vmig_region *r, pgoff_t index)
{
	struct vmig_postcopy *pc = &r->pc;
	struct folio *folio = NULL;

	down_read(&pc->mode_sem);
	if (!READ_ONCE(pc->on))
		folio = vmig_region_add_folio(r, index, NULL);
	up_read(&pc->mode_sem);
	return folio;
}

/*
 * The page at @index has been placed (or the region aborted): remove its
 * entry, if any, and wake its waiters.  Returns true if there was one.
 */
static bool vmig_postcopy_complete(struct vmig_region *r, pgoff_t index)
{
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_pending *p;

	spin_lock(&pc->lock);
	p = vmig_pending_find(pc, index);
	if (p)
		vmig_pending_unhash(p, VMIG_PENDING_PLACED);
	spin_unlock(&pc->lock);
	if (!p)
		return false;
	wake_up_all(&p->wq);
	vmig_pending_put(p);
	return true;
}

/* Place one page: data from @src, or zeroes when @src is NULL. */
static int vmig_postcopy_place_page(struct vmig_region *r, pgoff_t index,
				    const void __user *src)
{
	struct folio *folio;
	bool woke;
	int err;

	/* Cheap refusal first: no page to allocate and fill. */
	if (vmig_page_present(r, index))
		folio = ERR_PTR(-EEXIST);
	else
		folio = vmig_region_add_folio(r, index, src);
	if (IS_ERR(folio)) {
		err = PTR_ERR(folio);
		if (err == -EEXIST)
			atomic64_inc(&r->stats.place_exist);
		trace_vmig_place(r->id, index, !src, err, false);
		return err;
	}
	/* New data in the region: a write for dirty logging, if it is on. */
	vmig_dirty_note_write(r, index);
	folio_unlock(folio);
	folio_put(folio);
	atomic64_inc(&r->stats.pages_placed);

	woke = vmig_postcopy_complete(r, index);
	trace_vmig_place(r->id, index, !src, 0, woke);
	return 0;
}

/*
 * Check a placement against the region.  The range is in pages, inside the
 * region; src is unused (zero) with VMIG_PLACE_ZERO, else must be a user
 * range.  @placed is output only and not checked.
 */
static int vmig_place_check(struct vmig_region *r, const struct vmig_place *pl)
{
	if (pl->reserved || (pl->flags & ~VMIG_PLACE_FLAGS_ALL))
		return -EINVAL;
	if (!pl->len || !PAGE_ALIGNED(pl->len) || !PAGE_ALIGNED(pl->offset))
		return -EINVAL;
	if (pl->offset >= r->size || pl->len > r->size - pl->offset)
		return -EINVAL;
	if (pl->flags & VMIG_PLACE_ZERO)
		return pl->src ? -EINVAL : 0;
	/* NULL would mean zeroes to vmig_region_add_folio(): refuse it. */
	if (!pl->src || !access_ok(u64_to_user_ptr(pl->src), pl->len))
		return -EFAULT;
	return 0;
}

/* Place a checked range page by page, in order; *placed says how far. */
static int vmig_place_range(struct vmig_region *r, const struct vmig_place *pl,
			    u64 *placed)
{
	pgoff_t index = pl->offset >> PAGE_SHIFT;
	pgoff_t end = index + (pl->len >> PAGE_SHIFT);
	const char __user *src = NULL;
	int err;

	if (!(pl->flags & VMIG_PLACE_ZERO))
		src = u64_to_user_ptr(pl->src);
	*placed = 0;
	for (;;) {
		err = vmig_postcopy_place_page(r, index, src);
		if (err)
			return err;
		*placed += PAGE_SIZE;
		if (++index == end)
			return 0;
		if (src)
			src += PAGE_SIZE;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
}

static long vmig_postcopy_place(struct vmig_region *r,
				struct vmig_place __user *argp)
{
	struct vmig_place pl;
	u64 placed;
	int err;

	if (copy_from_user(&pl, argp, sizeof(pl)))
		return -EFAULT;
	err = vmig_place_check(r, &pl);
	if (err)
		return err;
	err = vmig_place_range(r, &pl, &placed);
	if (put_user(placed, &argp->placed))
		return -EFAULT;
	return err;
}

/*
 * All entries are copied in and checked before anything is placed, so a
 * bad entry anywhere fails the whole batch with nothing placed.
 */
static long vmig_postcopy_place_batch(struct vmig_region *r,
				      struct vmig_place_batch __user *argp)
{
	struct vmig_place_batch b;
	struct vmig_place __user *uent;
	struct vmig_place *ent;
	u32 i, done = 0, exist = 0;
	u64 placed;
	int err = 0;

	if (copy_from_user(&b, argp, sizeof(b)))
		return -EFAULT;
	if (b.flags || !b.count || b.count > VMIG_PLACE_BATCH_MAX)
		return -EINVAL;
	uent = u64_to_user_ptr(b.entries);
	ent = kvmalloc_array(b.count, sizeof(*ent), GFP_KERNEL);
	if (!ent)
		return -ENOMEM;
	if (copy_from_user(ent, uent, b.count * sizeof(*ent))) {
		err = -EFAULT;
		goto out;
	}
	for (i = 0; i < b.count; i++) {
		err = vmig_place_check(r, &ent[i]);
		if (err)
			goto out;
	}
	for (i = 0; i < b.count; i++) {
		err = vmig_place_range(r, &ent[i], &placed);
		if (put_user(placed, &uent[i].placed)) {
			err = -EFAULT;
			break;
		}
		if (err == -EEXIST) {
			exist++;
			err = 0;
		} else if (err) {
			break;
		}
		done++;
	}
	if (put_user(done, &argp->done) || put_user(exist, &argp->exist))
		err = -EFAULT;
out:
	kvfree(ent);
	return err;
}

/* Called with pc->lock held: every entry leaves the hash in @state. */
static void vmig_postcopy_end_all(struct vmig_postcopy *pc, int state,
				  struct list_head *gone)
{
	struct vmig_pending *p;
	struct hlist_node *tmp;
	int b;

	for (b = 0; b < ARRAY_SIZE(pc->pending); b++) {
		hlist_for_each_entry_safe(p, tmp, &pc->pending[b], hnode) {
			vmig_pending_unhash(p, state);
			list_add(&p->unread, gone);
		}
	}
}

/* Outside pc->lock: wake the waiters of the ended entries, drop the hash's refs. */
static void vmig_postcopy_wake_all(struct vmig_postcopy *pc,
				   struct list_head *gone)
{
	struct vmig_pending *p;

	while (!list_empty(gone)) {
		p = list_first_entry(gone, struct vmig_pending, unread);
		list_del(&p->unread);
		wake_up_all(&p->wq);
		vmig_pending_put(p);
	}
	wake_up_poll(&pc->readq, EPOLLIN | EPOLLHUP);
}

/*
 * Fail every wait and every later fault on a missing page with SIGBUS.
 * With @need_on (VMIG_ABORT), only a region in postcopy mode is aborted:
 * the mode is checked under pc->lock, the lock DISABLE switches it under,
 * so an abort and a DISABLE are ordered and a region that left postcopy
 * mode is never left marked aborted.  Returns -EINVAL when it was not on.
 */
static int vmig_postcopy_abort(struct vmig_region *r, bool need_on)
{
	struct vmig_postcopy *pc = &r->pc;
	LIST_HEAD(gone);

	spin_lock(&pc->lock);
	if (need_on && !pc->on) {
		spin_unlock(&pc->lock);
		return -EINVAL;
	}
	WRITE_ONCE(pc->aborted, true);
	vmig_postcopy_end_all(pc, VMIG_PENDING_ABORTED, &gone);
	spin_unlock(&pc->lock);
	vmig_postcopy_wake_all(pc, &gone);
	return 0;
}

static long vmig_postcopy_enable(struct vmig_region *r,
				 struct vmig_postcopy_enable __user *argp)
{
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_postcopy_enable en;
	long err = 0;

	if (copy_from_user(&en, argp, sizeof(en)))
		return -EFAULT;
	if ((en.flags & ~VMIG_POSTCOPY_ENABLE_FLAGS_ALL) || en.reserved ||
	    en.reserved2)
		return -EINVAL;
	/* Waits for every zero-fill that saw the mode off: see the top. */
	down_write(&pc->mode_sem);
	spin_lock(&pc->lock);
	if (pc->on) {
		err = -EBUSY;
	} else {
		WRITE_ONCE(pc->on, true);
		WRITE_ONCE(pc->aborted, false);
	}
	spin_unlock(&pc->lock);
	up_write(&pc->mode_sem);
	if (!err)
		vmig_nl_event_postcopy(r, true);
	return err;
}

static long vmig_postcopy_disable(struct vmig_region *r)
{
	struct vmig_postcopy *pc = &r->pc;
	LIST_HEAD(gone);

	down_write(&pc->mode_sem);
	spin_lock(&pc->lock);
	if (!pc->on) {
		spin_unlock(&pc->lock);
		up_write(&pc->mode_sem);
		return -ENOENT;
	}
	WRITE_ONCE(pc->on, false);
	WRITE_ONCE(pc->aborted, false);
	vmig_postcopy_end_all(pc, VMIG_PENDING_ENDED, &gone);
	spin_unlock(&pc->lock);
	up_write(&pc->mode_sem);
	/* The woken faults zero-fill under mode_sem: released first. */
	vmig_postcopy_wake_all(pc, &gone);
	vmig_sink_detach(r);
	vmig_nl_event_postcopy(r, false);
	return 0;
}

/*
 * Drop the pages of a range: PTEs of every mapping first, then the page
 * cache, as a hole punch does (truncate_pagecache_range).  Serialized with
 * dirty logging by its lock, so logging cannot start half way.  The range
 * is page aligned and inside the region.  Also vmigfs's hole punch.
 */
long vmig_postcopy_discard_range(struct vmig_region *r, u64 offset, u64 len,
				 u64 *discarded)
{
	struct address_space *mapping = vmig_region_mapping(r);
	unsigned long before, after;
	long err = 0;

	*discarded = 0;
	mutex_lock(&r->dirty.lock);
	if (r->dirty.on) {
		err = -EBUSY;
		goto out;
	}
	before = READ_ONCE(mapping->nrpages);
	truncate_pagecache_range(r->inode, offset, offset + len - 1);
	after = READ_ONCE(mapping->nrpages);
	/* Exact unless faults or PLACE add pages meanwhile. */
	*discarded = before > after ? before - after : 0;
	atomic64_add(*discarded, &r->stats.pages_discarded);
out:
	mutex_unlock(&r->dirty.lock);
	return err;
}

static long vmig_postcopy_discard(struct vmig_region *r,
				  struct vmig_discard __user *argp)
{
	struct vmig_discard d;
	long err;

	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;
	if (d.flags || d.reserved)
		return -EINVAL;
	if (!d.len || !PAGE_ALIGNED(d.len) || !PAGE_ALIGNED(d.offset))
		return -EINVAL;
	if (d.offset >= r->size || d.len > r->size - d.offset)
		return -EINVAL;
	err = vmig_postcopy_discard_range(r, d.offset, d.len, &d.discarded);
	if (!err && put_user(d.discarded, &argp->discarded))
		err = -EFAULT;
	return err;
}

/* With pc.lock held: is @index still missing, its request for the sink? */
bool vmig_postcopy_sent(struct vmig_region *r, pgoff_t index)
{
	struct vmig_pending *p;

	lockdep_assert_held(&r->pc.lock);
	p = vmig_pending_find(&r->pc, index);
	return p && (p->flags & VMIG_REQ_SENT);
}

/**
 * vmig_postcopy_unsend - the sink's queue goes back to the reader
 * @r:	the region; its sink is closed (nothing queues) and its worker
 *	stopped, or this is the worker
 *
 * Every request on the sink's queue whose page is still missing loses
 * VMIG_REQ_SENT and is queued for read() again if it was read, and the
 * reader wakes: it writes them itself.
 */
void vmig_postcopy_unsend(struct vmig_region *r)
{
	struct vmig_sink_state *s = &r->pc.sink;
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_pending *p;
	unsigned int i, n;

	spin_lock(&pc->lock);
	for (i = 0, n = 0; i < s->count; i++) {
		p = vmig_pending_find(pc, s->queue[(s->head + i) % VMIG_SINK_QUEUE]);
		if (!p || !(p->flags & VMIG_REQ_SENT))
			continue;
		p->flags &= ~VMIG_REQ_SENT;
		if (list_empty(&p->unread))
			list_add_tail(&p->unread, &pc->unread);
		n++;
	}
	s->count = 0;
	spin_unlock(&pc->lock);
	if (n) {
		atomic64_add(n, &r->stats.sink_unsent);
		wake_up_poll(&pc->readq, EPOLLIN | EPOLLRDNORM);
	}
}

/*
 * VMIG_REQUEUE: every request read whose page is still missing goes back
 * on the read queue.  A read request is still in the hash (it leaves only
 * when its page is placed, or the mode ends), with its unread link empty.
 * Every request, read or not, loses VMIG_REQ_SENT: what the sink wrote may
 * have gone with the connection of the helper that read it; and the sink
 * is detached first, since the reader now writes them.
 */
static long vmig_postcopy_requeue(struct vmig_region *r)
{
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_pending *p;
	long n = 0;
	int b;

	/* The reader writes them now: the sink must not (see the uapi). */
	vmig_sink_detach(r);
	spin_lock(&pc->lock);
	if (!pc->on) {
		spin_unlock(&pc->lock);
		return -EINVAL;
	}
	for (b = 0; b < ARRAY_SIZE(pc->pending); b++) {
		hlist_for_each_entry(p, &pc->pending[b], hnode) {
			p->flags &= ~VMIG_REQ_SENT;
			if (list_empty(&p->unread)) {
				list_add_tail(&p->unread, &pc->unread);
				n++;
			}
		}
	}
	spin_unlock(&pc->lock);
	if (n)
		wake_up_poll(&pc->readq, EPOLLIN | EPOLLRDNORM);
	return n;
}

long vmig_postcopy_ioctl(struct vmig_region *r, unsigned int cmd,
			 void __user *argp)
{
	long err;

	switch (cmd) {
	case VMIG_PLACE:
		return vmig_postcopy_place(r, argp);
	case VMIG_PLACE_BATCH:
		return vmig_postcopy_place_batch(r, argp);
	case VMIG_ABORT:
		err = vmig_postcopy_abort(r, true);
		if (!err)
			vmig_sink_detach(r);
		return err;
	case VMIG_POSTCOPY_ENABLE:
		return vmig_postcopy_enable(r, argp);
	case VMIG_POSTCOPY_DISABLE:
		return vmig_postcopy_disable(r);
	case VMIG_DISCARD:
		return vmig_postcopy_discard(r, argp);
	case VMIG_REQUEUE:
		return vmig_postcopy_requeue(r);
	case VMIG_POSTCOPY_SET_SINK:
		return vmig_sink_set(r, argp);
	default:
		return -ENOTTY;
	}
}

/* Take up to @max unread requests off the queue into @req. */
static size_t vmig_postcopy_pop(struct vmig_postcopy *pc,
				struct vmig_request *req, size_t max)
{
	struct vmig_pending *p;
	size_t n = 0;

	spin_lock(&pc->lock);
	while (n < max && !list_empty(&pc->unread)) {
		p = list_first_entry(&pc->unread, struct vmig_pending, unread);
		list_del_init(&p->unread);
		req[n].offset = (u64)p->index << PAGE_SHIFT;
		req[n].flags = p->flags;
		req[n].reserved = 0;
		req[n].time_ns = p->time_ns;
		n++;
	}
	spin_unlock(&pc->lock);
	return n;
}

/* Copying out failed: put back, in order, the requests still pending. */
static void vmig_postcopy_unpop(struct vmig_postcopy *pc,
				const struct vmig_request *req, size_t n)
{
	struct vmig_pending *p;

	spin_lock(&pc->lock);
	while (n--) {
		p = vmig_pending_find(pc, req[n].offset >> PAGE_SHIFT);
		if (p && list_empty(&p->unread))
			list_add(&p->unread, &pc->unread);
	}
	spin_unlock(&pc->lock);
}

static bool vmig_postcopy_readable(struct vmig_postcopy *pc)
{
	return !list_empty_careful(&pc->unread) || READ_ONCE(pc->aborted) ||
	       !READ_ONCE(pc->on);
}

ssize_t vmig_postcopy_read(struct vmig_region *r, struct file *file,
			   char __user *buf, size_t count)
{
	struct vmig_postcopy *pc = &r->pc;
	struct vmig_request req[16];
	size_t max = count / sizeof(req[0]);
	size_t done = 0, n;
	int err;

	if (!vmig_postcopy_on(r) || !max)
		return -EINVAL;
	for (;;) {
		size_t want = min(max - done, ARRAY_SIZE(req));

		n = vmig_postcopy_pop(pc, req, want);
		if (n) {
			if (copy_to_user(buf + done * sizeof(req[0]), req,
					 n * sizeof(req[0]))) {
				vmig_postcopy_unpop(pc, req, n);
				break;
			}
			done += n;
			/* Full, or the queue ran dry: no need to look again. */
			if (done == max || n < want)
				break;
			continue;
		}
		/* Aborted, or postcopy mode went off: end of file. */
		if (done || READ_ONCE(pc->aborted) || !READ_ONCE(pc->on))
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		err = wait_event_interruptible(pc->readq,
					       vmig_postcopy_readable(pc));
		if (err)
			return err;
	}
	if (!done && n)
		return -EFAULT;
	return done * sizeof(req[0]);
}

__poll_t vmig_postcopy_poll(struct vmig_region *r, struct file *file,
			    poll_table *wait)
{
	struct vmig_postcopy *pc = &r->pc;
	__poll_t mask = 0;

	if (!vmig_postcopy_on(r))
		return EPOLLERR;
	poll_wait(file, &pc->readq, wait);
	/* Pairs with wq_has_sleeper() in the fault: queued, then checked. */
	smp_mb();
	if (!list_empty_careful(&pc->unread))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (READ_ONCE(pc->aborted))
		mask |= EPOLLHUP;
	return mask;
}

int vmig_postcopy_init(struct vmig_region *r)
{
	struct vmig_postcopy *pc = &r->pc;

	init_rwsem(&pc->mode_sem);
	spin_lock_init(&pc->lock);
	pc->on = r->flags & VMIG_REGION_POSTCOPY;
	init_waitqueue_head(&pc->readq);
	hash_init(pc->pending);
	INIT_LIST_HEAD(&pc->unread);
	vmig_sink_region_init(r);
	return 0;
}

/*
 * The region's last reference is gone: no fault waits (a waiting fault
 * pins the file), but requests queued by RETRY_NOWAIT faults are freed.
 */
void vmig_postcopy_destroy(struct vmig_region *r)
{
	vmig_postcopy_abort(r, false);
	vmig_sink_region_destroy(r);
}

/* The mode and the abort flag, read together (VMIG_GET_STATS). */
void vmig_postcopy_state(struct vmig_region *r, bool *on, bool *aborted)
{
	spin_lock(&r->pc.lock);
	*on = r->pc.on;
	*aborted = r->pc.aborted;
	spin_unlock(&r->pc.lock);
}
