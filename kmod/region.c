// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: regions - memory objects a VMM maps as guest RAM.
 *
 * Each region is a file on a private pseudo filesystem with an inode of its
 * own, so the inode's address_space holds exactly the region's pages and its
 * i_mmap tree is the reverse map of exactly the region's mappings: dirty
 * logging write-protects through it (wp_shared_mapping_range) without
 * touching anything else.
 *
 * Pages live in that address_space's page cache, like ramfs: allocated and
 * zeroed on first touch (or filled by VMIG_PLACE), never reclaimed (the
 * mapping is unevictable: there is no backing store), and freed when the
 * last fd and mapping of the region are gone.
 *
 * Accounting.  The VMM creates a region, but on a destination a helper -
 * another process, maybe in another memory cgroup - places most of its
 * pages.  Whoever inserts a page, it is charged to the memory cgroup of the
 * region's creator, captured at creation (filemap_add_folio charges the
 * active memcg, set around the insertion): the VM's memory is accounted
 * where the VM is, and a helper's cgroup limit does not cap the guests it
 * migrates.  The region's whole size is charged when it is created to the
 * creator's user against RLIMIT_MEMLOCK (user->locked_vm, like io_uring's
 * registered buffers: per user, because a region outlives its creator's
 * process and mm when its fd is passed on), since its pages can never be
 * reclaimed; CAP_IPC_LOCK is exempt, as for mlock().  The same user may
 * hold at most max_regions_per_user regions.
 *
 * Mappings must be shared and are write-notified (we have page_mkwrite),
 * so every write to a write-protected page comes through
 * vmig_region_page_mkwrite first.
 *
 * A region hangs off its inode (i_private), and every file operation
 * finds it there.  An anonymous region (VMIG_CREATE_REGION) lives as long
 * as its one file: each mapping holds a reference to the file, so
 * ->release runs after the last close and the last munmap.  A region made
 * by path (regionfs.c) lives as long as its inode on the vmigfs mount.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs_context.h>
#include <linux/highmem.h>
#include <linux/idr.h>
#include <linux/memcontrol.h>
#include <linux/migrate.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "vmig.h"

#define VMIG_FS_MAGIC	0x766d6967	/* "vmig" */

/* Pinned by every live region: see vmig_region_create(). */
static struct vfsmount *vmig_mnt;
static int vmig_mnt_count;
static DEFINE_IDA(vmig_region_ida);
DEFINE_MUTEX(vmig_regions_lock);	/* protects vmig_regions */
LIST_HEAD(vmig_regions);		/* live regions, sorted by id */

static int vmig_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, VMIG_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * The superblock holds a reference to the module (through .owner) until the
 * last region file's final mntput has torn it down, so no part of the
 * filesystem's teardown can run after the module is gone.
 */
static struct file_system_type vmig_fs_type = {
	.owner		 = THIS_MODULE,
	.name		 = "vmig",
	.init_fs_context = vmig_fs_init_fs_context,
	.kill_sb	 = kill_anon_super,
};

static void vmig_region_free_folio(struct folio *folio)
{
	atomic64_dec(&vmig_pages_allocated);
}

static const struct address_space_operations vmig_region_aops = {
	.dirty_folio	= vmig_dirty_folio,
	.free_folio	= vmig_region_free_folio,
#ifdef CONFIG_MIGRATION
	/*
	 * Pages come from movable memory and are always dirty (see
	 * vmig_region_add_folio), and without this the core's fallback
	 * would try to write a dirty folio out, which a mapping with no
	 * backing store cannot: compaction, memory offlining, CMA and soft
	 * offline could never move one.  migrate_folio moves the folio in
	 * the page cache under its lock; dirty logging copes (the fault and
	 * harvest paths recheck folio->mapping, a dirty PTE is recorded
	 * through ->dirty_folio when it is unmapped).
	 */
	.migrate_folio	= migrate_folio,
#endif
};

/**
 * vmig_region_add_folio - allocate, fill and insert the page at @index
 * @r:		the region
 * @index:	page index, below r->npages
 * @src:	user data to copy in, or NULL for zeroes
 *
 * The folio is filled completely before it enters the page cache, so no
 * mapping can ever see it half filled.
 *
 * Return: the new folio, locked and with a reference held, or
 * ERR_PTR(-EEXIST) when a page is already present at @index (nothing is
 * changed then), -ENOMEM or -EFAULT.
 */
struct folio *vmig_region_add_folio(struct vmig_region *r, pgoff_t index,
				    const void __user *src)
{
	struct address_space *mapping = vmig_region_mapping(r);
	gfp_t gfp = mapping_gfp_mask(mapping);
	struct mem_cgroup *old_memcg;
	struct folio *folio;
	int err;

	folio = filemap_alloc_folio(gfp, 0);
	if (!folio)
		return ERR_PTR(-ENOMEM);
	if (src) {
		void *dst = kmap_local_folio(folio, 0);
		unsigned long left = copy_from_user(dst, src, PAGE_SIZE);

		kunmap_local(dst);
		if (left) {
			folio_put(folio);
			return ERR_PTR(-EFAULT);
		}
	} else {
		folio_zero_range(folio, 0, PAGE_SIZE);
	}
	__folio_mark_uptodate(folio);
	/*
	 * Born dirty (there is no backing store to clean it to, as on
	 * ramfs), so drop_caches, which walks the inodes of a mountable
	 * vmigfs, never takes a page that was placed but not yet written.
	 */
	folio_set_dirty(folio);

	/* Charged to the creator's cgroup, not the caller's: see the top. */
	old_memcg = set_active_memcg(r->memcg);
	err = filemap_add_folio(mapping, folio, index, gfp);
	set_active_memcg(old_memcg);
	if (err) {
		folio_put(folio);
		return ERR_PTR(err);
	}
	atomic64_inc(&vmig_pages_allocated);
	return folio;
}

static vm_fault_t vmig_region_fault(struct vm_fault *vmf)
{
	struct vmig_region *r = vmig_file_region(vmf->vma->vm_file);
	struct address_space *mapping = vmig_region_mapping(r);
	pgoff_t index = vmf->pgoff;
	struct folio *folio;

	if (index >= r->npages)
		return VM_FAULT_SIGBUS;
	for (;;) {
		vm_fault_t ret;

		folio = vmig_filemap_lock_folio(mapping, index);
		if (folio)
			break;
		if (vmig_postcopy_on(r)) {
			ret = vmig_postcopy_fault(r, vmf);
			/* 0: postcopy mode ended meanwhile, fill the page. */
			if (ret)
				return ret;
			continue;
		}
		folio = vmig_postcopy_fill_zero(r, index);
		if (!folio)		/* postcopy mode began meanwhile */
			continue;
		if (!IS_ERR(folio))
			break;
		if (PTR_ERR(folio) != -EEXIST)
			return vmf_error(PTR_ERR(folio));
		/* Another fault inserted it first: take that one. */
	}
	vmf->page = folio_file_page(folio, index);
	return VM_FAULT_LOCKED;
}

/*
 * The first write to a page that is mapped read-only (never written through
 * this mapping, or write-protected by dirty logging) lands here before the
 * page becomes writable.  The page must be locked and still in our mapping
 * when we return VM_FAULT_LOCKED, or the core retries the fault.
 */
static vm_fault_t vmig_region_page_mkwrite(struct vm_fault *vmf)
{
	struct vmig_region *r = vmig_file_region(vmf->vma->vm_file);
	struct folio *folio = page_folio(vmf->page);

	folio_lock(folio);
	if (folio->mapping != vmig_region_mapping(r)) {
		folio_unlock(folio);
		return VM_FAULT_NOPAGE;
	}
	vmig_dirty_note_write(r, folio->index);
	return VM_FAULT_LOCKED;
}

/* Called by mprotect() before it changes any PTE of @vma. */
static int vmig_region_mprotect(struct vm_area_struct *vma, unsigned long start,
				unsigned long end, unsigned long newflags)
{
	vmig_dirty_note_mprotect(vmig_file_region(vma->vm_file),
				 vma->vm_pgoff + ((start - vma->vm_start) >> PAGE_SHIFT),
				 (end - start) >> PAGE_SHIFT, newflags);
	return 0;
}

static const struct vm_operations_struct vmig_region_vm_ops = {
	.fault		= vmig_region_fault,
	/*
	 * Fault-around: a read fault also maps the present neighbours
	 * (read-only: a write still comes through page_mkwrite).  Missing
	 * pages are never in the page cache, so they still reach ->fault.
	 */
	.map_pages	= filemap_map_pages,
	.page_mkwrite	= vmig_region_page_mkwrite,
	.mprotect	= vmig_region_mprotect,
};

/* A vmigfs file whose size is not set yet has no region: -ENODEV. */
int vmig_region_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct vmig_region *r = vmig_file_region(file);
	unsigned long pages = vma_pages(vma);

	if (!r)
		return -ENODEV;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= r->npages || pages > r->npages - vma->vm_pgoff)
		return -EINVAL;
	vmig_vma_flags_set(vma, VM_DONTEXPAND);
	vma->vm_ops = &vmig_region_vm_ops;
	return 0;
}

/* The creation flags, VMIG_REGION_POSTCOPY replaced by the current mode. */
u32 vmig_region_flags(struct vmig_region *r)
{
	u32 flags = r->flags & ~VMIG_REGION_POSTCOPY;

	return vmig_postcopy_on(r) ? flags | VMIG_REGION_POSTCOPY : flags;
}

void vmig_region_stats_fill(struct vmig_region *r, struct vmig_stats *st)
{
	struct vmig_region_stats *s = &r->stats;
	bool pc_on, pc_aborted;
	int i;

	memset(st, 0, sizeof(*st));
	st->size = r->size;
	st->pages_present = READ_ONCE(vmig_region_mapping(r)->nrpages);
	st->write_faults = atomic64_read(&s->write_faults);
	st->harvest_calls = atomic64_read(&s->harvest_calls);
	st->pages_harvested = atomic64_read(&s->pages_harvested);
	st->clear_calls = atomic64_read(&s->clear_calls);
	st->pages_protected = atomic64_read(&s->pages_protected);
	st->max_protect_ns = atomic64_read(&s->max_protect_ns);
	st->missing_faults = atomic64_read(&s->missing_faults);
	st->requests = atomic64_read(&s->requests);
	st->pages_placed = atomic64_read(&s->pages_placed);
	st->place_exist = atomic64_read(&s->place_exist);
	for (i = 0; i < VMIG_HIST_BUCKETS; i++)
		st->wait_hist[i] = atomic64_read(&s->wait_hist[i]);
	vmig_postcopy_state(r, &pc_on, &pc_aborted);
	st->postcopy_on = pc_on;
	st->postcopy_aborted = pc_aborted;
	st->pages_discarded = atomic64_read(&s->pages_discarded);
	st->nowait_placed = atomic64_read(&s->nowait_placed);
	st->nowait_fallbacks = atomic64_read(&s->nowait_fallbacks);
	st->sink_sent = atomic64_read(&s->sink_sent);
	st->sink_unsent = atomic64_read(&s->sink_unsent);
}

/* Zero the counters vmig_region_stats_fill() reports; keep the two in step. */
void vmig_region_stats_reset(struct vmig_region *r)
{
	struct vmig_region_stats *s = &r->stats;
	int i;

	atomic64_set(&s->write_faults, 0);
	atomic64_set(&s->harvest_calls, 0);
	atomic64_set(&s->pages_harvested, 0);
	atomic64_set(&s->clear_calls, 0);
	atomic64_set(&s->pages_protected, 0);
	atomic64_set(&s->max_protect_ns, 0);
	atomic64_set(&s->missing_faults, 0);
	atomic64_set(&s->requests, 0);
	atomic64_set(&s->pages_placed, 0);
	atomic64_set(&s->place_exist, 0);
	for (i = 0; i < VMIG_HIST_BUCKETS; i++)
		atomic64_set(&s->wait_hist[i], 0);
	atomic64_set(&s->pages_discarded, 0);
	atomic64_set(&s->nowait_placed, 0);
	atomic64_set(&s->nowait_fallbacks, 0);
	atomic64_set(&s->sink_sent, 0);
	atomic64_set(&s->sink_unsent, 0);
}

static long vmig_region_get_stats(struct vmig_region *r, void __user *argp)
{
	struct vmig_stats st;

	vmig_region_stats_fill(r, &st);
	mutex_lock(&r->dirty.lock);
	st.dirty_on = r->dirty.on;
	st.dirty_flags = r->dirty.flags;
	mutex_unlock(&r->dirty.lock);
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

long vmig_region_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct vmig_region *r = vmig_file_region(file);
	void __user *argp = (void __user *)arg;

	if (!r)
		return -ENODEV;
	/* A file opened read-only may look, not change (see the uapi). */
	if (cmd != VMIG_GET_STATS && !(file->f_mode & FMODE_WRITE))
		return -EBADF;
	switch (cmd) {
	case VMIG_GET_STATS:
		return vmig_region_get_stats(r, argp);
	case VMIG_DIRTY_ENABLE:
	case VMIG_DIRTY_DISABLE:
	case VMIG_GET_DIRTY_LOG:
	case VMIG_CLEAR_DIRTY_LOG:
		return vmig_dirty_ioctl(r, cmd, argp);
	case VMIG_PLACE:
	case VMIG_PLACE_BATCH:
	case VMIG_ABORT:
	case VMIG_POSTCOPY_ENABLE:
	case VMIG_POSTCOPY_DISABLE:
	case VMIG_DISCARD:
	case VMIG_REQUEUE:
	case VMIG_POSTCOPY_SET_SINK:
		return vmig_postcopy_ioctl(r, cmd, argp);
	default:
		return -ENOTTY;
	}
}

/* Reading takes requests off the queue: it needs a file open for writing. */
ssize_t vmig_region_read(struct file *file, char __user *buf, size_t count,
			 loff_t *ppos)
{
	struct vmig_region *r = vmig_file_region(file);

	if (!r)
		return -EINVAL;
	if (!(file->f_mode & FMODE_WRITE))
		return -EBADF;
	return vmig_postcopy_read(r, file, buf, count);
}

__poll_t vmig_region_poll(struct file *file, poll_table *wait)
{
	struct vmig_region *r = vmig_file_region(file);

	if (!r)
		return EPOLLERR;
	return vmig_postcopy_poll(r, file, wait);
}

/*
 * May the user @uid (or an administrator: @admin) see @r's data (netlink)?
 * Its owner may.
 */
bool vmig_region_visible(struct vmig_region *r, kuid_t uid, bool admin)
{
	return admin || uid_eq(r->user->uid, uid);
}

/* Charge the region's pages to its user's RLIMIT_MEMLOCK (see the top). */
static int vmig_region_account(struct vmig_region *r)
{
	unsigned long limit, cur, new;

	if (capable(CAP_IPC_LOCK))
		return 0;
	limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	cur = atomic_long_read(&r->user->locked_vm);
	do {
		new = cur + r->npages;
		if (new < cur || new > limit)
			return -ENOMEM;
	} while (!atomic_long_try_cmpxchg(&r->user->locked_vm, &cur, new));
	r->locked_pages = r->npages;
	return 0;
}

static void vmig_region_unaccount(struct vmig_region *r)
{
	atomic_long_sub(r->locked_pages, &r->user->locked_vm);
	r->locked_pages = 0;
}

/* Under vmig_regions_lock: may r's user list one more region? */
static bool vmig_region_user_may_add(struct vmig_region *r)
{
	unsigned int cap = READ_ONCE(vmig_max_regions_per_user);
	struct vmig_region *pos;
	unsigned int n = 0;

	lockdep_assert_held(&vmig_regions_lock);
	if (!cap || capable(CAP_SYS_RESOURCE))
		return true;
	list_for_each_entry(pos, &vmig_regions, node)
		if (pos->user == r->user && ++n >= cap)
			return false;
	return true;
}

/* The region's last fd and mapping are gone: free everything but its inode. */
void vmig_region_destroy(struct vmig_region *r)
{
	bool listed;

	mutex_lock(&vmig_regions_lock);
	listed = !list_empty(&r->node);
	list_del_init(&r->node);
	mutex_unlock(&vmig_regions_lock);
	if (listed)
		vmig_nl_event_region(r, false);
	vmig_postcopy_destroy(r);
	vmig_dirty_destroy(r);
	ida_free(&vmig_region_ida, r->id);
	atomic64_sub(r->size, &vmig_reserved_bytes);
	atomic64_dec(&vmig_region_count);
	vmig_region_unaccount(r);
	mem_cgroup_put(r->memcg);
	free_uid(r->user);
	kfree(r);
}

static int vmig_region_release(struct inode *inode, struct file *file)
{
	struct vmig_region *r = vmig_file_region(file);

	/* No mapping is left: free the pages now rather than at evict. */
	truncate_inode_pages(inode->i_mapping, 0);
	inode->i_private = NULL;
	/*
	 * alloc_anon_inode() leaves the inode off the superblock's inode
	 * list, so at unmount (module unload) nothing would find a reference
	 * that outlives the file, such as an inotify watch placed through
	 * /proc/self/fd: the unmount would wait for it forever.  Listed, it
	 * has its watches dropped there.  Only now: a listed inode's pages
	 * are fair game for drop_caches, and these have just gone.
	 */
	inode_sb_list_add(inode);
	vmig_region_destroy(r);
	/* The file keeps its own reference to the mount until __fput ends. */
	simple_release_fs(&vmig_mnt, &vmig_mnt_count);
	return 0;
}

/*
 * Each close of a descriptor of the region, by any process: the request
 * sink ends with the process that attached it (sink.c).
 */
int vmig_region_flush(struct file *file, fl_owner_t id)
{
	struct vmig_region *r = vmig_file_region(file);

	if (r)
		vmig_sink_flush(r);
	return 0;
}

static const struct file_operations vmig_region_fops = {
	.owner		= THIS_MODULE,
	.release	= vmig_region_release,
	.flush		= vmig_region_flush,
	.mmap		= vmig_region_mmap,
	.unlocked_ioctl	= vmig_region_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.read		= vmig_region_read,
	.poll		= vmig_region_poll,
	.llseek		= noop_llseek,
};

static bool vmig_reserve(u64 size)
{
	s64 cap = vmig_max_region_bytes;

	if (atomic64_add_return(size, &vmig_reserved_bytes) <= cap)
		return true;
	atomic64_sub(size, &vmig_reserved_bytes);
	return false;
}

/**
 * vmig_region_new - make a region whose pages live in @inode's mapping
 * @inode:	a fresh inode of vmig's pseudo filesystem or of a vmigfs
 *		mount, with no region yet
 * @size:	bytes, non-zero and page aligned
 * @flags:	VMIG_REGION_*
 *
 * Reserves @size under the module's cap, sets up the inode's mapping and
 * size, lists the region and announces it; the region is published in
 * i_private last, so whoever finds it there finds it whole.
 *
 * Return: the region, or ERR_PTR(-ENOSPC) when @size does not fit under
 * the cap, -ENOMEM.
 */
struct vmig_region *vmig_region_new(struct inode *inode, u64 size, u32 flags)
{
	struct vmig_region *r, *pos;
	int err;

	if (size > vmig_max_region_bytes || !vmig_reserve(size))
		return ERR_PTR(-ENOSPC);

	err = -ENOMEM;
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		goto err_unreserve;
	r->size = size;
	r->npages = size >> PAGE_SHIFT;
	r->flags = flags;
	INIT_LIST_HEAD(&r->node);
	r->user = get_current_user();
	err = vmig_region_account(r);
	if (err)
		goto err_free;
	r->memcg = get_mem_cgroup_from_mm(current->mm);
	err = ida_alloc(&vmig_region_ida, GFP_KERNEL);
	if (err < 0)
		goto err_unaccount;
	r->id = err;

	err = vmig_dirty_init(r);
	if (err)
		goto err_ida;
	err = vmig_postcopy_init(r);
	if (err)
		goto err_dirty;

	inode->i_mapping->a_ops = &vmig_region_aops;
	mapping_set_unevictable(inode->i_mapping);
	i_size_write(inode, r->size);
	r->inode = inode;

	mutex_lock(&vmig_regions_lock);
	/* Counted and listed under one lock: no two creates both fit. */
	if (!vmig_region_user_may_add(r)) {
		mutex_unlock(&vmig_regions_lock);
		i_size_write(inode, 0);
		r->inode = NULL;
		err = -EMFILE;
		goto err_postcopy;
	}
	/* Sorted by id, so a netlink dump can resume where it stopped. */
	list_for_each_entry(pos, &vmig_regions, node)
		if (pos->id > r->id)
			break;
	list_add_tail(&r->node, &pos->node);
	mutex_unlock(&vmig_regions_lock);
	atomic64_inc(&vmig_region_count);
	vmig_nl_event_region(r, true);
	/* Pairs with vmig_file_region(). */
	smp_store_release(&inode->i_private, r);
	return r;

err_postcopy:
	vmig_postcopy_destroy(r);
err_dirty:
	vmig_dirty_destroy(r);
err_ida:
	ida_free(&vmig_region_ida, r->id);
err_unaccount:
	mem_cgroup_put(r->memcg);
	vmig_region_unaccount(r);
err_free:
	free_uid(r->user);
	kfree(r);
err_unreserve:
	atomic64_sub(size, &vmig_reserved_bytes);
	return ERR_PTR(err);
}

/**
 * vmig_region_create - make an anonymous region and return an fd for it
 * @arg: validated by the caller (size non-zero and page aligned, flags known)
 */
int vmig_region_create(const struct vmig_region_create *arg)
{
	unsigned int fd_flags = O_RDWR;
	struct vmig_region *r;
	struct inode *inode;
	struct file *file;
	int fd, err;

	/*
	 * Each region pins the pseudo filesystem (released in ->release), so
	 * it exists exactly while regions do and the module can unload when
	 * none is left.  While our pin holds, vmig_mnt does not change.
	 */
	err = simple_pin_fs(&vmig_fs_type, &vmig_mnt, &vmig_mnt_count);
	if (err)
		return err;
	inode = alloc_anon_inode(vmig_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		err = PTR_ERR(inode);
		goto err_unpin;
	}
	r = vmig_region_new(inode, arg->size, arg->flags);
	if (IS_ERR(r)) {
		err = PTR_ERR(r);
		/* The ABI of VMIG_CREATE_REGION says -ENOMEM for the cap. */
		if (err == -ENOSPC)
			err = -ENOMEM;
		goto err_inode;
	}

	if (arg->flags & VMIG_REGION_NONBLOCK)
		fd_flags |= O_NONBLOCK;
	/*
	 * The file pins the module (its final fput drops this reference
	 * through fops_put), so the module outlives every mapping.
	 */
	__module_get(THIS_MODULE);
	file = alloc_file_pseudo(inode, vmig_mnt, "[vmig-region]", fd_flags,
				 &vmig_region_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		err = PTR_ERR(file);
		goto err_region;
	}
	file->private_data = r;

	fd = get_unused_fd_flags(arg->flags & VMIG_REGION_CLOEXEC ? O_CLOEXEC : 0);
	if (fd < 0) {
		/* fput runs ->release, which undoes everything above. */
		fput(file);
		return fd;
	}
	fd_install(fd, file);
	return fd;

err_region:
	truncate_inode_pages(inode->i_mapping, 0);
	inode->i_private = NULL;
	vmig_region_destroy(r);
err_inode:
	iput(inode);
err_unpin:
	simple_release_fs(&vmig_mnt, &vmig_mnt_count);
	return err;
}

void vmig_region_exit(void)
{
	ida_destroy(&vmig_region_ida);
}
