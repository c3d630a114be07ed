// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Register guest RAM for write-protect tracking, in the VMM's process; the
 * userfaultfd creation and span registration uffd_missing.c shares.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd_compat.h"
#include "uffd_track.h"

int uffd_create(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	/*
	 * Kernel-mode faults too where this process may: KVM writes guest RAM
	 * through get_user_pages, and a user-mode-only uffd fails its fault on
	 * a write-protected page (KVM_RUN returns EFAULT) instead of waiting
	 * for the helper to resolve it; a VMM's read() into missing guest RAM
	 * faults in kernel mode too.  Otherwise user-mode faults only.
	 */
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 && errno == EPERM)
		fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int uffd_track_register(const struct uffd_span *spans, unsigned int n, enum vmig_track mode,
			enum vmig_track *chosen)
{
	uint64_t features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
	int fd;

	if (mode == VMIG_TRACK_AUTO) {
		struct vmig_uffd_info info;

		if (vmig_uffd_probe(&info))
			return -EOPNOTSUPP;
		mode = info.wp_async && info.pagemap_scan ? VMIG_TRACK_ASYNC : VMIG_TRACK_SYNC;
	}
	if (mode == VMIG_TRACK_ASYNC)
		features |= UFFD_FEATURE_WP_ASYNC;
	fd = uffd_register_spans(uffd_create(features), spans, n, UFFDIO_REGISTER_MODE_WP, 0);
	if (fd < 0)
		return fd;
	*chosen = mode;
	return fd;
}

int uffd_register_spans(int fd, const struct uffd_span *spans, unsigned int n,
			uint64_t mode, uint64_t ioctls)
{
	unsigned int i;

	if (fd < 0)
		return fd;
	for (i = 0; i < n; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)spans[i].addr, .len = spans[i].size },
			.mode = mode,
		};
		int err = ioctl(fd, UFFDIO_REGISTER, &reg) ? -errno : 0;

		if (!err && (reg.ioctls & ioctls) != ioctls)
			err = -EOPNOTSUPP;
		if (err) {
			uffd_track_unregister(fd, spans, i);
			return err;
		}
	}
	return fd;
}

void uffd_track_unregister(int uffd, const struct uffd_span *spans, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct uffdio_range r = { .start = (uintptr_t)spans[i].addr, .len = spans[i].size };

		ioctl(uffd, UFFDIO_UNREGISTER, &r);
	}
	close(uffd);
}
