// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for what a hostile peer sends outside the page stream
 * (stream_fuzz.c has that): whatever bytes arrive, each parser returns an
 * error or succeeds, never crashes, reads out of bounds, leaks, or grows
 * without bound.  The first byte picks the parser:
 *   0 device state: DEVICES, then DEVSTATE chunks (devstate_recv.c)
 *   1 the preempt channel on the destination (postcopy_fault.c)
 *   2 the return path on the source: REQ (postcopy_src.c)
 *   3 RECEIVED / DONE on the source after RESUME (recovery.c)
 *   4 a connection's opening on the destination: channel header, HELLO or
 *     RESUME (admit.c; no authentication is configured here, as a fuzzer
 *     cannot answer a fresh nonce's challenge)
 *   5 a control-socket request line (recovery.c)
 * The helper files with the static functions under test are included
 * here; the library calls they make are stubbed below (a guest of two
 * regions, two devices), and the postcopy backend is one whose placing
 * always succeeds (lib/ram_postcopy.c over fuzz_pc_ops).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../helper/dest/devstate_recv.c"
#include "../../helper/dest/postcopy_dst.c"
#include "../../helper/dest/postcopy_fault.c"
#include "../../helper/dest/postcopy_place.c"
#include "../../helper/dest/postcopy_stats.c"
#include "../../helper/source/postcopy_src.c"
#include "../../helper/session/recovery.c"
#include "admit.h"
#include "auth.h"
#include "ram.h"

#define GUEST_PAGES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t region_pages[2] = { GUEST_PAGES, GUEST_PAGES / 2 };
static uint8_t ram[2][GUEST_PAGES * WIRE_PAGE_SIZE];
static const struct vmig_dev_desc devs[2] = {
	{ .name = "nic0", .instance = 0, .size = 1 << 20 },
	{ .name = "disk", .instance = 1, .size = 1 << 20 },
};

/* --- stubs: the library behind the helper -------------------------------- */
unsigned int vmig_ram_region_count(const struct vmig_ram *r)
{
	(void)r;
	return 2;
}

uint64_t vmig_ram_region_pages(const struct vmig_ram *r, unsigned int region)
{
	(void)r;
	return region < 2 ? region_pages[region] : 0;
}

void *vmig_ram_page(struct vmig_ram *r, unsigned int region, uint64_t page)
{
	(void)r;
	return ram[region] + page * WIRE_PAGE_SIZE;
}

/* No file behind these pages: the helper reads them through vmig_ram_page(). */
int vmig_ram_read_page(struct vmig_ram *r, unsigned int region, uint64_t page, void *buf)
{
	(void)r;
	(void)region;
	(void)page;
	(void)buf;
	return -ENOTSUP;
}

int vmig_ram_for_each_data(struct vmig_ram *r, unsigned int region, vmig_range_fn fn,
			   void *arg)
{
	(void)r;
	return fn(arg, region, 0, region_pages[region]);
}

int vmig_ctl_query_devices(struct vmig_ctl *ctl, int timeout_ms)
{
	(void)ctl;
	(void)timeout_ms;
	return 0;
}

unsigned int vmig_ctl_device_count(const struct vmig_ctl *ctl)
{
	(void)ctl;
	return 2;
}

const struct vmig_dev_desc *vmig_ctl_device(const struct vmig_ctl *ctl, unsigned int i)
{
	(void)ctl;
	return &devs[i];
}

int vmig_ctl_device_open(struct vmig_ctl *ctl, unsigned int i, bool load)
{
	(void)ctl;
	(void)i;
	(void)load;
	return -ENODEV;		/* a load fails: the receiver must stop cleanly */
}

int send_chan_queue_front(struct send_chan *c, uint32_t region, uint64_t first, uint64_t n)
{
	(void)c;
	(void)region;
	(void)first;
	(void)n;
	return 0;
}

static int fuzz_pc_place(struct vmig_ram *r, unsigned int region, uint64_t page,
			 const void *src)
{
	(void)r, (void)region, (void)page, (void)src;
	return 0;
}

static const struct ram_pc_ops fuzz_pc_ops = { .place = fuzz_pc_place };
static const struct ram_ops fuzz_ram_ops = { .name = "fuzz", .pc = &fuzz_pc_ops };
static struct vmig_ram fuzz_ram = {
	.ops = &fuzz_ram_ops, .role = VMIG_ROLE_DEST, .nr_regions = 2,
	.regions = { { .pages = GUEST_PAGES }, { .pages = GUEST_PAGES / 2 } },
};

/* --- the targets ------------------------------------------------------------ */
static void fuzz_devstate(struct stream *s)
{
	struct devstate_recv ds;
	struct wire_pkt_hdr h;

	/* No waiting for room: a full buffer fails at once. */
	if (devstate_recv_init(&ds, NULL, 16 << 10, 1, 0))
		return;
	if (!devstate_recv_setup(&ds, s))
		while (!stream_recv_hdr(s, &h) && h.type == WIRE_PKT_DEVSTATE &&
		       !devstate_recv_chunk(&ds, s, h.len))
			;
	devstate_recv_cancel(&ds);
	devstate_recv_destroy(&ds);
}

static void fuzz_preempt(struct stream *s)
{
	static const struct dest_mem mem = { .nr_regions = 2, .base = { ram[0], ram[1] },
					     .pages = { GUEST_PAGES, GUEST_PAGES / 2 } };
	static uint8_t buf[WIRE_MAX_BATCH * WIRE_PAGE_SIZE];
	struct pc_dst *pc = malloc(sizeof(*pc));
	bool ended = false;
	unsigned int i;

	if (!pc || pcd_init(pc, &mem, &fuzz_ram, true, 0)) {
		free(pc);
		return;
	}
	/* Pages 0..15 of region 0 are requested; the even ones arrived already. */
	for (i = 0; i < 16; i++) {
		pc->pend[i] = (struct pcd_pending){ .region = 0, .page = i, .t_ns = 1 };
		if (!(i & 1))
			set_bits(pc->recv[0], i, 1, true);
	}
	atomic_store(&pc->npend, 16);
	pc->pre = *s;
	while (!ended && !handle_preempt(pc, buf, &ended))
		;
	pcd_destroy(pc);
	free(pc);
}

static void fuzz_return_path(struct stream *s)
{
	struct pc_src ps;

	pcs_init(&ps, true, 0, URGENT_NORMAL, false);
	ps.rp = *s;
	stream_init_mem(&ps.pre, NULL, 0);	/* what it sends goes nowhere */
	while (!serve_one(&ps))
		;
	pct_close(&ps.trace);
}

static int count_range(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	uint64_t *sum = arg;

	if (region >= 2 || first + n > region_pages[region])
		abort();
	*sum += n;
	return 0;
}

static void fuzz_received(struct stream *s)
{
	uint64_t *bm[WIRE_MAX_REGIONS] = { 0 }, sum = 0;

	if (!rec_recv_bitmap(s, NULL, bm))
		rec_missing_data(NULL, bm, count_range, &sum);
	rec_free_bitmap(bm);
}

static void fuzz_opening(struct stream *s)
{
	struct admitted c;

	memset(&c, 0, sizeof(c));
	c.s = *s;
	admit_read_opening(&c);
}

static void fuzz_ctl_line(const uint8_t *data, size_t size)
{
	char line[300], to[256];

	if (size >= sizeof(line))
		size = sizeof(line) - 1;
	memcpy(line, data, size);
	line[size] = 0;
	if (!rec_ctl_parse(line, to, sizeof(to)) && strlen(to) >= sizeof(to))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stream s;

	if (!size)
		return 0;
	stream_init_mem(&s, data + 1, size - 1);
	switch (data[0] % 6) {
	case 0: fuzz_devstate(&s); break;
	case 1: fuzz_preempt(&s); break;
	case 2: fuzz_return_path(&s); break;
	case 3: fuzz_received(&s); break;
	case 4: fuzz_opening(&s); break;
	case 5: fuzz_ctl_line(data + 1, size - 1); break;
	}
	return 0;
}
