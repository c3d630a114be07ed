// SPDX-License-Identifier: GPL-2.0
/*
 * vmig guest: the command line.  One table of options (the cli_opt
 * entries, shared with the helper's parser in options.c) fills struct
 * guest_args and prints --help; the checks between options that the table
 * cannot express follow it in guest_opts_parse.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "guest_int.h"
#include "guest_page.h"
#include "options.h"
#include "util.h"

const char *const pattern_names[] = { "random", "sequential", "idle", "hot" };

#define ARG(f)	.off = offsetof(struct guest_args, f)

static int mem_set(void *p, const char *v, const char *cmd)
{
	int64_t sz = parse_size(v);

	(void)cmd;
	if (sz < (1 << 20) || sz % GUEST_PAGE_SIZE)
		return -1;
	((struct guest_args *)p)->mem = sz;
	return 0;
}

static int pattern_set(void *p, const char *v, const char *cmd)
{
	unsigned int i;

	(void)cmd;
	for (i = 0; i < 4 && strcmp(v, pattern_names[i]); i++)
		;
	if (i == 4)
		return -1;
	((struct guest_args *)p)->g.pattern = i;
	return 0;
}

static int guest_backend_set(void *p, const char *v, const char *cmd)
{
	(void)cmd;
	return vmig_backend_parse(v, &((struct guest_args *)p)->backend) ? -1 : 0;
}

static int device_add(void *p, const char *v, const char *cmd)
{
	struct guest *g = &((struct guest_args *)p)->g;
	char err[128] = "";

	if (g->nr_devs == GUEST_MAX_DEVICES ||
	    guest_dev_parse(v, &g->devs[g->nr_devs], err, sizeof(err))) {
		fprintf(stderr, "vmig %s: bad --device '%s': %s\n", cmd, v,
			err[0] ? err : "too many devices");
		return 2;
	}
	g->nr_devs++;
	return 0;
}

static int free_set(void *p, const char *v, const char *cmd)
{
	uint64_t n;

	(void)cmd;
	if (!parse_uint(v[0] && v[strlen(v) - 1] == '%' ? strndupa(v, strlen(v) - 1) : v,
			0, 100, &n))
		return -1;
	((struct guest_args *)p)->g.free_pct = n;
	return 0;
}

static const struct cli_opt opt_socket = {
	.name = "socket", .arg = "PATH", .kind = CLI_STR, ARG(sock),
	.help = "control socket to listen on (required)",
};
static const struct cli_opt opt_mem = {
	.name = "mem", .arg = "SIZE", .kind = CLI_FN, ARG(mem), .fn = mem_set,
	.bad = "at least 1M, whole pages",
	.help = "guest RAM, e.g. 256M, 1G (default 256M)",
};
static const struct cli_opt opt_vcpus = {
	.name = "vcpus", .arg = "N", .kind = CLI_UINT, ARG(g.nvcpus),
	.min = 1, .max = 256, .scale = 1, .bad = "1..256",
	.help = "vCPU threads (default 2)",
};
static const struct cli_opt opt_pattern = {
	.name = "pattern", .arg = "P", .kind = CLI_FN, ARG(g.pattern), .fn = pattern_set,
	.bad = "random, sequential, idle, hot",
	.help = "random | sequential | idle | hot (default random;\n"
		"hot: every vCPU reads the last page, writes nothing)",
};
static const struct cli_opt opt_dirty_rate = {
	.name = "dirty-rate", .arg = "MiB/s", .kind = CLI_U64, ARG(rate),
	.min = 0, .max = 1 << 20, .scale = 1,
	.help = "page writes per second over all vCPUs; 0 = as fast\n"
		"as possible (default 64)",
};
static const struct cli_opt opt_no_fill = {
	.name = "no-fill", .kind = CLI_FALSE, ARG(g.fill),
	.help = "start with zero pages (default: every page written once)",
};
static const struct cli_opt opt_incoming = {
	.name = "incoming", .kind = CLI_TRUE, ARG(incoming),
	.help = "be the destination",
};
static const struct cli_opt opt_verify_all = {
	.name = "verify-all", .kind = CLI_TRUE, ARG(verify),
	.help = "destination: check every page after resuming; in a\n"
		"postcopy once every page is here (the --pattern runs\n"
		"meanwhile)",
};
static const struct cli_opt opt_run = {
	.name = "run", .arg = "SECONDS", .kind = CLI_U64, ARG(run_s),
	.min = 0, .max = 86400, .scale = 1,
	.help = "destination: run this long after resuming (default 1)",
};
static const struct cli_opt opt_lifetime = {
	.name = "lifetime", .arg = "SECONDS", .kind = CLI_U64, ARG(life_s),
	.min = 1, .max = 86400 * 7, .scale = 1,
	.help = "give up (exit 2) after this long (default 600)",
};
static const struct cli_opt opt_backend = {
	.name = "backend", .arg = "B", .kind = CLI_FN, ARG(backend), .fn = guest_backend_set,
	.bad = "auto, kmod, uffd",
	.help = "guest RAM: kmod (a vmig.ko region; loads the module if\n"
		"it is installed), uffd (a memfd), or auto (default: kmod\n"
		"when /dev/vmig exists or the module can be loaded)",
};
static const struct cli_opt opt_mem_path = {
	.name = "mem-path", .arg = "DIR", .kind = CLI_STR, ARG(mem_path),
	.help = "guest RAM: an unnamed file on the tmpfs at DIR instead\n"
		"of a memfd (uffd backend), as QEMU's memory-backend-file;\n"
		"on a tmpfs mounted huge=always or huge=within_size it\n"
		"is 2 MiB pages, which the helpers copy much faster",
};
static const struct cli_opt opt_device = {
	.name = "device", .arg = "SPEC", .kind = CLI_FN, ARG(g.devs), .fn = device_add,
	.help = "an emulated device (repeatable, up to 16), SPEC is\n"
		"name=N,size=S[,instance=I][,save-rate=R][,load-rate=R]\n"
		"[,precopy=PCT%][,resize=SIZE][,fail=save|load]; rates\n"
		"in bytes/s (e.g. 400M), paced by sleeping per chunk\n"
		"like a device's DMA engine, and declared to the helper;\n"
		"precopy: the first PCT % of the state goes while the\n"
		"guest runs, the rest at switchover; resize: on SIGUSR1\n"
		"the state becomes SIZE bytes and the helper is told\n"
		"(the destination declares the final size); the\n"
		"destination declares the same devices and checks\n"
		"every byte",
};
static const struct cli_opt opt_free = {
	.name = "free", .arg = "PCT", .kind = CLI_FN, ARG(g.free_pct), .fn = free_set,
	.bad = "0..100%",
	.help = "mark PCT % of the data pages free after the fill and\n"
		"hint them to the helper (not sent in the bulk stage)",
};
static const struct cli_opt opt_free_churn = {
	.name = "free-churn", .arg = "MS", .kind = CLI_U64, ARG(g.churn_ms),
	.min = 1, .max = 3600000, .scale = 1, .bad = "ms",
	.help = "every MS ms move the free set on by 2 % of the data\n"
		"pages: free some, write (unfree) as many others",
};
static const struct cli_opt opt_free_touch = {
	.name = "free-touch", .arg = "N", .kind = CLI_U64, ARG(g.free_touch),
	.min = 0, .max = 1ull << 40, .scale = 1,
	.help = "write N hinted pages right after giving a hint (tests)",
};
static const struct cli_opt opt_kvm = {
	.name = "kvm", .kind = CLI_TRUE, ARG(kvm),
	.help = "run the vCPUs as KVM vCPUs (/dev/kvm): guest RAM is KVM\n"
		"memory, and 64-bit guest code generated by vmig checks\n"
		"and writes the pages (the VMM picks which, at the\n"
		"rate asked); the vCPUs' registers migrate as the\n"
		"device kvm-vcpus and the guest goes on at the\n"
		"destination (which must use --kvm too)",
};
static const struct cli_opt opt_dirty_check = {
	.name = "dirty-check", .arg = "N", .kind = CLI_U64, ARG(check_rounds),
	.min = 1, .max = 1000000, .scale = 1, .bad = "1..1000000",
	.help = "with --kvm, instead of waiting for a helper: N intervals\n"
		"with the vCPUs stopped at both ends, where every\n"
		"--dirty-source must harvest exactly the pages the\n"
		"guest wrote, then N harvests while the vCPUs write,\n"
		"where no write may be lost; exit 0 if all held (tests)",
};
static const struct cli_opt opt_dirty_bench = {
	.name = "dirty-bench", .arg = "N", .kind = CLI_U64, ARG(bench_rounds),
	.min = 1, .max = 1000000, .scale = 1, .bad = "1..1000000",
	.help = "with --kvm: harvest cost per dirty page at 1, 10 and\n"
		"100 % dirty (N harvests each) and the longest vCPU\n"
		"stall while harvests run, per --dirty-source (bench)",
};
static const struct cli_opt opt_dirty_source = {
	.name = "dirty-source", .arg = "LIST", .kind = CLI_STR, ARG(sources),
	.help = "dirty sources for --dirty-check/--dirty-bench, comma-\n"
		"separated: vmig.ko's protect, manual, manual-init (the\n"
		"kmod backend), KVM's kvm-get (KVM_GET_DIRTY_LOG),\n"
		"kvm-clear (MANUAL_PROTECT + INITIALLY_SET, then\n"
		"KVM_CLEAR_DIRTY_LOG), kvm-ring (the dirty ring); one\n"
		"KVM source at most.  hwdirty is refused: KVM's\n"
		"writes never set the host dirty bits it reads\n"
		"(default manual-init,kvm-clear)",
};

static const struct cli_opt opt_vmm_log = {
	.name = "vmm-log", .arg = "LOG", .kind = CLI_STR, ARG(vmm_log),
	.help = "with --kvm: the dirty log this VMM offers the helper\n"
		"('vmig migrate --track vmm'): kvm-clear (default;\n"
		"MANUAL_PROTECT + INITIALLY_SET, then GET and CLEAR),\n"
		"kvm-get, kvm-ring, or none",
};

static const struct cli_opt *const guest_opt_list[] = {
	&opt_socket, &opt_mem, &opt_vcpus, &opt_pattern, &opt_dirty_rate, &opt_no_fill,
	&opt_incoming, &opt_verify_all, &opt_run, &opt_lifetime, &opt_backend, &opt_mem_path,
	&opt_device, &opt_free, &opt_free_churn, &opt_free_touch, &opt_kvm, &opt_dirty_check,
	&opt_dirty_bench, &opt_dirty_source, &opt_vmm_log, &cli_opt_help, NULL,
};

static const struct cli_opts guest_cli_opts = {
	.cmd = "guest", .col = 22, .opts = guest_opt_list,
};

static void guest_usage(FILE *f)
{
	fputs(
		"usage: vmig guest --socket PATH [options]\n"
		"\n"
		"The reference VMM: guest RAM in a memfd (or a tmpfs file, --mem-path), vCPU\n"
		"threads writing self-checking pages (index + generation, with a generation\n"
		"table inside guest RAM), and the VMM control protocol on a UNIX socket for\n"
		"the vmig helper.\n"
		"\n"
		"As a source (default) it runs until a helper migrates it away (exit 0).  A\n"
		"failed migration leaves it running; it verifies its memory, says so, and\n"
		"waits for the next helper (after a postcopy switch it stays stopped\n"
		"instead, for a helper to take over: vmig migrate --attach).  With --incoming it waits for a helper to fill its\n"
		"RAM, resumes, checks every page it touches, runs --run seconds and exits 0\n"
		"if no page was wrong (1 if one was; 3 if the migration failed and the\n"
		"partial guest was discarded; 4 if a postcopy migration failed after it\n"
		"resumed here: its memory is incomplete).  If its helper dies during\n"
		"postcopy it runs on and waits for the next (vmig listen --attach).\n"
		"\n"
		"The destination times its vCPUs' page accesses (not --verify-all's) and\n"
		"reports those of 20 us or more in two figures: \"in postcopy\" (made\n"
		"from the resume until every page is here: pages fetched on demand, a\n"
		"descheduled vCPU counting too), and \"other\" (every page here: the\n"
		"first touch of a page not yet mapped, or a descheduled vCPU); each with\n"
		"count, average, maximum, p50/p90/p99 (from a log-linear histogram of\n"
		"8 buckets per power of two: at most 12.5 % high, never above the\n"
		"maximum) and a log2-us histogram.  After a postcopy it says how long\n"
		"the postcopy ran here and how many page writes the vCPUs made meanwhile.\n"
		"\n"
		"Options:\n", f);
	cli_print_options(f, &guest_cli_opts);
	fputs(
		"\n"
		"Examples:\n"
		"  vmig guest --socket /tmp/src.sock --mem 1G --pattern random --dirty-rate 100\n"
		"  vmig guest --socket /tmp/dst.sock --mem 1G --incoming --verify-all\n"
		"  mount -t tmpfs -o huge=always,size=2G vmig-ram /mnt/ram\n"
		"  vmig guest --socket /tmp/src.sock --mem 1G --mem-path /mnt/ram\n"
		"  vmig guest --socket /tmp/src.sock --device name=nic0,size=100M,save-rate=400M\n"
		"  vmig guest --socket /tmp/src.sock --kvm --mem 256M --dirty-rate 16\n"
		"  vmig guest --socket /tmp/k.sock --kvm --mem 64M --dirty-rate 0 --dirty-check 50 \\\n"
		"             --dirty-source protect,kvm-get\n", f);
}

/* Returns -1 when the guest is to run, else the command's exit status. */
int guest_opts_parse(struct guest_args *a, int argc, char **argv)
{
	int c = cli_parse(&guest_cli_opts, NULL, a, argc, argv, guest_usage);

	if (c)
		return c == 1 ? 0 : 2;
	if (optind != argc || !a->sock) {
		fprintf(stderr, optind != argc ? "vmig guest: unexpected argument '%s'\n" :
			"vmig guest: --socket PATH is required%s\n",
			optind != argc ? argv[optind] : "");
		return 2;
	}
	if ((a->check_rounds || a->bench_rounds) && (!a->kvm || a->incoming)) {
		fprintf(stderr, "vmig guest: --dirty-check and --dirty-bench need --kvm and a "
			"source guest\n");
		return 2;
	}
	if (a->mem_path && a->backend == VMIG_BACKEND_KMOD) {
		fprintf(stderr, "vmig guest: --mem-path is guest RAM for the uffd backend; the kmod "
			"backend's RAM is a vmig.ko region\n");
		return 2;
	}
	if (a->mem_path)
		a->backend = VMIG_BACKEND_UFFD;
	a->g.vmm_log = GUEST_KVM_LOG_NONE;
	if (a->vmm_log && strcmp(a->vmm_log, "none") &&
	    guest_kvm_log_parse(a->vmm_log, &a->g.vmm_log)) {
		fprintf(stderr, "vmig guest: --vmm-log: kvm-clear, kvm-get, kvm-ring or none, "
			"not '%s'\n", a->vmm_log);
		return 2;
	}
	if (a->vmm_log && !a->kvm) {
		fprintf(stderr, "vmig guest: --vmm-log is KVM's log: it needs --kvm\n");
		return 2;
	}
	if (a->kvm && !a->vmm_log)
		a->g.vmm_log = GUEST_KVM_LOG_CLEAR;
	if (a->kvm && a->g.pattern == PAT_HOT) {
		fprintf(stderr, "vmig guest: --pattern hot has no KVM guest code (random, "
			"sequential or idle with --kvm)\n");
		return 2;
	}
	return -1;
}
