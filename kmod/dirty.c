// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: dirty logging (precopy source side).
 *
 * Not implemented yet: the region keeps its hooks so writes already pass
 * through vmig_dirty_note_write().
 */
#include "vmig.h"

int vmig_dirty_init(struct vmig_region *r)
{
	mutex_init(&r->dirty.lock);
	return 0;
}

void vmig_dirty_destroy(struct vmig_region *r)
{
	mutex_destroy(&r->dirty.lock);
}

void vmig_dirty_note_write(struct vmig_region *r, pgoff_t index)
{
}

long vmig_dirty_ioctl(struct vmig_region *r, unsigned int cmd,
		      void __user *argp)
{
	return -ENOTTY;
}
