// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: the /dev/vmig device and the module's parameters.
 *
 * The device only answers questions about the module and creates regions;
 * everything else happens on region fds (region.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "vmig.h"

static unsigned long max_region_mb;
module_param(max_region_mb, ulong, 0444);
MODULE_PARM_DESC(max_region_mb,
		 "Cap on the memory all regions together may reserve, in MiB (0: the machine's RAM)");

/*
 * Per-user limits.  A region's pages are unevictable like mlock()ed memory,
 * so its size is charged, when it is created, to the creator's user
 * (user->locked_vm, the counter io_uring's registered buffers use) against
 * the creator's RLIMIT_MEMLOCK, unless it has CAP_IPC_LOCK; its pages are
 * charged to the creator's memory cgroup (region.c).  The count of regions
 * is capped per user here, so one user cannot use up the ids and the
 * module's bookkeeping.
 */
unsigned int vmig_max_regions_per_user = 1024;
module_param_named(max_regions_per_user, vmig_max_regions_per_user, uint, 0644);
MODULE_PARM_DESC(max_regions_per_user,
		 "Most regions one user may hold at once; CAP_SYS_RESOURCE is exempt (0: no cap)");

unsigned long vmig_max_region_bytes;
atomic64_t vmig_reserved_bytes = ATOMIC64_INIT(0);
atomic64_t vmig_pages_allocated = ATOMIC64_INIT(0);
atomic64_t vmig_region_count = ATOMIC64_INIT(0);

/* Each concern adds its VMIG_FEATURE_* bits. */
#define VMIG_FEATURES	(VMIG_FEATURE_DIRTY_LOG | VMIG_FEATURE_MANUAL_PROTECT | \
			 VMIG_FEATURE_INITIALLY_SET | VMIG_FEATURE_HWDIRTY | \
			 VMIG_FEATURE_POSTCOPY | VMIG_FEATURE_PLACE_BATCH | \
			 VMIG_FEATURE_NETLINK | VMIG_FEATURE_POSTCOPY_MODE | \
			 VMIG_FEATURE_REGIONFS | VMIG_FEATURE_REQUEUE | \
			 VMIG_FEATURE_DIRTY_LOG_FINAL | VMIG_FEATURE_NOWAIT_WAIT | \
			 VMIG_FEATURE_REQ_SINK)
const u64 vmig_features = VMIG_FEATURES;

static long vmig_get_api(void __user *argp)
{
	struct vmig_api api;

	memset(&api, 0, sizeof(api));
	api.version = VMIG_API_VERSION;
	api.features = VMIG_FEATURES;
	api.page_size = PAGE_SIZE;
	api.max_region_bytes = vmig_max_region_bytes;
	return copy_to_user(argp, &api, sizeof(api)) ? -EFAULT : 0;
}

static long vmig_get_global_stats(void __user *argp)
{
	struct vmig_global_stats st;

	memset(&st, 0, sizeof(st));
	st.regions = atomic64_read(&vmig_region_count);
	st.reserved_bytes = atomic64_read(&vmig_reserved_bytes);
	st.pages_allocated = atomic64_read(&vmig_pages_allocated);
	st.max_region_bytes = vmig_max_region_bytes;
	return copy_to_user(argp, &st, sizeof(st)) ? -EFAULT : 0;
}

static long vmig_create_region(void __user *argp)
{
	struct vmig_region_create arg;

	if (copy_from_user(&arg, argp, sizeof(arg)))
		return -EFAULT;
	if (arg.reserved || arg.reserved2[0] || arg.reserved2[1])
		return -EINVAL;
	if (arg.flags & ~VMIG_REGION_FLAGS_ALL)
		return -EINVAL;
	if (!arg.size || !PAGE_ALIGNED(arg.size))
		return -EINVAL;
	return vmig_region_create(&arg);
}

static long vmig_dev_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case VMIG_GET_API:
		return vmig_get_api(argp);
	case VMIG_CREATE_REGION:
		return vmig_create_region(argp);
	case VMIG_GET_GLOBAL_STATS:
		return vmig_get_global_stats(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vmig_dev_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= vmig_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice vmig_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "vmig",
	.fops	= &vmig_dev_fops,
};

static int __init vmig_init(void)
{
	int err;

	if (max_region_mb)
		vmig_max_region_bytes = max_region_mb << 20;
	else
		vmig_max_region_bytes = totalram_pages() << PAGE_SHIFT;

	err = vmig_sink_init();
	if (err)
		return err;
	err = vmig_nl_init();
	if (err)
		goto err_sink;
	err = misc_register(&vmig_misc);
	if (err)
		goto err_nl;
	err = vmig_regionfs_init();
	if (err)
		goto err_misc;
	pr_info("version %s loaded, region cap %lu MiB\n", VMIG_MOD_VERSION,
		vmig_max_region_bytes >> 20);
	return 0;

err_misc:
	misc_deregister(&vmig_misc);
err_nl:
	vmig_nl_exit();
err_sink:
	vmig_sink_exit();
	return err;
}

static void __exit vmig_exit(void)
{
	vmig_regionfs_exit();
	misc_deregister(&vmig_misc);
	vmig_nl_exit();
	vmig_region_exit();
	vmig_sink_exit();
	WARN_ON(atomic64_read(&vmig_pages_allocated));
	pr_info("unloaded\n");
}

module_init(vmig_init);
module_exit(vmig_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Guest-RAM regions with dirty logging and postcopy page service for VM live migration");
MODULE_AUTHOR("The vmig developers");
MODULE_VERSION(VMIG_MOD_VERSION);
