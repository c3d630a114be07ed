// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Postcopy on the destination: register guest RAM for MISSING faults, in
 * the VMM's process (the mapping the vCPUs fault on).  The uffd goes to
 * the helper, which reads the faults and places pages with UFFDIO_COPY.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd_compat.h"
#include "uffd_track.h"

static int uffd_open(int flags)
{
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_MISSING_SHMEM };
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | flags);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int uffd_missing_register(const struct uffd_span *spans, unsigned int n)
{
	unsigned int i;
	int fd;

	/*
	 * Kernel-mode faults too (a VMM's read() into guest RAM) where this
	 * process may; otherwise only its own user-mode accesses.
	 */
	fd = uffd_open(0);
	if (fd == -EPERM)
		fd = uffd_open(UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return fd;
	for (i = 0; i < n; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uintptr_t)spans[i].addr, .len = spans[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		int err = ioctl(fd, UFFDIO_REGISTER, &reg) ? -errno : 0;

		if (!err && !(reg.ioctls & (1ull << _UFFDIO_COPY)))
			err = -EOPNOTSUPP;
		if (err) {
			uffd_track_unregister(fd, spans, i);
			return err;
		}
	}
	return fd;
}
