// SPDX-License-Identifier: GPL-2.0
/* vmig migrate: the source side. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "cmd.h"
#include "precopy.h"
#include "recovery.h"
#include "tls.h"
#include "util.h"
#include "wire.h"

static void migrate_usage(FILE *f)
{
	fprintf(f,
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
		"Options:\n"
		"  --vmm PATH              the source VMM's control socket (required)\n"
		"  --to HOST:PORT          the destination (required)\n"
		"  --multifd N             page channels, one sender thread each (default 2)\n"
		"  --downtime-limit MS     switch over when the predicted downtime fits this\n"
		"                          (default 300)\n"
		"  --max-bandwidth MiB/s   cap over all channels (default: none)\n"
		"  --max-rounds N          dirty rounds before it counts as a stall (default 30;\n"
		"                          while waiting for device state, 100 ms each)\n"
		"  --switchover-bandwidth MiB/s\n"
		"                          the bandwidth the prediction assumes, instead of the\n"
		"                          measured one (as QEMU's avail-switchover-bandwidth)\n"
		"  --abort-on-stall        give up instead of switching over on a stall\n"
		"  --auto-converge         when dirty rounds stop shrinking, ask the VMM to slow\n"
		"                          its vCPUs (20 %%, then +10 %% a round, up to 95 %%);\n"
		"                          on kmod manual-init already in the bulk stage, when\n"
		"                          sent pages are written again faster than half the\n"
		"                          link sends them (then straight to the share needed)\n"
		"  --postcopy              switch to postcopy after the bulk stage (or on a\n"
		"                          stall): the guest resumes on the destination at\n"
		"                          once, pages it touches first are sent on request\n"
		"  --postcopy-after N      ... after N passes instead (0: no precopy at all);\n"
		"                          if precopy converges first, it completes as precopy\n"
		"  --no-preempt            postcopy without the preempt channel: requested\n"
		"                          pages go at the head of the bulk channels' queues\n"
		"  --postcopy-spin US      return path: poll this long before sleeping (default 0)\n"
		"  --postcopy-sched P      the return-path thread: fifo (default: SCHED_FIFO 1,\n"
		"                          ahead of bulk senders and vCPUs; nice if that is\n"
		"                          not permitted or with --postcopy-spin), nice (-10),\n"
		"                          normal\n"
		"  --postcopy-batch N      background pages per packet after the switch\n"
		"                          (default 16: no request waits behind a large send)\n"
		"  --backend B             auto | kmod | uffd (default auto: kmod when the\n"
		"                          VMM's RAM is vmig.ko regions, uffd for memfds)\n"
		"  --dirty-mode M          kmod dirty logging: manual-init (default: enable\n"
		"                          costs nothing, each chunk re-protected just before\n"
		"                          it is sent) | manual | protect | hwdirty\n"
		"  --track MODE            uffd dirty tracking: auto | async | sync (default auto:\n"
		"                          async = WP_ASYNC + PAGEMAP_SCAN when the kernel has it)\n"
		"  --device-state-channels multifd | main\n"
		"                          device state spread over the multifd channels\n"
		"                          (default), or in order on the main channel\n"
		"  --device-threads N      device saving threads (default 8)\n"
		"  --no-free-hints         send pages the VMM hints free anyway\n"
		"  --recovery-timeout S    postcopy: after a broken link, reconnect every\n"
		"                          channel with backoff for up to S seconds and\n"
		"                          re-send what the destination lacks (default 30;\n"
		"                          0: no recovery)\n"
		"  --no-auto-resume        postcopy: after a broken link, do not reconnect by\n"
		"                          itself; wait (up to --recovery-timeout) for\n"
		"                          'vmig migrate --resume' on the control socket\n"
		"  --control-socket PATH   the paused source's control socket (default\n"
		"                          $XDG_RUNTIME_DIR or /tmp, vmig-SESSION.sock; named\n"
		"                          in the pause message and the 'paused' JSON event)\n"
		"  --timeout SECONDS       bound on any single wait (default 10)\n"
		"  --tls-creds DIR         TLS 1.3 on every channel with x509: DIR holds ca.pem,\n"
		"                          cert.pem, key.pem; the destination's certificate must\n"
		"                          chain to ca.pem and name HOST\n"
		"  --tls-psk FILE          TLS 1.3 with a pre-shared key: one line IDENTITY:HEXKEY\n"
		"                          (psktool's format) or HEXKEY, 16..64 bytes\n"
		"  --token-file FILE       plain TCP, authenticated: both sides prove they hold\n"
		"                          the token in FILE (16+ bytes, mode 0600) by HMAC\n"
		"                          challenge-response, never sending it; not encrypted\n"
		"  --insecure              plain TCP, no authentication: anyone who can reach\n"
		"                          the destination's port may be the source\n"
		"                          One of --tls-creds, --tls-psk, --token-file and\n"
		"                          --insecure is required, the same on both sides.\n"
		"                          Every channel proves it belongs to the session, and\n"
		"                          a paused postcopy resumes only for this source.\n"
		"  --json                  the report as one JSON object on stdout, the last\n"
		"                          line; before it, postcopy recovery events as JSON\n"
		"                          lines: paused, resume_requested, resume_attempt,\n"
		"                          resume_failed, resumed, not_switched\n"
		"  --json-rounds           --json, and a \"round\" event before the report for\n"
		"                          each switchover decision: dirty_bytes,\n"
		"                          device_left_bytes, remaining_bytes, bandwidth_bps,\n"
		"                          predicted_downtime_ms and its parts, limit_ms, fits\n"
		"  --no-progress           no progress bar (it is shown only on a terminal)\n"
		"  --help                  this text\n"
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
		"  vmig migrate --attach --vmm /tmp/src.sock      # its helper died in postcopy\n");
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
	static const struct option opts[] = {
		{ "vmm", required_argument, NULL, 'v' },
		{ "to", required_argument, NULL, 't' },
		{ "multifd", required_argument, NULL, 'n' },
		{ "downtime-limit", required_argument, NULL, 'd' },
		{ "max-bandwidth", required_argument, NULL, 'b' },
		{ "max-rounds", required_argument, NULL, 'r' },
		{ "abort-on-stall", no_argument, NULL, 'A' },
		{ "auto-converge", no_argument, NULL, 0x120 },
		{ "postcopy", no_argument, NULL, 'p' },
		{ "postcopy-after", required_argument, NULL, 'a' },
		{ "no-preempt", no_argument, NULL, 'N' },
		{ "postcopy-spin", required_argument, NULL, 0x101 },
		{ "postcopy-sched", required_argument, NULL, 0x108 },
		{ "postcopy-batch", required_argument, NULL, 'B' },
		{ "track", required_argument, NULL, 'T' },
		{ "backend", required_argument, NULL, 0x110 },
		{ "dirty-mode", required_argument, NULL, 0x111 },
		{ "timeout", required_argument, NULL, 'o' },
		{ "device-state-channels", required_argument, NULL, 'S' },
		{ "device-threads", required_argument, NULL, 'D' },
		{ "no-free-hints", no_argument, NULL, 'H' },
		{ "inject-hint-before-tracking", no_argument, NULL, 'I' },	/* tests */
		{ "json", no_argument, NULL, 'j' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "inject-corrupt", required_argument, NULL, 'C' },	/* tests */
		{ "wire-version", required_argument, NULL, 'W' },	/* tests */
		{ "tls-creds", required_argument, NULL, 'X' },
		{ "tls-psk", required_argument, NULL, 'K' },
		{ "inject-tls-binding", required_argument, NULL, 0x102 },	/* tests */
		{ "token-file", required_argument, NULL, 0x130 },
		{ "insecure", no_argument, NULL, 0x131 },
		{ "inject-cut", required_argument, NULL, 0x103 },		/* tests */
		{ "recovery-timeout", required_argument, NULL, 0x104 },
		{ "resume", required_argument, NULL, 0x105 },
		{ "no-auto-resume", no_argument, NULL, 0x106 },
		{ "control-socket", required_argument, NULL, 0x107 },
		{ "attach", no_argument, NULL, 0x121 },
		{ "switchover-bandwidth", required_argument, NULL, 0x140 },
		{ "json-rounds", no_argument, NULL, 0x141 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct precopy_opts o = {
		.channels = 2, .downtime_limit_ms = 300, .max_rounds = 30,
		.track = VMIG_TRACK_AUTO, .timeout_ms = 10000, .progress = true,
		.device_threads = 8,
		.postcopy_after = 1, .postcopy_batch = 16, .recovery_timeout_ms = 30000,
	};
	enum tls_mode tls = TLS_NONE;
	const char *tls_path = NULL, *inject = NULL, *resume = NULL, *token = NULL;
	bool timeout_set = false, attach = false, insecure = false;
	char err[256];
	struct report rep;
	bool json = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': o.vmm_path = optarg; break;
		case 't': o.to = optarg; break;
		case 'n':
			if (!parse_uint(optarg, 1, WIRE_MAX_CHANNELS, &v))
				goto bad;
			o.channels = v;
			break;
		case 'd':
			if (!parse_uint(optarg, 0, 3600000, &v))
				goto bad;
			o.downtime_limit_ms = v;
			break;
		case 'b':
			if (!parse_uint(optarg, 1, 1 << 24, &v))
				goto bad;
			o.max_bandwidth = v << 20;
			break;
		case 'r':
			if (!parse_uint(optarg, 0, 100000, &v))
				goto bad;
			o.max_rounds = v;
			break;
		case 'A': o.abort_on_stall = true; break;
		case 0x120: o.auto_converge = true; break;
		case 'p': o.postcopy = true; break;
		case 'a':
			if (!parse_uint(optarg, 0, 100000, &v))
				goto bad;
			o.postcopy = true;
			o.postcopy_after = v;
			break;
		case 'N': o.no_preempt = true; break;
		case 0x101:
			if (!parse_uint(optarg, 0, 1000000, &v))
				goto bad;
			o.spin_us = v;
			break;
		case 0x108:
			if (urgent_sched_parse(optarg, &o.sched))
				goto bad;
			break;
		case 'B':
			if (!parse_uint(optarg, 1, WIRE_MAX_BATCH, &v))
				goto bad;
			o.postcopy_batch = v;
			break;
		case 'T':
			if (!strcmp(optarg, "auto"))
				o.track = VMIG_TRACK_AUTO;
			else if (!strcmp(optarg, "async"))
				o.track = VMIG_TRACK_ASYNC;
			else if (!strcmp(optarg, "sync"))
				o.track = VMIG_TRACK_SYNC;
			else
				goto bad;
			break;
		case 0x110:
			if (vmig_backend_parse(optarg, &o.backend))
				goto bad;
			break;
		case 0x111:
			if (vmig_dirty_mode_parse(optarg, &o.dirty_mode))
				goto bad;
			break;
		case 'o':
			if (!parse_uint(optarg, 1, 3600, &v))
				goto bad;
			o.timeout_ms = v * 1000;
			timeout_set = true;
			break;
		case 'S':
			if (!strcmp(optarg, "main"))
				o.device_state_on_main = true;
			else if (!strcmp(optarg, "multifd"))
				o.device_state_on_main = false;
			else
				goto bad;
			break;
		case 'D':
			if (!parse_uint(optarg, 1, 64, &v))
				goto bad;
			o.device_threads = v;
			break;
		case 'H': o.no_free_hints = true; break;
		case 'I': o.test.hint_before_tracking = true; break;
		case 'j': json = true; break;
		case 'P': o.progress = false; break;
		case 'C':
			if (!parse_uint(optarg, 1, 1u << 30, &v))
				goto bad;
			o.test.inject_corrupt = v;
			break;
		case 'W':
			if (!parse_uint(optarg, 1, 65535, &v))
				goto bad;
			o.test.wire_version = v;
			break;
		case 'X':
		case 'K':
			if (tls != TLS_NONE) {
				fprintf(stderr, "vmig migrate: --tls-creds and --tls-psk exclude "
					"each other\n");
				return 2;
			}
			tls = c == 'X' ? TLS_X509 : TLS_PSK;
			tls_path = optarg;
			break;
		case 0x102: inject = optarg; break;
		case 0x130: token = optarg; break;
		case 0x131: insecure = true; break;
		case 0x103:
			if (rec_parse_cuts(&o.test.cuts, optarg))
				goto bad;
			break;
		case 0x104:
			if (!parse_uint(optarg, 0, 86400, &v))
				goto bad;
			o.recovery_timeout_ms = v * 1000;
			break;
		case 0x105: resume = optarg; break;
		case 0x106: o.no_auto_resume = true; break;
		case 0x107: o.control_path = optarg; break;
		case 0x121: attach = true; break;
		case 0x140:	/* the switchover prediction (switchover.h) */
			if (!parse_uint(optarg, 1, 1 << 24, &v))
				goto bad;
			o.switchover_bandwidth = v << 20;
			break;
		case 0x141: json = o.round_events = true; break;
		case 'h':
			migrate_usage(stdout);
			return 0;
		default:
			migrate_usage(stderr);
			return 2;
		}
	}
	if (resume && attach) {
		fprintf(stderr, "vmig migrate: --resume and --attach exclude each other "
			"(--resume asks a paused helper, --attach replaces a dead one)\n");
		return 2;
	}
	if (resume) {
		if (optind != argc || o.vmm_path) {
			fprintf(stderr, "vmig migrate: --resume takes only --to and --timeout\n");
			return 2;
		}
		/* The source tries for up to 10 s before it answers. */
		return resume_run(resume, o.to, timeout_set ? o.timeout_ms : 30000);
	}
	if (o.no_preempt && !o.postcopy) {
		fprintf(stderr, "vmig migrate: --no-preempt needs --postcopy\n");
		return 2;
	}
	/* A spinning real-time thread would hold its core from the peer it waits for. */
	if (o.spin_us && o.sched == URGENT_FIFO)
		o.sched = URGENT_NICE;
	if (optind != argc || !o.vmm_path || (!o.to && !attach)) {
		fprintf(stderr, "vmig migrate: %s (see --help)\n",
			optind != argc ? "unexpected argument" : attach ? "--attach needs --vmm" :
			"--vmm and --to are required");
		return 2;
	}
	c = auth_configure(tls != TLS_NONE, token, insecure, err, sizeof(err));
	if (c) {
		fprintf(stderr, "vmig migrate: %s\n", err);
		return c == -EDOM ? 2 : 1;
	}
	if (tls_configure(tls, tls_path, false, err, sizeof(err))) {
		fprintf(stderr, "vmig migrate: %s\n", err);
		return 1;
	}
	if (insecure)
		fprintf(stderr, "vmig migrate: --insecure: guest memory goes to %s unencrypted, "
			"and whoever answers there gets it\n", o.to);
	if (inject && auth_inject(inject)) {
		fprintf(stderr, "vmig migrate: bad value '%s'\n", inject);
		return 2;
	}
	memset(&rep, 0, sizeof(rep));
	rep.events = json;
	if (attach)
		precopy_attach(&o, &rep);
	else
		precopy_migrate(&o, &rep);
	return report_finish(&rep, json, "vmig migrate");
bad:
	bad_option_value("migrate", opts, c, optarg);
	return 2;
}

const struct vmig_cmd vmig_cmd_migrate = {
	.name = "migrate",
	.summary = "migrate a guest to a 'vmig listen' (source side)",
	.run = migrate_run,
};
