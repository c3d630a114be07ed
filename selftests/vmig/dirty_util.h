/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Dirty-logging helpers for the module selftests and the benchmark: each
 * wraps one ioctl and returns 0 or -errno, so tests read as "enable,
 * write, harvest, expect the bits".
 */
#ifndef VMIG_DIRTY_UTIL_H
#define VMIG_DIRTY_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/vmig.h>

static inline int vmig_dirty_enable(int fd, uint32_t flags)
{
	struct vmig_dirty_enable en = { .flags = flags };

	return ioctl(fd, VMIG_DIRTY_ENABLE, &en) ? -errno : 0;
}

static inline int vmig_dirty_disable(int fd)
{
	return ioctl(fd, VMIG_DIRTY_DISABLE) ? -errno : 0;
}

/* GET pages [first, first + num) into @bm; *dirty gets the count. */
static inline int vmig_dirty_get(int fd, uint64_t first, uint64_t num,
				 uint64_t *bm, uint64_t *dirty)
{
	struct vmig_dirty_log log = {
		.first_page = first, .num_pages = num,
		.bitmap = (uintptr_t)bm,
	};
	int ret = ioctl(fd, VMIG_GET_DIRTY_LOG, &log) ? -errno : 0;

	if (dirty)
		*dirty = log.dirty;
	return ret;
}

static inline int vmig_dirty_clear(int fd, uint64_t first, uint64_t num,
				   const uint64_t *bm, uint64_t *cleared)
{
	struct vmig_dirty_log log = {
		.first_page = first, .num_pages = num,
		.bitmap = (uintptr_t)bm,
	};
	int ret = ioctl(fd, VMIG_CLEAR_DIRTY_LOG, &log) ? -errno : 0;

	if (cleared)
		*cleared = log.dirty;
	return ret;
}

/*
 * One precopy round's harvest of the whole region: GET, and with
 * MANUAL_PROTECT also CLEAR what GET returned, so that afterwards the
 * pages set in @bm may be copied.
 */
static inline int vmig_dirty_harvest(int fd, uint32_t flags, uint64_t npages,
				     uint64_t *bm, uint64_t *dirty)
{
	int ret = vmig_dirty_get(fd, 0, npages, bm, dirty);

	if (ret || !(flags & VMIG_DIRTY_MANUAL_PROTECT))
		return ret;
	return vmig_dirty_clear(fd, 0, npages, bm, NULL);
}

static inline int vmig_bit(const uint64_t *bm, uint64_t i)
{
	return (bm[i / 64] >> (i % 64)) & 1;
}

static inline void vmig_set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static inline uint64_t vmig_bm_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

#endif /* VMIG_DIRTY_UTIL_H */
