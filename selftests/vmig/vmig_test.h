/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for the vmig module selftests, so each test reads like what it
 * proves: "create a region, map it twice, write through one, read the
 * other".  They abort the test (via the harness's ASSERT_*) on setup
 * failures, which are never what a test is about.
 */
#ifndef VMIG_TEST_H
#define VMIG_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/vmig.h>

#define VMIG_DEV "/dev/vmig"

static inline long vmig_page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* Open /dev/vmig; -errno on failure. */
static inline int vmig_dev_open(void)
{
	int fd = open(VMIG_DEV, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

/* Create a region of @size bytes with @flags on @dev; -errno on failure. */
static inline int vmig_region_new(int dev, uint64_t size, uint32_t flags)
{
	struct vmig_region_create c = { .size = size, .flags = flags };
	int fd = ioctl(dev, VMIG_CREATE_REGION, &c);

	return fd < 0 ? -errno : fd;
}

/* Map @len bytes of region @fd at @offset, shared; NULL on failure. */
static inline void *vmig_region_map(int fd, size_t len, off_t offset)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

	return p == MAP_FAILED ? NULL : p;
}

static inline int vmig_global_stats(int dev, struct vmig_global_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(dev, VMIG_GET_GLOBAL_STATS, st) ? -errno : 0;
}

static inline int vmig_region_stats(int fd, struct vmig_stats *st)
{
	memset(st, 0, sizeof(*st));
	return ioctl(fd, VMIG_GET_STATS, st) ? -errno : 0;
}

/* Unload vmig.ko; -errno on failure (e.g. -EWOULDBLOCK while in use). */
static inline int vmig_module_unload(void)
{
	return syscall(SYS_delete_module, "vmig", O_NONBLOCK) ? -errno : 0;
}

/* Load the module again from $VMIG_KO; -errno on failure. */
static inline int vmig_module_load(void)
{
	const char *ko = getenv("VMIG_KO");
	int fd, ret;

	if (!ko)
		return -ENOENT;
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = syscall(SYS_finit_module, fd, "", 0) ? -errno : 0;
	close(fd);
	return ret;
}

/* vmig.ko's parameter @name: set it to @v (0 or -errno). */
static inline int vmig_param_write(const char *name, unsigned long v)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/vmig/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	ret = fprintf(f, "%lu\n", v) > 0 ? 0 : -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

/* vmig.ko's parameter @name: its value, or -errno. */
static inline long vmig_param_read(const char *name)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/vmig/parameters/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (fscanf(f, "%ld", &v) != 1)
		v = -EIO;
	fclose(f);
	return v;
}

#endif /* VMIG_TEST_H */
