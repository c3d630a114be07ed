// SPDX-License-Identifier: LGPL-2.1-or-later
/* Guest RAM: the backend-independent part. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "ram.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int ram_map_regions(struct vmig_ram *ram, struct vmig_ctl *ctl)
{
	int prot = PROT_READ;
	unsigned int i;

	ram->role = vmig_ctl_role(ctl);
	if (ram->role == VMIG_ROLE_DEST)
		prot |= PROT_WRITE;
	ram->ctl = ctl;
	for (i = 0; i < vmig_ctl_region_count(ctl); i++) {
		struct ram_region *r = &ram->regions[i];
		uint64_t size;
		void *p;

		vmig_ctl_region(ctl, i, &r->fd, &size, &r->vmm_addr);
		if (!size || size % RAM_PAGE_SIZE)
			return -EINVAL;
		p = mmap(NULL, size, prot, MAP_SHARED, r->fd, 0);
		if (p == MAP_FAILED)
			return -errno;
		r->base = p;
		r->pages = size >> RAM_PAGE_SHIFT;
		ram->nr_regions = i + 1;
	}
	return 0;
}

static void ram_unmap_regions(struct vmig_ram *ram)
{
	unsigned int i;

	for (i = 0; i < ram->nr_regions; i++)
		munmap(ram->regions[i].base, ram->regions[i].pages << RAM_PAGE_SHIFT);
	ram->nr_regions = 0;
}

struct vmig_ram *ram_new(const struct ram_ops *ops, size_t priv_size)
{
	struct vmig_ram *ram = calloc(1, sizeof(*ram));
	void *priv = calloc(1, priv_size);

	if (!ram || !priv) {
		free(ram);
		free(priv);
		errno = ENOMEM;
		return NULL;
	}
	ram->ops = ops;
	ram->priv = priv;
	return ram;
}

struct vmig_ram *ram_open_regions(struct vmig_ram *ram, struct vmig_ctl *ctl)
{
	int ret = ram_map_regions(ram, ctl);

	if (ret) {
		vmig_ram_close(ram);
		errno = -ret;
		return NULL;
	}
	return ram;
}

int ram_region_of(const struct vmig_ram *ram, uint64_t addr, uint64_t *page)
{
	unsigned int i;

	for (i = 0; i < ram->nr_regions; i++) {
		const struct ram_region *r = &ram->regions[i];

		if (addr >= r->vmm_addr && addr - r->vmm_addr < (r->pages << RAM_PAGE_SHIFT)) {
			*page = (addr - r->vmm_addr) >> RAM_PAGE_SHIFT;
			return i;
		}
	}
	return -1;
}

const char *vmig_ram_backend(const struct vmig_ram *ram)
{
	return ram->ops->name;
}

unsigned int vmig_ram_region_count(const struct vmig_ram *ram)
{
	return ram->nr_regions;
}

uint64_t vmig_ram_region_pages(const struct vmig_ram *ram, unsigned int region)
{
	return region < ram->nr_regions ? ram->regions[region].pages : 0;
}

uint64_t vmig_ram_page_size(const struct vmig_ram *ram)
{
	(void)ram;
	return RAM_PAGE_SIZE;
}

int ram_for_each_run(const uint64_t *bm, uint64_t pages, unsigned int region,
		     vmig_range_fn fn, void *arg)
{
	uint64_t p = 0, first;
	int r;

	while (p < pages) {
		if (!(bm[p / 64] >> (p % 64))) {	/* the rest of this word is clean */
			p = (p / 64 + 1) * 64;
			continue;
		}
		if (!(bm[p / 64] >> (p % 64) & 1)) {
			p++;
			continue;
		}
		for (first = p; p < pages && (bm[p / 64] >> (p % 64) & 1); p++)
			;
		r = fn(arg, region, first, p - first);
		if (r)
			return r;
	}
	return 0;
}

/*
 * VMIG_TRACK_VMM, on any backend: the VMM's own dirty log.  The backend
 * tracks nothing; the VMM re-arms what it reports before it answers, so a
 * harvest needs no prepare_send.
 */
static int vmm_log_start(struct vmig_ram *ram, int timeout_ms)
{
	size_t len = 0;
	unsigned int i;
	struct stat st;
	void *p;
	int fd;

	for (i = 0; i < ram->nr_regions; i++)
		len += (ram->regions[i].pages + 63) / 64 * 8;
	fd = vmig_ctl_track(ram->ctl, VMIG_TRACK_VMM, timeout_ms, &ram->mode);
	if (fd < 0)
		return fd == -EINVAL ? -EOPNOTSUPP : fd;	/* a VMM from before */
	/* The VMM sealed its size; anything else would let it fault us later. */
	if (fstat(fd, &st) || (uint64_t)st.st_size != (len ? len : 8) ||
	    (fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
	    (F_SEAL_SHRINK | F_SEAL_GROW)) {
		close(fd);
		ram->mode = VMIG_TRACK_AUTO;
		return -EPROTO;
	}
	p = mmap(NULL, len ? len : 8, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		ram->mode = VMIG_TRACK_AUTO;
		return -errno;
	}
	ram->vmm_log = p;
	ram->vmm_log_len = len ? len : 8;
	ram->vmm_log_timeout_ms = timeout_ms;
	return 0;
}

static int vmm_log_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg)
{
	const uint64_t *bm = ram->vmm_log;
	uint64_t t0 = now_ns();
	unsigned int i;
	int r;

	r = vmig_ctl_dirty_log(ram->ctl, ram->vmm_log_timeout_ms);
	if (r)
		return r;
	for (i = 0; i < ram->nr_regions; i++) {
		uint64_t pages = ram->regions[i].pages;

		r = ram_for_each_run(bm, pages, i, fn, arg);
		if (r)
			return r;
		bm += (pages + 63) / 64;
	}
	ram->stats.harvests++;
	ram->stats.harvest_ns += now_ns() - t0;
	return 0;
}

int vmig_ram_track_start(struct vmig_ram *ram, enum vmig_track mode, int timeout_ms)
{
	if (vmig_ctl_role(ram->ctl) != VMIG_ROLE_SOURCE)
		return -EINVAL;
	if (mode == VMIG_TRACK_VMM)
		return ram->mode == VMIG_TRACK_AUTO ? vmm_log_start(ram, timeout_ms) : -EBUSY;
	return ram->ops->track_start(ram, mode, timeout_ms);
}

enum vmig_track vmig_ram_track_mode(const struct vmig_ram *ram)
{
	return ram->mode;
}

/* Holes of the memfd were never written: SEEK_DATA skips them. */
int vmig_ram_for_each_data(struct vmig_ram *ram, unsigned int region, vmig_range_fn fn,
			   void *arg)
{
	const struct ram_region *r = &ram->regions[region];
	off_t end = r->pages << RAM_PAGE_SHIFT, pos = 0;

	if (region >= ram->nr_regions)
		return -EINVAL;
	if (ram->ops->for_each_data)
		return ram->ops->for_each_data(ram, region, fn, arg);
	while (pos < end) {
		off_t data = lseek(r->fd, pos, SEEK_DATA), hole;
		int ret;

		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(r->fd, data, SEEK_HOLE);
		if (hole < 0 || hole > end)
			hole = end;
		data &= ~(off_t)(RAM_PAGE_SIZE - 1);
		hole = (hole + RAM_PAGE_SIZE - 1) & ~(off_t)(RAM_PAGE_SIZE - 1);
		ret = fn(arg, region, data >> RAM_PAGE_SHIFT, (hole - data) >> RAM_PAGE_SHIFT);
		if (ret)
			return ret;
		pos = hole;
	}
	return 0;
}

static int ram_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg, bool final)
{
	if (ram->mode == VMIG_TRACK_AUTO)
		return -EINVAL;
	if (ram->mode == VMIG_TRACK_VMM)
		return vmm_log_harvest(ram, fn, arg);
	return ram->ops->harvest(ram, fn, arg, final);
}

int vmig_ram_harvest(struct vmig_ram *ram, vmig_range_fn fn, void *arg)
{
	return ram_harvest(ram, fn, arg, false);
}

int vmig_ram_harvest_final(struct vmig_ram *ram, vmig_range_fn fn, void *arg)
{
	return ram_harvest(ram, fn, arg, true);
}

int vmig_ram_prepare_send(struct vmig_ram *ram, unsigned int region, uint64_t first,
			  uint64_t num_pages, const uint64_t *bitmap)
{
	if (!ram->ops->prepare_send || ram->mode == VMIG_TRACK_VMM)
		return 0;
	if (region >= ram->nr_regions || first % 64 || !num_pages ||
	    first > ram->regions[region].pages ||
	    num_pages > ram->regions[region].pages - first ||
	    (num_pages % 64 && first + num_pages != ram->regions[region].pages))
		return -EINVAL;
	return ram->ops->prepare_send(ram, region, first, num_pages, bitmap);
}

const char *vmig_ram_track_name(const struct vmig_ram *ram)
{
	if (ram->mode == VMIG_TRACK_VMM)
		return "vmm";
	if (ram->ops->track_name)
		return ram->ops->track_name(ram);
	return ram->mode == VMIG_TRACK_ASYNC ? "async" :
	       ram->mode == VMIG_TRACK_SYNC ? "sync" : "none";
}

void *vmig_ram_page(struct vmig_ram *ram, unsigned int region, uint64_t page)
{
	if (region >= ram->nr_regions || page >= ram->regions[region].pages)
		return NULL;
	return ram->regions[region].base + (page << RAM_PAGE_SHIFT);
}

int vmig_ram_read_page(struct vmig_ram *ram, unsigned int region, uint64_t page, void *buf)
{
	struct ram_region *r;
	ssize_t n;

	if (region >= ram->nr_regions || page >= ram->regions[region].pages)
		return -EINVAL;
	r = &ram->regions[region];
	if (!ram->ops->read_file || __atomic_load_n(&r->no_read, __ATOMIC_RELAXED))
		return -ENOTSUP;
	do
		n = pread(r->fd, buf, RAM_PAGE_SIZE, (off_t)(page << RAM_PAGE_SHIFT));
	while (n < 0 && errno == EINTR);
	if (n == RAM_PAGE_SIZE)
		return 0;
	/* Not a file pread can read, or shorter than mapped: the mapping it is. */
	__atomic_store_n(&r->no_read, true, __ATOMIC_RELAXED);
	return -ENOTSUP;
}

int vmig_ram_place(struct vmig_ram *ram, unsigned int region, uint64_t page,
		   const void *src, uint64_t num_pages)
{
	if (region >= ram->nr_regions || page > ram->regions[region].pages ||
	    num_pages > ram->regions[region].pages - page)
		return -EINVAL;
	return ram->ops->place(ram, region, page, src, num_pages);
}

int vmig_ram_prefault(struct vmig_ram *ram)
{
	unsigned int i;

	for (i = 0; i < ram->nr_regions; i++) {
		struct ram_region *r = &ram->regions[i];

		if (madvise(r->base, r->pages << RAM_PAGE_SHIFT, MADV_POPULATE_WRITE) &&
		    fallocate(r->fd, 0, 0, r->pages << RAM_PAGE_SHIFT))
			return -errno;
	}
	return 0;
}

void vmig_ram_stats(const struct vmig_ram *ram, struct vmig_ram_stats *st)
{
	*st = ram->stats;
}

int vmig_ram_redirtied(struct vmig_ram *ram, uint64_t *pages)
{
	if (ram->mode == VMIG_TRACK_VMM)
		return -ENOTSUP;
	return ram->ops->redirtied ? ram->ops->redirtied(ram, pages) : -ENOTSUP;
}

int vmig_ram_pages_protected(struct vmig_ram *ram, uint64_t *pages)
{
	return ram->ops->pages_protected ? ram->ops->pages_protected(ram, pages) : -ENOTSUP;
}

void vmig_ram_close(struct vmig_ram *ram)
{
	if (!ram)
		return;
	if (ram->vmm_log)
		munmap((void *)ram->vmm_log, ram->vmm_log_len);
	ram->ops->close(ram);
	ram_unmap_regions(ram);
	free(ram);
}

int ram_place_copy(struct vmig_ram *ram, unsigned int region, uint64_t page,
		   const void *src, uint64_t num_pages)
{
	uint8_t *dst = ram->regions[region].base + (page << RAM_PAGE_SHIFT);

	if (src)
		memcpy(dst, src, num_pages << RAM_PAGE_SHIFT);
	else
		memset(dst, 0, num_pages << RAM_PAGE_SHIFT);
	return 0;
}
