/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One description per command-line option, from which a command's getopt
 * table, its parsing and the option part of its --help text are made, so
 * the three cannot drift.  Options that migrate and listen share (the
 * timeouts, TLS and authentication, --json, ...) are described once here
 * and land in struct cli_common; a command's own options land in its own
 * struct.  An option without help text is for tests only: it parses as
 * any other but --help leaves it out (docs/testing.md lists them).
 */
#ifndef VMIG_OPTIONS_H
#define VMIG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "libvmig.h"
#include "tls.h"
#include "thread_sched.h"
#include "util.h"

/* What migrate and listen both take, with the same defaults (cli_common_init). */
struct cli_common {
	const char *vmm_path;
	int timeout_ms;
	bool timeout_set;
	enum vmig_backend backend;
	unsigned int device_threads;
	int spin_us;
	enum urgent_sched sched;
	bool cpu_any;			/* --postcopy-cpu any */
	int recovery_timeout_ms;
	bool attach;
	bool json;
	bool progress;
	enum tls_mode tls;
	const char *tls_path;
	const char *token;
	bool insecure;
};

enum cli_kind {
	CLI_STR,	/* const char * = the value */
	CLI_TRUE,	/* bool = true (no value) */
	CLI_FALSE,	/* bool = false (no value) */
	CLI_INT,	/* int = value * scale, value in [min, max] */
	CLI_UINT,	/* unsigned int = value * scale */
	CLI_U64,	/* uint64_t = value * scale */
	CLI_FN,		/* fn(dest, value, cmd): 0; -1 bad value; 2 usage error it reported */
};

struct cli_opt {
	const char *name;	/* without the leading -- */
	const char *arg;	/* the value's placeholder; NULL: takes no value */
	const char *help;	/* lines for --help; NULL: hidden (tests only) */
	const char *dst_help;	/* listen's text where it differs from migrate's */
	const char *bad;	/* what a bad value is told ("1..256"); NULL: see --help */
	bool common;		/* off is into struct cli_common, not the command's */
	enum cli_kind kind;
	size_t off;
	uint64_t min, max, scale;
	int (*fn)(void *dest, const char *value, const char *cmd);
};

/* A command's options in --help order, NULL-terminated. */
struct cli_opts {
	const char *cmd;	/* "migrate", for messages */
	bool dst;		/* use dst_help */
	int col;		/* where help text starts (0: 26) */
	const struct cli_opt *const *opts;
};

extern const struct cli_opt cli_opt_vmm, cli_opt_timeout, cli_opt_backend,
	cli_opt_device_threads, cli_opt_postcopy_spin, cli_opt_postcopy_sched,
	cli_opt_postcopy_cpu,
	cli_opt_recovery_timeout, cli_opt_attach, cli_opt_json, cli_opt_no_progress,
	cli_opt_tls_creds, cli_opt_tls_psk, cli_opt_token_file, cli_opt_insecure,
	cli_opt_help;

void cli_common_init(struct cli_common *c);
/*
 * Parse argv by t into c and own (the command's struct; c may be NULL
 * when t has no common option).  0 to go on
 * (optind at the first operand), 1 when --help was printed (exit 0),
 * 2 on a usage error, already reported (exit 2).
 */
int cli_parse(const struct cli_opts *t, struct cli_common *c, void *own,
	      int argc, char **argv, void (*usage)(FILE *f));
/* The "Options:" lines of --help, from the table. */
void cli_print_options(FILE *f, const struct cli_opts *t);

#endif
