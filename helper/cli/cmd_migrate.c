// SPDX-License-Identifier: GPL-2.0
/* vmig migrate: the source side. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cmd.h"
#include "options.h"
#include "precopy.h"
#include "recovery.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

/* What migrate parses beyond struct cli_common. */
struct migrate_cli {
	struct precopy_opts o;
	const char *resume;		/* --resume CONTROL|SESSION */
	const char *tls_binding;	/* tests: --inject-tls-binding */
};

#define OWN(f)	.off = offsetof(struct migrate_cli, f)

static int downtime_set(void *p, const char *v, const char *cmd)
{
	uint64_t n;

	(void)cmd;
	if (!parse_uint(v, 0, 3600000, &n))
		return -1;
	((struct migrate_cli *)p)->o.downtime_limit_ms = n;
	return 0;
}

static int postcopy_after_set(void *p, const char *v, const char *cmd)
{
	struct precopy_opts *o = &((struct migrate_cli *)p)->o;
	uint64_t n;

	(void)cmd;
	if (!parse_uint(v, 0, 100000, &n))
		return -1;
	o->postcopy = true;
	o->postcopy_after = n;
	return 0;
}

static int track_set(void *p, const char *v, const char *cmd)
{
	struct precopy_opts *o = &((struct migrate_cli *)p)->o;

	(void)cmd;
	if (!strcmp(v, "auto"))
		o->track = VMIG_TRACK_AUTO;
	else if (!strcmp(v, "async"))
		o->track = VMIG_TRACK_ASYNC;
	else if (!strcmp(v, "sync"))
		o->track = VMIG_TRACK_SYNC;
	else if (!strcmp(v, "vmm"))
		o->track = VMIG_TRACK_VMM;
	else
		return -1;
	return 0;
}

static int dirty_mode_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return vmig_dirty_mode_parse(v, &((struct migrate_cli *)p)->o.dirty_mode) ? -1 : 0;
}

static int device_channels_set(void *p, const char *v, const char *cmd)
{
	struct precopy_opts *o = &((struct migrate_cli *)p)->o;

	(void)cmd;
	if (!strcmp(v, "main"))
		o->device_state_on_main = true;
	else if (!strcmp(v, "multifd"))
		o->device_state_on_main = false;
	else
		return -1;
	return 0;
}

static int cuts_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return rec_parse_cuts(&((struct migrate_cli *)p)->o.test.cuts, v) ? -1 : 0;
}

static const struct cli_opt opt_to = {
	.name = "to", .arg = "HOST:PORT", .kind = CLI_STR, OWN(o.to),
	.help = "the destination (required)",
};
static const struct cli_opt opt_multifd = {
	.name = "multifd", .arg = "N", .kind = CLI_UINT, OWN(o.channels),
	.min = 1, .max = WIRE_MAX_CHANNELS, .scale = 1,
	.help = "page channels, one sender thread each (default 2)",
};
static const struct cli_opt opt_downtime_limit = {
	.name = "downtime-limit", .arg = "MS", .kind = CLI_FN, OWN(o.downtime_limit_ms),
	.fn = downtime_set,
	.help = "switch over when the predicted downtime fits this\n"
		"(default 300)",
};
static const struct cli_opt opt_max_bandwidth = {
	.name = "max-bandwidth", .arg = "MiB/s", .kind = CLI_U64, OWN(o.max_bandwidth),
	.min = 1, .max = 1 << 24, .scale = 1 << 20,
	.help = "cap over all channels (default: none)",
};
static const struct cli_opt opt_max_rounds = {
	.name = "max-rounds", .arg = "N", .kind = CLI_UINT, OWN(o.max_rounds),
	.min = 0, .max = 100000, .scale = 1,
	.help = "dirty rounds before it counts as a stall (default 30;\n"
		"while waiting for device state, 100 ms each)",
};
/* The switchover prediction (switchover.h). */
static const struct cli_opt opt_switchover_bandwidth = {
	.name = "switchover-bandwidth", .arg = "MiB/s", .kind = CLI_U64,
	OWN(o.switchover_bandwidth), .min = 1, .max = 1 << 24, .scale = 1 << 20,
	.help = "the bandwidth the prediction assumes, instead of the\n"
		"measured one (as QEMU's avail-switchover-bandwidth)",
};
static const struct cli_opt opt_abort_on_stall = {
	.name = "abort-on-stall", .kind = CLI_TRUE, OWN(o.abort_on_stall),
	.help = "give up instead of switching over on a stall",
};
static const struct cli_opt opt_auto_converge = {
	.name = "auto-converge", .kind = CLI_TRUE, OWN(o.auto_converge),
	.help = "when dirty rounds stop shrinking, ask the VMM to slow\n"
		"its vCPUs (20 %, then +10 % a round, up to 95 %);\n"
		"on kmod manual-init already in the bulk stage, when\n"
		"sent pages are written again faster than half the\n"
		"link sends them (then straight to the share needed)",
};
static const struct cli_opt opt_postcopy = {
	.name = "postcopy", .kind = CLI_TRUE, OWN(o.postcopy),
	.help = "switch to postcopy after the bulk stage (or on a\n"
		"stall): the guest resumes on the destination at\n"
		"once, pages it touches first are sent on request",
};
static const struct cli_opt opt_postcopy_after = {
	.name = "postcopy-after", .arg = "N", .kind = CLI_FN, OWN(o.postcopy_after),
	.fn = postcopy_after_set,
	.help = "... after N passes instead (0: no precopy at all);\n"
		"if precopy converges first, it completes as precopy",
};
static const struct cli_opt opt_no_preempt = {
	.name = "no-preempt", .kind = CLI_TRUE, OWN(o.no_preempt),
	.help = "postcopy without preemption: requested pages go at\n"
		"the head of the bulk channels' queues, not back at\n"
		"once on the return path",
};
static const struct cli_opt opt_postcopy_batch = {
	.name = "postcopy-batch", .arg = "N", .kind = CLI_UINT, OWN(o.postcopy_batch),
	.min = 1, .max = WIRE_MAX_BATCH, .scale = 1,
	.help = "background pages per packet after the switch\n"
		"(default 16: no request waits behind a large send)",
};
static const struct cli_opt opt_dirty_mode = {
	.name = "dirty-mode", .arg = "M", .kind = CLI_FN, OWN(o.dirty_mode),
	.fn = dirty_mode_set,
	.help = "kmod dirty logging: manual-init (default: enable\n"
		"costs nothing, each chunk re-protected just before\n"
		"it is sent) | manual | protect | hwdirty",
};
static const struct cli_opt opt_track = {
	.name = "track", .arg = "MODE", .kind = CLI_FN, OWN(o.track), .fn = track_set,
	.help = "uffd dirty tracking: auto | async | sync (default auto:\n"
		"async = WP_ASYNC + PAGEMAP_SCAN when the kernel has it);\n"
		"vmm, on either backend: the VMM's own dirty log, where\n"
		"it offers one (a KVM VMM's: KVM write-protects its own\n"
		"page tables, cheaper than the host's; only the VMM sees\n"
		"writes then, --dirty-mode does not apply)",
};
static const struct cli_opt opt_device_state_channels = {
	.name = "device-state-channels", .arg = "multifd | main", .kind = CLI_FN,
	OWN(o.device_state_on_main), .fn = device_channels_set,
	.help = "device state spread over the multifd channels\n"
		"(default), or in order on the main channel",
};
static const struct cli_opt opt_no_free_hints = {
	.name = "no-free-hints", .kind = CLI_TRUE, OWN(o.no_free_hints),
	.help = "send pages the VMM hints free anyway",
};
static const struct cli_opt opt_no_auto_resume = {
	.name = "no-auto-resume", .kind = CLI_TRUE, OWN(o.no_auto_resume),
	.help = "postcopy: after a broken link, do not reconnect by\n"
		"itself; wait (up to --recovery-timeout) for\n"
		"'vmig migrate --resume' on the control socket",
};
static const struct cli_opt opt_control_socket = {
	.name = "control-socket", .arg = "PATH", .kind = CLI_STR, OWN(o.control_path),
	.help = "the paused source's control socket (default\n"
		"$XDG_RUNTIME_DIR or /tmp, vmig-SESSION.sock; named\n"
		"in the pause message and the 'paused' JSON event)",
};
static const struct cli_opt opt_json_rounds = {
	.name = "json-rounds", .kind = CLI_TRUE, OWN(o.round_events),
	.help = "--json, and a \"round\" event before the report for\n"
		"each switchover decision: dirty_bytes,\n"
		"device_left_bytes, remaining_bytes, bandwidth_bps,\n"
		"predicted_downtime_ms and its parts, limit_ms, fits",
};
static const struct cli_opt opt_resume = {
	.name = "resume", .arg = "CONTROL|SESSION", .kind = CLI_STR, OWN(resume),
	.help = "ask a paused postcopy source to reconnect now (see\n"
		"below); takes only --to and --timeout",
};
/* Tests only (docs/testing.md): no help text, so --help leaves them out. */
static const struct cli_opt opt_inject_hint = {
	.name = "inject-hint-before-tracking", .kind = CLI_TRUE,
	OWN(o.test.hint_before_tracking),
};
static const struct cli_opt opt_inject_corrupt = {
	.name = "inject-corrupt", .arg = "N", .kind = CLI_UINT, OWN(o.test.inject_corrupt),
	.min = 1, .max = 1u << 30, .scale = 1,
};
static const struct cli_opt opt_wire_version = {
	.name = "wire-version", .arg = "V", .kind = CLI_UINT, OWN(o.test.wire_version),
	.min = 1, .max = 65535, .scale = 1,
};
static const struct cli_opt opt_inject_no_reply_return = {
	.name = "inject-no-reply-return", .kind = CLI_TRUE, OWN(o.test.no_reply_return),
};
static const struct cli_opt opt_inject_tls_binding = {
	.name = "inject-tls-binding", .arg = "WHAT", .kind = CLI_STR, OWN(tls_binding),
};
static const struct cli_opt opt_inject_cut = {
	.name = "inject-cut", .arg = "CUTS", .kind = CLI_FN, OWN(o.test.cuts), .fn = cuts_set,
};

static const struct cli_opt *const migrate_opt_list[] = {
	&cli_opt_vmm, &opt_to, &opt_multifd, &opt_downtime_limit, &opt_max_bandwidth,
	&opt_max_rounds, &opt_switchover_bandwidth, &opt_abort_on_stall, &opt_auto_converge,
	&opt_postcopy, &opt_postcopy_after, &opt_no_preempt, &cli_opt_postcopy_spin,
	&cli_opt_postcopy_sched, &cli_opt_postcopy_cpu,
	&opt_postcopy_batch, &cli_opt_backend, &opt_dirty_mode,
	&opt_track, &opt_device_state_channels, &cli_opt_device_threads, &opt_no_free_hints,
	&cli_opt_recovery_timeout, &opt_no_auto_resume, &opt_control_socket,
	&cli_opt_timeout, &cli_opt_tls_creds, &cli_opt_tls_psk, &cli_opt_token_file,
	&cli_opt_insecure, &cli_opt_json, &opt_json_rounds, &cli_opt_no_progress,
	&opt_resume, &cli_opt_attach, &cli_opt_help,
	&opt_inject_hint, &opt_inject_corrupt, &opt_wire_version, &opt_inject_tls_binding,
	&opt_inject_cut, &opt_inject_no_reply_return, NULL,
};

static const struct cli_opts migrate_cli_opts = {
	.cmd = "migrate", .opts = migrate_opt_list,
};

static void migrate_usage(FILE *f)
{
	fputs(
		"usage: vmig migrate --vmm PATH --to HOST:PORT [options]\n"
		"       vmig migrate --resume CONTROL|SESSION [--to HOST:PORT] [--timeout S]\n"
		"       vmig migrate --attach --vmm PATH [--to HOST:PORT] [options]\n"
		"\n"
		"Live-migrate the guest of the VMM at PATH (its control socket) to the\n"
		"'vmig listen' at HOST:PORT, by precopy: a bulk copy of guest RAM (holes and\n"
		"zero pages are not sent), then rounds of the pages written meanwhile, until\n"
		"the predicted downtime fits the limit; then the guest is stopped, the rest\n"
		"is sent, and it resumes on the destination.  The prediction adds up every\n"
		"part of the downtime: the VMM's stop, the dirty pages at the measured\n"
		"bandwidth, each device's state left (its size, which the VMM may update,\n"
		"less its precopy part sent) at its save and load rates and its share of\n"
		"the bandwidth, the transfer, and the resume; stop and resume are timed\n"
		"control round trips to the VMM.  While only device state does not fit,\n"
		"rounds last 100 ms and the devices' precopy parts go on.  If precopy\n"
		"stalls (the dirty set stops shrinking, or --max-rounds is reached) vmig\n"
		"says so and switches over anyway, loudly and in the report, or with\n"
		"--abort-on-stall gives up.  On any failure the guest keeps running here.\n"
		"The report gives the predicted and the measured downtime, part by part.\n"
		"\n"
		"Options:\n", f);
	cli_print_options(f, &migrate_cli_opts);
	fputs(
		"\n"
		"Manual resume: while a postcopy migration is paused (its link broke), the\n"
		"source that holds the pages listens on its control socket;\n"
		"'vmig migrate --resume CONTROL [--to HOST:PORT]' (CONTROL the socket's\n"
		"path, or the session id in hex for the default path) makes it reconnect\n"
		"now, to the new address if given, and prints its answer: exit status 0\n"
		"when the migration runs again (or had completed), 1 if not.\n"
		"\n"
		"Taking over (--attach): the source VMM, not the helper, holds guest memory.\n"
		"If the source helper dies after a postcopy switch (kill -9, OOM, a crash),\n"
		"the VMM keeps its vCPUs stopped and the record the helper left with it;\n"
		"the destination pauses as after a broken link.  'vmig migrate --attach\n"
		"--vmm PATH' reconnects to the destination of that record (or --to), takes\n"
		"the destination's received bitmap, sends every page it still lacks and\n"
		"completes; the channel layout comes from the record, TLS options must\n"
		"be given again.  If the switch had not reached the destination, the\n"
		"guest resumes here instead (exit status 1).\n"
		"\n"
		"Exit status: 0 migrated, 1 failed (the guest runs on here, unless it had\n"
		"already resumed on the destination in postcopy), 2 usage.\n"
		"\n"
		"Examples:\n"
		"  vmig migrate --vmm /tmp/src.sock --to 127.0.0.1:4444 --token-file /etc/vmig/token\n"
		"  vmig migrate --vmm /tmp/src.sock --to dst:4444 --tls-psk /etc/vmig/keys.psk \\\n"
		"               --multifd 4 \\\n"
		"               --downtime-limit 50 --max-bandwidth 1000 --json\n"
		"  vmig migrate --vmm /tmp/src.sock --to dst.example:4444 --tls-creds /etc/vmig\n"
		"  vmig migrate --vmm /tmp/src.sock --to dst:4444 --tls-creds /etc/vmig \\\n"
		"               --postcopy --no-auto-resume \\\n"
		"               --recovery-timeout 600 --control-socket /run/vm1.ctl\n"
		"  vmig migrate --resume /run/vm1.ctl --to dst-backup-link:4444\n"
		"  vmig migrate --attach --vmm /tmp/src.sock      # its helper died in postcopy\n", f);
}

/* vmig migrate --resume: ask the paused source to reconnect. */
static int resume_run(const char *what, const char *to, int timeout_ms)
{
	char path[256], reply[320];
	uint64_t session;
	int r;

	if (!strchr(what, '/')) {
		char *end;

		errno = 0;
		session = strtoull(what, &end, 16);
		if (errno || *end || end == what) {
			fprintf(stderr, "vmig migrate: --resume wants a control socket's path or a "
				"session id in hex, not '%s'\n", what);
			return 2;
		}
		rec_ctl_default_path(path, sizeof(path), session);
	} else {
		snprintf(path, sizeof(path), "%s", what);
	}
	r = rec_ctl_resume(path, to, timeout_ms, reply, sizeof(reply));
	if (r < 0) {
		fprintf(stderr, "vmig migrate: --resume %s: %s%s\n", path, strerror(-r),
			r == -ENOENT || r == -ECONNREFUSED ? " (no paused migration there)" : "");
		return 1;
	}
	if (r) {
		fprintf(stderr, "vmig migrate: the source did not resume: %s\n", reply);
		return 1;
	}
	printf("vmig migrate: %s\n", reply);
	return 0;
}

static int migrate_run(int argc, char **argv)
{
	struct migrate_cli m = { .o = {
		.channels = 2, .downtime_limit_ms = 300, .max_rounds = 30,
		.track = VMIG_TRACK_AUTO, .postcopy_after = 1, .postcopy_batch = 16,
	} };
	struct precopy_opts *o = &m.o;
	const char *resume;
	struct cli_common cc;
	char err[256];
	struct report rep;
	bool attach, json;
	int c;

	cli_common_init(&cc);
	c = cli_parse(&migrate_cli_opts, &cc, &m, argc, argv, migrate_usage);
	if (c)
		return c == 1 ? 0 : 2;
	o->vmm_path = cc.vmm_path;
	o->timeout_ms = cc.timeout_ms;
	o->backend = cc.backend;
	o->device_threads = cc.device_threads;
	o->spin_us = cc.spin_us;
	o->sched = cc.sched;
	o->cpu_any = cc.cpu_any;
	o->recovery_timeout_ms = cc.recovery_timeout_ms;
	o->progress = cc.progress;
	resume = m.resume;
	attach = cc.attach;
	json = cc.json || o->round_events;
	if (resume && attach) {
		fprintf(stderr, "vmig migrate: --resume and --attach exclude each other "
			"(--resume asks a paused helper, --attach replaces a dead one)\n");
		return 2;
	}
	if (resume) {
		if (optind != argc || o->vmm_path) {
			fprintf(stderr, "vmig migrate: --resume takes only --to and --timeout\n");
			return 2;
		}
		/* The source tries for up to 10 s before it answers. */
		return resume_run(resume, o->to, cc.timeout_set ? o->timeout_ms : 30000);
	}
	if (o->no_preempt && !o->postcopy) {
		fprintf(stderr, "vmig migrate: --no-preempt needs --postcopy\n");
		return 2;
	}
	/* A spinning real-time thread would hold its core from the peer it waits for. */
	if (o->spin_us && o->sched == URGENT_FIFO)
		o->sched = URGENT_NICE;
	if (optind != argc || !o->vmm_path || (!o->to && !attach)) {
		fprintf(stderr, "vmig migrate: %s (see --help)\n",
			optind != argc ? "unexpected argument" : attach ? "--attach needs --vmm" :
			"--vmm and --to are required");
		return 2;
	}
	c = auth_configure(cc.tls != TLS_NONE, cc.token, cc.insecure, err, sizeof(err));
	if (c) {
		fprintf(stderr, "vmig migrate: %s\n", err);
		return c == -EDOM ? 2 : 1;
	}
	if (tls_configure(cc.tls, cc.tls_path, false, err, sizeof(err))) {
		fprintf(stderr, "vmig migrate: %s\n", err);
		return 1;
	}
	if (cc.insecure)
		fprintf(stderr, "vmig migrate: --insecure: guest memory goes to %s unencrypted, "
			"and whoever answers there gets it\n", o->to);
	if (m.tls_binding && auth_inject(m.tls_binding)) {
		fprintf(stderr, "vmig migrate: bad value '%s'\n", m.tls_binding);
		return 2;
	}
	memset(&rep, 0, sizeof(rep));
	rep.events = json;
	if (attach)
		precopy_attach(o, &rep);
	else
		precopy_migrate(o, &rep);
	return report_finish(&rep, json, "vmig migrate");
}

const struct vmig_cmd vmig_cmd_migrate = {
	.name = "migrate",
	.summary = "migrate a guest to a 'vmig listen' (source side)",
	.run = migrate_run,
};
