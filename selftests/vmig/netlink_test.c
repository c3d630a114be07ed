// SPDX-License-Identifier: GPL-2.0
/*
 * The generic netlink family "vmig": module info, the region dump with the
 * right sizes and modes, events on region creation and destruction, strict
 * rejection of bad requests with an extended-ack message, CAP_NET_ADMIN for
 * the mutating command - and the vmig helper's `stats` and `monitor` on top
 * of it, when the helper is in the guest.
 */
#include <signal.h>
#include <sys/wait.h>

#include "vmig_test.h"
#include "vmig_nl.h"
#include "kselftest_harness.h"

#define VMIG_HELPER "/usr/bin/vmig"

/* What a dump saw of one region. */
struct seen_region {
	uint32_t id;
	uint64_t size;
	uint32_t flags;
	int dirty_on;
	int has_stats;
	uint64_t pages_present;
};

#define DUMP_MAX 512

struct dump_result {
	struct seen_region r[DUMP_MAX];
	int n;
	int out_of_order;
};

static int dump_cb(struct nlmsghdr *nlh, void *arg)
{
	struct dump_result *d = arg;
	struct seen_region *s;
	struct nlattr *a, *st;

	if (d->n == DUMP_MAX)
		return 0;
	s = &d->r[d->n];
	memset(s, 0, sizeof(*s));
	a = nlt_find(nlh, VMIG_A_REGION_ID);
	s->id = a ? nlt_attr_uint(a) : ~0U;
	a = nlt_find(nlh, VMIG_A_REGION_SIZE);
	s->size = a ? nlt_attr_uint(a) : 0;
	a = nlt_find(nlh, VMIG_A_REGION_FLAGS);
	s->flags = a ? nlt_attr_uint(a) : ~0U;
	a = nlt_find(nlh, VMIG_A_DIRTY_ON);
	s->dirty_on = a ? (int)nlt_attr_uint(a) : -1;
	st = nlt_find(nlh, VMIG_A_STATS);
	s->has_stats = st && nlt_find_nested(st, VMIG_STAT_WAIT_HIST) &&
		       nlt_find_nested(st, VMIG_STAT_WRITE_FAULTS);
	if (st) {
		a = nlt_find_nested(st, VMIG_STAT_PAGES_PRESENT);
		s->pages_present = a ? nlt_attr_uint(a) : ~0ULL;
	}
	if (d->n && d->r[d->n - 1].id >= s->id)
		d->out_of_order = 1;
	d->n++;
	return 0;
}

static struct seen_region *dump_find(struct dump_result *d, uint32_t id)
{
	int i;

	for (i = 0; i < d->n; i++)
		if (d->r[i].id == id)
			return &d->r[i];
	return NULL;
}

static int dump_regions(struct nlt *nl, struct dump_result *d)
{
	struct nlt_msg m;

	memset(d, 0, sizeof(*d));
	nlt_vmig_msg(nl, &m, VMIG_CMD_GET_REGION, NLM_F_DUMP);
	return nlt_talk(nl, &m, dump_cb, d);
}

/* The ids of regions are not told to their creator: find a new one by size. */
static uint32_t region_id_of_size(struct nlt *nl, uint64_t size)
{
	struct dump_result d;
	int i;

	if (dump_regions(nl, &d))
		return ~0U;
	for (i = 0; i < d.n; i++)
		if (d.r[i].size == size)
			return d.r[i].id;
	return ~0U;
}

FIXTURE(nl) {
	int dev;
	long ps;
	struct nlt nl;
};

FIXTURE_SETUP(nl)
{
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	self->ps = vmig_page_size();
	ASSERT_EQ(0, nlt_open(&self->nl));
}

FIXTURE_TEARDOWN(nl)
{
	nlt_close(&self->nl);
	close(self->dev);
}

static int info_cb(struct nlmsghdr *nlh, void *arg)
{
	uint64_t *v = arg;
	struct nlattr *a;

	a = nlt_find(nlh, VMIG_A_REGION_COUNT);
	v[0] = a ? nlt_attr_uint(a) : ~0ULL;
	a = nlt_find(nlh, VMIG_A_API_VERSION);
	v[1] = a ? nlt_attr_uint(a) : ~0ULL;
	a = nlt_find(nlh, VMIG_A_FEATURES);
	v[2] = a ? nlt_attr_uint(a) : 0;
	a = nlt_find(nlh, VMIG_A_MOD_VERSION);
	v[3] = a && a->nla_len > NLA_HDRLEN + 1;
	a = nlt_find(nlh, VMIG_A_STALL_THRESHOLD_NS);
	v[4] = !!a;
	return 0;
}

TEST_F(nl, family_has_the_events_group)
{
	EXPECT_NE(0, self->nl.family);
	EXPECT_NE(0, self->nl.events_grp);
}

TEST_F(nl, info_reports_version_features_and_region_count)
{
	struct vmig_global_stats gs;
	struct nlt_msg m;
	uint64_t v[5];
	int a, b;

	a = vmig_region_new(self->dev, self->ps, 0);
	b = vmig_region_new(self->dev, 2 * self->ps, 0);
	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &gs));
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_INFO, 0);
	ASSERT_EQ(0, nlt_talk(&self->nl, &m, info_cb, v));
	EXPECT_EQ(gs.regions, v[0]);
	EXPECT_LE(2, v[0]);
	EXPECT_EQ(VMIG_API_VERSION, v[1]);
	EXPECT_TRUE(v[2] & VMIG_FEATURE_NETLINK);
	EXPECT_TRUE(v[3]);
	EXPECT_TRUE(v[4]);
	close(a);
	close(b);
}

TEST_F(nl, dump_lists_every_region_with_its_size_and_mode)
{
	uint64_t sizes[3] = { 3 * self->ps, 17 * self->ps, 64 * self->ps };
	uint32_t flags[3] = { 0, VMIG_REGION_POSTCOPY, 0 };
	struct dump_result d;
	struct seen_region *s;
	int fd[3], i, found;
	char *p;

	for (i = 0; i < 3; i++) {
		fd[i] = vmig_region_new(self->dev, sizes[i], flags[i]);
		ASSERT_LE(0, fd[i]);
	}
	/* Touch 5 pages of the last region: pages_present must say 5. */
	p = vmig_region_map(fd[2], sizes[2], 0);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 5; i++)
		p[i * self->ps] = 1;

	ASSERT_EQ(0, dump_regions(&self->nl, &d));
	EXPECT_FALSE(d.out_of_order);
	for (i = 0; i < 3; i++) {
		uint32_t id = region_id_of_size(&self->nl, sizes[i]);

		s = dump_find(&d, id);
		ASSERT_NE(NULL, s) TH_LOG("region %d of %llu bytes not in the dump",
					  i, (unsigned long long)sizes[i]);
		EXPECT_EQ(sizes[i], s->size);
		EXPECT_EQ(flags[i], s->flags);
		EXPECT_EQ(0, s->dirty_on);
		EXPECT_TRUE(s->has_stats);
	}
	s = dump_find(&d, region_id_of_size(&self->nl, sizes[2]));
	ASSERT_NE(NULL, s);
	EXPECT_EQ(5, s->pages_present);

	munmap(p, sizes[2]);
	for (i = 0; i < 3; i++)
		close(fd[i]);
	ASSERT_EQ(0, dump_regions(&self->nl, &d));
	found = 0;
	for (i = 0; i < d.n; i++)
		found |= d.r[i].size == sizes[1];
	EXPECT_FALSE(found) TH_LOG("a closed region is still dumped");
}

/*
 * Enough regions that the dump needs several messages, with regions freed
 * in between so ids have holes: each one comes exactly once, in id order.
 */
#define LONG_DUMP 300
TEST_F(nl, long_dump_neither_repeats_nor_skips)
{
	static struct dump_result d;
	int fd[LONG_DUMP], i, mine;
	uint64_t base = 100;

	for (i = 0; i < LONG_DUMP; i++) {
		fd[i] = vmig_region_new(self->dev, (base + i) * self->ps, 0);
		ASSERT_LE(0, fd[i]);
	}
	for (i = 0; i < LONG_DUMP; i += 7) {
		close(fd[i]);
		fd[i] = -1;
	}
	ASSERT_EQ(0, dump_regions(&self->nl, &d));
	EXPECT_LT(2, self->nl.datagrams) TH_LOG("the dump fit one message: prove nothing");
	EXPECT_FALSE(d.out_of_order);
	mine = 0;
	for (i = 0; i < d.n; i++)
		if (d.r[i].size >= base * self->ps &&
		    d.r[i].size < (base + LONG_DUMP) * self->ps)
			mine++;
	EXPECT_EQ(LONG_DUMP - (LONG_DUMP + 6) / 7, mine);
	for (i = 0; i < LONG_DUMP; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}

TEST_F(nl, get_region_by_id_and_unknown_id_is_enoent)
{
	struct dump_result d;
	struct nlt_msg m;
	uint32_t id;
	int fd;

	fd = vmig_region_new(self->dev, 5 * self->ps, 0);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, 5 * self->ps);
	ASSERT_NE(~0U, id);

	memset(&d, 0, sizeof(d));
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, id);
	ASSERT_EQ(0, nlt_talk(&self->nl, &m, dump_cb, &d));
	ASSERT_EQ(1, d.n);
	EXPECT_EQ(5 * self->ps, d.r[0].size);

	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0x7fffffff);
	EXPECT_EQ(-ENOENT, nlt_talk(&self->nl, &m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	/* The do form needs the id. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
	close(fd);
}

TEST_F(nl, unknown_command_is_eopnotsupp)
{
	struct nlt_msg m;

	nlt_vmig_msg(&self->nl, &m, 200, 0);
	EXPECT_EQ(-EOPNOTSUPP, nlt_talk(&self->nl, &m, NULL, NULL));
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_UNSPEC, 0);
	EXPECT_EQ(-EOPNOTSUPP, nlt_talk(&self->nl, &m, NULL, NULL));
	/* Event commands are not requests. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_REGION_NEW, 0);
	EXPECT_EQ(-EOPNOTSUPP, nlt_talk(&self->nl, &m, NULL, NULL));
}

TEST_F(nl, bad_attributes_are_einval_with_a_message)
{
	struct nlt_msg m;
	uint16_t shortv = 1;
	uint64_t v = 1;

	/* An attribute type the family does not know. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, 1000, 1);
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	/* A known attribute the command does not take. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0);
	nlt_msg_attr(&m, VMIG_A_PAD, &v, sizeof(v));
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	/* GET_INFO takes no attribute at all. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_INFO, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0);
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	/* A u32 of the wrong length. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_attr(&m, VMIG_A_REGION_ID, &shortv, sizeof(shortv));
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
	EXPECT_NE(0, self->nl.errmsg[0]);

	/* The same in a dump request. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, NLM_F_DUMP);
	nlt_msg_u32(&m, 1000, 1);
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));

	/* genlmsghdr.reserved must be zero. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_INFO, 0);
	nlt_genl(&m)->reserved = 1;
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
}

TEST_F(nl, truncated_messages_are_einval)
{
	struct nlt_msg m;
	struct nlattr *a;

	/* No room for the genl header. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_INFO, 0);
	m.nlh.nlmsg_len = NLMSG_HDRLEN + 2;
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));

	/* An attribute longer than the message. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0);
	a = (struct nlattr *)(m.buf + NLMSG_LENGTH(GENL_HDRLEN));
	a->nla_len = 64;
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));

	/* An attribute header cut short: trailing bytes. */
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0);
	m.nlh.nlmsg_len += 2;
	EXPECT_EQ(-EINVAL, nlt_talk(&self->nl, &m, NULL, NULL));
}

TEST_F(nl, reset_stats_works_for_root_and_needs_cap_net_admin)
{
	struct nlt_msg m;
	uint32_t id;
	int fd, status;
	pid_t pid;

	fd = vmig_region_new(self->dev, 7 * self->ps, 0);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, 7 * self->ps);
	ASSERT_NE(~0U, id);

	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_RESET_STATS, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, id);
	EXPECT_EQ(0, nlt_talk(&self->nl, &m, NULL, NULL));
	nlt_vmig_msg(&self->nl, &m, VMIG_CMD_RESET_STATS, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, 0x7fffffff);
	EXPECT_EQ(-ENOENT, nlt_talk(&self->nl, &m, NULL, NULL));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct nlt nl;
		int err;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		if (nlt_open(&nl))
			_exit(11);
		/* Reading stays open to everyone... */
		nlt_vmig_msg(&nl, &m, VMIG_CMD_GET_INFO, 0);
		if (nlt_talk(&nl, &m, NULL, NULL))
			_exit(12);
		/* ...changing needs CAP_NET_ADMIN. */
		nlt_vmig_msg(&nl, &m, VMIG_CMD_RESET_STATS, 0);
		nlt_msg_u32(&m, VMIG_A_REGION_ID, id);
		err = nlt_talk(&nl, &m, NULL, NULL);
		_exit(err == -EPERM ? 0 : 13);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(fd);
}

struct event {
	uint8_t cmd;
	uint32_t id;
	uint64_t size;
	uint32_t pid;
	int has_stats;
};

/* The u64 value of attribute @type in @nlh, or @dflt without it. */
static uint64_t attr_or(struct nlmsghdr *nlh, int type, uint64_t dflt)
{
	struct nlattr *a = nlt_find(nlh, type);

	return a ? nlt_attr_uint(a) : dflt;
}

/*
 * Read events until one with @cmd that @match accepts arrives; 0 or
 * -ETIMEDOUT.  @match sees the whole message and fills what it wants.
 */
static int wait_match(struct nlt *nl, uint8_t cmd,
		      bool (*match)(struct nlmsghdr *nlh, void *arg), void *arg)
{
	static char buf[65536];
	struct nlmsghdr *nlh;
	int n;

	for (;;) {
		n = nlt_recv(nl, buf, sizeof(buf), 5000);
		if (n < 0)
			return n;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, (unsigned int)n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			struct genlmsghdr *g = NLMSG_DATA(nlh);

			if (nlh->nlmsg_type == nl->family && g->cmd == cmd &&
			    match(nlh, arg))
				return 0;
		}
	}
}

static bool match_size(struct nlmsghdr *nlh, void *arg)
{
	struct event *ev = arg;

	if (attr_or(nlh, VMIG_A_REGION_SIZE, 0) != ev->size)
		return false;
	ev->cmd = ((struct genlmsghdr *)NLMSG_DATA(nlh))->cmd;
	ev->id = attr_or(nlh, VMIG_A_REGION_ID, ~0U);
	ev->pid = attr_or(nlh, VMIG_A_PID, 0);
	ev->has_stats = !!nlt_find(nlh, VMIG_A_STATS);
	return true;
}

/* Read events until one matching @cmd and @size arrives; 0 or -ETIMEDOUT. */
static int wait_event(struct nlt *nl, uint8_t cmd, uint64_t size, struct event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->size = size;
	return wait_match(nl, cmd, match_size, ev);
}

TEST_F(nl, events_announce_region_creation_and_destruction)
{
	struct event created, destroyed;
	uint64_t size = 11 * self->ps;
	struct nlt ev;
	uint32_t id;
	int fd;
	char *p;

	ASSERT_EQ(0, nlt_open(&ev));
	ASSERT_EQ(0, nlt_join_events(&ev));

	fd = vmig_region_new(self->dev, size, 0);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, size);
	ASSERT_EQ(0, wait_event(&ev, VMIG_CMD_REGION_NEW, size, &created));
	EXPECT_EQ(id, created.id);
	EXPECT_EQ(getpid(), created.pid);

	/* A mapping keeps the region alive after close: no event yet. */
	p = vmig_region_map(fd, size, 0);
	ASSERT_NE(NULL, p);
	close(fd);
	p[0] = 1;
	EXPECT_EQ(-ETIMEDOUT, nlt_recv(&ev, &destroyed, 0, 200));
	munmap(p, size);
	ASSERT_EQ(0, wait_event(&ev, VMIG_CMD_REGION_DEL, size, &destroyed));
	EXPECT_EQ(id, destroyed.id);
	EXPECT_TRUE(destroyed.has_stats);
	nlt_close(&ev);
}

struct region_attr {
	uint32_t id;
	int attr;
	uint64_t val;
};

static bool match_region(struct nlmsghdr *nlh, void *arg)
{
	struct region_attr *ra = arg;

	if (attr_or(nlh, VMIG_A_REGION_ID, ~0ULL) != ra->id)
		return false;
	ra->val = attr_or(nlh, ra->attr, 0);
	return true;
}

/*
 * Read events until one with @cmd about region @id arrives; stores the u64
 * value of attribute @attr (0 if absent) in @val.  0 or -ETIMEDOUT.
 */
static int wait_region_event(struct nlt *nl, uint8_t cmd, uint32_t id,
			     int attr, uint64_t *val)
{
	struct region_attr ra = { .id = id, .attr = attr };
	int r = wait_match(nl, cmd, match_region, &ra);

	*val = ra.val;
	return r;
}

TEST_F(nl, events_announce_dirty_logging_on_and_off)
{
	struct vmig_dirty_enable en = { .flags = VMIG_DIRTY_MANUAL_PROTECT };
	uint64_t size = 13 * self->ps, on = 7;
	struct nlt ev;
	uint32_t id;
	int fd;

	ASSERT_EQ(0, nlt_open(&ev));
	ASSERT_EQ(0, nlt_join_events(&ev));
	fd = vmig_region_new(self->dev, size, 0);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, size);

	ASSERT_EQ(0, ioctl(fd, VMIG_DIRTY_ENABLE, &en));
	ASSERT_EQ(0, wait_region_event(&ev, VMIG_CMD_DIRTY, id, VMIG_A_DIRTY_ON, &on));
	EXPECT_EQ(1, on);
	ASSERT_EQ(0, ioctl(fd, VMIG_DIRTY_DISABLE));
	ASSERT_EQ(0, wait_region_event(&ev, VMIG_CMD_DIRTY, id, VMIG_A_DIRTY_ON, &on));
	EXPECT_EQ(0, on);
	close(fd);
	nlt_close(&ev);
}

static int write_param(const char *name, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), "/sys/module/vmig/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -EIO;
}

TEST_F(nl, events_report_a_postcopy_fault_that_waited_too_long)
{
	uint64_t size = 3 * self->ps, waited = 0;
	struct vmig_place pl;
	struct nlt ev;
	char *page;
	uint32_t id;
	pid_t pid;
	int fd, status;
	char *p;

	ASSERT_EQ(0, write_param("stall_event_us", "1000"));
	ASSERT_EQ(0, nlt_open(&ev));
	ASSERT_EQ(0, nlt_join_events(&ev));
	fd = vmig_region_new(self->dev, size, VMIG_REGION_POSTCOPY);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, size);
	p = vmig_region_map(fd, size, 0);
	ASSERT_NE(NULL, p);

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(((volatile char *)p)[self->ps] == 'x' ? 0 : 1);
	/* Let the child wait well past the 1 ms threshold, then serve it. */
	usleep(50 * 1000);
	page = malloc(self->ps);
	ASSERT_NE(NULL, page);
	memset(page, 'x', self->ps);
	memset(&pl, 0, sizeof(pl));
	pl.offset = self->ps;
	pl.len = self->ps;
	pl.src = (uintptr_t)page;
	ASSERT_EQ(0, ioctl(fd, VMIG_PLACE, &pl));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));

	ASSERT_EQ(0, wait_region_event(&ev, VMIG_CMD_STALL, id, VMIG_A_STALL_NS, &waited));
	EXPECT_LE(1000 * 1000, waited);
	ASSERT_EQ(0, write_param("stall_event_us", "100000"));
	free(page);
	munmap(p, size);
	close(fd);
	nlt_close(&ev);
}

TEST_F(nl, module_unload_with_a_listener_is_clean)
{
	struct nlt ev;

	/* A socket in the group must not keep the module or break unload. */
	ASSERT_EQ(0, nlt_open(&ev));
	ASSERT_EQ(0, nlt_join_events(&ev));
	nlt_close(&self->nl);
	close(self->dev);
	ASSERT_EQ(0, vmig_module_unload());
	ASSERT_EQ(0, vmig_module_load());
	nlt_close(&ev);
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, nlt_open(&self->nl));
}

/* Run @cmd with the shell and collect its stdout; exit status or -1. */
static int run_capture(const char *cmd, char *out, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0, k;

	if (!f)
		return -1;
	while (n + 1 < len && (k = fread(out + n, 1, len - 1 - n, f)) > 0)
		n += k;
	out[n] = 0;
	k = pclose(f);
	return WIFEXITED(k) ? WEXITSTATUS(k) : -1;
}

TEST_F(nl, helper_stats_json_shows_the_regions)
{
	static char out[1 << 16];
	char want[128];
	uint32_t id;
	int fd;

	if (access(VMIG_HELPER, X_OK))
		SKIP(return, "%s is not in the guest (VMCHECK_EXTRA)", VMIG_HELPER);
	fd = vmig_region_new(self->dev, 13 * self->ps, VMIG_REGION_POSTCOPY);
	ASSERT_LE(0, fd);
	id = region_id_of_size(&self->nl, 13 * self->ps);
	ASSERT_EQ(0, run_capture(VMIG_HELPER " stats --json", out, sizeof(out)));
	snprintf(want, sizeof(want), "{\"id\":%u,\"size\":%llu,", id,
		 (unsigned long long)(13 * self->ps));
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("no %s in: %s", want, out);
	EXPECT_NE(NULL, strstr(out, "\"postcopy\":true")) TH_LOG("%s", out);

	/* The text form: a row with the id, the size and the mode. */
	ASSERT_EQ(0, run_capture(VMIG_HELPER " stats", out, sizeof(out)));
	snprintf(want, sizeof(want), "%6u %12s %-24s", id, "52.0 KiB", "postcopy");
	if (self->ps == 4096)
		EXPECT_NE(NULL, strstr(out, want)) TH_LOG("no '%s' in: %s", want, out);
	close(fd);
}

TEST_F(nl, helper_monitor_json_receives_created_and_destroyed)
{
	static char out[1 << 16];
	uint64_t size = 19 * self->ps;
	int pfd[2], status, fd, i, n = 0;
	char want[128];
	pid_t pid;
	ssize_t k;
	uint32_t id = ~0U;

	if (access(VMIG_HELPER, X_OK))
		SKIP(return, "%s is not in the guest (VMCHECK_EXTRA)", VMIG_HELPER);
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		execl(VMIG_HELPER, "vmig", "monitor", "--json", "--count", "2",
		      "--timeout", "20", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	/*
	 * The monitor joins the group some time after it starts: create and
	 * close regions until it has seen two events and exited.
	 */
	for (i = 0; i < 400 && waitpid(pid, &status, WNOHANG) == 0; i++) {
		fd = vmig_region_new(self->dev, size, 0);
		ASSERT_LE(0, fd);
		if (id == ~0U)
			id = region_id_of_size(&self->nl, size);
		close(fd);
		usleep(20000);
	}
	if (i == 400) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	while ((k = read(pfd[0], out + n, sizeof(out) - 1 - n)) > 0)
		n += k;
	out[n] = 0;
	close(pfd[0]);
	ASSERT_TRUE(WIFEXITED(status)) TH_LOG("monitor did not finish: %s", out);
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* Every event is about our regions, with their size. */
	snprintf(want, sizeof(want), "\"size\":%llu", (unsigned long long)size);
	EXPECT_NE(NULL, strstr(out, want)) TH_LOG("%s", out);
	/* Two events in a row about create-then-close always hold both kinds. */
	EXPECT_NE(NULL, strstr(out, "\"event\":\"region-created\"")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"event\":\"region-destroyed\"")) TH_LOG("%s", out);
	/* Exactly two lines for --count 2. */
	for (i = 0, k = 0; out[i]; i++)
		k += out[i] == '\n';
	EXPECT_EQ(2, k) TH_LOG("%s", out);
}

TEST_HARNESS_MAIN
