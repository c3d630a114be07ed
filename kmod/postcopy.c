// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: the missing-page service (postcopy destination side).
 *
 * Not implemented yet: a fault on a missing page of a postcopy region
 * gets SIGBUS, and the region has no requests to read.
 */
#include <linux/poll.h>

#include "vmig.h"

int vmig_postcopy_init(struct vmig_region *r)
{
	spin_lock_init(&r->pc.lock);
	init_waitqueue_head(&r->pc.readq);
	return 0;
}

void vmig_postcopy_destroy(struct vmig_region *r)
{
}

vm_fault_t vmig_postcopy_fault(struct vmig_region *r, struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

long vmig_postcopy_ioctl(struct vmig_region *r, unsigned int cmd,
			 void __user *argp)
{
	return -ENOTTY;
}

ssize_t vmig_postcopy_read(struct vmig_region *r, struct file *file,
			   char __user *buf, size_t count)
{
	return -EINVAL;
}

__poll_t vmig_postcopy_poll(struct vmig_region *r, struct file *file,
			    poll_table *wait)
{
	return EPOLLERR;
}
