// SPDX-License-Identifier: GPL-2.0
/*
 * Auto-converge's arithmetic (helper/source/throttle.c): the round-by-round steps
 * and the bulk stage's proportional throttle.  The end-to-end behaviour
 * (the VMM throttles its vCPUs) is throttle_test.sh's and, on kmod,
 * migrate_kmod_test.sh's.
 */
#include "kselftest_harness.h"
#include "../../helper/source/throttle.c"

TEST(bulk_below_half_the_link_keeps_the_guest_unthrottled)
{
	struct throttle t = { 0 };

	ASSERT_EQ(0, throttle_bulk(&t, 500, 1000));
	ASSERT_EQ(0, throttle_bulk(&t, 0, 1000));
	ASSERT_EQ(0, throttle_bulk(&t, 100, 0));
}

TEST(bulk_throttle_brings_the_redirty_rate_down_to_half_the_link)
{
	struct throttle t = { 0 };

	/* Re-dirtying as fast as sending: run at half speed. */
	ASSERT_EQ(50, throttle_bulk(&t, 1000, 1000));
	/* Measured under 50 %, still as fast as sending: run at a quarter. */
	t.percent = 50;
	ASSERT_EQ(75, throttle_bulk(&t, 1000, 1000));
}

TEST(bulk_throttle_is_clamped_and_never_eased)
{
	struct throttle t = { 0 };

	/* Just over the threshold: at least the first step. */
	ASSERT_EQ(THROTTLE_INITIAL, throttle_bulk(&t, 510, 1000));
	ASSERT_EQ(THROTTLE_MAX, throttle_bulk(&t, 1000000, 1000));
	t.percent = 60;
	ASSERT_EQ(67, throttle_bulk(&t, 600, 1000));	/* 40 % * 500 / 600 */
	ASSERT_EQ(60, throttle_bulk(&t, 100, 1000));
}

TEST(rounds_step_up_only_while_the_dirty_set_does_not_halve)
{
	struct throttle t = { .last_pages = 1000 };

	ASSERT_EQ(THROTTLE_INITIAL, throttle_next(&t, 800));
	t.percent = THROTTLE_INITIAL;
	ASSERT_EQ(THROTTLE_INITIAL + THROTTLE_STEP, throttle_next(&t, 700));
	t.percent += THROTTLE_STEP;
	ASSERT_EQ(t.percent, throttle_next(&t, 300));
	ASSERT_FALSE(throttle_maxed(&t));
}

TEST_HARNESS_MAIN
