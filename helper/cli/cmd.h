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
extern const struct vmig_cmd vmig_cmd_stats;
extern const struct vmig_cmd vmig_cmd_monitor;
extern const struct vmig_cmd vmig_cmd_module;
extern const struct vmig_cmd vmig_cmd_region;
extern const struct vmig_cmd vmig_cmd_qemu;

/* Shared by the netlink commands (cmd_stats.c). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
struct vmig_nl;
struct vmig_nl_stats;
const char *vmig_fmt_bytes(uint64_t b, char *buf, size_t len);
const char *vmig_fmt_mode(uint32_t flags, bool dirty_on, uint32_t dirty_flags,
			  char *buf, size_t len);
void vmig_print_stats_json(FILE *f, const struct vmig_nl_stats *s);
/* Print why a netlink call failed; @nl NULL when opening failed. */
void vmig_nl_perror(const char *who, struct vmig_nl *nl, int err);

#endif /* VMIG_CMD_H */
