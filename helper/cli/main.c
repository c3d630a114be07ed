// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: the command-line entry point.  Each command lives in its own file
 * and is listed in the table below.
 */
#include <stdio.h>
#include <string.h>

#include "libvmig.h"
#include "cmd.h"

static const struct vmig_cmd *const cmds[] = {
	&vmig_cmd_info,
	&vmig_cmd_guest,
	&vmig_cmd_listen,
	&vmig_cmd_migrate,
	&vmig_cmd_stats,
	&vmig_cmd_monitor,
	&vmig_cmd_module,
	&vmig_cmd_region,
	&vmig_cmd_qemu,
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: vmig [--version] [--help] COMMAND [ARGS]\n"
		"\n"
		"Live-migrate virtual machines' memory, on the vmig kernel module\n"
		"or, without it, on memfd + userfaultfd.\n"
		"\n"
		"Commands:\n");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i]->name, cmds[i]->summary);
	fprintf(f,
		"\n"
		"'vmig COMMAND --help' describes a command.\n"
		"\n"
		"Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("vmig %s\n", vmig_version());
		return 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i]->name))
			return cmds[i]->run(argc - 1, argv + 1);
	fprintf(stderr, "vmig: unknown command '%s' (see 'vmig --help')\n", argv[1]);
	return 2;
}
