// SPDX-License-Identifier: GPL-2.0
/* vmig monitor: follow the module's events until interrupted. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/vmig.h>

#include "libvmig.h"
#include "cmd.h"
#include "util.h"

static volatile sig_atomic_t monitor_stop;

static void monitor_on_signal(int sig)
{
	(void)sig;
	monitor_stop = 1;
}

static void monitor_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig monitor [--json] [--count N] [--timeout SECONDS]\n"
		"\n"
		"Print the vmig module's events as they happen, one line each:\n"
		"  region-created    id, size, flags, the creating process\n"
		"  region-destroyed  id, size, flags, final counters\n"
		"  dirty             dirty logging of a region turned on or off\n"
		"  stall             a postcopy fault waited longer than the module\n"
		"                    parameter stall_event_us\n"
		"  postcopy          a region entered or left postcopy mode\n"
		"Runs until interrupted (Ctrl-C), N events, or the timeout.  Needs\n"
		"CAP_NET_ADMIN: the events carry every user's regions.\n"
		"\n"
		"Options:\n"
		"  --json           one JSON object per line\n"
		"  --count N        stop after N events\n"
		"  --timeout SECS   stop after SECS seconds\n"
		"  --help           this text\n"
		"\n"
		"Exit status: 0 when interrupted, after N events or at the timeout\n"
		"without --count; 1 on failure (module not loaded) or when the timeout\n"
		"ends a --count run early; 2 usage.\n");
}

struct monitor {
	bool json;
	long count;		/* events left; <0: no limit */
	long seen;
};

static const char *monitor_kind(enum vmig_nl_event_kind k)
{
	switch (k) {
	case VMIG_NL_EV_REGION_NEW: return "region-created";
	case VMIG_NL_EV_REGION_DEL: return "region-destroyed";
	case VMIG_NL_EV_DIRTY: return "dirty";
	case VMIG_NL_EV_STALL: return "stall";
	case VMIG_NL_EV_POSTCOPY: return "postcopy";
	}
	return "unknown";
}

static void monitor_print_json(const struct vmig_nl_event *ev, double t)
{
	const struct vmig_nl_region *r = &ev->region;

	printf("{\"time\":%.6f,\"event\":\"%s\",\"id\":%u", t, monitor_kind(ev->kind), r->id);
	switch (ev->kind) {
	case VMIG_NL_EV_REGION_NEW:
	case VMIG_NL_EV_REGION_DEL:
		printf(",\"size\":%" PRIu64 ",\"flags\":%u,\"postcopy\":%s", r->size,
		       r->flags, (r->flags & VMIG_REGION_POSTCOPY) ? "true" : "false");
		if (ev->kind == VMIG_NL_EV_REGION_NEW) {
			printf(",\"pid\":%u", ev->pid);
		} else if (r->has_stats) {
			printf(",\"stats\":");
			vmig_print_stats_json(stdout, &r->stats);
		}
		break;
	case VMIG_NL_EV_DIRTY:
		printf(",\"dirty_on\":%s,\"dirty_flags\":%u", r->dirty_on ? "true" : "false",
		       r->dirty_flags);
		break;
	case VMIG_NL_EV_STALL:
		printf(",\"stall_ns\":%" PRIu64, ev->stall_ns);
		break;
	case VMIG_NL_EV_POSTCOPY:
		printf(",\"postcopy_on\":%s", r->postcopy_on ? "true" : "false");
		break;
	}
	printf("}\n");
}

static void monitor_print_text(const struct vmig_nl_event *ev, double t)
{
	const struct vmig_nl_region *r = &ev->region;
	char size[32], mode[64];

	printf("%.6f %-16s region %u", t, monitor_kind(ev->kind), r->id);
	switch (ev->kind) {
	case VMIG_NL_EV_REGION_NEW:
	case VMIG_NL_EV_REGION_DEL:
		printf(" size %s mode %s", vmig_fmt_bytes(r->size, size, sizeof(size)),
		       vmig_fmt_mode(r->flags, false, 0, mode, sizeof(mode)));
		if (ev->kind == VMIG_NL_EV_REGION_NEW)
			printf(" pid %u", ev->pid);
		else
			printf(" write-faults %" PRIu64 " missing %" PRIu64 " placed %" PRIu64,
			       r->stats.write_faults, r->stats.missing_faults,
			       r->stats.pages_placed);
		break;
	case VMIG_NL_EV_DIRTY:
		printf(" logging %s", vmig_fmt_mode(0, r->dirty_on, r->dirty_flags, mode,
						     sizeof(mode)));
		if (!r->dirty_on)
			printf(" off");
		break;
	case VMIG_NL_EV_STALL:
		printf(" fault waited %.3f ms", ev->stall_ns / 1e6);
		break;
	case VMIG_NL_EV_POSTCOPY:
		printf(" postcopy mode %s", r->postcopy_on ? "on" : "off");
		break;
	}
	printf("\n");
}

static int monitor_event(const struct vmig_nl_event *ev, void *arg)
{
	struct monitor *m = arg;
	struct timespec ts;
	double t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = ts.tv_sec + ts.tv_nsec / 1e9;
	if (m->json)
		monitor_print_json(ev, t);
	else
		monitor_print_text(ev, t);
	m->seen++;
	if (m->count > 0 && --m->count == 0)
		return 1;	/* stop reading */
	return 0;
}

static int monitor_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct monitor m = { .count = -1 };
	double timeout = -1, deadline = 0;
	struct sigaction sa;
	struct vmig_nl *nl;
	struct pollfd p;
	int c, err, ret = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			m.json = true;
			break;
		case 'n':
			errno = 0;
			m.count = strtol(optarg, &end, 10);
			if (errno || *end || m.count <= 0) {
				fprintf(stderr, "vmig monitor: bad --count '%s'\n", optarg);
				return 2;
			}
			break;
		case 't':
			errno = 0;
			timeout = strtod(optarg, &end);
			if (errno || *end || !(timeout > 0)) {
				fprintf(stderr, "vmig monitor: bad --timeout '%s'\n", optarg);
				return 2;
			}
			break;
		case 'h':
			monitor_usage(stdout);
			return 0;
		default:
			monitor_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vmig monitor: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}

	nl = vmig_nl_open();
	if (!nl) {
		vmig_nl_perror("vmig monitor", NULL, -errno);
		return 1;
	}
	err = vmig_nl_subscribe(nl);
	if (err) {
		vmig_nl_perror("vmig monitor", nl, err);
		vmig_nl_close(nl);
		return 1;
	}
	/* Each event reaches a pipe at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = monitor_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (timeout > 0)
		deadline = now_ns() / 1e9 + timeout;

	p.fd = vmig_nl_event_fd(nl);
	p.events = POLLIN;
	while (!monitor_stop && m.count != 0) {
		int wait_ms = -1;

		if (timeout > 0) {
			double left = deadline - now_ns() / 1e9;

			if (left <= 0) {
				if (m.count > 0) {
					fprintf(stderr, "vmig monitor: timed out after %ld events\n",
						m.seen);
					ret = 1;
				}
				break;
			}
			wait_ms = left * 1000 + 1;
		}
		if (poll(&p, 1, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			perror("vmig monitor: poll");
			ret = 1;
			break;
		}
		if (!(p.revents & POLLIN))
			continue;
		err = vmig_nl_read_events(nl, monitor_event, &m);
		if (err == -ENOBUFS) {
			fprintf(stderr, "vmig monitor: events were lost (socket buffer full)\n");
		} else if (err < 0 && err != -EINTR && err != -EAGAIN) {
			vmig_nl_perror("vmig monitor", nl, err);
			ret = 1;
			break;
		}
	}
	vmig_nl_close(nl);
	return ret;
}

const struct vmig_cmd vmig_cmd_monitor = {
	.name = "monitor",
	.summary = "follow the module's events (regions, logging, stalls)",
	.run = monitor_run,
};
