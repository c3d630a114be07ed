// SPDX-License-Identifier: GPL-2.0
/* vmig listen: the destination side. */
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cmd.h"
#include "dest.h"
#include "options.h"
#include "tls.h"
#include "util.h"

/* What listen parses beyond struct cli_common. */
#define OWN(f)	.off = offsetof(struct dest_opts, f)

static int max_device_buffer_set(void *p, const char *v, const char *cmd)
{
	int64_t sz = parse_size(v);

	(void)cmd;
	if (sz < 1)
		return -1;
	((struct dest_opts *)p)->max_device_buffer = sz;
	return 0;
}

static const struct cli_opt opt_port = {
	.name = "port", .arg = "[ADDR:]PORT", .kind = CLI_STR, OWN(listen),
	.help = "where to listen (required), e.g. 4444, 127.0.0.1:4444",
};
static const struct cli_opt opt_accept_timeout = {
	.name = "accept-timeout", .arg = "S", .kind = CLI_INT, OWN(accept_timeout_ms),
	.min = 1, .max = 86400, .scale = 1000,
	.help = "how long to wait for a source (default 120)",
};
static const struct cli_opt opt_no_prefault = {
	.name = "no-prefault", .kind = CLI_FALSE, OWN(prefault),
	.help = "do not allocate guest RAM before pages arrive (in\n"
		"postcopy what never arrived is punched out again)",
};
static const struct cli_opt opt_no_postcopy = {
	.name = "no-postcopy", .kind = CLI_TRUE, OWN(no_postcopy),
	.help = "refuse a source that wants to switch to postcopy",
};
static const struct cli_opt opt_no_kernel_requests = {
	.name = "no-kernel-requests", .kind = CLI_FALSE, OWN(kernel_requests),
	.help = "postcopy on vmig.ko regions: write the guest's page\n"
		"requests from this helper's thread, not let the\n"
		"module write them to the return path itself (it does\n"
		"so by default on plain TCP; never under TLS)",
};
static const struct cli_opt opt_max_device_buffer = {
	.name = "max-device-buffer", .arg = "SIZE", .kind = CLI_FN, OWN(max_device_buffer),
	.fn = max_device_buffer_set,
	.help = "device state buffered here at most, e.g. 64M\n"
		"(default 64M; at least two 256 KiB chunks): a\n"
		"receive thread waits for room (back-pressure)",
};

static const struct cli_opt *const listen_opt_list[] = {
	&cli_opt_vmm, &opt_port, &cli_opt_timeout, &opt_accept_timeout, &opt_no_prefault,
	&opt_no_postcopy, &cli_opt_postcopy_spin, &cli_opt_postcopy_sched,
	&cli_opt_postcopy_cpu,
	&opt_no_kernel_requests, &opt_max_device_buffer, &cli_opt_device_threads, &cli_opt_tls_creds,
	&cli_opt_tls_psk, &cli_opt_token_file, &cli_opt_insecure, &cli_opt_backend,
	&cli_opt_recovery_timeout, &cli_opt_json, &cli_opt_no_progress, &cli_opt_attach,
	&cli_opt_help, NULL,
};

static const struct cli_opts listen_cli_opts = {
	.cmd = "listen", .dst = true, .opts = listen_opt_list,
};

static void listen_usage(FILE *f)
{
	fputs(
		"usage: vmig listen --vmm PATH --port [ADDR:]PORT [options]\n"
		"       vmig listen --attach --vmm PATH [--port [ADDR:]PORT] [options]\n"
		"\n"
		"Receive one migration into the VMM waiting at PATH (a 'vmig guest\n"
		"--incoming', or any VMM using libvmig), then tell it to resume.\n"
		"Connections that do not start a valid session (bad magic, wrong version,\n"
		"unknown session, a refused handshake) are dropped with a message and\n"
		"vmig keeps waiting.  Once a session runs, any failure (malformed packet,\n"
		"peer gone, timeout) ends it: the VMM is told to discard the partial guest.\n"
		"\n"
		"Options:\n", f);
	cli_print_options(f, &listen_cli_opts);
	fputs(
		"\n"
		"Postcopy (when the source asks for it): the guest resumes here at once; a\n"
		"page it touches that has not arrived is requested on the return path and\n"
		"placed atomically when it comes (back on the return path, on the preempt\n"
		"channel from a source that does not offer that, or on the bulk channels\n"
		"with the source's --no-preempt; the report's postcopy \"replies\" says\n"
		"which).  The report adds the request latency.  If a channel breaks then,\n"
		"postcopy pauses: the guest runs on (threads touching missing pages wait)\n"
		"until the source reconnects and re-sends what is missing; if it does not\n"
		"within --recovery-timeout, vmig says so and exits 1.\n"
		"\n"
		"Taking over (--attach): the VMM, not the helper, holds the guest and the\n"
		"registration it runs on.  If this helper dies during postcopy (kill -9, OOM,\n"
		"a crash), the VMM keeps running the guest, threads on missing pages wait,\n"
		"and keeps the record the helper left; the source pauses as after a broken\n"
		"link and reconnects by itself.  'vmig listen --attach --vmm PATH' reads the\n"
		"record, rebuilds the received bitmap from the pages guest RAM holds, wakes\n"
		"the waiting threads to fault again, listens, answers the source's RESUME\n"
		"and finishes (within --recovery-timeout).  Without --attach, vmig listen\n"
		"refuses such a VMM before touching its memory.  Either backend: on vmig.ko\n"
		"regions the requests the dead helper had read are queued again.\n"
		"\n"
		"Exit status: 0 the guest resumed here, 1 failed, 2 usage.\n"
		"\n"
		"Example:\n"
		"  vmig listen --vmm /tmp/dst.sock --port 4444 --token-file /etc/vmig/token\n"
		"  vmig listen --vmm /tmp/dst.sock --port 4444 --tls-psk /etc/vmig/keys.psk\n"
		"  vmig listen --attach --vmm /tmp/dst.sock --token-file /etc/vmig/token   # its helper died\n", f);
}

static int listen_run(int argc, char **argv)
{
	struct dest_opts o = { .accept_timeout_ms = 120000, .prefault = true,
			       .kernel_requests = true,
			       .max_device_buffer = 64ull << 20 };
	struct cli_common cc;
	char err[256];
	struct report rep;
	int c;

	cli_common_init(&cc);
	c = cli_parse(&listen_cli_opts, &cc, &o, argc, argv, listen_usage);
	if (c)
		return c == 1 ? 0 : 2;
	o.vmm_path = cc.vmm_path;
	o.timeout_ms = cc.timeout_ms;
	o.backend = cc.backend;
	o.device_threads = cc.device_threads;
	o.spin_us = cc.spin_us;
	o.sched = cc.sched;
	o.cpu_any = cc.cpu_any;
	o.recovery_timeout_ms = cc.recovery_timeout_ms;
	o.progress = cc.progress;
	o.attach = cc.attach;
	/* A spinning real-time thread would hold its core from the peer it waits for. */
	if (o.spin_us && o.sched == URGENT_FIFO)
		o.sched = URGENT_NICE;
	if (optind != argc || !o.vmm_path || (!o.listen && !o.attach)) {
		fprintf(stderr, "vmig listen: %s (see --help)\n",
			optind != argc ? "unexpected argument" : o.attach ? "--attach needs --vmm" :
			"--vmm and --port are required");
		return 2;
	}
	if (o.attach && !o.recovery_timeout_ms) {
		fprintf(stderr, "vmig listen: --attach waits --recovery-timeout for the source; "
			"it cannot be 0\n");
		return 2;
	}
	c = auth_configure(cc.tls != TLS_NONE, cc.token, cc.insecure, err, sizeof(err));
	if (c) {
		fprintf(stderr, "vmig listen: %s\n", err);
		return c == -EDOM ? 2 : 1;
	}
	if (tls_configure(cc.tls, cc.tls_path, true, err, sizeof(err))) {
		fprintf(stderr, "vmig listen: %s\n", err);
		return 1;
	}
	memset(&rep, 0, sizeof(rep));
	rep.events = cc.json;
	dest_receive(&o, &rep);
	return report_finish(&rep, cc.json, "vmig listen");
}

const struct vmig_cmd vmig_cmd_listen = {
	.name = "listen",
	.summary = "receive a migrated guest (destination side)",
	.run = listen_run,
};
