// SPDX-License-Identifier: LGPL-2.1-or-later
/* What this kernel's userfaultfd offers, asked without side effects. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "libvmig.h"
#include "uffd_compat.h"

static int uffd_open(void)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);

	if (fd < 0 && errno == EINVAL)	/* kernels before UFFD_USER_MODE_ONLY */
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* PAGEMAP_SCAN exists if the ioctl is known: a zero-length scan succeeds. */
static bool pagemap_scan_works(void)
{
	struct pm_scan_arg arg;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	ok = ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;
	close(fd);
	return ok;
}

int vmig_uffd_probe(struct vmig_uffd_info *info)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd = uffd_open();

	memset(info, 0, sizeof(*info));
	if (fd < 0)
		return fd;
	/* With features 0 the kernel answers with everything it supports. */
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	info->api = api.api;
	info->features = api.features;
	info->missing_shmem = api.features & UFFD_FEATURE_MISSING_SHMEM;
	info->wp_shmem = api.features & UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	info->wp_async = api.features & UFFD_FEATURE_WP_ASYNC;
	info->pagemap_scan = pagemap_scan_works();
	return 0;
}
