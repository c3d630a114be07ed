// SPDX-License-Identifier: GPL-2.0
/*
 * The switchover's prediction (helper/source/switchover.c): each part from its
 * inputs.  The decision that uses it, end to end, is switchover_test.sh's.
 */
#include "kselftest_harness.h"
#include "../../helper/source/switchover.c"

#define MiB	(1024.0 * 1024)
/* A device: bytes left, save and load rates (bytes/s, 0: unknown). */
#define DEV(left, save, load)	\
	{ .remaining = (left), .save_rate = (save), .load_rate = (load) }

/* 100 MiB devices saved and loaded at 200 MiB/s. */
static struct sw_device dev100[4] = {
	DEV(100 * MiB, 200 * MiB, 200 * MiB), DEV(100 * MiB, 200 * MiB, 200 * MiB),
	DEV(100 * MiB, 200 * MiB, 200 * MiB), DEV(100 * MiB, 200 * MiB, 200 * MiB),
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
	struct sw_device d = DEV(100 * MiB, 400 * MiB, 200 * MiB);
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
	struct sw_device d[2] = { DEV(10 * MiB, 10 * MiB, 0), DEV(10 * MiB, 0, 0) };
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
	struct sw_device d[2] = { DEV(0, 0, 0), DEV(0, 0, 0) };
	struct sw_inputs in = { .bandwidth = 1e9, .nr_devices = 2, .dev = d, .threads = 1,
				.ctl_rtt_ms = 1 };
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_EQ(2, p.dev_save);
	ASSERT_EQ(0, p.transfer);
	ASSERT_EQ(0, p.load);
}

/*
 * Devices with a precopy part still running at the switch: 50 MiB left each
 * (250 ms at 200 MiB/s).  One device's load began late and trails its
 * arrivals by 6 MiB on the destination: it ends 30 ms after the saves.
 */
TEST(a_load_that_lags_ends_its_backlog_after_the_save)
{
	struct sw_device d[4] = {
		DEV(50 * MiB, 200 * MiB, 200 * MiB), DEV(50 * MiB, 200 * MiB, 200 * MiB),
		DEV(50 * MiB, 200 * MiB, 200 * MiB), DEV(50 * MiB, 200 * MiB, 200 * MiB),
	};
	struct sw_inputs in = { .bandwidth = 1e12, .nr_devices = 4, .dev = d, .threads = 8 };
	struct sw_parts p;

	d[3].backlog = 6 * MiB;
	sw_predict(&in, &p);
	ASSERT_LT(249.9, p.dev_save);
	ASSERT_GT(250.1, p.dev_save);
	ASSERT_LT(29.9, p.load);		/* 56 MiB at 200 MiB/s: 280 ms from now */
	ASSERT_GT(30.1, p.load);
	d[3].backlog = 128 << 10;		/* half a chunk: the last chunk's load is more */
	sw_predict(&in, &p);
	ASSERT_LT(1.2, p.load);
	ASSERT_GT(1.3, p.load);
}

/* The destination's answer on one device (wire.h: DEV_LOAD). */
static struct wire_dev_loaded report(uint64_t received, uint64_t loaded, uint64_t load_ns)
{
	return (struct wire_dev_loaded){ .received = received, .loaded = loaded,
					 .load_ns = load_ns };
}

/*
 * A device saved and loaded at 200 MiB/s whose load began 30 ms after its
 * save (its first chunks queued behind pages): its precopy part has sent
 * 26 MiB in 130 ms (22 MiB arrived), its load has run 100 ms, so it took
 * 20 MiB at most.  It ends 30 ms after the save, whatever waits right now.
 */
TEST(a_load_that_began_late_ends_as_late_after_the_save)
{
	struct wire_dev_loaded l = report(22 * MiB, 19 * MiB, 100000000);
	struct sw_device d = DEV(50 * MiB, 200 * MiB, 200 * MiB);
	struct sw_inputs in = { .bandwidth = 1e12, .nr_devices = 1, .dev = &d, .threads = 8 };
	struct sw_parts p;

	sw_predict(&in, &p);
	ASSERT_GT(1.3, p.load);			/* before: only the last chunk's load */
	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_LT(6 * MiB - 1, d.backlog);
	ASSERT_GT(6 * MiB + 1, d.backlog);
	ASSERT_EQ(200 * MiB, d.load_rate);
	sw_predict(&in, &p);
	ASSERT_LT(249.9, p.dev_save);
	ASSERT_GT(250.1, p.dev_save);
	ASSERT_LT(29.9, p.load);
	ASSERT_GT(30.1, p.load);
}

TEST(a_load_slower_than_its_rate_has_what_waits_ahead_of_the_rest)
{
	/* 130 ms at 200 MiB/s could take the 26 MiB sent; 8 MiB of them still wait */
	struct wire_dev_loaded l = report(26 * MiB, 18 * MiB, 130000000);
	struct sw_device d = DEV(50 * MiB, 200 * MiB, 200 * MiB);

	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_EQ(8 * MiB, d.backlog);
	/* all of it taken: nothing is behind */
	l = report(26 * MiB, 26 * MiB, 130000000);
	d.backlog = 0;
	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_EQ(0, d.backlog);
}

TEST(without_a_declared_load_rate_the_rate_it_ran_at_while_it_lagged)
{
	/* 60 MiB arrived, 50 MiB loaded in 500 ms: 100 MiB/s, 10 MiB behind */
	struct wire_dev_loaded l = report(60 * MiB, 50 * MiB, 500000000);
	struct sw_device d = DEV(10 * MiB, 200 * MiB, 0);
	struct sw_inputs in = { .bandwidth = 1e12, .nr_devices = 1, .dev = &d, .threads = 8 };
	struct sw_parts p;

	sw_dest_load_apply(&l, 60 * MiB, &d);
	ASSERT_LT(10 * MiB - 1, d.backlog);
	ASSERT_GT(10 * MiB + 1, d.backlog);
	ASSERT_LT(100 * MiB - 1, d.load_rate);
	ASSERT_GT(100 * MiB + 1, d.load_rate);
	sw_predict(&in, &p);
	ASSERT_LT(49.9, p.dev_save);		/* 10 MiB at 200 MiB/s */
	ASSERT_GT(50.1, p.dev_save);
	ASSERT_LT(149.9, p.load);		/* 20 MiB at 100 MiB/s: 200 ms */
	ASSERT_GT(150.1, p.load);
}

/*
 * A hostile or broken destination: figures no destination can have.  Before
 * they were checked, received = 2^64 - 1 gave a backlog of 2^64 (undefined
 * in the conversion), and one just under made (backlog + remaining) wrap to
 * a few bytes: a predicted load of ~0 and a switch far over the limit.
 */
TEST(a_destination_s_impossible_figures_are_left_out)
{
	struct sw_device d = DEV(10 * MiB, 200 * MiB, 200 * MiB);
	struct sw_inputs in = { .bandwidth = 1e12, .nr_devices = 1, .dev = &d, .threads = 8 };
	struct wire_dev_loaded l;
	struct sw_parts before, p;

	sw_predict(&in, &before);
	l = report(UINT64_MAX, 0, 500000000);		/* more arrived than was sent */
	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_EQ(0, d.backlog);
	l = report(UINT64_MAX - 10 * MiB + 1, 0, 1);	/* would wrap backlog + remaining */
	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_EQ(0, d.backlog);
	l = report(MiB, 2 * MiB, 500000000);		/* more loaded than arrived */
	sw_dest_load_apply(&l, 26 * MiB, &d);
	ASSERT_EQ(0, d.backlog);
	sw_predict(&in, &p);
	ASSERT_EQ(before.load, p.load);
	ASSERT_EQ(before.dev_save, p.dev_save);
}

TEST(a_load_that_keeps_up_gives_no_rate_and_no_backlog)
{
	/* one chunk waits: it went only as fast as state came */
	struct wire_dev_loaded l = report(50 * MiB + 256 * 1024, 50 * MiB, 500000000);
	struct sw_device d = DEV(10 * MiB, 200 * MiB, 0);

	sw_dest_load_apply(&l, 51 * MiB, &d);
	ASSERT_EQ(0, d.backlog);
	ASSERT_EQ(0, d.load_rate);
}

TEST(the_benchmark_knob_leaves_the_answer_out)
{
	struct wire_dev_loaded l = report(25 * MiB, 19 * MiB, 100000000);
	struct sw_device d = DEV(50 * MiB, 200 * MiB, 200 * MiB);

	setenv("VMIG_SWITCHOVER_NO_LOAD_LAG", "1", 1);
	sw_dest_load_apply(&l, 26 * MiB, &d);
	unsetenv("VMIG_SWITCHOVER_NO_LOAD_LAG");
	ASSERT_EQ(0, d.backlog);
}

TEST_HARNESS_MAIN
