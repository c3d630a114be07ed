// SPDX-License-Identifier: GPL-2.0
/*
 * The urgent threads' scheduling (helper/common/thread_sched.c) under the
 * limits a user without CAP_SYS_NICE has: RLIMIT_RTPRIO decides which
 * SCHED_FIFO priority it may take.  The destination's fault thread asks
 * for 2; where only 1 is allowed it must still get SCHED_FIFO (it got
 * nice -10, or nothing, before the fallback), and where none is, it must
 * not be real-time.  Each case runs in a child that drops CAP_SYS_NICE.
 */
#include <linux/capability.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "../../helper/common/thread_sched.c"

/* Without CAP_SYS_NICE in the effective set, RLIMIT_RTPRIO applies to root too. */
static int drop_sys_nice(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[0].effective &= ~(1u << CAP_SYS_NICE);
	return syscall(SYS_capset, &h, d);
}

/*
 * In a child with RLIMIT_RTPRIO at @limit: thread_urgent(URGENT_FIFO, @prio).
 * Returns the policy and priority got as policy * 100 + priority; 255 if
 * the limit could not be set (raising it above the hard limit needs
 * CAP_SYS_RESOURCE, which a container may not have: the test skips), 253
 * if CAP_SYS_NICE could not be dropped, 254 if what thread_urgent said
 * does not match what the thread got.
 */
static int urgent_under(unsigned int limit, int prio)
{
	pid_t pid = fork();
	int status;

	if (!pid) {
		struct rlimit rl = { limit, limit };
		struct sched_param sp;
		const char *got;
		int pol;

		if (setrlimit(RLIMIT_RTPRIO, &rl))
			_exit(255);
		if (drop_sys_nice())
			_exit(253);
		got = thread_urgent(URGENT_FIFO, prio);
		pol = sched_getscheduler(0);
		if (sched_getparam(0, &sp) || (pol == SCHED_FIFO) != !strcmp(got, "fifo"))
			_exit(254);
		_exit(pol * 100 + sp.sched_priority);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

FIXTURE(rtprio) {};
FIXTURE_SETUP(rtprio) {}
FIXTURE_TEARDOWN(rtprio) {}

/* RLIMIT_RTPRIO, and what the fault thread (asking for 2) must get under it. */
FIXTURE_VARIANT(rtprio) {
	unsigned int limit;
	int expect;		/* policy * 100 + priority */
};

FIXTURE_VARIANT_ADD(rtprio, fifo_2_where_allowed) { .limit = 2, .expect = SCHED_FIFO * 100 + 2 };
FIXTURE_VARIANT_ADD(rtprio, fifo_1_where_no_more) { .limit = 1, .expect = SCHED_FIFO * 100 + 1 };
FIXTURE_VARIANT_ADD(rtprio, no_real_time_at_0) { .limit = 0, .expect = SCHED_OTHER * 100 };

TEST_F(rtprio, the_fault_thread_gets_what_the_limit_allows)
{
	int r = urgent_under(variant->limit, URGENT_PRIO_DST);

	if (r == 255)
		SKIP(return, "RLIMIT_RTPRIO cannot be raised to %u here (its hard limit is lower "
		     "and this process has no CAP_SYS_RESOURCE)", variant->limit);
	EXPECT_EQ(r, variant->expect);
}

TEST_HARNESS_MAIN
