// SPDX-License-Identifier: GPL-2.0
/* vmig stats: the module's regions and their counters, over netlink. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/vmig.h>

#include "libvmig.h"
#include "cmd.h"

static void stats_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig stats [--json] [--region ID] [--reset]\n"
		"\n"
		"Show the vmig module's settings and every live region: its size, mode\n"
		"(postcopy, dirty logging and its flags) and counters (pages present,\n"
		"write faults, harvests, missing faults, pages placed).  Asks the module\n"
		"over generic netlink; needs no privilege, but without CAP_NET_ADMIN it\n"
		"shows only the regions your user created.\n"
		"\n"
		"Options:\n"
		"  --json        one JSON object on stdout: {\"module\":{...},\"regions\":[...]}\n"
		"  --region ID   only the region with this id\n"
		"  --reset       zero the counters (of --region ID, or of all regions)\n"
		"                instead of showing them; needs CAP_NET_ADMIN\n"
		"  --help        this text\n"
		"\n"
		"Exit status: 0 success, 1 failure (module not loaded, no such region,\n"
		"not permitted), 2 usage.\n"
		"\n"
		"Example:\n"
		"  vmig stats --json | jq '.regions[] | {id, size}'\n");
}

/* "64.0 MiB" */
const char *vmig_fmt_bytes(uint64_t b, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f %s", v, units[u]);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
	return buf;
}

/* "postcopy,dirty(manual,initially-set)" or "-" */
const char *vmig_fmt_mode(uint32_t flags, bool dirty_on, uint32_t dirty_flags,
			  char *buf, size_t len)
{
	static const struct { uint32_t bit; const char *name; } dflags[] = {
		{ VMIG_DIRTY_MANUAL_PROTECT, "manual" },
		{ VMIG_DIRTY_INITIALLY_SET, "initially-set" },
		{ VMIG_DIRTY_HWDIRTY, "hwdirty" },
	};
	size_t n = 0, i, k = 0;

	buf[0] = 0;
	if (flags & VMIG_REGION_POSTCOPY)
		n += snprintf(buf + n, len - n, "postcopy");
	if (dirty_on && n < len)
		n += snprintf(buf + n, len - n, "%sdirty", n ? "," : "");
	for (i = 0; dirty_on && i < sizeof(dflags) / sizeof(dflags[0]); i++)
		if ((dirty_flags & dflags[i].bit) && n < len)
			n += snprintf(buf + n, len - n, "%s%s", k++ ? "," : "(",
				      dflags[i].name);
	if (k && n < len)
		snprintf(buf + n, len - n, ")");
	if (!buf[0])
		snprintf(buf, len, "-");
	return buf;
}

static const char *jbool(bool b)
{
	return b ? "true" : "false";
}

void vmig_print_stats_json(FILE *f, const struct vmig_nl_stats *s)
{
	int i, last = 0;

	fprintf(f, "{\"pages_present\":%" PRIu64 ",\"write_faults\":%" PRIu64
		",\"harvest_calls\":%" PRIu64 ",\"pages_harvested\":%" PRIu64
		",\"clear_calls\":%" PRIu64 ",\"pages_protected\":%" PRIu64
		",\"max_protect_ns\":%" PRIu64 ",\"missing_faults\":%" PRIu64
		",\"requests\":%" PRIu64 ",\"pages_placed\":%" PRIu64
		",\"place_exist\":%" PRIu64 ",\"pages_discarded\":%" PRIu64
		",\"nowait_placed\":%" PRIu64 ",\"nowait_fallbacks\":%" PRIu64
		",\"sink_sent\":%" PRIu64 ",\"sink_unsent\":%" PRIu64
		",\"wait_hist\":[",
		s->pages_present, s->write_faults, s->harvest_calls,
		s->pages_harvested, s->clear_calls, s->pages_protected,
		s->max_protect_ns, s->missing_faults, s->requests,
		s->pages_placed, s->place_exist, s->pages_discarded,
		s->nowait_placed, s->nowait_fallbacks, s->sink_sent, s->sink_unsent);
	/* Up to the last non-empty bucket: bucket i is [2^i, 2^(i+1)) ns. */
	for (i = 0; i < VMIG_NL_HIST_BUCKETS; i++)
		if (s->wait_hist[i])
			last = i + 1;
	for (i = 0; i < last; i++)
		fprintf(f, "%s%" PRIu64, i ? "," : "", s->wait_hist[i]);
	fprintf(f, "]}");
}

struct stats_out {
	bool json;
	int n;
};

static int stats_region_json(const struct vmig_nl_region *r, void *arg)
{
	struct stats_out *o = arg;

	printf("%s{\"id\":%u,\"size\":%" PRIu64 ",\"flags\":%u,\"postcopy\":%s,"
	       "\"dirty_on\":%s,\"dirty_flags\":%u,\"stats\":",
	       o->n++ ? "," : "", r->id, r->size, r->flags,
	       jbool(r->flags & VMIG_REGION_POSTCOPY), jbool(r->dirty_on),
	       r->dirty_flags);
	vmig_print_stats_json(stdout, &r->stats);
	printf("}");
	return 0;
}

static int stats_region_text(const struct vmig_nl_region *r, void *arg)
{
	const struct vmig_nl_stats *s = &r->stats;
	struct stats_out *o = arg;
	char size[32], mode[64];

	if (!o->n++)
		printf("%6s %12s %-24s %10s %12s %10s %10s %10s\n", "ID", "SIZE", "MODE",
		       "PRESENT", "WRITE-FLT", "HARVESTED", "MISSING", "PLACED");
	printf("%6u %12s %-24s %10" PRIu64 " %12" PRIu64 " %10" PRIu64 " %10" PRIu64
	       " %10" PRIu64 "\n", r->id, vmig_fmt_bytes(r->size, size, sizeof(size)),
	       vmig_fmt_mode(r->flags, r->dirty_on, r->dirty_flags, mode, sizeof(mode)),
	       s->pages_present, s->write_faults, s->pages_harvested,
	       s->missing_faults, s->pages_placed);
	return 0;
}

/* Say why netlink failed, in words an operator can act on. */
void vmig_nl_perror(const char *who, struct vmig_nl *nl, int err)
{
	const char *msg = nl ? vmig_nl_errmsg(nl) : "";

	if (!nl && err == -ENOENT)
		fprintf(stderr, "%s: the vmig module is not loaded (no generic netlink "
			"family \"%s\"); see 'vmig module load'\n", who, VMIG_GENL_NAME);
	else if (err == -EPERM)
		fprintf(stderr, "%s: not permitted: this needs CAP_NET_ADMIN (run as root)\n",
			who);
	else
		fprintf(stderr, "%s: %s%s%s\n", who, strerror(-err), msg[0] ? ": " : "", msg);
}

static int stats_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "region", required_argument, NULL, 'r' },
		{ "reset", no_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct stats_out out = { 0 };
	struct vmig_nl_info info;
	int c, err, reset = 0;
	long long region = -1;
	struct vmig_nl *nl;
	char *end, b1[32], b2[32];

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			out.json = true;
			break;
		case 'r':
			errno = 0;
			region = strtoll(optarg, &end, 0);
			if (errno || *end || region < 0 || region > UINT32_MAX) {
				fprintf(stderr, "vmig stats: bad region id '%s'\n", optarg);
				return 2;
			}
			break;
		case 'R':
			reset = 1;
			break;
		case 'h':
			stats_usage(stdout);
			return 0;
		default:
			stats_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vmig stats: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	nl = vmig_nl_open();
	if (!nl) {
		vmig_nl_perror("vmig stats", NULL, -errno);
		return 1;
	}
	if (reset) {
		err = vmig_nl_reset_stats(nl, region);
		goto out;
	}
	err = vmig_nl_info(nl, &info);
	if (err)
		goto out;
	if (out.json) {
		printf("{\"module\":{\"version\":\"%s\",\"api_version\":%u,\"features\":%" PRIu64
		       ",\"page_size\":%" PRIu64 ",\"max_region_bytes\":%" PRIu64
		       ",\"reserved_bytes\":%" PRIu64 ",\"pages_allocated\":%" PRIu64
		       ",\"region_count\":%" PRIu64 ",\"stall_threshold_ns\":%" PRIu64
		       "},\"regions\":[", info.mod_version, info.api_version, info.features,
		       info.page_size, info.max_region_bytes, info.reserved_bytes,
		       info.pages_allocated, info.region_count, info.stall_threshold_ns);
	} else {
		printf("vmig module %s (ABI %u): %" PRIu64 " regions, %s reserved of %s, "
		       "%" PRIu64 " pages held\n", info.mod_version, info.api_version,
		       info.region_count,
		       vmig_fmt_bytes(info.reserved_bytes, b1, sizeof(b1)),
		       vmig_fmt_bytes(info.max_region_bytes, b2, sizeof(b2)),
		       info.pages_allocated);
	}
	if (region >= 0)
		err = vmig_nl_region(nl, region, out.json ? stats_region_json :
				     stats_region_text, &out);
	else
		err = vmig_nl_dump(nl, out.json ? stats_region_json : stats_region_text,
				   &out);
	if (out.json)
		printf("]}\n");
	else if (!err && !out.n)
		printf("no regions\n");
out:
	if (err)
		vmig_nl_perror("vmig stats", nl, err);
	vmig_nl_close(nl);
	return err ? 1 : 0;
}

const struct vmig_cmd vmig_cmd_stats = {
	.name = "stats",
	.summary = "show the module's regions and their counters",
	.run = stats_run,
};
