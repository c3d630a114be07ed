// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The kmod backend: guest RAM is vmig.ko regions (the VMM creates them on
 * /dev/vmig and passes the fds as it passes memfds).  Dirty logging runs in
 * the module on the region fds; it needs nothing from the VMM.
 *
 * Modes (--dirty-mode):
 *   manual-init (default): MANUAL_PROTECT | INITIALLY_SET.  ENABLE is O(1)
 *	with every bit set.  The bulk stage takes those bits with one GET;
 *	each round GETs (fetch-and-clear, no page-table work), and the sender
 *	CLEARs (re-protects) each 2 MiB chunk just before it reads and sends
 *	it (vmig_ram_prepare_send).  Protection follows the sending, never
 *	runs ahead of it.
 *   manual: MANUAL_PROTECT.  ENABLE protects every page; then as above.
 *   protect: 0.  GET harvests and re-protects in one call.
 *   hwdirty: page-table dirty bits; GET reads and cleans them.
 *
 * THE RULE (<linux/vmig.h>): a page is read for sending only after the call
 * that re-armed its protection returned: ENABLE (bulk stage in manual and
 * protect modes), CLEAR (manual modes), GET (protect, hwdirty).
 *
 * Destination: the helper writes pages through its mapping (the region is
 * not a postcopy one), exactly as on memfds.
 *
 * Postcopy destination: lib/ram_kmod_postcopy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "clock.h"
#include "ram.h"

struct kmod_priv {
	enum vmig_dirty_mode dmode;
	bool enabled[VMM_MAX_REGIONS];
	bool initial_taken[VMM_MAX_REGIONS];	/* manual-init: the bulk GET ran */
	uint64_t *bm[VMM_MAX_REGIONS];		/* one harvest's bits */
	unsigned char *vec[VMM_MAX_REGIONS];	/* mincore() */
	bool no_final;				/* the module lacks VMIG_DIRTY_LOG_FINAL */
};

static const char *const mode_names[] = {
	[VMIG_DIRTY_MODE_MANUAL_INIT] = "manual-init",
	[VMIG_DIRTY_MODE_MANUAL] = "manual",
	[VMIG_DIRTY_MODE_PROTECT] = "protect",
	[VMIG_DIRTY_MODE_HWDIRTY] = "hwdirty",
};

static const char *const track_names[] = {
	[VMIG_DIRTY_MODE_MANUAL_INIT] = "kmod-manual-init",
	[VMIG_DIRTY_MODE_MANUAL] = "kmod-manual",
	[VMIG_DIRTY_MODE_PROTECT] = "kmod-protect",
	[VMIG_DIRTY_MODE_HWDIRTY] = "kmod-hwdirty",
};

static const char *const backend_names[] = {
	[VMIG_BACKEND_AUTO] = "auto",
	[VMIG_BACKEND_KMOD] = "kmod",
	[VMIG_BACKEND_UFFD] = "uffd",
};

const char *vmig_dirty_mode_name(enum vmig_dirty_mode m)
{
	return (unsigned int)m < 4 ? mode_names[m] : NULL;
}

int vmig_dirty_mode_parse(const char *s, enum vmig_dirty_mode *m)
{
	unsigned int i;

	for (i = 0; i < 4; i++) {
		if (!strcmp(s, mode_names[i])) {
			*m = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *vmig_backend_name(enum vmig_backend be)
{
	return (unsigned int)be < 3 ? backend_names[be] : NULL;
}

int vmig_backend_parse(const char *s, enum vmig_backend *be)
{
	unsigned int i;

	for (i = 0; i < 3; i++) {
		if (!strcmp(s, backend_names[i])) {
			*be = i;
			return 0;
		}
	}
	return -EINVAL;
}

int vmig_region_create(int dev_fd, uint64_t size)
{
	struct vmig_region_create rc = { .size = size, .flags = VMIG_REGION_CLOEXEC };
	int fd = ioctl(dev_fd, VMIG_CREATE_REGION, &rc);

	return fd < 0 ? -errno : fd;
}

bool vmig_fd_is_region(int fd)
{
	struct vmig_stats st;

	return !ioctl(fd, VMIG_GET_STATS, &st);
}

/* /dev/vmig, loading the module first if it is installed (or must be there). */
static int open_dev(bool must)
{
	struct vmig_module_status st;
	int fd = vmig_dev_open(), i, r;

	if (fd != -ENOENT)
		return fd;
	if (vmig_module_status(&st) || st.loaded || (!must && !st.installed[0]))
		return -ENODEV;
	r = vmig_module_load(NULL, NULL);
	if (r && r != -EEXIST)
		return must ? r : -ENODEV;
	/* devtmpfs/udev creates the node right after the load; give it a moment. */
	for (i = 0; i < 100; i++) {
		fd = vmig_dev_open();
		if (fd != -ENOENT)
			return fd;
		usleep(10000);
	}
	return -ENODEV;
}

int vmig_ram_create(enum vmig_backend be, uint64_t size, enum vmig_backend *chosen)
{
	int fd;

	if (be != VMIG_BACKEND_UFFD) {
		int dev = open_dev(be == VMIG_BACKEND_KMOD);

		if (dev >= 0) {
			fd = vmig_region_create(dev, size);
			close(dev);
			if (fd >= 0) {
				*chosen = VMIG_BACKEND_KMOD;
				return fd;
			}
		} else {
			fd = dev;
		}
		if (be == VMIG_BACKEND_KMOD)
			return fd;
	}
	fd = memfd_create("vmig-guest-ram", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, size)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*chosen = VMIG_BACKEND_UFFD;
	return fd;
}

static bool manual(const struct kmod_priv *p)
{
	return p->dmode == VMIG_DIRTY_MODE_MANUAL_INIT || p->dmode == VMIG_DIRTY_MODE_MANUAL;
}

/*
 * VMIG_GET_DIRTY_LOG of a whole region; final: VMIG_DIRTY_LOG_FINAL (a
 * module without it refuses the flag with -EINVAL: asked again without it).
 */
static int kmod_get(struct vmig_ram *ram, unsigned int reg, bool final)
{
	struct kmod_priv *p = ram->priv;
	struct vmig_dirty_log log = {
		.first_page = 0, .num_pages = ram->regions[reg].pages,
		.bitmap = (uintptr_t)p->bm[reg],
		.flags = final && !p->no_final ? VMIG_DIRTY_LOG_FINAL : 0,
	};

	while (ioctl(ram->regions[reg].fd, VMIG_GET_DIRTY_LOG, &log)) {
		if (errno == EINVAL && log.flags) {
			p->no_final = true;
			log.flags = 0;
			continue;
		}
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/* Call fn for each run of pages set in bm and (if vec) resident. */
static int for_each_run(const uint64_t *bm, const unsigned char *vec, uint64_t pages,
			unsigned int reg, vmig_range_fn fn, void *arg)
{
	uint64_t i = 0;

	while (i < pages) {
		uint64_t start;
		int ret;

		if (bm && !bm[i / 64]) {
			i = (i / 64 + 1) * 64;
			continue;
		}
		if ((bm && !(bm[i / 64] & (1ull << (i % 64)))) || (vec && !(vec[i] & 1))) {
			i++;
			continue;
		}
		start = i;
		while (i < pages && (!bm || (bm[i / 64] & (1ull << (i % 64)))) &&
		       (!vec || (vec[i] & 1)))
			i++;
		ret = fn(arg, reg, start, i - start);
		if (ret)
			return ret;
	}
	return 0;
}

static int kmod_track_start(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms)
{
	static const uint32_t flags[] = {
		[VMIG_DIRTY_MODE_MANUAL_INIT] = VMIG_DIRTY_MANUAL_PROTECT |
						VMIG_DIRTY_INITIALLY_SET,
		[VMIG_DIRTY_MODE_MANUAL] = VMIG_DIRTY_MANUAL_PROTECT,
		[VMIG_DIRTY_MODE_PROTECT] = 0,
		[VMIG_DIRTY_MODE_HWDIRTY] = VMIG_DIRTY_HWDIRTY,
	};
	struct kmod_priv *p = ram->priv;
	unsigned int i;

	(void)mode, (void)timeout_ms;	/* --track is the uffd backend's */
	for (i = 0; i < ram->nr_regions; i++) {
		struct vmig_dirty_enable en = { .flags = flags[p->dmode] };

		if (p->enabled[i])
			return -EBUSY;
		p->bm[i] = calloc((ram->regions[i].pages + 63) / 64, sizeof(uint64_t));
		if (!p->bm[i])
			return -ENOMEM;
		if (ioctl(ram->regions[i].fd, VMIG_DIRTY_ENABLE, &en))
			return -errno;
		p->enabled[i] = true;
	}
	ram->mode = VMIG_TRACK_SYNC;	/* "on"; the name says which */
	return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

struct populate_ctx {
	const struct ram_region *r;
	vmig_range_fn fn;
	void *arg;
};

/*
 * Map a run of resident pages into the helper's view in one call: a region
 * has no fault-around, so the senders would otherwise take one read fault
 * per page.  Best effort (kernels before 5.14 lack it).
 */
static int populate_run(void *arg, unsigned int reg, uint64_t first, uint64_t n)
{
	struct populate_ctx *pc = arg;

	madvise(pc->r->base + (first << RAM_PAGE_SHIFT), n << RAM_PAGE_SHIFT,
		MADV_POPULATE_READ);
	return pc->fn(pc->arg, reg, first, n);
}

/*
 * Pages holding data: the region's resident pages (mincore on the helper's
 * mapping sees the region's page cache; never-touched pages read as zero).
 * manual-init: the bulk stage is the first harvest, so take the initial
 * bits with it, or the first round would send every page again.
 */
static int kmod_for_each_data(struct vmig_ram *ram, unsigned int reg, vmig_range_fn fn,
			      void *arg)
{
	struct kmod_priv *p = ram->priv;
	const struct ram_region *r = &ram->regions[reg];
	const uint64_t *bm = NULL;
	int ret;

	if (!p->vec[reg]) {
		p->vec[reg] = malloc(r->pages);
		if (!p->vec[reg])
			return -ENOMEM;
	}
	if (p->enabled[reg] && p->dmode == VMIG_DIRTY_MODE_MANUAL_INIT &&
	    !p->initial_taken[reg]) {
		ret = kmod_get(ram, reg, false);
		if (ret)
			return ret;
		p->initial_taken[reg] = true;
		bm = p->bm[reg];
	}
	if (mincore(r->base, r->pages << RAM_PAGE_SHIFT, p->vec[reg]))
		return -errno;
	{
		struct populate_ctx pc = { .r = r, .fn = fn, .arg = arg };

		return for_each_run(bm, p->vec[reg], r->pages, reg, populate_run, &pc);
	}
}

static int kmod_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final)
{
	struct kmod_priv *p = ram->priv;
	uint64_t t0 = now_ns(), faults = 0;
	unsigned int reg;
	int ret = 0;

	for (reg = 0; reg < ram->nr_regions && !ret; reg++) {
		struct vmig_stats st;

		ret = kmod_get(ram, reg, final);
		if (!ret)
			ret = for_each_run(p->bm[reg], NULL, ram->regions[reg].pages, reg, fn, arg);
		if (!ioctl(ram->regions[reg].fd, VMIG_GET_STATS, &st))
			faults += st.write_faults;
	}
	ram->stats.harvests++;
	ram->stats.harvest_ns += now_ns() - t0;
	ram->stats.wp_faults = faults;
	return ret;
}

/* Manual modes: CLEAR (re-protect) the pages just before they are read. */
static int kmod_prepare_send(struct vmig_ram *ram, unsigned int reg, uint64_t first,
			     uint64_t n, const uint64_t *bitmap)
{
	struct kmod_priv *p = ram->priv;
	struct vmig_dirty_log log = { .first_page = first, .num_pages = n,
				      .bitmap = (uintptr_t)bitmap };

	if (!manual(p) || !p->enabled[reg])
		return 0;
	while (ioctl(ram->regions[reg].fd, VMIG_CLEAR_DIRTY_LOG, &log)) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

/*
 * The sum of one VMIG_GET_STATS counter (a member's offset in struct
 * vmig_stats) over the regions; only those logging when enabled_only.
 */
static int kmod_stat_sum(struct vmig_ram *ram, size_t field, bool enabled_only,
			 uint64_t *sum)
{
	const struct kmod_priv *p = ram->priv;
	unsigned int reg;

	*sum = 0;
	for (reg = 0; reg < ram->nr_regions; reg++) {
		struct vmig_stats st;
		uint64_t v;

		if (enabled_only && !p->enabled[reg])
			continue;
		if (ioctl(ram->regions[reg].fd, VMIG_GET_STATS, &st))
			return -errno;
		memcpy(&v, (const char *)&st + field, sizeof(v));
		*sum += v;
	}
	return 0;
}

/* manual-init: only CLEAR (just before sending) arms protection, so write faults are re-dirtied pages. */
static int kmod_redirtied(struct vmig_ram *ram, uint64_t *pages)
{
	struct kmod_priv *p = ram->priv;

	if (ram->mode == VMIG_TRACK_AUTO || p->dmode != VMIG_DIRTY_MODE_MANUAL_INIT)
		return -ENOTSUP;
	return kmod_stat_sum(ram, offsetof(struct vmig_stats, write_faults), true, pages);
}

static int kmod_pages_protected(struct vmig_ram *ram, uint64_t *pages)
{
	return kmod_stat_sum(ram, offsetof(struct vmig_stats, pages_protected), false, pages);
}

static const char *kmod_track_name(const struct vmig_ram *ram)
{
	const struct kmod_priv *p = ram->priv;

	return ram->mode == VMIG_TRACK_AUTO ? "none" : track_names[p->dmode];
}

static void kmod_close(struct vmig_ram *ram)
{
	struct kmod_priv *p = ram->priv;
	unsigned int i;

	for (i = 0; i < VMM_MAX_REGIONS; i++) {
		if (p->enabled[i])
			ioctl(ram->regions[i].fd, VMIG_DIRTY_DISABLE);
		free(p->bm[i]);
		free(p->vec[i]);
	}
	free(p);
}

static const struct ram_ops kmod_ops = {
	.name = "kmod",
	.track_start = kmod_track_start,
	.harvest = kmod_harvest,
	.place = ram_place_copy,
	.close = kmod_close,
	.for_each_data = kmod_for_each_data,
	.prepare_send = kmod_prepare_send,
	.track_name = kmod_track_name,
	.redirtied = kmod_redirtied,
	.pages_protected = kmod_pages_protected,
	.pc = &ram_kmod_pc_ops,
};

struct vmig_ram *vmig_ram_open_kmod(struct vmig_ctl *ctl, enum vmig_dirty_mode mode)
{
	struct vmig_ram *ram;
	struct kmod_priv *p;
	unsigned int i;

	if ((unsigned int)mode > VMIG_DIRTY_MODE_HWDIRTY) {
		errno = EINVAL;
		return NULL;
	}
	/* KVM's writes never set the PTE dirty bits hwdirty reads. */
	if (mode == VMIG_DIRTY_MODE_HWDIRTY && vmig_ctl_mirrored(ctl)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	for (i = 0; i < vmig_ctl_region_count(ctl); i++) {
		int fd;
		uint64_t size, addr;

		vmig_ctl_region(ctl, i, &fd, &size, &addr);
		if (!vmig_fd_is_region(fd)) {
			errno = EMEDIUMTYPE;
			return NULL;
		}
	}
	ram = ram_new(&kmod_ops, sizeof(*p));
	if (!ram)
		return NULL;
	p = ram->priv;
	p->dmode = mode;
	return ram_open_regions(ram, ctl);
}

struct vmig_ram *vmig_ram_open(struct vmig_ctl *ctl, enum vmig_backend be,
			       enum vmig_dirty_mode mode)
{
	unsigned int i, regions = 0, n = vmig_ctl_region_count(ctl);

	for (i = 0; i < n; i++) {
		int fd;
		uint64_t size, addr;

		vmig_ctl_region(ctl, i, &fd, &size, &addr);
		regions += vmig_fd_is_region(fd);
	}
	if (be == VMIG_BACKEND_AUTO)
		be = n && regions == n ? VMIG_BACKEND_KMOD : VMIG_BACKEND_UFFD;
	if ((be == VMIG_BACKEND_KMOD && regions != n) ||
	    (be == VMIG_BACKEND_UFFD && regions)) {
		errno = EMEDIUMTYPE;
		return NULL;
	}
	return be == VMIG_BACKEND_KMOD ? vmig_ram_open_kmod(ctl, mode) : vmig_ram_open_uffd(ctl);
}
