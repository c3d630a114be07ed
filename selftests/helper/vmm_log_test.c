// SPDX-License-Identifier: GPL-2.0
/*
 * The VMM's own dirty log (lib/vmm_proto.h: TRACK {VMIG_TRACK_VMM},
 * DIRTY_QUERY, DIRTY_LOG; vmig_vmm_set_dirty_log): a VMM whose log is a
 * bitmap of its own (as KVM's would be) hands the helper exactly the pages
 * written since the last harvest, as runs; errors reach the helper; the
 * log is turned off when the session ends; a VMM without a log, or one
 * that hands over a bitmap it could still shrink, is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kselftest_harness.h"
#include "test_vmm.h"
#include "../../lib/vmm_proto.h"

#define RAM_SIZE	(4 << 20)
#define PAGES		(RAM_SIZE / 4096)

/* The VMM's log: one bit per page the "vCPUs" wrote. */
struct soft_log {
	struct test_vmm *v;
	_Atomic uint64_t bits[PAGES / 64];
	atomic_int starts, collects, stops;
	int fail;			/* collect returns this */
};

static int soft_start(void *opaque)
{
	struct soft_log *l = opaque;
	unsigned int i;

	for (i = 0; i < PAGES / 64; i++)
		atomic_store(&l->bits[i], 0);
	atomic_fetch_add(&l->starts, 1);
	return 0;
}

static int soft_collect(void *opaque, unsigned int region, uint64_t *bitmap, uint64_t pages)
{
	struct soft_log *l = opaque;
	unsigned int i;

	atomic_fetch_add(&l->collects, 1);
	if (l->fail)
		return l->fail;
	if (region || pages != PAGES)
		return -EINVAL;
	for (i = 0; i < PAGES / 64; i++)
		bitmap[i] = atomic_exchange(&l->bits[i], 0);
	return 0;
}

static void soft_stop(void *opaque)
{
	atomic_fetch_add(&((struct soft_log *)opaque)->stops, 1);
}

static const struct vmig_dirty_log_ops soft_ops = {
	.start = soft_start, .collect = soft_collect, .stop = soft_stop,
};

static void guest_write(struct soft_log *l, uint64_t page)
{
	l->v->ram[page * 4096] ^= 1;
	atomic_fetch_or(&l->bits[page / 64], 1ull << (page % 64));
}

/* What a harvest handed over: a bitmap, and the number of runs. */
struct got {
	uint64_t bits[PAGES / 64];
	unsigned int runs;
	int bad;			/* a run outside region 0, or a page twice */
};

static int take(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct got *g = arg;
	uint64_t p;

	g->runs++;
	if (region || !n || first + n > PAGES) {
		g->bad++;
		return 0;
	}
	for (p = first; p < first + n; p++) {
		if (g->bits[p / 64] & (1ull << (p % 64)))
			g->bad++;
		g->bits[p / 64] |= 1ull << (p % 64);
	}
	return 0;
}

FIXTURE(log) {
	struct test_vmm v;
	struct soft_log l;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
};

FIXTURE_SETUP(log)
{
	memset(&self->l, 0, sizeof(self->l));
	ASSERT_EQ(0, test_vmm_start(&self->v, "vmmlog", VMIG_ROLE_SOURCE, RAM_SIZE));
	self->l.v = &self->v;
	/* Before any helper connects: its HELLO then offers the log. */
	vmig_vmm_set_dirty_log(self->v.vmm, &soft_ops, &self->l);
	self->ctl = vmig_ctl_connect(self->v.path, 5000);
	ASSERT_NE(NULL, self->ctl);
	self->ram = vmig_ram_open_uffd(self->ctl);
	ASSERT_NE(NULL, self->ram);
}

FIXTURE_TEARDOWN(log)
{
	vmig_ram_close(self->ram);
	vmig_ctl_close(self->ctl);
	test_vmm_stop(&self->v);
}

TEST_F(log, the_helper_gets_exactly_the_pages_written_since_the_last_harvest)
{
	static const uint64_t first[] = { 0, 1, 2, 63, 64, 65, 500, 1000, 1023 };
	static const uint64_t second[] = { 3, 64, 700, 701, 702, 703 };
	struct got g;
	unsigned int i;

	EXPECT_TRUE(vmig_ctl_dirty_log_offered(self->ctl));
	ASSERT_EQ(0, vmig_ram_track_start(self->ram, VMIG_TRACK_VMM, 5000));
	EXPECT_STREQ("vmm", vmig_ram_track_name(self->ram));
	EXPECT_EQ(1, atomic_load(&self->l.starts));

	for (i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		guest_write(&self->l, first[i]);
	memset(&g, 0, sizeof(g));
	ASSERT_EQ(0, vmig_ram_harvest(self->ram, take, &g));
	EXPECT_EQ(0, g.bad);
	for (i = 0; i < sizeof(first) / sizeof(first[0]); i++)
		EXPECT_TRUE(g.bits[first[i] / 64] & (1ull << (first[i] % 64)));
	/* 0-2, 63-65, 500, 1000, 1023: contiguous pages come as one run. */
	EXPECT_EQ(5u, g.runs);

	memset(&g, 0, sizeof(g));
	ASSERT_EQ(0, vmig_ram_harvest(self->ram, take, &g));
	EXPECT_EQ(0u, g.runs);			/* nothing written since */

	for (i = 0; i < sizeof(second) / sizeof(second[0]); i++)
		guest_write(&self->l, second[i]);
	memset(&g, 0, sizeof(g));
	ASSERT_EQ(0, vmig_ram_harvest(self->ram, take, &g));
	EXPECT_EQ(3u, g.runs);
	EXPECT_EQ(0, g.bad);
	for (i = 0; i < sizeof(second) / sizeof(second[0]); i++)
		EXPECT_TRUE(g.bits[second[i] / 64] & (1ull << (second[i] % 64)));
	EXPECT_FALSE(g.bits[0] & 1);		/* page 0: harvested already */
	EXPECT_EQ(3, atomic_load(&self->l.collects));
	/* The VMM re-arms what it reports: nothing for the sender to do. */
	EXPECT_EQ(0, vmig_ram_prepare_send(self->ram, 0, 0, 512, g.bits));
	EXPECT_EQ(-ENOTSUP, vmig_ram_redirtied(self->ram, &(uint64_t){ 0 }));
}

TEST_F(log, a_failing_collect_reaches_the_helper)
{
	struct got g = { 0 };

	ASSERT_EQ(0, vmig_ram_track_start(self->ram, VMIG_TRACK_VMM, 5000));
	guest_write(&self->l, 7);
	self->l.fail = -EFAULT;
	EXPECT_EQ(-EFAULT, vmig_ram_harvest(self->ram, take, &g));
}

TEST_F(log, the_log_is_turned_off_when_the_helper_goes)
{
	ASSERT_EQ(0, vmig_ram_track_start(self->ram, VMIG_TRACK_VMM, 5000));
	vmig_ram_close(self->ram);
	vmig_ctl_close(self->ctl);
	self->ram = NULL;
	self->ctl = NULL;
	EXPECT_EQ(1, test_wait_count(&self->v.hangups, 1));
	EXPECT_EQ(1, atomic_load(&self->l.stops));
}

TEST(a_vmm_without_a_log_is_refused)
{
	struct test_vmm v;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;

	ASSERT_EQ(0, test_vmm_start(&v, "vmmnolog", VMIG_ROLE_SOURCE, RAM_SIZE));
	ctl = vmig_ctl_connect(v.path, 5000);
	ASSERT_NE(NULL, ctl);
	EXPECT_FALSE(vmig_ctl_dirty_log_offered(ctl));
	ram = vmig_ram_open_uffd(ctl);
	ASSERT_NE(NULL, ram);
	EXPECT_EQ(-EOPNOTSUPP, vmig_ram_track_start(ram, VMIG_TRACK_VMM, 5000));
	/* The session goes on: the usual tracking still works. */
	EXPECT_EQ(0, vmig_ram_track_start(ram, VMIG_TRACK_AUTO, 5000));
	vmig_ram_close(ram);
	vmig_ctl_close(ctl);
	test_vmm_stop(&v);
}

/* A VMM in the test's hands: its RAM's memfd, and a listening socket at path. */
static int fake_vmm(const char *path, int *lsock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int memfd = memfd_create("fake", MFD_CLOEXEC);

	if (memfd < 0 || ftruncate(memfd, RAM_SIZE))
		return -1;
	*lsock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, path);
	unlink(path);
	if (bind(*lsock, (struct sockaddr *)&sa, sizeof(sa)) || listen(*lsock, 1))
		return -1;
	return memfd;
}

struct hostile {
	int lsock, memfd, seal;		/* seal: 0: none; 1: sealed but the wrong size */
};

static void *hostile_main(void *arg)
{
	struct hostile *h = arg;
	struct {
		struct vmm_hello h;
		struct vmm_region_desc r;
	} hello = { .h = { .version = VMM_PROTO_VERSION, .role = VMIG_ROLE_SOURCE,
			   .pid = 1, .nr_regions = 1 }, .r = { .size = RAM_SIZE } };
	struct vmm_tracking rep = { .mode = VMIG_TRACK_VMM };
	struct vmm_msg m;
	int c = accept(h->lsock, NULL, NULL), bm;

	if (c < 0)
		return NULL;
	vmm_msg_send_flags(c, VMM_HELLO, VMM_HELLO_DIRTY_LOG, &hello, sizeof(hello),
			   &h->memfd, 1);
	if (!vmm_msg_recv(c, &m, 5000) && m.hdr.type == VMM_TRACK) {
		/* The right size, unsealed; or sealed, one page of bitmap short. */
		bm = memfd_create("bm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (ftruncate(bm, h->seal ? PAGES / 8 - 8 : PAGES / 8) == 0 && h->seal)
			fcntl(bm, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
		vmm_msg_send(c, VMM_TRACKING, &rep, sizeof(rep), &bm, 1);
		close(bm);
		/* It would shrink the bitmap under the helper's reads now. */
		vmm_msg_recv(c, &m, 2000);
	}
	close(c);
	return NULL;
}

/*
 * Attack: a VMM that hands over a bitmap it can still shrink (the helper
 * would take SIGBUS reading it), or one of the wrong size.  Refused.
 */
TEST(a_bitmap_the_vmm_could_shrink_or_of_the_wrong_size_is_refused)
{
	char path[108];
	int seal;

	for (seal = 0; seal < 2; seal++) {
		struct hostile h = { .seal = seal };
		struct vmig_ctl *ctl;
		struct vmig_ram *ram;
		pthread_t t;

		snprintf(path, sizeof(path), "/tmp/vmig-hostlog-%d.sock", getpid());
		h.memfd = fake_vmm(path, &h.lsock);
		ASSERT_GE(h.memfd, 0);
		ASSERT_EQ(0, pthread_create(&t, NULL, hostile_main, &h));
		ctl = vmig_ctl_connect(path, 5000);
		ASSERT_NE(NULL, ctl);
		EXPECT_TRUE(vmig_ctl_dirty_log_offered(ctl));
		ram = vmig_ram_open_uffd(ctl);
		ASSERT_NE(NULL, ram);
		EXPECT_EQ(-EPROTO, vmig_ram_track_start(ram, VMIG_TRACK_VMM, 5000));
		EXPECT_EQ(VMIG_TRACK_AUTO, vmig_ram_track_mode(ram));
		vmig_ram_close(ram);
		vmig_ctl_close(ctl);
		pthread_join(t, NULL);
		close(h.lsock);
		close(h.memfd);
		unlink(path);
	}
}

/* DIRTY_QUERY before the log was granted: a protocol error, the VMM hangs up. */
TEST(a_dirty_query_without_the_log_on_ends_the_session)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct test_vmm v;
	struct soft_log l = { .v = &v };
	struct vmm_msg m;
	unsigned int i;
	int sock;

	ASSERT_EQ(0, test_vmm_start(&v, "vmmlogq", VMIG_ROLE_SOURCE, RAM_SIZE));
	vmig_vmm_set_dirty_log(v.vmm, &soft_ops, &l);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	strcpy(sa.sun_path, v.path);
	ASSERT_EQ(0, connect(sock, (struct sockaddr *)&sa, sizeof(sa)));
	ASSERT_EQ(0, vmm_msg_recv(sock, &m, 5000));
	ASSERT_EQ(VMM_HELLO, m.hdr.type);
	EXPECT_TRUE(m.hdr.flags & VMM_HELLO_DIRTY_LOG);
	for (i = 0; i < m.hdr.nfds; i++)
		close(m.fds[i]);
	ASSERT_EQ(0, vmm_msg_send(sock, VMM_DIRTY_QUERY, NULL, 0, NULL, 0));
	EXPECT_EQ(-ECONNRESET, vmm_msg_recv(sock, &m, 5000));
	EXPECT_EQ(0, atomic_load(&l.collects));
	EXPECT_EQ(1, test_wait_count(&v.hangups, 1));
	close(sock);
	test_vmm_stop(&v);
}

TEST_HARNESS_MAIN
