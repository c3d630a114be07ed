// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: dirty logging (precopy source side).
 *
 * One bit per page in r->dirty.bitmap.  Writers set bits with set_bit() on
 * the fault path, under rcu_read_lock() only; the harvester (GET, CLEAR,
 * under r->dirty.lock) fetches and clears whole words with xchg() and then
 * re-arms write protection for the pages it took, in chunks of at most
 * wp_chunk pages with a reschedule point between chunks.  Re-arming is
 * done on the PTEs in place, through the region's own rmap (the
 * mapping_dirty_helpers walkers): the pages stay mapped, so neither a
 * later read nor a later write has to map them again.  A walk may also
 * cover a few pages between two taken ones (VMIG_WP_GAP); that only costs
 * such a page one more fault.
 *
 * The guarantee (protection modes: default, MANUAL_PROTECT, INITIALLY_SET)
 * -----------------------------------------------------------------------
 * Every write that lands after the re-arming call (ENABLE without
 * INITIALLY_SET for every page, GET in the default mode, CLEAR with
 * MANUAL_PROTECT) returned is reported by a later harvest.
 * So a copy of a page taken after that call, plus the copies taken after
 * later harvests that report the page, never miss a write.
 *
 * Why it holds.  A page becomes writable in a mapping through a write
 * fault that calls page_mkwrite (region.c), which locks the folio, sets the
 * page's bit, and keeps the folio locked until the core has installed the
 * writable PTE (do_shared_fault / wp_page_shared unlock it only after),
 * or - the one other way - through mprotect() giving write access back:
 * it makes a read-only shared PTE writable without a fault if the PTE is
 * *dirty* (can_change_pte_writable, the same in 6.1 and 6.12: "dirty"
 * means page_mkwrite already ran), and takes neither the folio lock nor
 * anything we hold.  The hardware only ever sets the dirty bit of a
 * writable PTE, and nothing but our own walks cleans a PTE of this mapping
 * (there is no writeback).
 *
 * The harvester, for the pages of one chunk:
 *   1. clears their bits (xchg, a full barrier);
 *   2. locks their folios: any fault that set a bit before step 1 has now
 *      installed its PTE, no fault can make a PTE of them writable until
 *      step 5, and no migration (which would hide a writable PTE behind a
 *      migration entry and restore it later) is in flight or can start;
 *   3. P: write-protects every PTE of the chunk, then cleans every PTE's
 *      dirty bit (two rmap walks, each flushing the TLB for what it
 *      changed; the helpers count the PTEs they changed); the clean walk
 *      only once the region was mprotect()ed, see below;
 *   4. V: does the same again, write-protect walk first.  If its
 *      write-protect walk changed a PTE (an mprotect() upgrade since P, or
 *      a fault on a page of the walk whose folio is not ours), V is
 *      repeated; once a V write-protects nothing, the pages its clean walk
 *      found dirty get their bits set again (after VMIG_V_PASSES passes:
 *      the whole chunk's).  Over-reporting is allowed, losing is not;
 *   5. unlocks the folios.
 * Take a PTE of a page whose bit was cleared in 1 and stays clear: in the
 * last V, the write-protect walk found it read-only and the clean walk
 * found it clean.  Between the two it cannot have been made writable: a
 * fault needs the folio lock, mprotect() needs a dirty PTE, and a dirty
 * bit stays set until one of our walks clears it, so the clean walk would
 * have found it dirty.  So when the clean walk passed, the PTE was
 * read-only and clean, and from there only a write fault can change that
 * (mprotect() needs dirty, the hardware needs writable), whose
 * page_mkwrite comes after 5, so after 1, and sets the bit for the next
 * harvest.  No TLB entry outlives this: our walks flush what they change,
 * and a write through a writable but clean TLB entry re-walks to set the
 * dirty bit and faults on the read-only PTE.  (Pages of the walk whose
 * bits were not taken owe nothing: protecting them only adds a fault.)
 * Every write before P's flush is in memory when userspace copies the page
 * after the call returns.
 *
 * Why V is needed, and in that order: mprotect() can upgrade a PTE that
 * P's write-protect walk left read-only but dirty before P's clean walk
 * reaches it; the clean walk then leaves it writable and clean, and later
 * writes would never fault.  A write and an mprotect(PROT_READ) after that
 * can make it read-only and dirty again, which a write-protect walk alone
 * would pass as fine; so V cleans as well, after write-protecting.  P's own
 * order matters too: cleaning before write-protecting lets a write dirty
 * the PTE in between, leaving it read-only and dirty for mprotect().
 * V and P's clean walk are only needed once an mprotect() can give write
 * access back.  The region's vm_ops->mprotect runs before mprotect()
 * changes any PTE: it sets r->dirty.mprotected (sticky, full barrier
 * after) and then cleans every PTE of the pages that mprotect() covers, in
 * every mapping (vmig_dirty_note_mprotect).  The harvester reads the flag
 * after P's write-protect walk.  If it is still clear, every later
 * upgrade of a PTE P left read-only is preceded by that cleaning walk, so
 * it finds the PTE clean and leaves it read-only: a write-protect walk
 * alone leaves every PTE protected for good (the argument above with V's
 * walks replaced by P's, and "clean" by "cleaned before any upgrade").
 * If it is set, an upgrade may be running: the clean walk and V follow.
 * A VMM that never mprotect()s guest RAM pays one walk per chunk, not
 * four.
 * Doing 3 before 1 would leave a PTE that a fault made writable between
 * them behind a cleared bit; skipping 2 would let a fault that set its bit
 * before 1 install its writable PTE after V.
 * dirty_mprotect_race_test.c exercises these races.
 *
 * HWDIRTY
 * -------
 * No write protection; the harvester first cleans and records the PTE
 * dirty bits of every mapping (clean_record_shared_mapping_range, which
 * flushes the TLB), then fetches and clears the bitmap words, and reports
 * the union.  The bitmap catches what the PTEs no longer show:
 *   - a page mapped read-only so far: its first write goes through
 *     page_mkwrite, which sets the bit, and the PTE is installed dirty;
 *   - a dirty PTE that went away (munmap, MADV_DONTNEED, exit,
 *     migration): the core hands the dirty bit to the folio with
 *     folio_mark_dirty(), which calls vmig_dirty_folio() here, under the
 *     PTE lock, and flushes the TLB before it drops that lock.  The walk
 *     takes the same lock, so it either cleans the PTE itself or comes
 *     after the bit is set and the flush is done; the bitmap is read
 *     after the walk.
 * A write after the walk cleaned a PTE sets that PTE dirty again (the TLB
 * was flushed); the next harvest sees it.
 *
 * Lifetime of the bitmap
 * ----------------------
 * The fault path reads r->dirty.bitmap under rcu_read_lock() and takes no
 * lock.  DISABLE unpublishes the bitmap, waits for an RCU grace period
 * (so no fault still holds it) and only then frees it.
 *
 * Known limit: writes through a page pinned with get_user_pages (O_DIRECT,
 * RDMA, a hypervisor's own page mapping) after the pin was taken do not
 * go through the region's page tables and are not seen; such writers must
 * report their own dirty pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/pagemap.h>
#include <linux/pagevec.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "vmig.h"
#include "trace.h"

static unsigned long wp_chunk = 512;
module_param(wp_chunk, ulong, 0644);
MODULE_PARM_DESC(wp_chunk,
		 "Most pages one protection walk covers before a reschedule point (0 or more than a region: one walk)");

/*
 * Two runs of harvested pages closer than this are covered by one walk
 * (within wp_chunk).  A walk has a fixed cost (rmap lock, notifiers,
 * page-table descent, TLB flush) of 16-23 us in the TCG guest, against
 * about 0.2 us per PTE it changes and less for a PTE already read-only.
 * With one walk per pass (a region never mprotect()ed), 64 beat 32 at 10 %
 * random dirty pages (2.8 against 4.0 us per dirty page, same at 1 %);
 * with the four walks of a verified pass, 32 was the fastest of 1 / 8 /
 * 32 / 256.  Walking a page of the gap is harmless: write-protecting a
 * page whose bit is left alone only costs it one more fault (or, if a
 * fault on it races with the walk, one more report).
 */
#define VMIG_WP_GAP	64

/* Pages per walk when mprotect() has the PTEs it will upgrade cleaned. */
#define VMIG_MPROTECT_CHUNK	512

static unsigned long vmig_wp_chunk(void)
{
	unsigned long chunk = READ_ONCE(wp_chunk);

	return chunk ? chunk : ULONG_MAX;
}

int vmig_dirty_init(struct vmig_region *r)
{
	mutex_init(&r->dirty.lock);
	RCU_INIT_POINTER(r->dirty.bitmap, NULL);
	return 0;
}

void vmig_dirty_destroy(struct vmig_region *r)
{
	/* No mapping and no fd are left: no fault can see the bitmap. */
	kvfree(rcu_dereference_protected(r->dirty.bitmap, true));
	mutex_destroy(&r->dirty.lock);
}

/*
 * Called by page_mkwrite with the folio locked, before the PTE becomes
 * writable.  No lock: see the file-top comment for why this is enough.
 */
void vmig_dirty_note_write(struct vmig_region *r, pgoff_t index)
{
	unsigned long *bitmap;

	rcu_read_lock();
	bitmap = rcu_dereference(r->dirty.bitmap);
	if (bitmap) {
		set_bit(index, bitmap);
		atomic64_inc(&r->stats.write_faults);
		trace_vmig_write_fault(r->id, index);
	}
	rcu_read_unlock();
}

/*
 * Called by mprotect() (vm_ops->mprotect) before it changes any PTE of
 * pages [first, first + nr) of @r.  Giving write access back is the one way
 * a PTE becomes writable without a fault, and only a read-only PTE that is
 * *dirty* can be upgraded so.  A protection pass of a region never
 * mprotect()ed only write-protects (P in "Why it holds"), which leaves
 * read-only dirty PTEs; so before a mprotect() that gives write access
 * changes anything, the dirty bit of every PTE of its pages, in every
 * mapping, is cleaned here.  That loses nothing: a read-only PTE's writes
 * were reported by the harvest that protected it, a writable one's page
 * has its bit set since its write fault.  Only HWDIRTY, where the PTE
 * dirty bits are the record, reports the PTEs found dirty (the mode is
 * read after the walk: an ENABLE that cleaned the PTEs before us has set
 * it by then).  The first such call also sets
 * r->dirty.mprotected (sticky): from then on every pass also cleans and is
 * verified, which covers a harvest running while mprotect() changes PTEs.
 * With logging off there is no walk: read-only dirty PTEs left then may be
 * upgraded, and the next ENABLE protects every page again.
 * The barrier orders the flag before the walk; the harvester writes PTEs,
 * then reads the flag (smp_mb() between): a harvest that read the flag
 * clear is one whose walks this one sees.
 */
void vmig_dirty_note_mprotect(struct vmig_region *r, pgoff_t first, pgoff_t nr,
			      unsigned long newflags)
{
	unsigned long scratch[VMIG_MPROTECT_CHUNK / BITS_PER_LONG];
	unsigned long *bitmap, w;
	pgoff_t end = min_t(pgoff_t, first + nr, r->npages);
	pgoff_t n, wstart, wend;

	if (!(newflags & VM_WRITE))
		return;
	if (!READ_ONCE(r->dirty.mprotected))
		WRITE_ONCE(r->dirty.mprotected, true);
	smp_mb();	/* the flag before the walk; pairs with the harvester */
	/*
	 * Logging off: nothing to protect, no walk.  An ENABLE that published
	 * its bitmap after this read reads the flag after its walk and sees it.
	 */
	if (!rcu_access_pointer(r->dirty.bitmap))
		return;
	/* Walks aligned to the scratch bitmap, so its words are the region's. */
	for (first = round_down(first, VMIG_MPROTECT_CHUNK); first < end;
	     first += n) {
		n = min_t(pgoff_t, VMIG_MPROTECT_CHUNK, end - first);
		wstart = 0;
		wend = 0;
		bitmap_zero(scratch, VMIG_MPROTECT_CHUNK);
		clean_record_shared_mapping_range(vmig_region_mapping(r), first,
						  n, first, scratch, &wstart,
						  &wend);
		smp_mb();	/* the walk before reading the mode */
		rcu_read_lock();
		bitmap = rcu_dereference(r->dirty.bitmap);
		for (w = 0; bitmap && READ_ONCE(r->dirty.hw) &&
		     w < BITS_TO_LONGS(n); w++)
			if (scratch[w])
				atomic_long_or(scratch[w], (atomic_long_t *)
					       &bitmap[first / BITS_PER_LONG + w]);
		rcu_read_unlock();
		cond_resched();
	}
}

/*
 * The region's ->dirty_folio: the core calls it when a folio's data was
 * written (write faults, and a dirty PTE being torn down).  In HWDIRTY
 * mode the latter is how a write whose PTE is gone stays visible.  The
 * callers keep truncation (and so the region's release) away.
 */
bool vmig_dirty_folio(struct address_space *mapping, struct folio *folio)
{
	struct vmig_region *r = READ_ONCE(mapping->host->i_private);
	unsigned long *bitmap;

	if (r && READ_ONCE(r->dirty.hw)) {
		rcu_read_lock();
		bitmap = rcu_dereference(r->dirty.bitmap);
		if (bitmap && folio->index < r->npages)
			set_bit(folio->index, bitmap);
		rcu_read_unlock();
	}
	return noop_dirty_folio(mapping, folio);
}

static void vmig_dirty_note_walk(struct vmig_region *r, u64 ns)
{
	if (ns > atomic64_read(&r->stats.max_protect_ns))
		atomic64_set(&r->stats.max_protect_ns, ns);
}

/* Folios locked for one protection walk, in ascending index order. */
struct vmig_wp_batch {
	struct folio **folios;
	unsigned long n, max;
	pgoff_t first, end;		/* pages [first, end) to walk */
	unsigned long *scratch;		/* max bits, for the clean walks */
};

/*
 * Write-protect, then clean, every PTE of pages [first, first + nr) in
 * every mapping: P or V in "Why it holds" above.  @wp: PTEs the first walk
 * write-protected.  The second walk records the PTEs it cleaned in
 * @scratch (bit i: page first + i), which is zeroed first.  Returns the
 * number of PTEs the two walks changed.
 */
static unsigned long vmig_wp_clean(struct address_space *mapping,
				   pgoff_t first, pgoff_t nr,
				   unsigned long *scratch, unsigned long *wp)
{
	pgoff_t start = 0, end = 0;

	*wp = wp_shared_mapping_range(mapping, first, nr);
	bitmap_zero(scratch, nr);
	return *wp + clean_record_shared_mapping_range(mapping, first, nr,
						       first, scratch,
						       &start, &end);
}

/*
 * V passes of "Why it holds", until one write-protects nothing.  A pass
 * that write-protected a PTE (an mprotect() upgrade, or a fault on a page
 * of the walk whose folio we do not hold) cannot tell which page that
 * was, so it is repeated; the pages the last pass cleaned may have been
 * made writable before it cleaned them, so their bits are set again.
 * After VMIG_V_PASSES passes the whole range is set again instead.
 */
#define VMIG_V_PASSES	4

static void vmig_wp_verify(struct vmig_region *r, pgoff_t first, pgoff_t nr,
			   unsigned long *scratch)
{
	struct address_space *mapping = vmig_region_mapping(r);
	unsigned long *bitmap, i, wp;
	int pass;

	for (pass = 0; pass < VMIG_V_PASSES; pass++)
		if (!vmig_wp_clean(mapping, first, nr, scratch, &wp))
			return;
		else if (!wp)
			break;
	if (pass == VMIG_V_PASSES)
		bitmap_fill(scratch, nr);
	trace_vmig_protect_race(r->id, first, nr);
	/* Atomic per bit: faults set bits in the same words. */
	bitmap = rcu_dereference_protected(r->dirty.bitmap,
					   lockdep_is_held(&r->dirty.lock));
	for_each_set_bit(i, scratch, nr)
		set_bit(first + i, bitmap);
}

/*
 * P of a region never mprotect()ed to writable: write-protect pages
 * [first, first + nr) and return true if the region still was not
 * mprotect()ed once that walk was done (then P is complete).  False: the
 * full P and V are needed.
 */
static bool vmig_wp_only(struct vmig_region *r, pgoff_t first, pgoff_t nr)
{
	if (READ_ONCE(r->dirty.mprotected))
		return false;
	wp_shared_mapping_range(vmig_region_mapping(r), first, nr);
	smp_mb();	/* the walk before the flag; pairs with note_mprotect */
	return !READ_ONCE(r->dirty.mprotected);
}

static void vmig_wp_batch_flush(struct vmig_region *r, struct vmig_wp_batch *b)
{
	struct address_space *mapping = vmig_region_mapping(r);
	pgoff_t nr = b->end - b->first;
	unsigned long wp;
	u64 t0;

	if (nr) {
		t0 = ktime_get_ns();
		/* P, then V if mprotect() may race: see "Why it holds". */
		if (!vmig_wp_only(r, b->first, nr)) {
			vmig_wp_clean(mapping, b->first, nr, b->scratch, &wp);
			smp_mb();	/* the walks before V */
			vmig_wp_verify(r, b->first, nr, b->scratch);
		}
		vmig_dirty_note_walk(r, ktime_get_ns() - t0);
	}
	while (b->n) {
		struct folio *folio = b->folios[--b->n];

		folio_unlock(folio);
		folio_put(folio);
	}
	b->end = b->first;
	cond_resched();
}

/*
 * Lock @folio (found at @index, a reference held, which @b takes over) and
 * add it to @b.  Sleeps on a folio lock only while @b holds none (after a
 * flush), so holding many never deadlocks.
 */
static void vmig_wp_batch_add(struct vmig_region *r, struct vmig_wp_batch *b,
			      struct folio *folio, pgoff_t index)
{
	struct address_space *mapping = vmig_region_mapping(r);

	for (;;) {
		if (!folio_trylock(folio)) {
			vmig_wp_batch_flush(r, b);
			folio_lock(folio);
		}
		if (likely(folio->mapping == mapping))
			break;
		/* Migrated meanwhile: the page cache holds a new folio. */
		folio_unlock(folio);
		folio_put(folio);
		folio = vmig_filemap_get_folio(mapping, index);
		if (!folio)
			return;
	}
	if (b->end == b->first)
		b->first = index;
	b->folios[b->n++] = folio;
	b->end = index + 1;
}

/*
 * Write-protect the pages whose bits are set in @bits (bit i: page
 * @first + i, @nbits bits), in walks of at most wp_chunk pages, each under
 * the locks of the folios it protects.  Pages never touched have no PTE
 * and are skipped.  Returns the pages protected.
 */
static long vmig_dirty_protect(struct vmig_region *r, pgoff_t first,
			       const unsigned long *bits, unsigned long nbits)
{
	struct address_space *mapping = vmig_region_mapping(r);
	unsigned long chunk = vmig_wp_chunk();
	unsigned long i, k, run_end, count = 0;
	struct vmig_wp_batch b = { };
	struct folio_batch fbatch;
	pgoff_t start;

	/* A walk spans at most min(chunk, nbits) pages, so does the batch. */
	b.max = min(chunk, nbits);
	b.folios = kvmalloc_array(b.max, sizeof(*b.folios), GFP_KERNEL);
	b.scratch = kvmalloc_array(BITS_TO_LONGS(b.max), sizeof(long),
				   GFP_KERNEL);
	if (!b.folios || !b.scratch) {
		kvfree(b.folios);
		kvfree(b.scratch);
		return -ENOMEM;
	}

	/* Each run of set bits: its present folios, a batch at a time. */
	folio_batch_init(&fbatch);
	for (i = find_first_bit(bits, nbits); i < nbits;
	     i = find_next_bit(bits, nbits, run_end)) {
		run_end = find_next_zero_bit(bits, nbits, i);
		start = first + i;
		while (filemap_get_folios(mapping, &start, first + run_end - 1,
					  &fbatch)) {
			for (k = 0; k < folio_batch_count(&fbatch); k++) {
				struct folio *folio = fbatch.folios[k];
				pgoff_t index = folio->index;

				if (b.end > b.first &&
				    (index - b.first >= chunk || b.n == b.max ||
				     index - b.end >= VMIG_WP_GAP))
					vmig_wp_batch_flush(r, &b);
				vmig_wp_batch_add(r, &b, folio, index);
				count++;
			}
			/* The references now belong to @b. */
			folio_batch_init(&fbatch);
		}
	}
	vmig_wp_batch_flush(r, &b);
	kvfree(b.scratch);
	kvfree(b.folios);
	atomic64_add(count, &r->stats.pages_protected);
	return count;
}

/*
 * HWDIRTY: clean the PTE dirty bits of pages [first, first + nbits) in
 * every mapping and set the bits of those that were dirty in @bits.
 */
static void vmig_dirty_clean_record(struct vmig_region *r, pgoff_t first,
				    unsigned long *bits, unsigned long nbits)
{
	unsigned long chunk = vmig_wp_chunk();
	unsigned long done, n;
	pgoff_t start, end;
	u64 t0;

	for (done = 0; done < nbits; done += n) {
		n = min(chunk, nbits - done);
		start = 0;
		end = 0;
		t0 = ktime_get_ns();
		clean_record_shared_mapping_range(vmig_region_mapping(r),
						  first + done, n, first, bits,
						  &start, &end);
		vmig_dirty_note_walk(r, ktime_get_ns() - t0);
		cond_resched();
	}
}

static unsigned long *vmig_dirty_bitmap_alloc(pgoff_t nbits, bool set)
{
	size_t words = BITS_TO_LONGS(nbits);
	unsigned long *bits;

	bits = kvmalloc_array(words, sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!bits)
		return NULL;
	if (set) {
		bitmap_fill(bits, nbits);
		/* Bits past the region's end stay clear. */
		if (nbits % BITS_PER_LONG)
			bits[words - 1] &= BITMAP_LAST_WORD_MASK(nbits);
	} else {
		bitmap_zero(bits, nbits);
	}
	return bits;
}

static long vmig_dirty_enable(struct vmig_region *r, void __user *argp)
{
	struct vmig_dirty_enable arg;
	unsigned long *bitmap, *all;
	long ret = 0;
	u32 flags;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	flags = arg.flags;
	if (arg.reserved || (flags & ~VMIG_DIRTY_FLAGS_ALL))
		return -EINVAL;
	if ((flags & VMIG_DIRTY_INITIALLY_SET) &&
	    !(flags & VMIG_DIRTY_MANUAL_PROTECT))
		return -EINVAL;
	if ((flags & VMIG_DIRTY_HWDIRTY) && flags != VMIG_DIRTY_HWDIRTY)
		return -EINVAL;

	mutex_lock(&r->dirty.lock);
	if (r->dirty.on) {
		ret = -EBUSY;
		goto out;
	}
	bitmap = vmig_dirty_bitmap_alloc(r->npages,
					 flags & VMIG_DIRTY_INITIALLY_SET);
	if (!bitmap) {
		ret = -ENOMEM;
		goto out;
	}
	/* Protecting needs a page list; get it before anything changes. */
	all = NULL;
	if (!(flags & VMIG_DIRTY_INITIALLY_SET)) {
		all = vmig_dirty_bitmap_alloc(r->npages, !(flags & VMIG_DIRTY_HWDIRTY));
		if (!all) {
			kvfree(bitmap);
			ret = -ENOMEM;
			goto out;
		}
	}

	WRITE_ONCE(r->dirty.hw, !!(flags & VMIG_DIRTY_HWDIRTY));
	/* Publish first: a write fault after the protection below is seen. */
	rcu_assign_pointer(r->dirty.bitmap, bitmap);
	r->dirty.flags = flags;
	r->dirty.on = true;
	r->dirty.gen++;

	if (flags & VMIG_DIRTY_HWDIRTY) {
		/* Forget what was written before: clean every PTE. */
		vmig_dirty_clean_record(r, 0, all, r->npages);
	} else if (all) {
		ret = vmig_dirty_protect(r, 0, all, r->npages);
		if (ret > 0)
			ret = 0;
	}
	kvfree(all);
	if (ret) {
		/* Protection could not start: back to off (no fault waits). */
		r->dirty.on = false;
		r->dirty.flags = 0;
		WRITE_ONCE(r->dirty.hw, false);
		RCU_INIT_POINTER(r->dirty.bitmap, NULL);
		synchronize_rcu();
		kvfree(bitmap);
	} else {
		vmig_nl_event_dirty(r, true);
	}
out:
	mutex_unlock(&r->dirty.lock);
	return ret;
}

static long vmig_dirty_disable(struct vmig_region *r)
{
	unsigned long *bitmap;

	mutex_lock(&r->dirty.lock);
	if (!r->dirty.on) {
		mutex_unlock(&r->dirty.lock);
		return -ENOENT;
	}
	bitmap = rcu_dereference_protected(r->dirty.bitmap,
					   lockdep_is_held(&r->dirty.lock));
	RCU_INIT_POINTER(r->dirty.bitmap, NULL);
	WRITE_ONCE(r->dirty.hw, false);
	r->dirty.on = false;
	r->dirty.flags = 0;
	mutex_unlock(&r->dirty.lock);
	vmig_nl_event_dirty(r, false);
	/* A fault may still be setting a bit in it. */
	synchronize_rcu();
	kvfree(bitmap);
	return 0;
}

/* Check the flags and the range against the region; see struct vmig_dirty_log. */
static int vmig_dirty_check_range(struct vmig_region *r,
				  const struct vmig_dirty_log *arg, u64 flags_ok)
{
	if (arg->flags & ~flags_ok)
		return -EINVAL;
	if (!arg->num_pages || arg->first_page % 64)
		return -EINVAL;
	if (arg->first_page >= r->npages ||
	    arg->num_pages > r->npages - arg->first_page)
		return -EINVAL;
	if (arg->num_pages % 64 && arg->first_page + arg->num_pages != r->npages)
		return -EINVAL;
	return 0;
}

/*
 * The start GET and CLEAR share: copy in the argument, check it against the
 * region and (without the lock: the errors a caller sees do not depend on
 * whether it raced with DISABLE) the logging state, then zero the user's
 * count.  Returns the size of the argument's bitmap in bytes.
 *
 * No user memory is touched under r->dirty.lock: a user copy can fault on
 * a page that waits for the network (a postcopy region, a userfaultfd
 * range), and ENABLE, DISABLE, DISCARD and every other harvest of the
 * region would wait behind it.  So GET and CLEAR copy in and zero the
 * user's buffers before they take the lock, and copy out after dropping
 * it; vmig_dirty_locked() checks the state again under the lock.
 */
static long vmig_dirty_log_begin(struct vmig_region *r, void __user *argp,
				 struct vmig_dirty_log *arg, u32 need, u64 flags_ok)
{
	struct vmig_dirty_log __user *uarg = argp;
	long ret;

	if (copy_from_user(arg, argp, sizeof(*arg)))
		return -EFAULT;
	if (!READ_ONCE(r->dirty.on))
		return -ENOENT;
	if ((READ_ONCE(r->dirty.flags) & need) != need)
		return -EINVAL;
	ret = vmig_dirty_check_range(r, arg, flags_ok);
	if (ret)
		return ret;
	if (put_user(0ULL, &uarg->dirty))
		return -EFAULT;
	return DIV_ROUND_UP(arg->num_pages, 64) * sizeof(u64);
}

/*
 * Take r->dirty.lock and check again that logging is on with @need; 0 with
 * the lock held, or an error with it not held.
 */
static long vmig_dirty_locked(struct vmig_region *r, u32 need)
{
	mutex_lock(&r->dirty.lock);
	if (!r->dirty.on) {
		mutex_unlock(&r->dirty.lock);
		return -ENOENT;
	}
	if ((r->dirty.flags & need) != need) {
		mutex_unlock(&r->dirty.lock);
		return -EINVAL;
	}
	return 0;
}

/*
 * Copying a harvest out failed after the lock was dropped: give the bits
 * back, so nothing is lost, unless logging was switched off (or off and
 * on: @gen differs) meanwhile, which forgot every bit anyway.  A harvest
 * in between may report the pages first: over-reporting is allowed.
 */
static void vmig_dirty_restore(struct vmig_region *r, u64 gen,
			       unsigned long first_page,
			       const unsigned long *bits, unsigned long nwords)
{
	unsigned long *bitmap;
	unsigned long w;

	mutex_lock(&r->dirty.lock);
	if (r->dirty.on && r->dirty.gen == gen) {
		bitmap = rcu_dereference_protected(r->dirty.bitmap,
						   lockdep_is_held(&r->dirty.lock));
		for (w = 0; w < nwords; w++)
			atomic_long_or(bits[w], (atomic_long_t *)
				       &bitmap[first_page / 64 + w]);
	}
	mutex_unlock(&r->dirty.lock);
}

/*
 * VMIG_GET_DIRTY_LOG.  The user bitmap is written (zeroed) before any bit
 * is taken, so a bad address fails with nothing changed.
 */
static long vmig_dirty_get(struct vmig_region *r, void __user *argp)
{
	struct vmig_dirty_log __user *uarg = argp;
	struct vmig_dirty_log arg;
	unsigned long *bitmap, *bits;
	unsigned long w, nwords;
	size_t bytes;
	long ret;
	u64 t0, gen;

	ret = vmig_dirty_log_begin(r, argp, &arg, 0, VMIG_DIRTY_LOG_FLAGS_ALL);
	if (ret < 0)
		return ret;
	bytes = ret;
	nwords = bytes / sizeof(u64);
	if (clear_user(u64_to_user_ptr(arg.bitmap), bytes))
		return -EFAULT;
	bits = kvzalloc(bytes, GFP_KERNEL);
	if (!bits)
		return -ENOMEM;
	ret = vmig_dirty_locked(r, 0);
	if (ret)
		goto out_free;

	t0 = ktime_get_ns();
	gen = r->dirty.gen;
	bitmap = rcu_dereference_protected(r->dirty.bitmap,
					   lockdep_is_held(&r->dirty.lock));
	if (r->dirty.hw)
		vmig_dirty_clean_record(r, arg.first_page, bits, arg.num_pages);
	for (w = 0; w < nwords; w++)
		bits[w] |= xchg(&bitmap[arg.first_page / 64 + w], 0);
	/* The default mode re-arms what it took, unless this is the last harvest. */
	if (!(r->dirty.flags & (VMIG_DIRTY_MANUAL_PROTECT | VMIG_DIRTY_HWDIRTY)) &&
	    !(arg.flags & VMIG_DIRTY_LOG_FINAL)) {
		ret = vmig_dirty_protect(r, arg.first_page, bits, arg.num_pages);
		if (ret < 0) {
			/* Nothing is lost: the pages stay reported. */
			for (w = 0; w < nwords; w++)
				atomic_long_or(bits[w], (atomic_long_t *)
					       &bitmap[arg.first_page / 64 + w]);
			mutex_unlock(&r->dirty.lock);
			goto out_free;
		}
	}
	arg.dirty = bitmap_weight(bits, arg.num_pages);
	atomic64_inc(&r->stats.harvest_calls);
	atomic64_add(arg.dirty, &r->stats.pages_harvested);
	trace_vmig_harvest(r->id, false, arg.first_page, arg.num_pages,
			   arg.dirty, ktime_get_ns() - t0);
	mutex_unlock(&r->dirty.lock);

	ret = 0;
	if (copy_to_user(u64_to_user_ptr(arg.bitmap), bits, bytes) ||
	    put_user(arg.dirty, &uarg->dirty)) {
		/* The buffer went away under us: keep the bits for next time. */
		vmig_dirty_restore(r, gen, arg.first_page, bits, nwords);
		ret = -EFAULT;
	}
out_free:
	kvfree(bits);
	return ret;
}

/* VMIG_CLEAR_DIRTY_LOG (MANUAL_PROTECT only). */
static long vmig_dirty_clear(struct vmig_region *r, void __user *argp)
{
	struct vmig_dirty_log __user *uarg = argp;
	struct vmig_dirty_log arg;
	unsigned long *bitmap, *bits;
	unsigned long w, nwords;
	size_t bytes;
	long ret;
	u64 t0;

	ret = vmig_dirty_log_begin(r, argp, &arg, VMIG_DIRTY_MANUAL_PROTECT, 0);
	if (ret < 0)
		return ret;
	bytes = ret;
	nwords = bytes / sizeof(u64);
	bits = kvmalloc(bytes, GFP_KERNEL);
	if (!bits)
		return -ENOMEM;
	ret = -EFAULT;
	if (copy_from_user(bits, u64_to_user_ptr(arg.bitmap), bytes))
		goto out_free;
	/* Bits past the range are ignored. */
	if (arg.num_pages % 64)
		bits[nwords - 1] &= BITMAP_LAST_WORD_MASK(arg.num_pages);
	ret = vmig_dirty_locked(r, VMIG_DIRTY_MANUAL_PROTECT);
	if (ret)
		goto out_free;

	t0 = ktime_get_ns();
	bitmap = rcu_dereference_protected(r->dirty.bitmap,
					   lockdep_is_held(&r->dirty.lock));
	for (w = 0; w < nwords; w++)
		if (bits[w])
			atomic_long_andnot(bits[w], (atomic_long_t *)
					   &bitmap[arg.first_page / 64 + w]);
	ret = vmig_dirty_protect(r, arg.first_page, bits, arg.num_pages);
	if (ret < 0) {
		for (w = 0; w < nwords; w++)
			atomic_long_or(bits[w], (atomic_long_t *)
				       &bitmap[arg.first_page / 64 + w]);
		mutex_unlock(&r->dirty.lock);
		goto out_free;
	}
	arg.dirty = bitmap_weight(bits, arg.num_pages);
	atomic64_inc(&r->stats.clear_calls);
	trace_vmig_harvest(r->id, true, arg.first_page, arg.num_pages,
			   arg.dirty, ktime_get_ns() - t0);
	mutex_unlock(&r->dirty.lock);
	ret = put_user(arg.dirty, &uarg->dirty) ? -EFAULT : 0;
out_free:
	kvfree(bits);
	return ret;
}

long vmig_dirty_ioctl(struct vmig_region *r, unsigned int cmd,
		      void __user *argp)
{
	switch (cmd) {
	case VMIG_DIRTY_ENABLE:
		return vmig_dirty_enable(r, argp);
	case VMIG_DIRTY_DISABLE:
		return vmig_dirty_disable(r);
	case VMIG_GET_DIRTY_LOG:
		return vmig_dirty_get(r, argp);
	case VMIG_CLEAR_DIRTY_LOG:
		return vmig_dirty_clear(r, argp);
	default:
		return -ENOTTY;
	}
}
