// SPDX-License-Identifier: GPL-2.0
/* The option table: getopt entries, parsing and --help lines from one description. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "options.h"

#define CLI_MAX_OPTS	64
#define CLI_HELP_COL	26	/* where an option's text starts, by default */
#define CLI_VAL0	0x100	/* getopt value of the table's first option */

static int tls_set(struct cli_common *c, enum tls_mode mode, const char *path, const char *cmd)
{
	if (c->tls != TLS_NONE) {
		fprintf(stderr, "vmig %s: --tls-creds and --tls-psk exclude each other\n", cmd);
		return 2;
	}
	c->tls = mode;
	c->tls_path = path;
	return 0;
}

static int tls_creds_set(void *c, const char *v, const char *cmd)
{
	return tls_set(c, TLS_X509, v, cmd);
}

static int tls_psk_set(void *c, const char *v, const char *cmd)
{
	return tls_set(c, TLS_PSK, v, cmd);
}

static int timeout_set(void *p, const char *v, const char *cmd)
{
	struct cli_common *c = p;
	uint64_t s;

	(void)cmd;
	if (!parse_uint(v, 1, 3600, &s))
		return -1;
	c->timeout_ms = s * 1000;
	c->timeout_set = true;
	return 0;
}

static int backend_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return vmig_backend_parse(v, &((struct cli_common *)p)->backend) ? -1 : 0;
}

static int sched_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return urgent_sched_parse(v, &((struct cli_common *)p)->sched) ? -1 : 0;
}

static int cpu_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	if (strcmp(v, "follow") && strcmp(v, "any"))
		return -1;
	((struct cli_common *)p)->cpu_any = !strcmp(v, "any");
	return 0;
}

#define COMMON(f)	.common = true, .off = offsetof(struct cli_common, f)

const struct cli_opt cli_opt_vmm = {
	.name = "vmm", .arg = "PATH", .kind = CLI_STR, COMMON(vmm_path),
	.help = "the source VMM's control socket (required)",
	.dst_help = "the destination VMM's control socket (required)",
};

const struct cli_opt cli_opt_timeout = {
	.name = "timeout", .arg = "SECONDS", .kind = CLI_FN, COMMON(timeout_ms),
	.fn = timeout_set,
	.help = "bound on any single wait (default 10)",
	.dst_help = "bound on any single wait in a session, and on a new\n"
		    "connection's whole opening (default 10)",
};

const struct cli_opt cli_opt_backend = {
	.name = "backend", .arg = "B", .kind = CLI_FN, COMMON(backend), .fn = backend_set,
	.help = "auto | kmod | uffd (default auto: kmod when the\n"
		"VMM's RAM is vmig.ko regions, uffd for memfds)",
	.dst_help = "auto | kmod | uffd (default auto: what the VMM's RAM\n"
		    "is, vmig.ko regions or memfds)",
};

const struct cli_opt cli_opt_device_threads = {
	.name = "device-threads", .arg = "N", .kind = CLI_UINT, COMMON(device_threads),
	.min = 1, .max = 64, .scale = 1,
	.help = "device saving threads (default 8)",
	.dst_help = "device loading threads (default 8)",
};

const struct cli_opt cli_opt_postcopy_spin = {
	.name = "postcopy-spin", .arg = "US", .kind = CLI_INT, COMMON(spin_us),
	.min = 0, .max = 1000000, .scale = 1,
	.help = "return path: poll this long before sleeping (default 0)",
	.dst_help = "postcopy: poll for a requested page this long before\n"
		    "sleeping (default 0)",
};

const struct cli_opt cli_opt_postcopy_sched = {
	.name = "postcopy-sched", .arg = "P", .kind = CLI_FN, COMMON(sched), .fn = sched_set,
	.help = "the return-path thread: fifo (default: SCHED_FIFO 1,\n"
		"ahead of bulk senders and vCPUs; nice if that is\n"
		"not permitted or with --postcopy-spin), nice (-10),\n"
		"normal; with fifo and nice the multifd senders drop\n"
		"to nice 10 once the guest runs on the destination",
	.dst_help = "the fault thread serving page requests: fifo (default:\n"
		    "SCHED_FIFO 2, ahead of receivers and vCPUs; nice if\n"
		    "that is not permitted or with --postcopy-spin),\n"
		    "nice (-10), normal; with fifo and nice the multifd\n"
		    "receivers drop to nice 10 once the guest runs here",
};

const struct cli_opt cli_opt_postcopy_cpu = {
	.name = "postcopy-cpu", .arg = "C", .kind = CLI_FN, COMMON(cpu_any), .fn = cpu_set,
	.help = "the return-path thread's CPU: follow (default: move\n"
		"to the CPU that receives the page requests, within\n"
		"the affinity vmig started with, if the thread runs\n"
		"fifo or nice), any (where the scheduler puts it)",
	.dst_help = "the fault thread's CPU: follow (default: move to the\n"
		    "CPU that receives the requested pages on the preempt\n"
		    "channel, within the affinity vmig started with, if\n"
		    "the thread runs fifo or nice), any (where the\n"
		    "scheduler puts it)",
};

const struct cli_opt cli_opt_recovery_timeout = {
	.name = "recovery-timeout", .arg = "S", .kind = CLI_INT, COMMON(recovery_timeout_ms),
	.min = 0, .max = 86400, .scale = 1000,
	.help = "postcopy: after a broken link, reconnect every\n"
		"channel with backoff for up to S seconds and\n"
		"re-send what the destination lacks (default 30;\n"
		"0: no recovery)",
	.dst_help = "postcopy: after a broken link, keep the guest running\n"
		    "and wait this long for the source to reconnect\n"
		    "(default 30; 0: no recovery, fail at once)",
};

const struct cli_opt cli_opt_attach = {
	.name = "attach", .kind = CLI_TRUE, COMMON(attach),
	.help = "take over a postcopy whose source helper died (see\n"
		"below); --to defaults to the destination it had",
	.dst_help = "take over a postcopy whose destination helper died\n"
		    "(see below); --port defaults to where it listened",
};

const struct cli_opt cli_opt_json = {
	.name = "json", .kind = CLI_TRUE, COMMON(json),
	.help = "the report as one JSON object on stdout, the last\n"
		"line; before it, postcopy recovery events as JSON\n"
		"lines: paused, resume_requested, resume_attempt,\n"
		"resume_failed, resumed, not_switched",
	.dst_help = "the report as one JSON object on stdout, the last\n"
		    "line; before it, postcopy recovery events as JSON\n"
		    "lines: paused, resume_attempt, resume_failed, resumed",
};

const struct cli_opt cli_opt_no_progress = {
	.name = "no-progress", .kind = CLI_FALSE, COMMON(progress),
	.help = "no progress bar (it is shown only on a terminal)",
};

const struct cli_opt cli_opt_tls_creds = {
	.name = "tls-creds", .arg = "DIR", .kind = CLI_FN, COMMON(tls_path), .fn = tls_creds_set,
	.help = "TLS 1.3 on every channel with x509: DIR holds ca.pem,\n"
		"cert.pem, key.pem; the destination's certificate must\n"
		"chain to ca.pem and name HOST",
	.dst_help = "TLS 1.3 on every channel with x509: DIR holds ca.pem,\n"
		    "cert.pem, key.pem; sources must present a certificate\n"
		    "that chains to ca.pem",
};

const struct cli_opt cli_opt_tls_psk = {
	.name = "tls-psk", .arg = "FILE", .kind = CLI_FN, COMMON(tls_path), .fn = tls_psk_set,
	.help = "TLS 1.3 with a pre-shared key: one line IDENTITY:HEXKEY\n"
		"(psktool's format) or HEXKEY, 16..64 bytes",
	.dst_help = "TLS 1.3 with a pre-shared key (IDENTITY:HEXKEY or\n"
		    "HEXKEY).  With either, plaintext connections are\n"
		    "refused.",
};

const struct cli_opt cli_opt_token_file = {
	.name = "token-file", .arg = "FILE", .kind = CLI_STR, COMMON(token),
	.help = "plain TCP, authenticated: both sides prove they hold\n"
		"the token in FILE (16+ bytes, mode 0600) by HMAC\n"
		"challenge-response, never sending it; not encrypted",
	.dst_help = "plain TCP, authenticated: a source must prove it holds\n"
		    "the token in FILE (16+ bytes, mode 0600) by HMAC\n"
		    "challenge-response (it is never sent); not encrypted",
};

const struct cli_opt cli_opt_insecure = {
	.name = "insecure", .kind = CLI_TRUE, COMMON(insecure),
	.help = "plain TCP, no authentication: anyone who can reach\n"
		"the destination's port may be the source\n"
		"One of --tls-creds, --tls-psk, --token-file and\n"
		"--insecure is required, the same on both sides.\n"
		"Every channel proves it belongs to the session, and\n"
		"a paused postcopy resumes only for this source.",
	.dst_help = "plain TCP, no authentication: whoever reaches the\n"
		    "port first with a matching guest becomes the source\n"
		    "One of --tls-creds, --tls-psk, --token-file and\n"
		    "--insecure is required.  Nothing about the session is\n"
		    "told to a peer before it authenticated; every channel\n"
		    "must prove it belongs to the session its main channel\n"
		    "established, and only the source that began a paused\n"
		    "postcopy can resume it.  Each connection has --timeout\n"
		    "for its whole opening (handshake, header, HELLO); up\n"
		    "to 16 open at once, so a slow one delays no other.",
};

/* Handled by cli_parse itself. */
const struct cli_opt cli_opt_help = {
	.name = "help", .kind = CLI_FN, .help = "this text",
};

void cli_common_init(struct cli_common *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 10000;
	c->device_threads = 8;
	c->recovery_timeout_ms = 30000;
	c->progress = true;
}

/* 0 stored, -1 bad value, 2 usage error reported. */
static int cli_store(const struct cli_opts *t, const struct cli_opt *o, void *base,
		     const char *v)
{
	char *p = (char *)base + o->off;
	uint64_t n;

	switch (o->kind) {
	case CLI_STR:
		*(const char **)p = v;
		return 0;
	case CLI_TRUE:
	case CLI_FALSE:
		*(bool *)p = o->kind == CLI_TRUE;
		return 0;
	case CLI_FN:
		return o->fn(base, v, t->cmd);
	default:
		break;
	}
	if (!parse_uint(v, o->min, o->max, &n))
		return -1;
	n *= o->scale;
	if (o->kind == CLI_INT)
		*(int *)p = n;
	else if (o->kind == CLI_UINT)
		*(unsigned int *)p = n;
	else
		*(uint64_t *)p = n;
	return 0;
}

int cli_parse(const struct cli_opts *t, struct cli_common *c, void *own,
	      int argc, char **argv, void (*usage)(FILE *f))
{
	struct option lo[CLI_MAX_OPTS + 1];
	const struct cli_opt *o;
	int i, n, r;

	for (n = 0; t->opts[n]; n++) {
		if (n == CLI_MAX_OPTS) {
			fprintf(stderr, "vmig %s: more than %d options\n", t->cmd, CLI_MAX_OPTS);
			return 2;
		}
		lo[n] = (struct option){ t->opts[n]->name,
					 t->opts[n]->arg ? required_argument : no_argument,
					 NULL, CLI_VAL0 + n };
	}
	lo[n] = (struct option){ NULL, 0, NULL, 0 };
	while ((i = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (i == 'h' || (i >= CLI_VAL0 && t->opts[i - CLI_VAL0] == &cli_opt_help)) {
			usage(stdout);
			return 1;
		}
		if (i < CLI_VAL0 || i >= CLI_VAL0 + n) {
			usage(stderr);
			return 2;
		}
		o = t->opts[i - CLI_VAL0];
		r = cli_store(t, o, o->common ? (void *)c : own, optarg);
		if (r < 0) {
			fprintf(stderr, "vmig %s: bad value '%s' for --%s (%s)\n", t->cmd,
				optarg, o->name, o->bad ? o->bad : "see --help");
			return 2;
		}
		if (r)
			return 2;
	}
	return 0;
}

void cli_print_options(FILE *f, const struct cli_opts *t)
{
	const struct cli_opt *const *o;
	int col = t->col ? t->col : CLI_HELP_COL;
	const char *s, *nl;
	int w;

	for (o = t->opts; *o; o++) {
		s = t->dst && (*o)->dst_help ? (*o)->dst_help : (*o)->help;
		if (!s)
			continue;
		w = fprintf(f, "  --%s%s%s", (*o)->name, (*o)->arg ? " " : "",
			    (*o)->arg ? (*o)->arg : "");
		if (w > col - 2)
			w = fprintf(f, "\n") - 1;
		for (; s; s = nl ? nl + 1 : NULL) {
			nl = strchr(s, '\n');
			fprintf(f, "%*s%.*s\n", col - w, "",
				nl ? (int)(nl - s) : (int)strlen(s), s);
			w = 0;
		}
	}
}
