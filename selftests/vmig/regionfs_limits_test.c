// SPDX-License-Identifier: GPL-2.0
/*
 * The per-user limits hold for regions made by path too.  A vmigfs file
 * becomes a region at its first truncate, through the same
 * vmig_region_new() as VMIG_CREATE_REGION: the size is charged to the
 * truncating user's RLIMIT_MEMLOCK (-ENOMEM past it), the region counts
 * under max_regions_per_user (-EMFILE past it), a refused truncate leaves
 * no charge behind, and the charge goes when the inode goes (unlink, last
 * close).  Run as root; the user's part runs in a child dropped to uid
 * 1000 in a world-writable (sticky) vmigfs.
 */
#include <fcntl.h>
#include <grp.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vmig_test.h"
#include "kselftest_harness.h"

#define USER		1000
#define MEMLOCK_PAGES	32

static char dir[] = "/tmp/vmigfs-limits.XXXXXX";

/* Create @name and truncate it to @pages: the open fd, or -errno. */
static int sized_file(const char *name, long pages)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, pages * vmig_page_size())) {
		int err = -errno;

		close(fd);
		unlink(path);
		return err;
	}
	return fd;
}

static void drop_file(const char *name, int fd)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	close(fd);
}

/* The results of the user's steps, in order, for the parent to check. */
enum { A, B_OVER_MEMLOCK, C, D_OVER_CAP, E_ALL_OF_IT, F_ONE_MORE, NSTEPS };

static int as_user(int *res)
{
	int a, c, e;

	a = sized_file("a", 8);				/* 8 of 32 */
	res[A] = a < 0 ? a : 0;
	res[B_OVER_MEMLOCK] = sized_file("b", MEMLOCK_PAGES);
	c = sized_file("c", 8);				/* 16 of 32, 2 regions */
	res[C] = c < 0 ? c : 0;
	res[D_OVER_CAP] = sized_file("d", 8);
	if (a >= 0)
		drop_file("a", a);
	if (c >= 0)
		drop_file("c", c);
	/* Only if b, d, a and c gave back all they took. */
	e = sized_file("e", MEMLOCK_PAGES);
	res[E_ALL_OF_IT] = e < 0 ? e : 0;
	res[F_ONE_MORE] = sized_file("f", 1);
	if (e >= 0)
		drop_file("e", e);
	return 0;
}

TEST(path_regions_are_charged_capped_and_uncharged_like_anonymous_ones)
{
	long was = vmig_param_read("max_regions_per_user");
	struct rlimit rl = { MEMLOCK_PAGES * vmig_page_size(),
			     MEMLOCK_PAGES * vmig_page_size() };
	int *res, status, fd;
	pid_t pid;

	ASSERT_LT(0, was);
	ASSERT_NE(NULL, mkdtemp(dir));
	ASSERT_EQ(0, mount("vmigfs", dir, "vmigfs", 0, "mode=1777"));
	res = mmap(NULL, NSTEPS * sizeof(*res), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, res);
	for (int i = 0; i < NSTEPS; i++)
		res[i] = 1;
	ASSERT_EQ(0, vmig_param_write("max_regions_per_user", 2));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setrlimit(RLIMIT_MEMLOCK, &rl) || setgroups(0, NULL) ||
		    setresgid(USER, USER, USER) || setresuid(USER, USER, USER))
			_exit(90);
		_exit(as_user(res));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	vmig_param_write("max_regions_per_user", was);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));

	EXPECT_EQ(0, res[A]);
	EXPECT_EQ(-ENOMEM, res[B_OVER_MEMLOCK])
		TH_LOG("a region past RLIMIT_MEMLOCK was made by truncate");
	EXPECT_EQ(0, res[C]) TH_LOG("the refused truncate kept its charge");
	EXPECT_EQ(-EMFILE, res[D_OVER_CAP])
		TH_LOG("a third region past max_regions_per_user = 2");
	EXPECT_EQ(0, res[E_ALL_OF_IT])
		TH_LOG("refused or freed regions kept their charge (%d)",
		       res[E_ALL_OF_IT]);
	EXPECT_EQ(-ENOMEM, res[F_ONE_MORE]) TH_LOG("the whole limit was not charged");

	/* Root (CAP_IPC_LOCK, CAP_SYS_RESOURCE) is exempt from both. */
	fd = sized_file("root", 4 * MEMLOCK_PAGES);
	EXPECT_LE(0, fd);
	if (fd >= 0)
		drop_file("root", fd);

	munmap(res, NSTEPS * sizeof(*res));
	EXPECT_EQ(0, umount(dir));
	rmdir(dir);
}

TEST_HARNESS_MAIN
