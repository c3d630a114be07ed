// SPDX-License-Identifier: GPL-2.0
/*
 * Regions by path: the files of a vmigfs mount are regions.  Every open of
 * the file is a region fd, and every guarantee of the module holds for
 * every process that maps the file: dirty logging sees writes through any
 * mapping, a postcopy fault from any mapper waits for a PLACE through any
 * other open file, a hole punch discards.  Sizes are set once; the
 * file's mode and owner decide who opens it; unlink leaves mappings
 * working; the mount pins the module.
 */
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "postcopy_util.h"
#include "vmig_nl.h"
#include "kselftest_harness.h"

#define NPAGES	64

FIXTURE(fs) {
	char dir[64];
	long ps;
	int dev;
};

FIXTURE_SETUP(fs)
{
	strcpy(self->dir, "/tmp/vmigfs.XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, mount("vmigfs", self->dir, "vmigfs", 0, NULL))
		TH_LOG("mount -t vmigfs: %s", strerror(errno));
	self->ps = vmig_page_size();
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
}

FIXTURE_TEARDOWN(fs)
{
	close(self->dev);
	umount2(self->dir, MNT_DETACH);
	rmdir(self->dir);
}

static void path_of(const char *dir, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

/* Create @name of @size bytes with @mode; the open fd, or -errno. */
static int region_file_new(const char *dir, const char *name, off_t size, mode_t mode)
{
	char path[128];
	int fd;

	path_of(dir, name, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) || ftruncate(fd, size)) {
		int err = -errno;

		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

static int region_file_open(const char *dir, const char *name, int flags)
{
	char path[128];
	int fd;

	path_of(dir, name, path, sizeof(path));
	fd = open(path, flags | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int child_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_F(fs, two_opens_two_mappings_and_a_child_share_pages_and_dirty_log_sees_every_writer)
{
	long ps = self->ps;
	uint64_t bm[vmig_bm_words(NPAGES)], dirty;
	char *m1, *m2;
	int fd1, fd2;
	pid_t pid;

	fd1 = region_file_new(self->dir, "ram", NPAGES * ps, 0600);
	ASSERT_LE(0, fd1);
	fd2 = region_file_open(self->dir, "ram", O_RDWR);
	ASSERT_LE(0, fd2);
	m1 = vmig_region_map(fd1, NPAGES * ps, 0);
	m2 = vmig_region_map(fd2, NPAGES * ps, 0);
	ASSERT_NE(NULL, m1);
	ASSERT_NE(NULL, m2);
	memset(m1, 0x11, NPAGES * ps);

	/* One region: a write through one mapping shows through the other. */
	m1[7 * ps] = 0x5a;
	EXPECT_EQ(0x5a, m2[7 * ps]);

	ASSERT_EQ(0, vmig_dirty_enable(fd1, 0));
	m1[1 * ps] = 1;
	m2[2 * ps + 100] = 2;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* A process of its own, with its own open and mapping. */
		int fd = region_file_open(self->dir, "ram", O_RDWR);
		char *m = fd < 0 ? NULL : vmig_region_map(fd, NPAGES * ps, 0);

		if (!m)
			_exit(1);
		m[3 * ps + 5] = 3;
		_exit(0);
	}
	ASSERT_EQ(0, child_status(pid));

	memset(bm, 0, sizeof(bm));
	ASSERT_EQ(0, vmig_dirty_get(fd2, 0, NPAGES, bm, &dirty));
	EXPECT_EQ(3, dirty);
	EXPECT_TRUE(vmig_bit(bm, 1));
	EXPECT_TRUE(vmig_bit(bm, 2));
	EXPECT_TRUE(vmig_bit(bm, 3)) TH_LOG("the forked mapper's write was not logged");
	EXPECT_EQ(3, m1[3 * ps + 5]);

	/* Re-armed through fd2: the next write through m1 is seen again. */
	m1[2 * ps] = 9;
	ASSERT_EQ(0, vmig_dirty_get(fd1, 0, NPAGES, bm, &dirty));
	EXPECT_EQ(1, dirty);
	EXPECT_TRUE(vmig_bit(bm, 2));
	ASSERT_EQ(0, vmig_dirty_disable(fd2));

	munmap(m1, NPAGES * ps);
	munmap(m2, NPAGES * ps);
	close(fd1);
	close(fd2);
}

TEST_F(fs, a_mappers_fault_waits_for_the_place_made_through_another_open)
{
	long ps = self->ps;
	struct vmig_postcopy_enable en = { 0 };
	struct vmig_request req;
	struct vmig_stats st;
	int svc, fd, pipefd[2];
	char *m;
	pid_t pid;

	fd = region_file_new(self->dir, "dst", NPAGES * ps, 0600);
	ASSERT_LE(0, fd);
	svc = region_file_open(self->dir, "dst", O_RDWR | O_NONBLOCK);
	ASSERT_LE(0, svc);
	m = vmig_region_map(fd, NPAGES * ps, 0);
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, ioctl(fd, VMIG_POSTCOPY_ENABLE, &en));
	ASSERT_EQ(0, pipe(pipefd));

	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The "VMM": its own open and mapping; reads a missing page. */
		int vfd = region_file_open(self->dir, "dst", O_RDWR);
		char *vm = vfd < 0 ? NULL : vmig_region_map(vfd, NPAGES * ps, 0);
		char c = 1;

		if (!vm)
			_exit(1);
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		_exit(vmig_pattern_errors(vm + 5 * ps, 5, 42, 0) ? 2 : 0);
	}
	close(pipefd[1]);

	/* The request reaches the other open file; the child still waits. */
	ASSERT_EQ(0, vmig_read_request(svc, &req));
	EXPECT_EQ(5 * ps, req.offset);
	usleep(100000);
	EXPECT_EQ(0, waitpid(pid, NULL, WNOHANG)) TH_LOG("the fault did not wait");
	ASSERT_EQ(0, vmig_place_page(svc, 5, 42));
	EXPECT_EQ(0, child_status(pid));
	close(pipefd[0]);

	/* Placed pages read back through a third mapping, the parent's. */
	EXPECT_EQ(0, vmig_pattern_errors(m + 5 * ps, 5, 42, 0));
	ASSERT_EQ(0, vmig_region_stats(svc, &st));
	EXPECT_EQ(1, st.pages_placed);
	EXPECT_EQ(1, st.postcopy_on);

	/* ABORT through any open: a new fault on a missing page gets SIGBUS. */
	ASSERT_EQ(0, ioctl(svc, VMIG_ABORT));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		signal(SIGBUS, SIG_DFL);
		_exit(m[9 * ps]);
	}
	EXPECT_EQ(128 + SIGBUS, child_status(pid));
	ASSERT_EQ(0, ioctl(fd, VMIG_POSTCOPY_DISABLE));

	munmap(m, NPAGES * ps);
	close(svc);
	close(fd);
}

TEST_F(fs, hole_punch_and_discard_drop_pages_for_every_mapper)
{
	long ps = self->ps;
	struct vmig_discard d = { .offset = 8 * ps, .len = 4 * ps };
	struct vmig_stats st;
	char *m;
	int fd;

	fd = region_file_new(self->dir, "disc", NPAGES * ps, 0600);
	ASSERT_LE(0, fd);
	m = vmig_region_map(fd, NPAGES * ps, 0);
	ASSERT_NE(NULL, m);
	memset(m, 0x77, NPAGES * ps);

	/* QEMU's discard: fallocate(PUNCH_HOLE | KEEP_SIZE). */
	ASSERT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2 * ps));
	ASSERT_EQ(0, ioctl(fd, VMIG_DISCARD, &d));
	EXPECT_EQ(4, d.discarded);
	ASSERT_EQ(0, vmig_region_stats(fd, &st));
	EXPECT_EQ(6, st.pages_discarded);
	EXPECT_EQ(NPAGES - 6, st.pages_present);
	/* Outside postcopy mode a dropped page comes back zero-filled. */
	EXPECT_EQ(0, m[1 * ps]);
	EXPECT_EQ(0, m[9 * ps]);
	EXPECT_EQ(0x77, m[2 * ps]);

	/* Unaligned punches, other modes, growth: refused; the size stays. */
	EXPECT_EQ(-1, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1, ps));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, ps));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, fallocate(fd, 0, 0, 2 * NPAGES * ps));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, fallocate(fd, 0, 0, NPAGES * ps));

	/* Not while dirty logging is on: the data would change behind the log. */
	ASSERT_EQ(0, vmig_dirty_enable(fd, 0));
	EXPECT_EQ(-1, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, ps));
	EXPECT_EQ(EBUSY, errno);
	ASSERT_EQ(0, vmig_dirty_disable(fd));

	munmap(m, NPAGES * ps);
	close(fd);
}

/*
 * A vmigfs inode is on its superblock's inode list, where drop_caches
 * finds it: a placed page that no one has mapped or written must survive.
 */
TEST_F(fs, drop_caches_keeps_placed_pages)
{
	long ps = self->ps;
	struct vmig_stats st;
	char *m;
	int fd, dc;

	fd = region_file_new(self->dir, "dc", NPAGES * ps, 0600);
	ASSERT_LE(0, fd);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(0, vmig_place_page(fd, i, 3));
	dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
	ASSERT_LE(0, dc);
	ASSERT_EQ(1, write(dc, "3", 1));
	close(dc);
	ASSERT_EQ(0, vmig_region_stats(fd, &st));
	EXPECT_EQ(8, st.pages_present) TH_LOG("drop_caches took placed pages");
	m = vmig_region_map(fd, NPAGES * ps, 0);
	ASSERT_NE(NULL, m);
	for (int i = 0; i < 8; i++)
		EXPECT_EQ(0, vmig_pattern_errors(m + i * ps, i, 3, 0));
	munmap(m, NPAGES * ps);
	close(fd);
}

TEST_F(fs, sizes_are_set_once_page_aligned_and_under_the_cap)
{
	long ps = self->ps;
	struct vmig_global_stats g;
	struct vmig_api api;
	struct vmig_stats st;
	struct stat sb;
	uint64_t room;
	int fd, fd2;

	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	EXPECT_TRUE(api.features & VMIG_FEATURE_REGIONFS);
	fd = region_file_new(self->dir, "sz", 0, 0600);
	ASSERT_LE(0, fd);
	/* No size, no region: nothing to map, no region ioctl. */
	EXPECT_EQ(NULL, vmig_region_map(fd, ps, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_EQ(-ENODEV, vmig_region_stats(fd, &st));

	EXPECT_EQ(-1, ftruncate(fd, ps + 1));
	EXPECT_EQ(EINVAL, errno);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(-1, ftruncate(fd, g.max_region_bytes + ps));
	EXPECT_EQ(EFBIG, errno);

	ASSERT_EQ(0, ftruncate(fd, 8 * ps));
	ASSERT_EQ(0, fstat(fd, &sb));
	EXPECT_EQ(8 * ps, sb.st_size);
	EXPECT_EQ(8 * ps, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(0, vmig_region_stats(fd, &st));
	EXPECT_EQ(8 * ps, st.size);

	/* Set once: the same size again is fine, any other is not. */
	EXPECT_EQ(0, ftruncate(fd, 8 * ps));
	EXPECT_EQ(-1, ftruncate(fd, 4 * ps));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(fd, 16 * ps));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ftruncate(fd, 0));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-EPERM, region_file_open(self->dir, "sz", O_RDWR | O_TRUNC));
	/* A mapping past the end is refused. */
	EXPECT_EQ(NULL, vmig_region_map(fd, 9 * ps, 0));

	/* Under the cap but beyond what other regions leave: no room. */
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	room = g.max_region_bytes - g.reserved_bytes;
	fd2 = region_file_new(self->dir, "big", 0, 0600);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-1, ftruncate(fd2, room + ps));
	EXPECT_EQ(ENOSPC, errno);
	close(fd2);
	close(fd);
}

TEST_F(fs, a_non_owner_cannot_open_a_0600_region_and_a_reader_cannot_change_it)
{
	long ps = self->ps;
	int fd;
	pid_t pid;

	fd = region_file_new(self->dir, "priv", NPAGES * ps, 0600);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (setgid(1000) || setuid(1000))
			_exit(10);
		if (region_file_open(self->dir, "priv", O_RDWR) != -EACCES)
			_exit(1);
		if (region_file_open(self->dir, "priv", O_RDONLY) != -EACCES)
			_exit(2);
		/* The root directory is root's, 0755: no regions of one's own. */
		if (region_file_new(self->dir, "mine", ps, 0600) != -EACCES)
			_exit(3);
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid)) TH_LOG("uid 1000 opened a 0600 region of root's");

	/* World-readable: a reader may look, never change or drain requests. */
	ASSERT_EQ(0, fchmod(fd, 0644));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct vmig_stats st;
		struct vmig_dirty_enable en = { 0 };
		struct vmig_request req;
		int rfd;

		if (setgid(1000) || setuid(1000))
			_exit(10);
		if (region_file_open(self->dir, "priv", O_RDWR) != -EACCES)
			_exit(1);
		rfd = region_file_open(self->dir, "priv", O_RDONLY);
		if (rfd < 0 || vmig_region_stats(rfd, &st) || st.size != (uint64_t)NPAGES * ps)
			_exit(2);
		if (ioctl(rfd, VMIG_DIRTY_ENABLE, &en) != -1 || errno != EBADF)
			_exit(3);
		if (ioctl(rfd, VMIG_ABORT) != -1 || errno != EBADF)
			_exit(4);
		if (read(rfd, &req, sizeof(req)) != -1 || errno != EBADF)
			_exit(5);
		if (mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0) != MAP_FAILED)
			_exit(6);
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid));

	/* Given to uid 1000: now it opens, maps and writes. */
	ASSERT_EQ(0, fchown(fd, 1000, 1000));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int ufd;
		char *m;

		if (setgid(1000) || setuid(1000))
			_exit(10);
		ufd = region_file_open(self->dir, "priv", O_RDWR);
		m = ufd < 0 ? NULL : vmig_region_map(ufd, NPAGES * ps, 0);
		if (!m)
			_exit(1);
		m[0] = 'u';
		_exit(0);
	}
	EXPECT_EQ(0, child_status(pid));
	close(fd);
}

TEST_F(fs, unlink_while_mapped_keeps_the_mapping_and_frees_on_the_last_unmap)
{
	long ps = self->ps;
	struct vmig_global_stats g0, g;
	char path[128], *m;
	int fd;

	ASSERT_EQ(0, vmig_global_stats(self->dev, &g0));
	fd = region_file_new(self->dir, "gone", NPAGES * ps, 0600);
	ASSERT_LE(0, fd);
	m = vmig_region_map(fd, NPAGES * ps, 0);
	ASSERT_NE(NULL, m);
	for (int i = 0; i < NPAGES; i++)
		vmig_pattern_fill(m + i * ps, i, 7);
	close(fd);
	path_of(self->dir, "gone", path, sizeof(path));
	ASSERT_EQ(0, unlink(path));
	EXPECT_EQ(-ENOENT, region_file_open(self->dir, "gone", O_RDWR));

	/* Nameless and without an fd, the mapping still holds the region. */
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.regions + 1, g.regions);
	EXPECT_EQ(g0.pages_allocated + NPAGES, g.pages_allocated);
	for (int i = 0; i < NPAGES; i++)
		EXPECT_EQ(0, vmig_pattern_errors(m + i * ps, i, 7, 0));
	m[3] = 1;

	munmap(m, NPAGES * ps);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.regions, g.regions) TH_LOG("the region outlived its last mapping");
	EXPECT_EQ(g0.pages_allocated, g.pages_allocated);
	EXPECT_EQ(g0.reserved_bytes, g.reserved_bytes);
}

/* What a dump says about the region named @name: its size, or 0. */
struct name_seen {
	const char *name;
	uint64_t size;
	uint32_t dev;
};

static int name_cb(struct nlmsghdr *nlh, void *arg)
{
	struct name_seen *s = arg;
	struct nlattr *a = nlt_find(nlh, VMIG_A_REGION_NAME);

	if (a && !strcmp(nlt_attr_data(a), s->name)) {
		s->size = nlt_attr_uint(nlt_find(nlh, VMIG_A_REGION_SIZE));
		a = nlt_find(nlh, VMIG_A_REGION_DEV);
		s->dev = a ? nlt_attr_uint(a) : 0;
	}
	return 0;
}

static uint64_t dump_size_of(struct nlt *nl, const char *name, uint32_t *dev)
{
	struct name_seen s = { .name = name };
	struct nlt_msg m;

	nlt_vmig_msg(nl, &m, VMIG_CMD_GET_REGION, NLM_F_DUMP);
	if (nlt_talk(nl, &m, name_cb, &s))
		return 0;
	if (dev)
		*dev = s.dev;
	return s.size;
}

TEST_F(fs, the_netlink_dump_names_path_regions)
{
	long ps = self->ps;
	char path[128];
	struct stat sb;
	struct nlt nl;
	uint32_t dev = 0;
	int fd;

	ASSERT_EQ(0, nlt_open(&nl));
	fd = region_file_new(self->dir, "named", 3 * ps, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, fstat(fd, &sb));
	EXPECT_EQ(3 * ps, dump_size_of(&nl, "/named", &dev));
	EXPECT_EQ((uint32_t)sb.st_dev, dev);

	path_of(self->dir, "named", path, sizeof(path));
	ASSERT_EQ(0, unlink(path));
	EXPECT_EQ(0, dump_size_of(&nl, "/named", NULL));
	EXPECT_EQ(3 * ps, dump_size_of(&nl, "/named (deleted)", NULL));
	close(fd);
	EXPECT_EQ(0, dump_size_of(&nl, "/named (deleted)", NULL));
	nlt_close(&nl);
}

/* The syscalls QEMU 7.2 makes on mem-path (softmmu/physmem.c). */
TEST_F(fs, qemu_mem_path_calls_work_on_a_file_and_a_directory)
{
	long ps = self->ps;
	char tmpl[128], *area, *m;
	struct statfs sfs;
	int fd;

	/* mem-path=DIR: mkstemp() there, unlink, ftruncate to the size. */
	snprintf(tmpl, sizeof(tmpl), "%s/qemu_back_mem.ram0.XXXXXX", self->dir);
	fd = mkstemp(tmpl);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, unlink(tmpl));
	EXPECT_EQ(0, lseek(fd, 0, SEEK_END));
	ASSERT_EQ(0, fstatfs(fd, &sfs));
	EXPECT_EQ(VMIGFS_MAGIC, sfs.f_type);	/* not hugetlbfs: PAGE_SIZE pages */
	EXPECT_EQ(ps, sfs.f_bsize);
	ASSERT_EQ(0, ftruncate(fd, NPAGES * ps));
	/* qemu_ram_mmap: reserve, then map the file over it, fixed. */
	area = mmap(NULL, (NPAGES + 1) * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, area);
	m = mmap(area, NPAGES * ps, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	ASSERT_EQ(area, m);
	EXPECT_EQ(0, madvise(m, NPAGES * ps, MADV_DONTFORK));
	EXPECT_EQ(0, madvise(m, NPAGES * ps, MADV_DONTDUMP));
	m[0] = 1;
	EXPECT_EQ(0, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, ps));
	EXPECT_EQ(0, m[0]);
	munmap(area, (NPAGES + 1) * ps);
	close(fd);

	/* Files only: no directories. */
	snprintf(tmpl, sizeof(tmpl), "%s/sub", self->dir);
	EXPECT_EQ(-1, mkdir(tmpl, 0755));
	EXPECT_EQ(EPERM, errno);

	/* mem-path=FILE, missing: O_CREAT | O_EXCL, 0644. */
	snprintf(tmpl, sizeof(tmpl), "%s/ram1", self->dir);
	fd = open(tmpl, O_RDWR | O_CREAT | O_EXCL, 0644);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, NPAGES * ps));
	close(fd);
	/* ...and opened again by the next QEMU with plain O_RDWR. */
	fd = open(tmpl, O_RDWR);
	ASSERT_LE(0, fd);
	EXPECT_EQ(NPAGES * ps, lseek(fd, 0, SEEK_END));
	close(fd);
	EXPECT_EQ(0, unlink(tmpl));
}

/* Not a fixture test: it unmounts and unloads. */
TEST(the_module_stays_while_a_vmigfs_is_mounted)
{
	char dir[] = "/tmp/vmigfs.XXXXXX";

	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, mount("vmigfs", dir, "vmigfs", 0, NULL));
	EXPECT_NE(0, vmig_module_unload()) TH_LOG("unloaded under a mounted vmigfs");
	ASSERT_EQ(0, umount(dir));
	rmdir(dir);
	EXPECT_EQ(0, vmig_module_unload());
	ASSERT_EQ(0, vmig_module_load());
}

TEST_HARNESS_MAIN
