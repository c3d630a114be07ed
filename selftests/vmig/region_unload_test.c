// SPDX-License-Identifier: GPL-2.0
/*
 * A region's inode must not outlive the region in a way that keeps the
 * module's pseudo filesystem from going away: an inotify watch placed on a
 * region (through /proc/self/fd) holds the inode, and unloading the module
 * after the region is closed must still finish, without waiting for the
 * watcher.
 */
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <time.h>

#include "vmig_test.h"
#include "kselftest_harness.h"

/* Wait up to @secs for @pid; its exit status, or -1 if it is still running. */
static int wait_for(pid_t pid, int secs)
{
	int status;

	for (int i = 0; i < secs * 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
		usleep(100000);
	}
	return -1;
}

TEST(unload_after_a_watched_region_is_closed_does_not_hang)
{
	long ps = vmig_page_size();
	char path[64];
	int dev, fd, in, st;
	pid_t pid;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, 4 * ps, 0);
	ASSERT_LE(0, fd);
	in = inotify_init1(IN_CLOEXEC);
	ASSERT_LE(0, in);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (inotify_add_watch(in, path, IN_ALL_EVENTS) < 0)
		TH_LOG("inotify_add_watch on a region: %s (nothing to prove)",
		       strerror(errno));
	close(fd);
	close(dev);

	/* The region is gone: the module must unload, watch or not. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(in);	/* only the parent holds the watch */
		_exit(vmig_module_unload() ? 1 : 0);
	}
	st = wait_for(pid, 10);
	if (st < 0)
		TH_LOG("unloading the module hangs while a region inode is watched");
	/* Dropping the watch lets a hung unload finish. */
	close(in);
	if (st < 0)
		wait_for(pid, 10);
	/* Put the module back for the next test, whatever happened. */
	vmig_module_load();
	ASSERT_EQ(0, st);
}

TEST_HARNESS_MAIN
