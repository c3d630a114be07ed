// SPDX-License-Identifier: GPL-2.0
/* vmig migrate: the source side. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "precopy.h"
#include "util.h"
#include "wire.h"

static void migrate_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig migrate --vmm PATH --to HOST:PORT [options]\n"
		"\n"
		"Live-migrate the guest of the VMM at PATH (its control socket) to the\n"
		"'vmig listen' at HOST:PORT, by precopy: a bulk copy of guest RAM (holes and\n"
		"zero pages are not sent), then rounds of the pages written meanwhile, until\n"
		"the expected downtime (dirty bytes / measured bandwidth) fits the limit;\n"
		"then the guest is stopped, the rest is sent, and it resumes on the\n"
		"destination.  If precopy stalls (the dirty set stops shrinking, or\n"
		"--max-rounds is reached) vmig says so and switches over anyway, or with\n"
		"--abort-on-stall gives up.  On any failure the guest keeps running here.\n"
		"\n"
		"Options:\n"
		"  --vmm PATH              the source VMM's control socket (required)\n"
		"  --to HOST:PORT          the destination (required)\n"
		"  --multifd N             page channels, one sender thread each (default 2)\n"
		"  --downtime-limit MS     switch over when the rest fits this (default 300)\n"
		"  --max-bandwidth MiB/s   cap over all channels (default: none)\n"
		"  --max-rounds N          dirty rounds before it counts as a stall (default 30)\n"
		"  --abort-on-stall        give up instead of switching over on a stall\n"
		"  --backend B             auto | kmod | uffd (default auto: kmod when the\n"
		"                          VMM's RAM is vmig.ko regions, uffd for memfds)\n"
		"  --dirty-mode M          kmod dirty logging: manual-init (default: enable\n"
		"                          costs nothing, each chunk re-protected just before\n"
		"                          it is sent) | manual | protect | hwdirty\n"
		"  --track MODE            uffd dirty tracking: auto | async | sync (default auto:\n"
		"                          async = WP_ASYNC + PAGEMAP_SCAN when the kernel has it)\n"
		"  --timeout SECONDS       bound on any single wait (default 10)\n"
		"  --json                  the report as one JSON object on stdout\n"
		"  --no-progress           no progress bar (it is shown only on a terminal)\n"
		"  --help                  this text\n"
		"\n"
		"Exit status: 0 migrated, 1 failed (the guest runs on here), 2 usage.\n"
		"\n"
		"Examples:\n"
		"  vmig migrate --vmm /tmp/src.sock --to 127.0.0.1:4444\n"
		"  vmig migrate --vmm /tmp/src.sock --to dst:4444 --multifd 4 \\\n"
		"               --downtime-limit 50 --max-bandwidth 1000 --json\n");
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
		{ "track", required_argument, NULL, 'T' },
		{ "backend", required_argument, NULL, 'B' },
		{ "dirty-mode", required_argument, NULL, 'D' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "inject-corrupt", required_argument, NULL, 'C' },	/* tests */
		{ "wire-version", required_argument, NULL, 'W' },	/* tests */
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct precopy_opts o = {
		.channels = 2, .downtime_limit_ms = 300, .max_rounds = 30,
		.track = VMIG_TRACK_AUTO, .timeout_ms = 10000, .progress = true,
	};
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
		case 'B':
			if (vmig_backend_parse(optarg, &o.backend))
				goto bad;
			break;
		case 'D':
			if (vmig_dirty_mode_parse(optarg, &o.dirty_mode))
				goto bad;
			break;
		case 'o':
			if (!parse_uint(optarg, 1, 3600, &v))
				goto bad;
			o.timeout_ms = v * 1000;
			break;
		case 'j': json = true; break;
		case 'P': o.progress = false; break;
		case 'C':
			if (!parse_uint(optarg, 1, 1u << 30, &v))
				goto bad;
			o.inject_corrupt = v;
			break;
		case 'W':
			if (!parse_uint(optarg, 1, 65535, &v))
				goto bad;
			o.wire_version = v;
			break;
		case 'h':
			migrate_usage(stdout);
			return 0;
		default:
			migrate_usage(stderr);
			return 2;
		}
	}
	if (optind != argc || !o.vmm_path || !o.to) {
		fprintf(stderr, "vmig migrate: %s (see --help)\n",
			optind != argc ? "unexpected argument" : "--vmm and --to are required");
		return 2;
	}
	memset(&rep, 0, sizeof(rep));
	precopy_migrate(&o, &rep);
	if (json)
		report_print_json(&rep, stdout);
	else
		report_print_text(&rep, stdout);
	if (!rep.ok)
		fprintf(stderr, "vmig migrate: %s\n", rep.error);
	return rep.ok ? 0 : 1;
bad:
	fprintf(stderr, "vmig migrate: bad value '%s'\n", optarg);
	return 2;
}

const struct vmig_cmd vmig_cmd_migrate = {
	.name = "migrate",
	.summary = "migrate a guest to a 'vmig listen' (source side)",
	.run = migrate_run,
};
