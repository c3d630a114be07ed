// SPDX-License-Identifier: GPL-2.0
/*
 * Dirty logging against a concurrent mprotect(): mprotect() giving write
 * access back turns a read-only but *dirty* shared PTE writable without a
 * fault.  If that happens to a page while a harvest re-arms its
 * protection, the page must still end write-protected and clean, so the
 * next write to it faults and is reported.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "vmig_test.h"
#include "dirty_util.h"
#include "kselftest_harness.h"

#define NPAGES	512
#define ROUNDS	300

struct toggler {
	unsigned char *map;
	size_t len;
	atomic_int stop;
};

/* Flip the whole mapping read-only and back, until told to stop. */
static void *toggle(void *arg)
{
	struct toggler *t = arg;

	while (!atomic_load(&t->stop)) {
		mprotect(t->map, t->len, PROT_READ);
		mprotect(t->map, t->len, PROT_READ | PROT_WRITE);
	}
	return NULL;
}

TEST(write_after_harvest_racing_mprotect_is_reported)
{
	long ps = vmig_page_size();
	size_t len = NPAGES * ps;
	uint64_t bm[NPAGES / 64], dirty;
	struct toggler t = { .len = len };
	pthread_t th;
	int dev, fd, round;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	fd = vmig_region_new(dev, len, 0);
	ASSERT_LE(0, fd);
	t.map = vmig_region_map(fd, len, 0);
	ASSERT_NE(NULL, t.map);
	ASSERT_EQ(0, vmig_dirty_enable(fd, 0));

	for (round = 0; round < ROUNDS; round++) {
		/* Every page written: dirty, writable PTEs, every bit set. */
		for (int i = 0; i < NPAGES; i++)
			t.map[i * ps] = round;
		/* Harvest while another thread flips the protection. */
		atomic_store(&t.stop, 0);
		ASSERT_EQ(0, pthread_create(&th, NULL, toggle, &t));
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, NPAGES, bm, &dirty));
		atomic_store(&t.stop, 1);
		ASSERT_EQ(0, pthread_join(th, NULL));

		/* Writable again: each page's next write must be reported. */
		for (int i = 0; i < NPAGES; i++)
			t.map[i * ps] = round + 1;
		ASSERT_EQ(0, vmig_dirty_get(fd, 0, NPAGES, bm, &dirty));
		if (dirty != NPAGES)
			TH_LOG("round %d: %llu of %d writes not reported", round,
			       (unsigned long long)(NPAGES - dirty), NPAGES);
		ASSERT_EQ(NPAGES, dirty);
	}
	munmap(t.map, len);
	close(fd);
	close(dev);
}

TEST_HARNESS_MAIN
