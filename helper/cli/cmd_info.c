// SPDX-License-Identifier: GPL-2.0
/* vmig info: which backends this machine offers, and what they can do. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "libvmig.h"
#include "cmd.h"

static void info_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig info [--json]\n"
		"\n"
		"Report the backends this machine offers for guest RAM:\n"
		"  kmod  /dev/vmig (the vmig kernel module): its ABI version and features.\n"
		"  uffd  memfd + userfaultfd: whether postcopy (MISSING on shmem), dirty\n"
		"        tracking by write-protect faults (WP on shmem), and asynchronous\n"
		"        dirty tracking (WP_ASYNC + PAGEMAP_SCAN) are available.\n"
		"\n"
		"Options:\n"
		"  --json   one JSON object on stdout instead of text\n"
		"  --help   this text\n"
		"\n"
		"Exit status: 0 if at least one backend can migrate, 1 if none, 2 usage.\n"
		"\n"
		"Example:\n"
		"  vmig info --json | jq .uffd.wp_async\n");
}

static const char *yes(int b)
{
	return b ? "yes" : "no";
}

static const char *jbool(int b)
{
	return b ? "true" : "false";
}

static int info_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmig_dev_info dev = { 0 };
	struct vmig_uffd_info uf;
	int json = 0, c, dev_err, uf_err, fd;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			info_usage(stdout);
			return 0;
		default:
			info_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vmig info: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	fd = vmig_dev_open();
	dev_err = fd < 0 ? fd : vmig_dev_query(fd, &dev);
	if (fd >= 0)
		close(fd);
	uf_err = vmig_uffd_probe(&uf);

	if (json) {
		printf("{\"version\":\"%s\",\"kmod\":{\"available\":%s", vmig_version(),
		       jbool(!dev_err));
		if (dev_err)
			printf(",\"error\":\"%s\"", strerror(-dev_err));
		else
			printf(",\"api_version\":%u,\"features\":%llu,\"page_size\":%llu",
			       dev.api_version, (unsigned long long)dev.features,
			       (unsigned long long)dev.page_size);
		printf("},\"uffd\":{\"available\":%s", jbool(!uf_err));
		if (uf_err)
			printf(",\"error\":\"%s\"", strerror(-uf_err));
		else
			printf(",\"features\":%llu,\"missing_shmem\":%s,\"wp_shmem\":%s,"
			       "\"wp_async\":%s,\"pagemap_scan\":%s",
			       (unsigned long long)uf.features, jbool(uf.missing_shmem),
			       jbool(uf.wp_shmem), jbool(uf.wp_async), jbool(uf.pagemap_scan));
		printf("}}\n");
	} else {
		printf("vmig %s\n", vmig_version());
		if (dev_err)
			printf("kmod: not available (/dev/vmig: %s)\n", strerror(-dev_err));
		else
			printf("kmod: ABI %u, features 0x%llx, page size %llu\n",
			       dev.api_version, (unsigned long long)dev.features,
			       (unsigned long long)dev.page_size);
		if (uf_err)
			printf("uffd: not available (userfaultfd: %s)\n", strerror(-uf_err));
		else
			printf("uffd: postcopy %s, sync write-protect %s, async write-protect %s "
			       "(WP_ASYNC %s, PAGEMAP_SCAN %s)\n",
			       yes(uf.missing_shmem), yes(uf.wp_shmem),
			       yes(uf.wp_async && uf.pagemap_scan), yes(uf.wp_async),
			       yes(uf.pagemap_scan));
	}
	return (!dev_err || !uf_err) ? 0 : 1;
}

const struct vmig_cmd vmig_cmd_info = {
	.name = "info",
	.summary = "show the backends this machine offers",
	.run = info_run,
};
