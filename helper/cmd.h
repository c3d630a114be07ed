/* SPDX-License-Identifier: GPL-2.0 */
#ifndef VMIG_CMD_H
#define VMIG_CMD_H

/* One subcommand of the vmig CLI: argv[0] is the command's own name. */
struct vmig_cmd {
	const char *name;
	const char *summary;
	int (*run)(int argc, char **argv);
};

extern const struct vmig_cmd vmig_cmd_info;
extern const struct vmig_cmd vmig_cmd_guest;
extern const struct vmig_cmd vmig_cmd_listen;
extern const struct vmig_cmd vmig_cmd_migrate;

#endif /* VMIG_CMD_H */
