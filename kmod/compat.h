/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmig: the one place that knows which kernel it is built against.
 *
 * vmig.ko builds from one source tree for every kernel it supports
 * (tested: Debian 12's 6.1 and 6.12 LTS).  Code elsewhere calls the
 * helpers below and never tests LINUX_VERSION_CODE itself, so a new
 * kernel means a change here only.  Each helper names the kernel change
 * it hides.
 */
#ifndef _VMIG_COMPAT_H
#define _VMIG_COMPAT_H

#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/version.h>

/* The only test of the kernel's version; checkpatch allows it here alone. */
#define VMIG_KERNEL_AT_LEAST(major, minor) \
	(LINUX_VERSION_CODE >= KERNEL_VERSION(major, minor, 0))

/*
 * 6.3 made vma->vm_flags read-only: writers use vm_flags_set(), which
 * also write-locks the VMA for the per-VMA-lock fault path.
 */
static inline void vmig_vma_flags_set(struct vm_area_struct *vma,
				      vm_flags_t flags)
{
#if VMIG_KERNEL_AT_LEAST(6, 3)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/*
 * 6.3 made the page-cache lookups return ERR_PTR(-ENOENT) for a missing
 * page instead of NULL.  These return NULL, on every kernel.
 */
static inline struct folio *vmig_filemap_get_folio(struct address_space *mapping,
						   pgoff_t index)
{
	struct folio *folio = filemap_get_folio(mapping, index);

	return IS_ERR(folio) ? NULL : folio;
}

static inline struct folio *vmig_filemap_lock_folio(struct address_space *mapping,
						    pgoff_t index)
{
	struct folio *folio = filemap_lock_folio(mapping, index);

	return IS_ERR(folio) ? NULL : folio;
}

/*
 * Per-VMA locks (6.4, CONFIG_PER_VMA_LOCK): a fault may run holding only
 * its VMA's read lock (FAULT_FLAG_VMA_LOCK) instead of mmap_lock; file
 * faults do since 6.8 when the VMA has ->map_pages, as ours has.  A
 * handler that returns VM_FAULT_RETRY must have dropped whichever of the
 * two locks the fault holds (the kernel's release_fault_lock(), 6.7+).
 */
static inline bool vmig_fault_vma_locked(const struct vm_fault *vmf)
{
#if VMIG_KERNEL_AT_LEAST(6, 4)
	return vmf->flags & FAULT_FLAG_VMA_LOCK;
#else
	return false;
#endif
}

static inline void vmig_release_fault_lock(struct vm_fault *vmf)
{
#if VMIG_KERNEL_AT_LEAST(6, 4)
	if (vmf->flags & FAULT_FLAG_VMA_LOCK) {
		vma_end_read(vmf->vma);
		return;
	}
#endif
	mmap_read_unlock(vmf->vma->vm_mm);
}

/*
 * 6.3 passes the VFS's inode operations a struct mnt_idmap where 6.1
 * passed a struct user_namespace (setattr, create, inode_init_owner ...).
 */
#if VMIG_KERNEL_AT_LEAST(6, 3)
#define vmig_idmap		mnt_idmap
#else
#define vmig_idmap		user_namespace
#endif

/*
 * 6.6 and 6.7 put an inode's timestamps behind accessors;
 * simple_inode_init_ts() (6.7) sets all three to now.
 */
static inline void vmig_inode_touch(struct inode *inode)
{
#if VMIG_KERNEL_AT_LEAST(6, 7)
	simple_inode_init_ts(inode);
#else
	inode->i_atime = current_time(inode);
	inode->i_mtime = inode->i_atime;
	inode->i_ctime = inode->i_atime;
#endif
}

#endif /* _VMIG_COMPAT_H */
