// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/vmig itself: the API query, ioctl dispatch, bad pointers, many
 * opens, and unloading without leaking.
 */
#include "vmig_test.h"
#include "kselftest_harness.h"

FIXTURE(dev) {
	int fd;
};

FIXTURE_SETUP(dev)
{
	self->fd = vmig_dev_open();
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", VMIG_DEV, strerror(-self->fd));
}

FIXTURE_TEARDOWN(dev)
{
	close(self->fd);
}

TEST_F(dev, api_reports_version_and_page_size)
{
	struct vmig_api api;

	memset(&api, 0xff, sizeof(api));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_API, &api));
	EXPECT_EQ(VMIG_API_VERSION, api.version);
	EXPECT_EQ(0, api.reserved);
	EXPECT_EQ(vmig_page_size(), api.page_size);
	EXPECT_NE(0, api.max_region_bytes);
}

TEST_F(dev, unknown_ioctl_is_enotty)
{
	EXPECT_EQ(-1, ioctl(self->fd, _IO(VMIG_IOC_MAGIC, 0x7f)));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, _IO('X', 0)));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, region_ioctl_on_device_is_enotty)
{
	struct vmig_stats st;
	struct vmig_dirty_enable en = { 0 };

	EXPECT_EQ(-1, ioctl(self->fd, VMIG_GET_STATS, &st));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_DIRTY_ENABLE, &en));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_ABORT));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(dev, device_ioctl_on_region_is_enotty)
{
	struct vmig_api api;
	int r = vmig_region_new(self->fd, vmig_page_size(), 0);

	ASSERT_LE(0, r);
	EXPECT_EQ(-1, ioctl(r, VMIG_GET_API, &api));
	EXPECT_EQ(ENOTTY, errno);
	close(r);
}

TEST_F(dev, bad_user_pointer_is_efault)
{
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_GET_API, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_CREATE_REGION, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_GET_GLOBAL_STATS, NULL));
	EXPECT_EQ(EFAULT, errno);
}

TEST(open_close_many_times)
{
	int i, fd;

	for (i = 0; i < 10000; i++) {
		fd = vmig_dev_open();
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, close(fd));
	}
}

TEST(unload_refused_while_region_alive_then_clean)
{
	struct vmig_global_stats st;
	long ps = vmig_page_size();
	int dev, r, i;
	char *p;

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	r = vmig_region_new(dev, 64 * ps, 0);
	ASSERT_LE(0, r);
	p = vmig_region_map(r, 64 * ps, 0);
	ASSERT_NE(NULL, p);
	for (i = 0; i < 64; i++)
		p[i * ps] = 1;
	close(dev);
	close(r);

	/* The mapping alone keeps the region, and the module, alive. */
	EXPECT_NE(0, vmig_module_unload());
	ASSERT_EQ(0, munmap(p, 64 * ps));

	dev = vmig_dev_open();
	ASSERT_LE(0, dev);
	ASSERT_EQ(0, vmig_global_stats(dev, &st));
	EXPECT_EQ(0, st.regions);
	EXPECT_EQ(0, st.pages_allocated);
	EXPECT_EQ(0, st.reserved_bytes);
	close(dev);

	ASSERT_EQ(0, vmig_module_unload());
	ASSERT_EQ(0, vmig_module_load());
}

TEST_HARNESS_MAIN
