// SPDX-License-Identifier: GPL-2.0
/*
 * The switchover's prediction (helper/source/switchover.c): each part from its
 * inputs.  The decision that uses it, end to end, is switchover_test.sh's.
 */
#include "kselftest_harness.h"
#include "../../helper/source/switchover.c"

#define MiB	(1024.0 * 1024)

/* 100 MiB devices saved and loaded at 200 MiB/s. */
static struct sw_device dev100[4] = {
	{ 100 * MiB, 200 * MiB, 200 * MiB }, { 100 * MiB, 200 * MiB, 200 * MiB },
	{ 100 * MiB, 200 * MiB, 200 * MiB }, { 100 * MiB, 200 * MiB, 200 * MiB },
};

static struct sw_inputs inputs(unsigned int n, double bw, unsigned int threads)
{
	return (struct sw_inputs){ .bandwidth = bw, .nr_devices = n, .dev = dev100,
				   .threads = threads };
}

TEST(one_device_takes_its_size_at_its_save_rate)
{
	struct sw_inputs in = inputs(1, 1e12, 8);
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_LT(499.9, p.dev_save);
	ASSERT_GT(500.1, p.dev_save);
	/* the load keeps up: only its last chunk is left after the save */
	ASSERT_GT(2.0, p.load);
}

TEST(devices_in_parallel_overlap_until_the_bandwidth_limits_them)
{
	struct sw_inputs in = inputs(4, 1e12, 8);
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_GT(500.1, p.dev_save);		/* all four at once */
	in.bandwidth = 400 * MiB;		/* half of what they could do */
	sw_predict(&in, &p);
	ASSERT_LT(999.9, p.dev_save);
	ASSERT_GT(1000.1, p.dev_save);
	in.dev_bandwidth = 800 * MiB;		/* device state at the best rate seen */
	sw_predict(&in, &p);
	ASSERT_GT(500.1, p.dev_save);
}

TEST(the_main_channel_sends_devices_one_after_another)
{
	struct sw_inputs in = inputs(4, 1e12, 8);
	struct sw_parts p;

	in.on_main = true;
	sw_predict(&in, &p);
	ASSERT_LT(1999.9, p.dev_save);
	ASSERT_GT(2000.1, p.dev_save);
}

TEST(a_pool_smaller_than_the_devices_takes_them_in_turns)
{
	struct sw_inputs in = inputs(4, 1e12, 2);
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_LT(999.9, p.dev_save);
	ASSERT_GT(1000.1, p.dev_save);
}

TEST(a_load_slower_than_the_save_shows_as_the_load_part)
{
	struct sw_device d = { 100 * MiB, 400 * MiB, 200 * MiB };
	struct sw_inputs in = { .bandwidth = 1e12, .nr_devices = 1, .dev = &d, .threads = 8 };
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_GT(250.1, p.dev_save);
	ASSERT_LT(249.9, p.dev_save);
	ASSERT_LT(250.0, p.load);		/* the other 250 ms, and the last chunk */
	ASSERT_GT(252.0, p.load);
}

TEST(bandwidth_is_shared_max_min_fairly)
{
	/* one device limited to 10 MiB/s, one unlimited, 100 MiB/s to share */
	struct sw_device d[2] = { { 10 * MiB, 10 * MiB, 0 }, { 10 * MiB, 0, 0 } };
	struct sw_inputs in = { .bandwidth = 100 * MiB, .nr_devices = 2, .dev = d, .threads = 8 };
	struct sw_parts p;

	sw_predict(&in, &p);
	/* the slow one sets the end: 1 s; the other had 90 MiB/s and is long done */
	ASSERT_LT(999.9, p.dev_save);
	ASSERT_GT(1000.1, p.dev_save);
}

TEST(pages_at_the_bandwidth_and_stop_resume_at_the_round_trip)
{
	struct sw_inputs in = { .dirty_bytes = 100 * MiB, .bandwidth = 100 * MiB,
				.harvest_ms = 2, .ctl_rtt_ms = 0.5 };
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_LT(1001.9, p.pages);
	ASSERT_GT(1002.1, p.pages);
	ASSERT_EQ(0.5, p.stop);
	ASSERT_EQ(0.5, p.resume);
	ASSERT_EQ(0, p.dev_save);
	ASSERT_EQ(0, p.transfer);
	ASSERT_LT(1002.9, sw_total(&p));
	ASSERT_GT(1003.1, sw_total(&p));
	ASSERT_STREQ("final dirty pages", sw_largest(&p));
	in.postcopy = true;		/* the pages go after the switch */
	sw_predict(&in, &p);
	ASSERT_EQ(2, p.pages);
}

TEST(a_device_with_nothing_left_costs_only_its_round_trips)
{
	struct sw_device d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
	struct sw_inputs in = { .bandwidth = 1e9, .nr_devices = 2, .dev = d, .threads = 1,
				.ctl_rtt_ms = 1 };
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_EQ(2, p.dev_save);
	ASSERT_EQ(0, p.transfer);
	ASSERT_EQ(0, p.load);
}

TEST_HARNESS_MAIN
