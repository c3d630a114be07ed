// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Guest RAM at a postcopy destination: the arguments checked, then the
 * backend's ram_pc_ops (lib/ram_uffd_postcopy.c, lib/ram_kmod_postcopy.c).
 */
#include <errno.h>

#include <linux/vmig.h>

#include "ram.h"

static const struct ram_pc_ops *pc_ops(const struct vmig_ram *ram)
{
	return ram->role == VMIG_ROLE_DEST ? ram->ops->pc : NULL;
}

static bool in_range(const struct vmig_ram *ram, unsigned int region, uint64_t first,
		     uint64_t n)
{
	return region < ram->nr_regions && first <= ram->regions[region].pages &&
	       n <= ram->regions[region].pages - first;
}

int vmig_ram_postcopy_enable(struct vmig_ram *ram)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (!pc)
		return -ENOTSUP;
	return pc->enable ? pc->enable(ram) : 0;
}

int vmig_ram_postcopy_discard(struct vmig_ram *ram, unsigned int region, uint64_t first,
			      uint64_t n)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (!pc)
		return -ENOTSUP;
	if (!in_range(ram, region, first, n))
		return -ERANGE;
	return n ? pc->discard(ram, region, first, n) : 0;
}

int vmig_ram_postcopy_register(struct vmig_ram *ram, int timeout_ms)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	return pc ? pc->register_vmm(ram, timeout_ms) : -ENOTSUP;
}

int vmig_ram_postcopy_requeue(struct vmig_ram *ram)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	return pc ? pc->requeue(ram) : -ENOTSUP;
}

int vmig_ram_postcopy_fds(const struct vmig_ram *ram, int *fds, unsigned int max)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	return pc ? pc->fds(ram, fds, max) : -ENOTSUP;
}

int vmig_ram_postcopy_poll_error(const struct vmig_ram *ram, unsigned int i, short revents)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	return pc ? pc->poll_error(ram, i, revents) : -ENOTSUP;
}

int vmig_ram_postcopy_set_sink(struct vmig_ram *ram, int fd, const void *rec, uint32_t len,
			       uint32_t region_at, uint32_t page_at)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (!pc || !pc->set_sink)
		return -EOPNOTSUPP;
	if (fd >= 0 && (!rec || len < 8 || len > VMIG_SINK_RECORD_MAX ||
			region_at > len - 4 || page_at > len - 8))
		return -EINVAL;
	return pc->set_sink(ram, fd, rec, len, region_at, page_at);
}

int vmig_ram_postcopy_requests(struct vmig_ram *ram, struct vmig_ram_request *req,
			       unsigned int max)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (!pc)
		return -ENOTSUP;
	return max ? pc->requests(ram, req, max) : 0;
}

void vmig_ram_postcopy_wake(struct vmig_ram *ram, unsigned int region, uint64_t page)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (pc && pc->wake && in_range(ram, region, page, 1))
		pc->wake(ram, region, page);
}

int vmig_ram_postcopy_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
			    const void *src)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (!pc)
		return -ENOTSUP;
	if (!in_range(ram, region, page, 1))
		return -ERANGE;
	return pc->place(ram, region, page, src);
}

int vmig_ram_postcopy_place_batch(struct vmig_ram *ram, unsigned int region,
				  const uint64_t *pages, uint8_t *const *src, unsigned int n,
				  bool *placed)
{
	const struct ram_pc_ops *pc = pc_ops(ram);
	unsigned int i;

	if (!pc)
		return -ENOTSUP;
	for (i = 0; i < n; i++)
		if (!in_range(ram, region, pages[i], 1))
			return -ERANGE;
	return n ? pc->place_batch(ram, region, pages, src, n, placed) : 0;
}

void vmig_ram_postcopy_disable(struct vmig_ram *ram)
{
	const struct ram_pc_ops *pc = pc_ops(ram);

	if (pc && pc->disable)
		pc->disable(ram);
}
