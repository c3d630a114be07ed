// SPDX-License-Identifier: GPL-2.0
/*
 * vmig region create|list|remove|mount: regions by path, the files of a
 * vmigfs mount, for VMMs that take guest RAM as a file (QEMU's mem-path).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/vmig.h>

#include "libvmig.h"
#include "cmd.h"
#include "util.h"

static void region_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig region create PATH --size SIZE [--mode MODE] [--owner USER:GROUP]\n"
		"       vmig region list [--json]\n"
		"       vmig region remove PATH...\n"
		"       vmig region mount [DIR]\n"
		"\n"
		"Regions by path: every file of a vmigfs filesystem is a vmig.ko region, so\n"
		"a VMM that takes guest RAM as a file maps one by its name, and vmig.ko's\n"
		"dirty logging and postcopy service cover every process that maps it:\n"
		"  qemu-system-x86_64 -object memory-backend-file,id=m0,mem-path=PATH,\\\n"
		"      size=SIZE,share=on -machine memory-backend=m0 ...\n"
		"(share=on is required: a private mapping, which dirty logging could not\n"
		"see, is refused.)\n"
		"\n"
		"create  make the region file PATH of SIZE bytes (a multiple of the page\n"
		"        size; K, M, G suffixes).  Its directory must be on a vmigfs; if\n"
		"        it is " VMIG_REGIONFS_DIR " and nothing is mounted there, one is mounted\n"
		"        (and vmig.ko loaded) first.  The size is fixed for the region's\n"
		"        life; the whole size is reserved under the module's cap\n"
		"        (max_region_mb) at once.\n"
		"list    every region file of every mounted vmigfs: path, size, mode,\n"
		"        owner, memory present, and whether postcopy mode or dirty\n"
		"        logging is on (for files this user may read).\n"
		"remove  unlink region files.  A process that still has one open or\n"
		"        mapped keeps using it; its memory is freed after the last.\n"
		"mount   mount a vmigfs on DIR (default " VMIG_REGIONFS_DIR "; made if missing),\n"
		"        loading vmig.ko if needed.  Nothing to do if one is there.\n"
		"        A QEMU given a vmigfs directory as mem-path makes (and unlinks)\n"
		"        its own file there.\n"
		"\n"
		"Options:\n"
		"  --size SIZE         create: the region's size in bytes (required)\n"
		"  --mode MODE         create: octal permissions (default 0600); who may\n"
		"                      open the region is decided by them, as for any file\n"
		"  --owner USER:GROUP  create: owner and group, names or numbers (default:\n"
		"                      the caller); USER alone or :GROUP alone also work\n"
		"  --json              list: one JSON object {\"regions\":[{\"path\",\"size\",\n"
		"                      \"mode\",\"uid\",\"gid\",\"pages_present\",\"postcopy\",\n"
		"                      \"dirty_logging\"}]} (the last three null if unreadable)\n"
		"  --help              this text\n"
		"\n"
		"Mounting, and creating in a root-owned vmigfs (its root directory starts\n"
		"0755 root:root; chmod it to let others create regions), need root.\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage.\n"
		"\n"
		"Examples:\n"
		"  vmig region create /run/vmig/vm0-ram --size 4G --owner qemu:kvm\n"
		"  vmig region list\n"
		"  vmig region remove /run/vmig/vm0-ram\n");
}

/* "qemu:kvm", "1000:1000", "qemu", ":kvm". */
static bool parse_owner(const char *s, uid_t *uid, gid_t *gid)
{
	char buf[256], *colon, *g = NULL;
	uint64_t v;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf) || !buf[0])
		return false;
	colon = strchr(buf, ':');
	if (colon) {
		*colon = 0;
		g = colon + 1;
	}
	if (buf[0]) {
		struct passwd *pw = getpwnam(buf);

		if (pw)
			*uid = pw->pw_uid;
		else if (parse_uint(buf, 0, UINT32_MAX - 1, &v))
			*uid = v;
		else
			return false;
	}
	if (g && g[0]) {
		struct group *gr = getgrnam(g);

		if (gr)
			*gid = gr->gr_gid;
		else if (parse_uint(g, 0, UINT32_MAX - 1, &v))
			*gid = v;
		else
			return false;
	} else if (g) {
		return false;
	}
	return true;
}

/* Why creating or mounting failed, in words an operator can act on. */
static void region_create_error(const char *path, uint64_t size, int err)
{
	char b[32];

	fprintf(stderr, "vmig region create: %s: ", path);
	switch (err) {
	case -EEXIST:
		fprintf(stderr, "exists already (vmig region remove it first)\n");
		break;
	case -ENOTTY:
		fprintf(stderr, "not on a vmigfs (mount one with 'vmig region mount DIR'"
			" or use " VMIG_REGIONFS_DIR ")\n");
		break;
	case -EINVAL:
		fprintf(stderr, "size %" PRIu64 " is not a multiple of the page size (%ld)\n",
			size, sysconf(_SC_PAGESIZE));
		break;
	case -EFBIG:
		fprintf(stderr, "%s is more than the module's cap on all regions "
			"(module parameter max_region_mb)\n", vmig_fmt_bytes(size, b, sizeof(b)));
		break;
	case -ENOSPC:
		fprintf(stderr, "no room for %s under the module's cap beside the regions "
			"that exist (see 'vmig stats')\n", vmig_fmt_bytes(size, b, sizeof(b)));
		break;
	case -EPERM:
	case -EACCES:
		fprintf(stderr, "not permitted (%s): creating in a root-owned vmigfs, "
			"or giving a region away with --owner, needs root\n", strerror(-err));
		break;
	default:
		fprintf(stderr, "%s\n", strerror(-err));
	}
}

static int region_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "mode", required_argument, NULL, 'm' },
		{ "owner", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	unsigned long mode = 0600;
	int64_t size = -1;
	char dirbuf[PATH_MAX], *dir, *end, b[32];
	const char *path;
	int c, fd, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			size = parse_size(optarg);
			if (size <= 0) {
				bad_option_value("region create", opts, c, optarg);
				return 2;
			}
			break;
		case 'm':
			errno = 0;
			mode = strtoul(optarg, &end, 8);
			if (errno || end == optarg || *end || mode > 07777) {
				bad_option_value("region create", opts, c, optarg);
				return 2;
			}
			break;
		case 'o':
			if (!parse_owner(optarg, &uid, &gid)) {
				fprintf(stderr, "vmig region create: bad value '%s' for --owner "
					"(USER:GROUP, names or numbers; see --help)\n", optarg);
				return 2;
			}
			break;
		case 'h':
			region_usage(stdout);
			return 0;
		default:
			region_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "vmig region create: give one PATH (see --help)\n");
		return 2;
	}
	if (size < 0) {
		fprintf(stderr, "vmig region create: --size is required\n");
		return 2;
	}
	path = argv[optind];

	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	dir = dirname(dirbuf);
	if (!strcmp(dir, VMIG_REGIONFS_DIR) && vmig_regionfs_check(dir) != 1) {
		err = vmig_regionfs_mount(dir);
		if (err) {
			fprintf(stderr, "vmig region create: mounting a vmigfs on %s: %s\n",
				dir, strerror(-err));
			return 1;
		}
	}
	fd = vmig_region_file_create(path, size, mode, uid, gid);
	if (fd < 0) {
		region_create_error(path, size, fd);
		return 1;
	}
	close(fd);
	printf("vmig region: created %s, %s, mode %04lo\n", path,
	       vmig_fmt_bytes(size, b, sizeof(b)), mode);
	return 0;
}

static int region_remove(int argc, char **argv)
{
	int i, err, ret = 0;

	if (argc < 2) {
		fprintf(stderr, "vmig region remove: give a PATH (see --help)\n");
		return 2;
	}
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			region_usage(stdout);
			return 0;
		}
	}
	for (i = 1; i < argc; i++) {
		err = vmig_region_file_remove(argv[i]);
		if (!err) {
			printf("vmig region: removed %s\n", argv[i]);
			continue;
		}
		if (err == -ENOTTY)
			fprintf(stderr, "vmig region remove: %s: not on a vmigfs "
				"(not a region; left alone)\n", argv[i]);
		else
			fprintf(stderr, "vmig region remove: %s: %s\n", argv[i], strerror(-err));
		ret = 1;
	}
	return ret;
}

static int region_mount(int argc, char **argv)
{
	const char *dir = VMIG_REGIONFS_DIR;
	int err;

	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		region_usage(stdout);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "vmig region mount: unexpected argument '%s'\n", argv[2]);
		return 2;
	}
	if (argc == 2)
		dir = argv[1];
	err = vmig_regionfs_mount(dir);
	if (err) {
		fprintf(stderr, "vmig region mount: %s: %s%s\n", dir, strerror(-err),
			err == -EPERM ? " (mounting needs root)" : "");
		return 1;
	}
	printf("vmig region: a vmigfs is mounted on %s\n", dir);
	return 0;
}

/* A mount point from /proc/self/mountinfo, its \ooo escapes decoded in place. */
static void unescape_octal(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = 0;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = *s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

struct list_out {
	bool json;
	int count;
};

static void list_one(struct list_out *out, const char *path, const struct stat *st)
{
	struct vmig_stats vs;
	bool have = false;
	char b1[32], b2[32], state[64];
	int fd;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		memset(&vs, 0, sizeof(vs));
		have = !ioctl(fd, VMIG_GET_STATS, &vs);
		close(fd);
	}
	if (out->json) {
		printf("%s{\"path\":", out->count ? "," : "");
		json_string(stdout, path);
		printf(",\"size\":%jd,\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,",
		       (intmax_t)st->st_size, st->st_mode & 07777, st->st_uid, st->st_gid);
		if (have)
			printf("\"pages_present\":%" PRIu64 ",\"postcopy\":%s,"
			       "\"dirty_logging\":%s}", (uint64_t)vs.pages_present,
			       vs.postcopy_on ? "true" : "false",
			       vs.dirty_on ? "true" : "false");
		else
			printf("\"pages_present\":null,\"postcopy\":null,"
			       "\"dirty_logging\":null}");
	} else {
		if (!st->st_size)
			snprintf(state, sizeof(state), "no size yet");
		else if (!have)
			snprintf(state, sizeof(state), "?");
		else
			snprintf(state, sizeof(state), "%s%s%s",
				 vs.postcopy_on ? "postcopy" : "",
				 vs.postcopy_on && vs.dirty_on ? "," : "",
				 vs.dirty_on ? "dirty-logging" : vs.postcopy_on ? "" : "-");
		if (have)
			vmig_fmt_bytes(vs.pages_present * sysconf(_SC_PAGESIZE), b2, sizeof(b2));
		else
			snprintf(b2, sizeof(b2), "?");
		printf("%-32s %10s %04o %5u:%-5u %10s  %s\n", path,
		       vmig_fmt_bytes(st->st_size, b1, sizeof(b1)), st->st_mode & 07777,
		       st->st_uid, st->st_gid, b2, state);
	}
	out->count++;
}

/* Every regular file of the vmigfs mounted on @mnt. */
static int list_mount(struct list_out *out, const char *mnt)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(mnt);

	if (!d) {
		fprintf(stderr, "vmig region list: %s: %s\n", mnt, strerror(errno));
		return 1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s%s%s", mnt,
			     mnt[strlen(mnt) - 1] == '/' ? "" : "/", de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		list_one(out, path, &st);
	}
	closedir(d);
	return 0;
}

static int region_list(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct list_out out = { 0 };
	char line[4096], seen[64][16];
	int c, nseen = 0, mounts = 0, ret = 0;
	FILE *f;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			out.json = true;
			break;
		case 'h':
			region_usage(stdout);
			return 0;
		default:
			region_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vmig region list: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		fprintf(stderr, "vmig region list: /proc/self/mountinfo: %s\n", strerror(errno));
		return 1;
	}
	if (out.json)
		printf("{\"regions\":[");
	else
		printf("%-32s %10s %4s %11s %10s  %s\n", "PATH", "SIZE", "MODE", "OWNER",
		       "PRESENT", "STATE");
	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER */
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), dev[16], mnt[PATH_MAX], fstype[32];
		bool dup = false;
		int i;

		if (!sep || sscanf(sep, " - %31s", fstype) != 1 || strcmp(fstype, "vmigfs"))
			continue;
		if (sscanf(line, "%*s %*s %15s %*s %4095s", dev, mnt) != 2)
			continue;
		/* A bind mount shows the same files again: list each vmigfs once. */
		for (i = 0; i < nseen; i++)
			dup |= !strcmp(seen[i], dev);
		if (dup)
			continue;
		if (nseen < 64)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", dev);
		unescape_octal(mnt);
		mounts++;
		ret |= list_mount(&out, mnt);
	}
	fclose(f);
	if (out.json)
		printf("]}\n");
	else if (!mounts)
		fprintf(stderr, "vmig region list: no vmigfs is mounted "
			"('vmig region mount' or 'vmig region create' mounts one)\n");
	return ret;
}

static int region_run(int argc, char **argv)
{
	if (argc < 2) {
		region_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		region_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "create"))
		return region_create(argc - 1, argv + 1);
	if (!strcmp(argv[1], "list"))
		return region_list(argc - 1, argv + 1);
	if (!strcmp(argv[1], "remove"))
		return region_remove(argc - 1, argv + 1);
	if (!strcmp(argv[1], "mount"))
		return region_mount(argc - 1, argv + 1);
	fprintf(stderr, "vmig region: unknown subcommand '%s' (see 'vmig region --help')\n",
		argv[1]);
	return 2;
}

const struct vmig_cmd vmig_cmd_region = {
	.name = "region",
	.summary = "regions by path, for VMMs that map a file: create, list, remove",
	.run = region_run,
};
