// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Regions by path: files of a vmigfs mount (see "Regions by path" in
 * <linux/vmig.h>).  Plain VFS calls; these only add the checks and the
 * order that make a half-made region impossible to open by mistake.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "libvmig.h"

int vmig_regionfs_check(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs))
		return -errno;
	return sfs.f_type == VMIGFS_MAGIC;
}

/* Is the filesystem type known to the kernel (the module loaded)? */
static bool regionfs_registered(void)
{
	char line[128];
	bool found = false;
	FILE *f = fopen("/proc/filesystems", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = !strcmp(line, "nodev\tvmigfs\n");
	fclose(f);
	return found;
}

/* mkdir -p: @dir and any missing parent, 0755. */
static int mkdir_parents(const char *dir)
{
	char buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; ; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;

		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			return 0;
	}
}

int vmig_regionfs_mount(const char *dir)
{
	int err = vmig_regionfs_check(dir);

	if (err == 1)
		return 0;
	if (err == -ENOENT) {
		err = mkdir_parents(dir);
		if (err)
			return err;
	}
	if (!regionfs_registered()) {
		err = vmig_module_load(NULL, NULL);
		if (err && err != -EEXIST)
			return err;
	}
	return mount("vmigfs", dir, "vmigfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL) ? -errno : 0;
}

int vmig_region_file_create(const char *path, uint64_t size, mode_t mode,
			    uid_t uid, gid_t gid)
{
	int fd, err;

	if (!size || size > (uint64_t)LLONG_MAX)
		return -EINVAL;
	/* Nobody else may open it before its owner and mode are final. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	err = vmig_regionfs_check(path);
	if (err != 1) {
		err = err ? err : -ENOTTY;
		goto fail;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid))
		goto fail_errno;
	if (fchmod(fd, mode & 07777) || ftruncate(fd, (off_t)size))
		goto fail_errno;
	return fd;

fail_errno:
	err = -errno;
fail:
	unlink(path);
	close(fd);
	return err;
}

int vmig_region_file_remove(const char *path)
{
	int err = vmig_regionfs_check(path);

	if (err < 0)
		return err;
	if (!err)
		return -ENOTTY;
	return unlink(path) ? -errno : 0;
}
