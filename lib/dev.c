// SPDX-License-Identifier: LGPL-2.1-or-later
/* The /dev/vmig device: open and query. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "libvmig.h"

int vmig_dev_open(void)
{
	int fd = open("/dev/vmig", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int vmig_dev_query(int dev_fd, struct vmig_dev_info *info)
{
	struct vmig_api api;

	memset(&api, 0, sizeof(api));
	if (ioctl(dev_fd, VMIG_GET_API, &api))
		return -errno;
	memset(info, 0, sizeof(*info));
	info->api_version = api.version;
	info->features = api.features;
	info->page_size = api.page_size;
	info->max_region_bytes = api.max_region_bytes;
	return 0;
}
