// SPDX-License-Identifier: GPL-2.0
/* vmig listen: the destination side. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "cmd.h"
#include "dest.h"
#include "tls.h"
#include "util.h"

static void listen_usage(FILE *f)
{
	fprintf(f,
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
		"Options:\n"
		"  --vmm PATH            the destination VMM's control socket (required)\n"
		"  --port [ADDR:]PORT    where to listen (required), e.g. 4444, 127.0.0.1:4444\n"
		"  --timeout SECONDS     bound on any single wait in a session, and on a new\n"
		"                        connection's whole opening (default 10)\n"
		"  --accept-timeout S    how long to wait for a source (default 120)\n"
		"  --no-prefault         do not allocate guest RAM before pages arrive (in\n"
		"                        postcopy what never arrived is punched out again)\n"
		"  --no-postcopy         refuse a source that wants to switch to postcopy\n"
		"  --postcopy-spin US    postcopy: poll for a requested page this long before\n"
		"                        sleeping (default 0)\n"
		"  --postcopy-sched P    the fault thread serving page requests: fifo (default:\n"
		"                        SCHED_FIFO 1, ahead of receivers and vCPUs; nice if\n"
		"                        that is not permitted or with --postcopy-spin),\n"
		"                        nice (-10), normal\n"
		"  --max-device-buffer SIZE  device state buffered here at most, e.g. 64M\n"
		"                        (default 64M; at least two 256 KiB chunks): a\n"
		"                        receive thread waits for room (back-pressure)\n"
		"  --device-threads N    device loading threads (default 8)\n"
		"  --tls-creds DIR       TLS 1.3 on every channel with x509: DIR holds ca.pem,\n"
		"                        cert.pem, key.pem; sources must present a certificate\n"
		"                        that chains to ca.pem\n"
		"  --tls-psk FILE        TLS 1.3 with a pre-shared key (IDENTITY:HEXKEY or HEXKEY)\n"
		"                        With either, plaintext connections are refused.\n"
		"  --token-file FILE     plain TCP, authenticated: a source must prove it holds\n"
		"                        the token in FILE (16+ bytes, mode 0600) by HMAC\n"
		"                        challenge-response (it is never sent); not encrypted\n"
		"  --insecure            plain TCP, no authentication: whoever reaches the\n"
		"                        port first with a matching guest becomes the source\n"
		"                        One of --tls-creds, --tls-psk, --token-file and\n"
		"                        --insecure is required.  Nothing about the session is\n"
		"                        told to a peer before it authenticated; every channel\n"
		"                        must prove it belongs to the session its main channel\n"
		"                        established, and only the source that began a paused\n"
		"                        postcopy can resume it.  Each connection has --timeout\n"
		"                        for its whole opening (handshake, header, HELLO); up\n"
		"                        to 16 open at once, so a slow one delays no other.\n"
		"  --backend B           auto | kmod | uffd (default auto: what the VMM's RAM is,\n"
		"                        vmig.ko regions or memfds)\n"
		"  --recovery-timeout S  postcopy: after a broken link, keep the guest running\n"
		"                        and wait this long for the source to reconnect\n"
		"                        (default 30; 0: no recovery, fail at once)\n"
		"  --json                the report as one JSON object on stdout, the last\n"
		"                        line; before it, postcopy recovery events as JSON\n"
		"                        lines: paused, resume_attempt, resume_failed, resumed\n"
		"  --no-progress         no progress bar (it is shown only on a terminal)\n"
		"  --attach              take over a postcopy whose destination helper died\n"
		"                        (see below); --port defaults to where it listened\n"
		"  --help                this text\n"
		"\n"
		"Postcopy (when the source asks for it): the guest resumes here at once; a\n"
		"page it touches that has not arrived is requested on the return path and\n"
		"placed atomically when it comes (preempt channel, or the bulk channels with\n"
		"the source's --no-preempt).  The report adds the request latency.  If a\n"
		"channel breaks then, postcopy pauses: the guest runs on (threads touching\n"
		"missing pages wait) until the source reconnects and re-sends what is\n"
		"missing; if it does not within --recovery-timeout, vmig says so and exits 1.\n"
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

		"  vmig listen --attach --vmm /tmp/dst.sock --token-file /etc/vmig/token   # its helper died\n");
}

static int listen_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vmm", required_argument, NULL, 'v' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "accept-timeout", required_argument, NULL, 'a' },
		{ "no-prefault", no_argument, NULL, 'F' },
		{ "backend", required_argument, NULL, 0x103 },
		{ "max-device-buffer", required_argument, NULL, 'B' },
		{ "device-threads", required_argument, NULL, 'D' },
		{ "no-postcopy", no_argument, NULL, 'N' },
		{ "postcopy-spin", required_argument, NULL, 'S' },
		{ "postcopy-sched", required_argument, NULL, 0x104 },
		{ "recovery-timeout", required_argument, NULL, 'R' },
		{ "attach", no_argument, NULL, 0x121 },
		{ "json", no_argument, NULL, 'j' },
		{ "no-progress", no_argument, NULL, 'P' },
		{ "tls-creds", required_argument, NULL, 'X' },
		{ "tls-psk", required_argument, NULL, 'K' },
		{ "token-file", required_argument, NULL, 0x130 },
		{ "insecure", no_argument, NULL, 0x131 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dest_opts o = { .timeout_ms = 10000, .accept_timeout_ms = 120000,
			       .prefault = true, .progress = true,
			       .max_device_buffer = 64ull << 20, .device_threads = 8,
			       .recovery_timeout_ms = 30000 };
	enum tls_mode tls = TLS_NONE;
	const char *tls_path = NULL, *token = NULL;
	bool insecure = false;
	char err[256];
	int64_t sz;
	struct report rep;
	bool json = false;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'v': o.vmm_path = optarg; break;
		case 'p': o.listen = optarg; break;
		case 'o':
			if (!parse_uint(optarg, 1, 3600, &v))
				goto bad;
			o.timeout_ms = v * 1000;
			break;
		case 'a':
			if (!parse_uint(optarg, 1, 86400, &v))
				goto bad;
			o.accept_timeout_ms = v * 1000;
			break;
		case 'F': o.prefault = false; break;
		case 'B':
			sz = parse_size(optarg);
			if (sz < 1)
				goto bad;
			o.max_device_buffer = sz;
			break;
		case 'D':
			if (!parse_uint(optarg, 1, 64, &v))
				goto bad;
			o.device_threads = v;
			break;
		case 'N': o.no_postcopy = true; break;
		case 'S':
			if (!parse_uint(optarg, 0, 1000000, &v))
				goto bad;
			o.spin_us = v;
			break;
		case 0x104:
			if (urgent_sched_parse(optarg, &o.sched))
				goto bad;
			break;
		case 0x103:
			if (vmig_backend_parse(optarg, &o.backend))
				goto bad;
			break;
		case 'R':
			if (!parse_uint(optarg, 0, 86400, &v))
				goto bad;
			o.recovery_timeout_ms = v * 1000;
			break;
		case 0x121: o.attach = true; break;
		case 'j': json = true; break;
		case 0x130: token = optarg; break;
		case 0x131: insecure = true; break;
		case 'P': o.progress = false; break;
		case 'X':
		case 'K':
			if (tls != TLS_NONE) {
				fprintf(stderr, "vmig listen: --tls-creds and --tls-psk exclude "
					"each other\n");
				return 2;
			}
			tls = c == 'X' ? TLS_X509 : TLS_PSK;
			tls_path = optarg;
			break;
		case 'h':
			listen_usage(stdout);
			return 0;
		default:
			listen_usage(stderr);
			return 2;
		}
	}
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
	c = auth_configure(tls != TLS_NONE, token, insecure, err, sizeof(err));
	if (c) {
		fprintf(stderr, "vmig listen: %s\n", err);
		return c == -EDOM ? 2 : 1;
	}
	if (tls_configure(tls, tls_path, true, err, sizeof(err))) {
		fprintf(stderr, "vmig listen: %s\n", err);
		return 1;
	}
	memset(&rep, 0, sizeof(rep));
	rep.events = json;
	dest_receive(&o, &rep);
	return report_finish(&rep, json, "vmig listen");
bad:
	bad_option_value("listen", opts, c, optarg);
	return 2;
}

const struct vmig_cmd vmig_cmd_listen = {
	.name = "listen",
	.summary = "receive a migrated guest (destination side)",
	.run = listen_run,
};
