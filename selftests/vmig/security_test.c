// SPDX-License-Identifier: GPL-2.0
/*
 * What another local user and a member of group kvm can and cannot do to
 * the module, and the module's own races and waits that a dead helper
 * could turn into a hostage: each case is an attack or a failure that
 * worked before.
 *
 *   - /dev/vmig with the udev rule's mode (0660 root:kvm) opens for a
 *     member of kvm only;
 *   - a region's size counts against its creator's RLIMIT_MEMLOCK per
 *     user (two processes of one user share it, another user has its own)
 *     and max_regions_per_user caps a user's regions;
 *   - pages placed by a helper in another memory cgroup are charged to
 *     the creator's cgroup;
 *   - netlink shows an unprivileged user only its own regions, and only
 *     CAP_NET_ADMIN joins the events group;
 *   - VMIG_ABORT racing VMIG_POSTCOPY_DISABLE never leaves a region out of
 *     postcopy mode but marked aborted;
 *   - a fault that cannot retry (it holds mmap_lock) gives up after
 *     nowait_max_ms, one that can retry keeps waiting;
 *   - a dirty-log harvest whose user buffer waits for the network holds
 *     no lock DISABLE needs.
 *
 * Users are dropped to in forked children (setgroups, setresgid,
 * setresuid), which report through their exit status; the test itself
 * runs as root in the VM.
 */
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "vmig_test.h"
#include "postcopy_util.h"
#include "vmig_nl.h"
#include "kselftest_harness.h"

#define USER_A		1000
#define USER_B		1001
#define KVM_GID		990
#define MEMLOCK_LIMIT	(1 << 20)

static long ps;

/* Become @uid (group @gid, supplementary @group if not 0); 0 or -errno. */
static int drop_to(uid_t uid, gid_t gid, gid_t group)
{
	if (setgroups(group ? 1 : 0, &group) ||
	    setresgid(gid, gid, gid) || setresuid(uid, uid, uid))
		return -errno;
	return 0;
}

/* A child that runs as someone else: @fn's return value is its exit code. */
typedef int (*as_user_fn)(void *arg);

static pid_t spawn_as(uid_t uid, gid_t group, rlim_t memlock, as_user_fn fn,
		      void *arg)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct rlimit rl = { memlock, memlock };

		if (setrlimit(RLIMIT_MEMLOCK, &rl) || drop_to(uid, uid, group))
			_exit(90);
		_exit(fn(arg));
	}
	return pid;
}

/* The exit code of @pid, or -1 if it did not exit normally. */
static int reap(pid_t pid)
{
	int status;

	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int run_as(uid_t uid, gid_t group, rlim_t memlock, as_user_fn fn, void *arg)
{
	return reap(spawn_as(uid, group, memlock, fn, arg));
}

/*
 * A region holder: creates a region of @pages as its user, reports the
 * result (0 or -errno, as one int) on @ready, then keeps it until @release
 * is closed.
 */
struct holder {
	uint64_t pages;
	int ready[2], release[2];
	pid_t pid;
};

static int holder_main(void *arg)
{
	struct holder *h = arg;
	int dev = vmig_dev_open(), fd = -EBADF;
	char c;

	/* Only the test keeps the write end: its close is our cue. */
	close(h->release[1]);
	close(h->ready[0]);
	if (dev >= 0)
		fd = vmig_region_new(dev, h->pages * ps, 0);
	else
		fd = dev;
	if (write(h->ready[1], &fd, sizeof(fd)) != sizeof(fd))
		return 91;
	/* Wait until the test is done with us. */
	while (read(h->release[0], &c, 1) > 0)
		;
	return 0;
}

/* Start a holder as @uid; returns what its create gave (fd or -errno). */
static int holder_start(struct holder *h, uid_t uid, uint64_t pages)
{
	int res = -EIO;

	h->pages = pages;
	if (pipe(h->ready) || pipe(h->release))
		return -errno;
	h->pid = spawn_as(uid, KVM_GID, MEMLOCK_LIMIT, holder_main, h);
	close(h->ready[1]);
	close(h->release[0]);
	if (read(h->ready[0], &res, sizeof(res)) != sizeof(res))
		res = -EIO;
	close(h->ready[0]);
	return res;
}

static int holder_stop(struct holder *h)
{
	close(h->release[1]);
	return reap(h->pid);
}

/* /dev/vmig as the udev rule leaves it, for the test's duration. */
struct dev_mode {
	struct stat was;
};

static void dev_mode_set(struct dev_mode *d)
{
	stat(VMIG_DEV, &d->was);
	chown(VMIG_DEV, 0, KVM_GID);
	chmod(VMIG_DEV, 0660);
}

static void dev_mode_restore(struct dev_mode *d)
{
	chown(VMIG_DEV, d->was.st_uid, d->was.st_gid);
	chmod(VMIG_DEV, d->was.st_mode & 07777);
}

static int try_open(void *arg)
{
	int fd = vmig_dev_open();

	(void)arg;
	if (fd >= 0)
		return 0;
	return fd == -EACCES ? 13 : 1;
}

TEST(dev_opens_for_group_kvm_only)
{
	struct dev_mode d;

	ps = vmig_page_size();
	dev_mode_set(&d);
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_open, NULL));
	EXPECT_EQ(13, run_as(USER_A, 0, MEMLOCK_LIMIT, try_open, NULL));
	dev_mode_restore(&d);
}

struct create_try {
	uint64_t pages;
	int want;		/* 0: must succeed, else the -errno it must fail with */
};

static int try_create(void *arg)
{
	struct create_try *t = arg;
	int dev = vmig_dev_open(), fd;

	if (dev < 0)
		return 2;
	fd = vmig_region_new(dev, t->pages * ps, 0);
	if (t->want)
		return fd == t->want ? 0 : 3;
	return fd >= 0 ? 0 : 4;
}

TEST(region_size_counts_against_the_users_memlock_limit)
{
	uint64_t limit_pages = MEMLOCK_LIMIT / vmig_page_size();
	struct create_try fits = { limit_pages / 4, 0 };
	struct create_try too_big = { limit_pages / 2, -ENOMEM };
	struct create_try whole = { limit_pages, 0 };
	struct create_try over = { limit_pages + 1, -ENOMEM };
	struct holder h;
	struct dev_mode d;
	int fd;

	ps = vmig_page_size();
	dev_mode_set(&d);
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_create, &whole));
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_create, &over));

	/* A holds 3/4 of its limit: another process of A gets only 1/4 more. */
	fd = holder_start(&h, USER_A, limit_pages * 3 / 4);
	EXPECT_LE(0, fd);
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_create, &too_big));
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_create, &fits));
	/* B is charged on its own. */
	EXPECT_EQ(0, run_as(USER_B, KVM_GID, MEMLOCK_LIMIT, try_create, &whole));
	EXPECT_EQ(0, holder_stop(&h));
	/* Gone with its last fd: the whole limit is A's again. */
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, try_create, &whole));
	dev_mode_restore(&d);
}

TEST(root_with_cap_ipc_lock_is_not_charged)
{
	struct rlimit was, rl = { MEMLOCK_LIMIT, MEMLOCK_LIMIT };
	int dev, fd;

	ps = vmig_page_size();
	ASSERT_EQ(0, getrlimit(RLIMIT_MEMLOCK, &was));
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, 4 * MEMLOCK_LIMIT, 0);
	EXPECT_LE(0, fd);
	close(fd);
	close(dev);
	setrlimit(RLIMIT_MEMLOCK, &was);
}

static int create_until_refused(void *arg)
{
	int dev = vmig_dev_open(), fd, n = 0;

	(void)arg;
	if (dev < 0)
		return 100;
	for (;;) {
		fd = vmig_region_new(dev, ps, 0);
		if (fd < 0)
			return fd == -EMFILE ? n : 101;
		if (++n > 50)
			return 102;
	}
}

TEST(region_count_is_capped_per_user)
{
	long was = vmig_param_read("max_regions_per_user");
	struct holder h;
	struct dev_mode d;

	ps = vmig_page_size();
	ASSERT_LT(0, was) TH_LOG("the cap is on by default");
	ASSERT_EQ(0, vmig_param_write("max_regions_per_user", 3));
	dev_mode_set(&d);
	EXPECT_EQ(3, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, create_until_refused, NULL));
	/* A holds one: two more for A, three for B. */
	EXPECT_LE(0, holder_start(&h, USER_A, 1));
	EXPECT_EQ(2, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, create_until_refused, NULL));
	EXPECT_EQ(3, run_as(USER_B, KVM_GID, MEMLOCK_LIMIT, create_until_refused, NULL));
	EXPECT_EQ(0, holder_stop(&h));
	dev_mode_restore(&d);
	vmig_param_write("max_regions_per_user", was);
}

/* --- memory cgroups ---------------------------------------------------- */

#define CG_ROOT "/tmp/vmig-cg"

static int cg_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

static long cg_current(const char *cg)
{
	char path[128];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), CG_ROOT "/%s/memory.current", cg);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static int cg_enter(const char *cg)
{
	char path[128];

	snprintf(path, sizeof(path), CG_ROOT "/%s/cgroup.procs", cg);
	return cg_write(path, "0");
}

TEST(placed_pages_are_charged_to_the_creators_cgroup)
{
	const uint64_t npages = 1024;	/* 4 MiB with 4 KiB pages */
	long vm0, helper0, vm1, helper1;
	int dev, fd, status;
	pid_t vm, helper;

	ps = vmig_page_size();
	mkdir(CG_ROOT, 0755);
	if (mount("none", CG_ROOT, "cgroup2", 0, NULL) && errno != EBUSY)
		SKIP(return, "no cgroup2 here: %s", strerror(errno));
	if (cg_write(CG_ROOT "/cgroup.subtree_control", "+memory"))
		SKIP(goto out, "no memory controller");
	mkdir(CG_ROOT "/vm", 0755);
	mkdir(CG_ROOT "/helper", 0755);

	/* The VMM: creates the region in its cgroup, hands it to the helper. */
	vm = fork();
	ASSERT_LE(0, vm);
	if (vm == 0) {
		if (cg_enter("vm"))
			_exit(10);
		dev = vmig_dev_open();
		fd = vmig_region_new(dev, npages * ps, 0);
		if (fd < 0)
			_exit(11);
		vm0 = cg_current("vm");
		helper0 = cg_current("helper");
		/* The helper: another process, in another cgroup, places. */
		helper = fork();
		if (helper == 0) {
			char *buf = malloc(ps);
			uint64_t i;

			if (!buf || cg_enter("helper"))
				_exit(12);
			for (i = 0; i < npages; i++) {
				vmig_pattern_fill(buf, i, 3);
				if (vmig_place(fd, i * ps, ps, buf, 0, NULL))
					_exit(13);
			}
			_exit(0);
		}
		if (reap(helper) != 0)
			_exit(14);
		vm1 = cg_current("vm");
		helper1 = cg_current("helper");
		printf("# vm cgroup %ld -> %ld, helper cgroup %ld -> %ld bytes\n",
		       vm0, vm1, helper0, helper1);
		/* Most of the 4 MiB in the VM's cgroup, little in the helper's. */
		if (vm1 - vm0 < (long)(npages * ps * 3 / 4))
			_exit(15);
		if (helper1 - helper0 > (long)(npages * ps / 4))
			_exit(16);
		close(fd);
		_exit(0);
	}
	ASSERT_EQ(vm, waitpid(vm, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("15: the VM's cgroup was not charged, 16: the helper's was");
	rmdir(CG_ROOT "/helper");
	rmdir(CG_ROOT "/vm");
out:
	umount(CG_ROOT);
}

/* --- netlink ----------------------------------------------------------- */

struct seen {
	uint64_t size_a, size_b;	/* sizes to look for */
	int a, b;
};

static int seen_cb(struct nlmsghdr *nlh, void *arg)
{
	struct seen *s = arg;
	struct nlattr *a = nlt_find(nlh, VMIG_A_REGION_SIZE);

	if (a && nlt_attr_uint(a) == s->size_a)
		s->a++;
	if (a && nlt_attr_uint(a) == s->size_b)
		s->b++;
	return 0;
}

static int dump_sizes(struct seen *s)
{
	struct nlt_msg m;
	struct nlt nl;
	int err;

	err = nlt_open(&nl);
	if (err)
		return err;
	nlt_vmig_msg(&nl, &m, VMIG_CMD_GET_REGION, NLM_F_DUMP);
	err = nlt_talk(&nl, &m, seen_cb, s);
	nlt_close(&nl);
	return err;
}

/* The id of the region of @size, from a dump; -1 if none. */
static int id_cb(struct nlmsghdr *nlh, void *arg)
{
	int64_t *want = arg;
	struct nlattr *size = nlt_find(nlh, VMIG_A_REGION_SIZE);
	struct nlattr *id = nlt_find(nlh, VMIG_A_REGION_ID);

	if (size && id && (int64_t)nlt_attr_uint(size) == want[0])
		want[1] = nlt_attr_uint(id);
	return 0;
}

struct nl_probe {
	uint64_t own_pages, other_pages;
	uint32_t other_id;
};

/* As an unprivileged user: exit code says what was wrong, 0 if nothing. */
static int nl_probe_main(void *arg)
{
	struct nl_probe *p = arg;
	struct seen s = { p->own_pages * ps, p->other_pages * ps, 0, 0 };
	struct nlt_msg m;
	struct nlt nl;
	int dev, fd;

	dev = vmig_dev_open();
	fd = dev < 0 ? dev : vmig_region_new(dev, p->own_pages * ps, 0);
	if (fd < 0)
		return 20;
	if (dump_sizes(&s))
		return 21;
	if (s.a != 1)
		return 22;	/* its own region must show */
	if (s.b != 0)
		return 23;	/* someone else's must not */
	if (nlt_open(&nl))
		return 24;
	nlt_vmig_msg(&nl, &m, VMIG_CMD_GET_REGION, 0);
	nlt_msg_u32(&m, VMIG_A_REGION_ID, p->other_id);
	if (nlt_talk(&nl, &m, NULL, NULL) != -ENOENT)
		return 25;	/* nor by id */
	if (nlt_join_events(&nl) != -EPERM)
		return 26;	/* nor through events */
	nlt_close(&nl);
	close(fd);
	return 0;
}

TEST(netlink_shows_an_unprivileged_user_only_its_own_regions)
{
	struct nl_probe p = { .own_pages = 5, .other_pages = 7 };
	int64_t want[2] = { 0, -1 };
	struct seen s;
	struct nlt_msg m;
	struct nlt nl;
	struct holder h;
	struct dev_mode d;
	int dev, fd;

	ps = vmig_page_size();
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, p.other_pages * ps, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, nlt_open(&nl));
	want[0] = p.other_pages * ps;
	nlt_vmig_msg(&nl, &m, VMIG_CMD_GET_REGION, NLM_F_DUMP);
	ASSERT_EQ(0, nlt_talk(&nl, &m, id_cb, want));
	ASSERT_LE(0, want[1]);
	p.other_id = want[1];
	/* Root may join the events group. */
	EXPECT_EQ(0, nlt_join_events(&nl));
	nlt_close(&nl);

	dev_mode_set(&d);
	EXPECT_EQ(0, run_as(USER_A, KVM_GID, MEMLOCK_LIMIT, nl_probe_main, &p));
	/* An administrator sees everyone's. */
	EXPECT_LE(0, holder_start(&h, USER_A, 9));
	s = (struct seen){ 9 * ps, p.other_pages * ps, 0, 0 };
	EXPECT_EQ(0, dump_sizes(&s));
	EXPECT_EQ(1, s.a);
	EXPECT_EQ(1, s.b);
	EXPECT_EQ(0, holder_stop(&h));
	dev_mode_restore(&d);
	close(fd);
	close(dev);
}

/* --- ABORT against DISABLE --------------------------------------------- */

/*
 * The race window (ABORT's check of the mode, then its lock) is a few
 * instructions, so the test makes the ABORT thread lose its CPU often: it
 * shares CPU 0 with a real-time "poker" that wakes every 20 us and
 * preempts it at random points, some inside the window, while the
 * switcher runs DISABLE and ENABLE on CPU 1.  A region left off but aborted stays so until the
 * switcher's next ENABLE, and the ABORT thread looks right after its call.
 */
struct race {
	int fd;
	atomic_bool stop;
	atomic_long switches, aborts, bad;
};

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void *race_switcher(void *arg)
{
	struct race *r = arg;
	struct vmig_postcopy_enable en = { 0 };

	pin_to(1);
	while (!atomic_load(&r->stop)) {
		ioctl(r->fd, VMIG_POSTCOPY_DISABLE);
		ioctl(r->fd, VMIG_POSTCOPY_ENABLE, &en);
		atomic_fetch_add(&r->switches, 1);
	}
	return NULL;
}

static void *race_poker(void *arg)
{
	struct sched_param sp = { .sched_priority = 10 };
	struct timespec nap = { 0, 20000 };
	struct race *r = arg;

	pin_to(0);
	sched_setscheduler(0, SCHED_FIFO, &sp);
	while (!atomic_load(&r->stop))
		nanosleep(&nap, NULL);
	return NULL;
}

TEST(abort_racing_disable_never_marks_an_ordinary_region_aborted)
{
	struct race r = { 0 };
	pthread_t sw, spin;
	struct timespec t0, t;
	struct vmig_stats st;
	int dev;

	ps = vmig_page_size();
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "needs two CPUs");
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	r.fd = vmig_region_new(dev, 16 * ps, VMIG_REGION_POSTCOPY | VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, r.fd);
	pin_to(0);
	ASSERT_EQ(0, pthread_create(&sw, NULL, race_switcher, &r));
	ASSERT_EQ(0, pthread_create(&spin, NULL, race_poker, &r));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		/* ABORT, then at once look: an off region must not be aborted. */
		if (ioctl(r.fd, VMIG_ABORT) == 0)
			atomic_fetch_add(&r.aborts, 1);
		else if (errno != EINVAL)
			atomic_fetch_add(&r.bad, 1000000);
		if (vmig_region_stats(r.fd, &st) == 0 &&
		    st.postcopy_aborted && !st.postcopy_on)
			atomic_fetch_add(&r.bad, 1);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 5);
	atomic_store(&r.stop, true);
	pthread_join(sw, NULL);
	pthread_join(spin, NULL);
	printf("# %ld aborts, %ld mode switches, %ld times off but aborted\n",
	       atomic_load(&r.aborts), atomic_load(&r.switches), atomic_load(&r.bad));
	EXPECT_LT(0, atomic_load(&r.aborts));
	EXPECT_LT(0, atomic_load(&r.switches));
	EXPECT_EQ(0, atomic_load(&r.bad));
	close(r.fd);
	close(dev);
}

/* --- waits that hold mmap_lock ----------------------------------------- */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

struct toucher {
	volatile char *addr;
	atomic_int done;
	char c;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	t->c = *t->addr;
	atomic_store(&t->done, 1);
	return NULL;
}

TEST(a_fault_that_cannot_retry_gives_up_after_nowait_max_ms)
{
	long was = vmig_param_read("nowait_max_ms");
	struct vmig_request req;
	struct toucher t = { 0 };
	pthread_t th;
	double t0, took;
	int dev, fd, mem;
	ssize_t n;
	char *map, c;

	ps = vmig_page_size();
	ASSERT_LT(0, was) TH_LOG("the wait is bounded by default");
	ASSERT_EQ(0, vmig_param_write("nowait_max_ms", 300));
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, 8 * ps, VMIG_REGION_POSTCOPY);
	ASSERT_LE(0, fd);
	map = vmig_region_map(fd, 8 * ps, 0);
	ASSERT_NE(NULL, map);

	/* /proc/self/mem faults without retry, holding mmap_lock: nobody places. */
	mem = open("/proc/self/mem", O_RDONLY);
	ASSERT_LE(0, mem);
	t0 = now_s();
	n = pread(mem, &c, 1, (uintptr_t)(map + 2 * ps));
	took = now_s() - t0;
	EXPECT_EQ(-1, n);
	EXPECT_TRUE(errno == EIO || errno == EFAULT) TH_LOG("errno %d", errno);
	printf("# the no-retry read gave up after %.2f s\n", took);
	EXPECT_EQ(0, vmig_read_request(fd, &req));
	EXPECT_EQ(2 * ps, req.offset);
	close(mem);

	/* An ordinary access can retry: it holds no lock and keeps waiting. */
	t.addr = map + 3 * ps;
	ASSERT_EQ(0, pthread_create(&th, NULL, toucher_main, &t));
	EXPECT_EQ(0, vmig_read_request(fd, &req));
	usleep(900 * 1000);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(fd, 3, 4));
	pthread_join(th, NULL);
	EXPECT_EQ(1, atomic_load(&t.done));
	EXPECT_EQ(0, vmig_pattern_errors(map + 3 * ps, 3, 4, 0));

	munmap(map, 8 * ps);
	close(fd);
	close(dev);
	vmig_param_write("nowait_max_ms", was);
}

/* --- no user copy under dirty.lock ------------------------------------- */

struct harvest {
	int fd;
	void *bitmap;
	int ret;
	atomic_int done;
};

static void *harvest_main(void *arg)
{
	struct harvest *h = arg;
	struct vmig_dirty_log log = {
		.first_page = 0, .num_pages = 64, .bitmap = (uintptr_t)h->bitmap,
	};

	h->ret = ioctl(h->fd, VMIG_GET_DIRTY_LOG, &log) ? -errno : 0;
	atomic_store(&h->done, 1);
	return NULL;
}

static void *disable_main(void *arg)
{
	struct harvest *h = arg;

	h->ret = ioctl(h->fd, VMIG_DIRTY_DISABLE) ? -errno : 0;
	atomic_store(&h->done, 1);
	return NULL;
}

TEST(a_harvest_waiting_on_its_buffer_does_not_block_disable)
{
	struct vmig_dirty_enable en = { .flags = 0 };
	struct harvest get = { 0 }, dis = { 0 };
	struct vmig_request req;
	pthread_t gt, dt;
	int dev, logged, missing, i;
	char *lmap, *mmap_missing;

	ps = vmig_page_size();
	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	logged = vmig_region_new(dev, 64 * ps, 0);
	ASSERT_LE(0, logged);
	lmap = vmig_region_map(logged, 64 * ps, 0);
	ASSERT_NE(NULL, lmap);
	lmap[0] = 1;
	ASSERT_EQ(0, ioctl(logged, VMIG_DIRTY_ENABLE, &en));
	/* The harvest's bitmap lives on a page that waits for the network. */
	missing = vmig_region_new(dev, 4 * ps, VMIG_REGION_POSTCOPY);
	ASSERT_LE(0, missing);
	mmap_missing = vmig_region_map(missing, 4 * ps, 0);
	ASSERT_NE(NULL, mmap_missing);

	get.fd = dis.fd = logged;
	get.bitmap = mmap_missing + ps;
	ASSERT_EQ(0, pthread_create(&gt, NULL, harvest_main, &get));
	ASSERT_EQ(0, vmig_read_request(missing, &req));
	EXPECT_EQ(ps, req.offset);
	ASSERT_EQ(0, pthread_create(&dt, NULL, disable_main, &dis));
	for (i = 0; i < 100 && !atomic_load(&dis.done); i++)
		usleep(50 * 1000);
	EXPECT_EQ(1, atomic_load(&dis.done)) TH_LOG("DISABLE waited for the harvest's page");
	EXPECT_EQ(0, atomic_load(&get.done));

	/* The page arrives: the harvest finds logging off. */
	ASSERT_EQ(0, vmig_place(missing, ps, ps, NULL, VMIG_PLACE_ZERO, NULL));
	pthread_join(gt, NULL);
	pthread_join(dt, NULL);
	EXPECT_EQ(0, dis.ret);
	EXPECT_EQ(-ENOENT, get.ret);

	munmap(mmap_missing, 4 * ps);
	munmap(lmap, 64 * ps);
	close(missing);
	close(logged);
	close(dev);
}

TEST_HARNESS_MAIN
