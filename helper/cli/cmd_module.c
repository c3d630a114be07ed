// SPDX-License-Identifier: GPL-2.0
/* vmig module load|unload|status: the kernel module, through libkmod. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "libvmig.h"
#include "cmd.h"

static void module_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig module load [--ko PATH] [PARAM=VALUE...]\n"
		"       vmig module unload\n"
		"       vmig module status [--json]\n"
		"\n"
		"load    load vmig.ko: by name from the installed module tree, as\n"
		"        modprobe does (dependencies, options from modprobe.d), or the\n"
		"        file given with --ko.  PARAM=VALUE sets a module parameter\n"
		"        (see 'modinfo vmig').  Loading what is loaded already is no error.\n"
		"unload  unload vmig.ko; fails while a process has /dev/vmig or a\n"
		"        region open.\n"
		"status  loaded or not, version, users, the installed file, the\n"
		"        parameters (/sys/module/vmig/parameters) and the regions.\n"
		"\n"
		"load and unload need root (CAP_SYS_MODULE).\n"
		"\n"
		"Exit status: 0 success (status: the module is loaded), 1 failure\n"
		"(status: not loaded), 2 usage.\n"
		"\n"
		"Examples:\n"
		"  vmig module load max_region_mb=4096\n"
		"  vmig module load --ko kmod/vmig.ko\n");
}

static const char *module_kernel(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u))
		return "this kernel";
	return u.release;
}

/*
 * The next option of a module subcommand, or -1 at the end; --help and an
 * unknown option end the command too: the usage shown, the exit code (0
 * or 2) in *ret, left alone otherwise.
 */
static int module_opt(int argc, char **argv, const struct option *opts, int *ret)
{
	int c = getopt_long(argc, argv, "h", opts, NULL);

	if (c == 'h' || c == '?') {
		module_usage(c == 'h' ? stdout : stderr);
		*ret = c == 'h' ? 0 : 2;
		return -1;
	}
	return c;
}

static int module_load(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ko", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ko = NULL;
	char options[1024] = "";
	size_t n = 0;
	int err, i, ret = -1;

	while (module_opt(argc, argv, opts, &ret) == 'k')
		ko = optarg;
	if (ret >= 0)
		return ret;
	for (i = optind; i < argc; i++) {
		if (!strchr(argv[i], '=') || argv[i][0] == '=') {
			fprintf(stderr, "vmig module load: '%s' is not PARAM=VALUE\n", argv[i]);
			return 2;
		}
		n += snprintf(options + n, n < sizeof(options) ? sizeof(options) - n : 0,
			      "%s%s", n ? " " : "", argv[i]);
		if (n >= sizeof(options)) {
			fprintf(stderr, "vmig module load: parameters too long\n");
			return 2;
		}
	}

	err = vmig_module_load(ko, options[0] ? options : NULL);
	switch (err) {
	case 0:
		printf("vmig module: loaded%s%s\n", ko ? " from " : "", ko ? ko : "");
		return 0;
	case -EEXIST:
		fprintf(stderr, "vmig module: already loaded (unload it first to change "
			"parameters)\n");
		return 0;
	case -EPERM:
	case -EACCES:
		fprintf(stderr, "vmig module load: not permitted: loading a module needs "
			"root (CAP_SYS_MODULE)\n");
		break;
	case -ENOENT:
		if (ko)
			fprintf(stderr, "vmig module load: %s: no such file\n", ko);
		else
			fprintf(stderr, "vmig module load: vmig.ko is not installed for kernel "
				"%s (install it with 'make install' or dkms, or give --ko PATH)\n",
				module_kernel());
		break;
	case -ENOEXEC:
		fprintf(stderr, "vmig module load: %s was not built for kernel %s "
			"(or is not a module)\n", ko ? ko : "vmig.ko", module_kernel());
		break;
	case -EINVAL:
		fprintf(stderr, "vmig module load: the kernel refused the module or a "
			"parameter (see dmesg)\n");
		break;
	default:
		fprintf(stderr, "vmig module load: %s\n", strerror(-err));
	}
	return 1;
}

static int module_unload(int argc, char **argv)
{
	struct vmig_module_status st;
	int err;

	if (argc > 1) {
		fprintf(stderr, "vmig module unload: unexpected argument '%s'\n", argv[1]);
		return 2;
	}
	err = vmig_module_unload();
	switch (err) {
	case 0:
		printf("vmig module: unloaded\n");
		return 0;
	case -ENOENT:
		fprintf(stderr, "vmig module unload: the module is not loaded\n");
		break;
	case -EPERM:
	case -EACCES:
		fprintf(stderr, "vmig module unload: not permitted: unloading a module "
			"needs root (CAP_SYS_MODULE)\n");
		break;
	case -EBUSY:
		vmig_module_status(&st);
		fprintf(stderr, "vmig module unload: the module is in use (%d users: "
			"processes with /dev/vmig or a region open); stop them first\n",
			st.refcnt);
		break;
	default:
		fprintf(stderr, "vmig module unload: %s\n", strerror(-err));
	}
	return 1;
}

struct param_out {
	bool json;
	int n;
};

static int module_param_print(const char *name, const char *value, void *arg)
{
	struct param_out *o = arg;

	if (o->json)
		printf("%s\"%s\":\"%s\"", o->n ? "," : "", name, value);
	else
		printf("  %-20s %s\n", name, value);
	o->n++;
	return 0;
}

static int module_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct param_out po = { 0 };
	struct vmig_module_status st;
	struct vmig_nl_info info;
	struct vmig_nl *nl = NULL;
	int err, nl_err = -ENOENT, ret = -1;

	while (module_opt(argc, argv, opts, &ret) == 'j')
		po.json = true;
	if (ret >= 0)
		return ret;
	if (optind != argc) {
		fprintf(stderr, "vmig module status: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	err = vmig_module_status(&st);
	if (err) {
		fprintf(stderr, "vmig module status: %s\n", strerror(-err));
		return 1;
	}
	if (st.loaded) {
		nl = vmig_nl_open();
		nl_err = nl ? vmig_nl_info(nl, &info) : -errno;
		vmig_nl_close(nl);
	}

	if (po.json) {
		printf("{\"loaded\":%s,\"state\":\"%s\",\"version\":\"%s\",\"refcnt\":%d,"
		       "\"installed\":\"%s\",\"kernel\":\"%s\",\"parameters\":{",
		       st.loaded ? "true" : "false", st.state, st.version, st.refcnt,
		       st.installed, module_kernel());
		if (st.loaded)
			vmig_module_params(module_param_print, &po);
		printf("}");
		if (!nl_err)
			printf(",\"regions\":%" PRIu64 ",\"reserved_bytes\":%" PRIu64
			       ",\"features\":%" PRIu64, info.region_count,
			       info.reserved_bytes, info.features);
		printf("}\n");
	} else {
		if (st.loaded)
			printf("vmig module: loaded (%s), version %s, %d users\n", st.state,
			       st.version[0] ? st.version : "?", st.refcnt);
		else
			printf("vmig module: not loaded\n");
		if (st.installed[0])
			printf("installed: %s\n", st.installed);
		else
			printf("installed: no (not in the module tree of kernel %s)\n",
			       module_kernel());
		if (st.loaded) {
			printf("parameters:\n");
			vmig_module_params(module_param_print, &po);
		}
		if (!nl_err) {
			char b[32];

			printf("regions: %" PRIu64 " (%s reserved)\n", info.region_count,
			       vmig_fmt_bytes(info.reserved_bytes, b, sizeof(b)));
		} else if (st.loaded) {
			printf("regions: unknown (netlink: %s)\n", strerror(-nl_err));
		}
	}
	return st.loaded ? 0 : 1;
}

static int module_run(int argc, char **argv)
{
	if (argc < 2) {
		module_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		module_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "load"))
		return module_load(argc - 1, argv + 1);
	if (!strcmp(argv[1], "unload"))
		return module_unload(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return module_status(argc - 1, argv + 1);
	fprintf(stderr, "vmig module: unknown subcommand '%s' (load, unload, status)\n",
		argv[1]);
	return 2;
}

const struct vmig_cmd vmig_cmd_module = {
	.name = "module",
	.summary = "load, unload or describe the vmig kernel module",
	.run = module_run,
};
