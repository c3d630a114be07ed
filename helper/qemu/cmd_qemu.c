// SPDX-License-Identifier: GPL-2.0
/*
 * vmig qemu: the VMM end of vmig's control protocol for an unmodified QEMU.
 *
 * Toward vmig migrate / vmig listen it is a VMM like vmig guest (libvmig's
 * vmig_vmm_* calls): guest RAM is the vmig region files QEMU maps
 * (memory-backend-file,mem-path=PATH,share=on), passed as region fds in
 * HELLO; STOP is QEMU's own migration stopping the guest (below), RESUME
 * is QMP cont; QEMU's own migration stream
 * with x-ignore-shared (CPUs, devices, ROMs, video RAM; no guest RAM) is
 * one vmig device, "qemu", saved and loaded by qemu_vm.c.  Postcopy needs
 * nothing here: the destination helper puts the regions in postcopy mode
 * before the device state is loaded, so QEMU's own accesses during the
 * load wait in the module for their pages like the vCPUs' do.
 *
 * The stop: a QMP stop and then "migrate" would put QEMU's migration setup
 * (dirty logging switched on for every memory slot, bitmaps: 50-80 ms with
 * the guest running under nested KVM in the module's VM) inside the
 * downtime.  So a running guest is stopped by that migration itself,
 * started at STOP with pause-before-switchover: QEMU sets up with the
 * guest running, stops it and waits; STOPPED tells the helper how long the
 * guest ran on (from QEMU's STOP event).  A thread then lets QEMU finish
 * (migrate-continue) and keeps the stream while the helper sends the last
 * dirty pages; the device save hands it on.  The destination's
 * migrate-incoming waits on its pipe before the state comes.
 *
 * The rules on failure: the source's guest is continued only when the
 * helper says RESUME (precopy failed: the destination never ran it), or
 * when the helper is lost before the device state left (the guest cannot
 * run anywhere else without it).  Otherwise it stays stopped and we say
 * why.  A destination QEMU that never resumed is told to quit (-incoming
 * defer takes one migration).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "cmd.h"
#include "libvmig.h"
#include "qemu_vm.h"
#include "util.h"

#define QEMU_DEV_NAME		"qemu"
#define QEMU_STATE_MIN		(1ull << 20)	/* CPUs and devices, without RAM blocks */

enum qemu_exit {
	QX_DONE = 0,		/* migrated away (source) / resumed here (destination) */
	QX_FAILED = 1,		/* QEMU or its QMP failed */
	QX_USAGE = 2,
	QX_RUNS_ON = 3,		/* source: failed, the guest runs on here; dest: discarded */
	QX_STRANDED = 4,	/* failed after the switch: the guest runs nowhere whole */
};

struct qemu_drv {
	struct qemu_vm vm;
	bool incoming;
	bool stopped;			/* we stopped the source guest */
	bool was_paused;		/* it was not running when we started */
	atomic_bool state_left;		/* the device state save started (source) */
	atomic_bool state_loaded;	/* QEMU completed loading (destination) */
	uint64_t state_bytes;
	uint64_t estimate;		/* bytes QEMU's stream should take */
	/* source: QEMU's save, run from STOPPED on (qemu_vm_finish_save) */
	pthread_mutex_t saver_lock;
	pthread_t saver;
	bool saver_on;
	int saver_r;
	char saver_err[640];
};

static void *saver_main(void *arg)
{
	struct qemu_drv *d = arg;

	d->saver_r = qemu_vm_finish_save(&d->vm, d->saver_err, sizeof(d->saver_err));
	return NULL;
}

/*
 * Start QEMU's save as soon as the guest stopped: it runs while the helper
 * harvests and sends the last dirty pages.  Without a thread (it could not
 * start) the save runs in dev_save as before.
 */
static void saver_start(struct qemu_drv *d)
{
	d->saver_r = 0;
	d->saver_on = !pthread_create(&d->saver, NULL, saver_main, d);
}

/* Wait for that save; its result (0 if none ran). */
static int saver_join(struct qemu_drv *d)
{
	int r;

	pthread_mutex_lock(&d->saver_lock);
	if (d->saver_on) {
		pthread_join(d->saver, NULL);
		d->saver_on = false;
	}
	r = d->saver_r;
	pthread_mutex_unlock(&d->saver_lock);
	return r;
}

static void qemu_usage(FILE *f)
{
	fprintf(f,
		"usage: vmig qemu --qmp SOCKET --ram PATH[,PATH...] --socket PATH [options]\n"
		"\n"
		"Drive an unmodified QEMU through a vmig migration.  vmig qemu is the VMM\n"
		"end of the control socket that 'vmig migrate --vmm' (source) or 'vmig\n"
		"listen --vmm' (destination) connects to, and a QMP client of QEMU:\n"
		"  - guest RAM: the vmig region files given with --ram, which QEMU must map\n"
		"    with -object memory-backend-file,mem-path=PATH,size=S,share=on (checked\n"
		"    in QEMU's memory map); the module tracks and serves them;\n"
		"  - stop: QEMU's own migration (below) stops the guest once it is set up,\n"
		"    with pause-before-switchover, so the setup is not downtime, and its\n"
		"    save runs while the helper sends the last pages; resume: QMP cont;\n"
		"    each step confirmed by QEMU's events or query-status;\n"
		"  - device state: QEMU's own migration stream with capability\n"
		"    x-ignore-shared (CPUs, devices, ROMs, video RAM; the shared guest RAM is\n"
		"    left out), carried as the vmig device \"qemu\" and fed to the destination\n"
		"    QEMU with migrate-incoming.\n"
		"The destination QEMU is started with -incoming defer on its own region\n"
		"files.  Precopy and postcopy (vmig migrate --postcopy) both work: in\n"
		"postcopy the regions are in postcopy mode before QEMU loads its state, so\n"
		"its accesses, like the vCPUs', wait in the module for their pages.\n"
		"\n"
		"One migration per run.  Exit status: 0 migrated away (source; QEMU stays\n"
		"paused in 'postmigrate' for you to quit) or resumed here (destination);\n"
		"1 QEMU failed or refused a QMP command (the message names the step); 2\n"
		"usage; 3 the migration failed: the source guest runs on (it is continued\n"
		"if we stopped it), a destination QEMU is told to quit; 4 it failed after\n"
		"the switch to the destination (postcopy): the source guest stays stopped,\n"
		"or the destination's memory is incomplete and its QEMU is told to quit.\n"
		"\n"
		"Options:\n"
		"  --qmp PATH          QEMU's QMP UNIX socket (-qmp unix:PATH,server=on,wait=off);\n"
		"                      QEMU serves one client per QMP socket: give vmig qemu\n"
		"                      one of its own\n"
		"  --ram PATH[,PATH]   the vmig region files of the guest's RAM, in the order\n"
		"                      of QEMU's memory backends (the same on both ends)\n"
		"  --socket PATH       the control socket to listen on for the helper\n"
		"  --incoming          be the destination (QEMU waits in -incoming defer)\n"
		"  --timeout S         seconds for one QMP command and for a whole device\n"
		"                      state save or load (default 60)\n"
		"  --lifetime S        give up (exit 1) when no helper came in this long\n"
		"                      (default 600)\n"
		"  --help              this text\n"
		"\n"
		"Examples (see vmig region --help for region files):\n"
		"  vmig region create /run/vmig/vm1 --size 1G\n"
		"  qemu-system-x86_64 -m 1G -object memory-backend-file,id=ram0,size=1G,\\\n"
		"      mem-path=/run/vmig/vm1,share=on -machine memory-backend=ram0 \\\n"
		"      -qmp unix:/run/vm1.qmp,server=on,wait=off ...\n"
		"  vmig qemu --qmp /run/vm1.qmp --ram /run/vmig/vm1 --socket /run/vm1.vmig &\n"
		"  vmig migrate --vmm /run/vm1.vmig --to dst:4444 [--postcopy]\n"
		"and on the destination, QEMU with the same options plus -incoming defer:\n"
		"  vmig qemu --incoming --qmp /run/vm1.qmp --ram /run/vmig/vm1 \\\n"
		"      --socket /run/vm1.vmig &\n"
		"  vmig listen --vmm /run/vm1.vmig --port 0.0.0.0:4444\n");
}

static int state_sink(void *arg, const void *buf, size_t len)
{
	struct vmig_dev_io *io = arg;
	size_t off;
	int r;

	for (off = 0; off < len; off += VMIG_DEV_CHUNK_MAX) {
		size_t n = len - off < VMIG_DEV_CHUNK_MAX ? len - off : VMIG_DEV_CHUNK_MAX;

		r = vmig_dev_put(io, (const char *)buf + off, n);
		if (r)
			return r;
	}
	return 0;
}

/* QEMU's whole stream, taken from the helper before QEMU sees any of it. */
struct state_buf {
	char *p;
	size_t len, cap, off;
};

/*
 * The helper ends the stream only once guest RAM may be read (libvmig.h,
 * vmig_dev_get): QEMU's load reads it (the kvm-tpr-opt option ROM, for
 * one), so it must not start earlier, when a missing page would read as
 * zero instead of waiting for its data.
 */
static int state_collect(struct vmig_dev_io *io, struct state_buf *b)
{
	for (;;) {
		long n;

		if (b->cap - b->len < VMIG_DEV_CHUNK_MAX) {
			size_t cap = b->cap ? b->cap * 2 : 4 * VMIG_DEV_CHUNK_MAX;
			char *p = realloc(b->p, cap);

			if (!p)
				return -ENOMEM;
			b->p = p;
			b->cap = cap;
		}
		n = vmig_dev_get(io, b->p + b->len, VMIG_DEV_CHUNK_MAX);
		if (n <= 0)
			return (int)n;
		b->len += n;
	}
}

static long state_source(void *arg, void *buf, size_t cap)
{
	struct state_buf *b = arg;
	size_t n = b->len - b->off < cap ? b->len - b->off : cap;

	memcpy(buf, b->p + b->off, n);
	b->off += n;
	return n;
}

static int dev_save(void *opaque, struct vmig_dev_io *io)
{
	struct qemu_drv *d = opaque;
	uint64_t bytes;
	char err[640];
	int r;

	atomic_store(&d->state_left, true);
	r = saver_join(d);
	if (r) {
		fprintf(stderr, "vmig qemu: %s\n", d->saver_err);
		return r == -EREMOTEIO || r == -ECONNRESET ? -EIO : r;
	}
	r = qemu_vm_save_state(&d->vm, state_sink, io, &bytes, err, sizeof(err));
	d->state_bytes = bytes;
	if (r) {
		fprintf(stderr, "vmig qemu: %s\n", err);
		return r == -EREMOTEIO || r == -ECONNRESET ? -EIO : r;
	}
	fprintf(stderr, "vmig qemu: device state saved: %llu bytes of QEMU's stream (QEMU "
		"saved it in %.1f ms)\n", (unsigned long long)bytes, d->vm.save_ns / 1e6);
	return 0;
}

static int dev_load(void *opaque, struct vmig_dev_io *io)
{
	struct qemu_drv *d = opaque;
	uint64_t bytes;
	struct state_buf b = { 0 };
	char err[640];
	int r;

	/* QEMU waits on its pipe meanwhile: no QMP round trips once the state is here. */
	r = qemu_vm_load_begin(&d->vm, err, sizeof(err));
	if (r) {
		fprintf(stderr, "vmig qemu: %s\n", err);
		return r == -EREMOTEIO || r == -ECONNRESET ? -EIO : r;
	}
	r = state_collect(io, &b);
	if (r) {
		fprintf(stderr, "vmig qemu: device state load: the state did not arrive whole: "
			"%s\n", strerror(-r));
		free(b.p);
		return r;
	}
	r = qemu_vm_load_state(&d->vm, state_source, &b, &bytes, err, sizeof(err));
	free(b.p);
	d->state_bytes = bytes;
	if (r) {
		fprintf(stderr, "vmig qemu: %s\n", err);
		return r == -EREMOTEIO || r == -ECONNRESET ? -EIO : r;
	}
	atomic_store(&d->state_loaded, true);
	fprintf(stderr, "vmig qemu: device state loaded: %llu bytes of QEMU's stream (QEMU "
		"loaded it in %.1f ms)\n", (unsigned long long)bytes, d->vm.load_ns / 1e6);
	return 0;
}

static const struct vmig_dev_ops qemu_dev_ops = {
	.save = dev_save,
	.load = dev_load,
};

/* Continue a source guest we stopped, saying so; false if QEMU would not. */
static bool source_continue(struct qemu_drv *d, const char *why)
{
	char err[640];

	if (!d->stopped)
		return true;
	saver_join(d);
	/* Stopped in pre-switchover: QEMU restarts the guest once cancelled. */
	if (qemu_vm_cancel_pending(&d->vm, err, sizeof(err)) ||
	    qemu_vm_cont(&d->vm, err, sizeof(err))) {
		fprintf(stderr, "vmig qemu: %s; continuing the guest failed: %s\n", why, err);
		return false;
	}
	d->stopped = false;
	fprintf(stderr, "vmig qemu: %s; the guest runs on here\n", why);
	return true;
}

/*
 * A running guest stops the way QEMU's own migration stops it: its setup
 * (dirty logging on, bitmaps, the RAM blocks that are not shared) runs
 * while the guest runs, QEMU stops the vCPUs and waits in pre-switchover;
 * the device save then continues that migration.  *ran_ns: how long the
 * guest ran on.  A paused guest stays as it is (it is not running: there
 * is no downtime to save, and a cancelled migration would leave it in
 * postmigrate rather than paused); so does a QEMU whose stream would not
 * fit in memory (RAM blocks outside the regions: SAVE_AHEAD_MAX), saved
 * through the pipe as it comes.
 */
static int source_stop(struct qemu_drv *d, uint64_t *ran_ns, char *err, size_t len)
{
	int r;

	*ran_ns = 0;
	d->stopped = !d->was_paused;
	if (d->was_paused || d->estimate > SAVE_AHEAD_MAX)
		return qemu_vm_stop(&d->vm, err, len);
	r = qemu_vm_stop_migrating(&d->vm, ran_ns, err, len);
	if (!r)
		fprintf(stderr, "vmig qemu: stopped by QEMU's migration in pre-switchover; the "
			"guest ran %.1f ms on while QEMU set it up\n", *ran_ns / 1e6);
	return r;
}

static int session_source(struct qemu_drv *d, struct vmig_vmm *vmm)
{
	char err[640], why[400];
	uint64_t ran;

	for (;;) {
		int ev = vmig_vmm_poll(vmm, 200);

		switch (ev) {
		case VMIG_VMM_NONE:
			if (qemu_vm_alive(&d->vm))
				continue;
			fprintf(stderr, "vmig qemu: QEMU exited (its QMP connection closed) during "
				"the migration\n");
			vmig_vmm_hangup(vmm);
			return QX_FAILED;
		case VMIG_VMM_STOP:
			if (source_stop(d, &ran, err, sizeof(err))) {
				fprintf(stderr, "vmig qemu: stopping the guest for the switchover: "
					"%s\n", err);
				vmig_vmm_hangup(vmm);
				source_continue(d, "migration abandoned");
				return QX_FAILED;
			}
			vmig_vmm_ack_stop(vmm, ran);
			if (d->vm.pending_fd >= 0)
				saver_start(d);
			continue;
		case VMIG_VMM_RESUME:
			if (d->was_paused) {	/* back as it was: paused */
				vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
				continue;
			}
			d->stopped = true;	/* cont whatever state QEMU is in */
			saver_join(d);
			if (qemu_vm_cancel_pending(&d->vm, err, sizeof(err)) ||
			    qemu_vm_cont(&d->vm, err, sizeof(err))) {
				fprintf(stderr, "vmig qemu: resuming the guest here: %s\n", err);
				vmig_vmm_hangup(vmm);
				return QX_FAILED;
			}
			d->stopped = false;
			vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
			continue;
		case VMIG_VMM_COMPLETE:
			saver_join(d);
			fprintf(stderr, "vmig qemu: migrated away; QEMU stays paused "
				"(postmigrate)\n");
			return QX_DONE;
		default:
			snprintf(why, sizeof(why), "migration failed (%s)",
				 ev == VMIG_VMM_ERROR || ev == VMIG_VMM_DISCONNECT ?
				 vmig_vmm_error(vmm) : strerror(-ev));
			if (!d->stopped) {
				fprintf(stderr, "vmig qemu: %s; the guest stays here, %s\n", why,
					d->was_paused ? "paused as it was" : "running");
				return QX_RUNS_ON;
			}
			saver_join(d);
			/* Stopped and not told to resume: did the state leave? */
			if (ev == VMIG_VMM_DISCONNECT && !atomic_load(&d->state_left))
				return source_continue(d, why) ? QX_RUNS_ON : QX_FAILED;
			fprintf(stderr, "vmig qemu: %s after the device state left; the helper "
				"did not resume the guest here, so it stays stopped (the destination "
				"may run it)\n", why);
			return QX_STRANDED;
		}
	}
}

static int session_dest(struct qemu_drv *d, struct vmig_vmm *vmm)
{
	bool resumed = false;
	char err[640];

	for (;;) {
		int ev = vmig_vmm_poll(vmm, 200);

		switch (ev) {
		case VMIG_VMM_NONE:
			if (resumed && !vmig_vmm_postcopy_active(vmm))
				return QX_DONE;	/* precopy: running here, the goodbye is late */
			if (qemu_vm_alive(&d->vm))
				continue;
			fprintf(stderr, "vmig qemu: QEMU exited (its QMP connection closed) during "
				"the incoming migration\n");
			vmig_vmm_hangup(vmm);
			return resumed ? QX_STRANDED : QX_FAILED;
		case VMIG_VMM_STOP:
			if (resumed && qemu_vm_stop(&d->vm, err, sizeof(err))) {
				fprintf(stderr, "vmig qemu: stop: %s\n", err);
				vmig_vmm_hangup(vmm);
				return QX_FAILED;
			}
			vmig_vmm_ack(vmm, VMIG_VMM_STOP);
			continue;
		case VMIG_VMM_RESUME:
			if (!atomic_load(&d->state_loaded)) {
				fprintf(stderr, "vmig qemu: asked to resume before QEMU's state was "
					"loaded; refusing\n");
				vmig_vmm_hangup(vmm);
				qemu_vm_quit(&d->vm);
				return QX_RUNS_ON;
			}
			if (qemu_vm_cont(&d->vm, err, sizeof(err))) {
				fprintf(stderr, "vmig qemu: resuming the guest here: %s\n", err);
				vmig_vmm_hangup(vmm);
				return QX_FAILED;
			}
			vmig_vmm_ack(vmm, VMIG_VMM_RESUME);
			resumed = true;
			fprintf(stderr, "vmig qemu: the guest runs here%s\n",
				vmig_vmm_postcopy_active(vmm) ?
				" (postcopy: missing pages come on demand)" : "");
			continue;
		case VMIG_VMM_COMPLETE:
			fprintf(stderr, "vmig qemu: migration complete; the guest runs here\n");
			return QX_DONE;
		default:
			if (resumed && vmig_vmm_postcopy_active(vmm)) {
				fprintf(stderr, "vmig qemu: postcopy failed after the guest resumed here "
					"(%s): its memory is incomplete; telling QEMU to quit\n",
					vmig_vmm_error(vmm));
				qemu_vm_quit(&d->vm);
				return QX_STRANDED;
			}
			if (resumed)
				return QX_DONE;	/* running here; the helper's goodbye got lost */
			fprintf(stderr, "vmig qemu: incoming migration failed (%s); telling the "
				"partial QEMU to quit\n", vmig_vmm_error(vmm));
			qemu_vm_quit(&d->vm);
			return QX_RUNS_ON;
		}
	}
}

static int open_ram(char *list, int *fds, uint64_t *sizes, unsigned int *n)
{
	char *save, *p;

	for (p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		struct stat st;
		int fd;

		if (*n == 16) {
			fprintf(stderr, "vmig qemu: --ram: at most 16 files\n");
			return -1;
		}
		fd = open(p, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "vmig qemu: --ram %s: %s\n", p, strerror(errno));
			return -1;
		}
		if (!vmig_fd_is_region(fd)) {
			fprintf(stderr, "vmig qemu: --ram %s: not a vmig region file (make one "
				"with 'vmig region create': QEMU's RAM must be a region for the "
				"module to track and serve it)\n", p);
			return -1;
		}
		if (fstat(fd, &st) || st.st_size <= 0) {
			fprintf(stderr, "vmig qemu: --ram %s: cannot tell its size\n", p);
			return -1;
		}
		fds[*n] = fd;
		sizes[*n] = st.st_size;
		(*n)++;
	}
	return *n ? 0 : -1;
}

static int qemu_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "qmp", required_argument, NULL, 'q' },
		{ "ram", required_argument, NULL, 'r' },
		{ "socket", required_argument, NULL, 's' },
		{ "incoming", no_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "lifetime", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *qmp_path = NULL, *sock = NULL;
	char *ram = NULL, err[640];
	uint64_t timeout_s = 60, life_s = 600, sizes[16], estimate, deadline;
	static struct qemu_drv d = {	/* large (QMP buffers): not on the stack */
		.saver_lock = PTHREAD_MUTEX_INITIALIZER,
	};
	struct vmig_vmm *vmm;
	unsigned int n = 0, i;
	int c, fds[16], r, status;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'q': qmp_path = optarg; break;
		case 'r': ram = optarg; break;
		case 's': sock = optarg; break;
		case 'i': d.incoming = true; break;
		case 't':
			if (!parse_uint(optarg, 1, 86400, &timeout_s)) {
				bad_option_value("qemu", opts, c, optarg);
				return QX_USAGE;
			}
			break;
		case 'L':
			if (!parse_uint(optarg, 1, 86400 * 7, &life_s)) {
				bad_option_value("qemu", opts, c, optarg);
				return QX_USAGE;
			}
			break;
		case 'h':
			qemu_usage(stdout);
			return 0;
		default:
			qemu_usage(stderr);
			return QX_USAGE;
		}
	}
	if (optind < argc || !qmp_path || !ram || !sock) {
		fprintf(stderr, "vmig qemu: %s (see --help)\n",
			optind < argc ? "unexpected argument" :
			!qmp_path ? "--qmp SOCKET is required" :
			!ram ? "--ram PATH[,PATH] is required" : "--socket PATH is required");
		return QX_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);	/* a QEMU that stops reading is an error, not a death */
	if (open_ram(ram, fds, sizes, &n))
		return QX_FAILED;
	r = qemu_vm_open(&d.vm, qmp_path, d.incoming, timeout_s * 1000, err, sizeof(err));
	if (r) {
		fprintf(stderr, "vmig qemu: %s\n", err);
		return QX_FAILED;
	}
	if (!d.incoming) {
		char st[32];

		if (qemu_vm_status(&d.vm, st, sizeof(st), err, sizeof(err))) {
			fprintf(stderr, "vmig qemu: %s\n", err);
			return QX_FAILED;
		}
		d.was_paused = strcmp(st, "running");
	}
	for (i = 0; i < n; i++) {
		if (qemu_vm_maps_shared(&d.vm, fds[i], sizes[i], err, sizeof(err))) {
			fprintf(stderr, "vmig qemu: --ram file %u: %s\n", i + 1, err);
			return QX_FAILED;
		}
	}
	estimate = QEMU_STATE_MIN + qemu_vm_state_estimate(&d.vm, sizes, n);
	d.estimate = estimate;
	vmm = vmig_vmm_listen(sock, d.incoming ? VMIG_ROLE_DEST : VMIG_ROLE_SOURCE);
	if (!vmm) {
		fprintf(stderr, "vmig qemu: cannot listen on %s: %s\n", sock, strerror(errno));
		return QX_FAILED;
	}
	for (i = 0; i < n; i++)
		vmig_vmm_add_region(vmm, fds[i], NULL, sizes[i]);
	r = vmig_vmm_add_device(vmm, QEMU_DEV_NAME, 0, estimate, 0, &qemu_dev_ops, &d);
	if (r) {
		fprintf(stderr, "vmig qemu: declaring the device state: %s\n", strerror(-r));
		return QX_FAILED;
	}
	printf("vmig qemu: ready: QEMU pid %d, %u RAM region(s), device state ~%llu KiB, %s, "
	       "socket %s\n", (int)d.vm.pid, n, (unsigned long long)(estimate >> 10),
	       d.incoming ? "incoming" : "source", sock);
	fflush(stdout);

	deadline = now_ns() + life_s * 1000000000ull;
	for (;;) {
		r = vmig_vmm_accept(vmm, 200);
		if (r == -ETIMEDOUT) {
			if (!qemu_vm_alive(&d.vm)) {
				fprintf(stderr, "vmig qemu: QEMU exited (its QMP connection closed) "
					"before a migration\n");
				status = QX_FAILED;
				break;
			}
			if (now_ns() > deadline) {
				fprintf(stderr, "vmig qemu: no helper came within %llu s\n",
					(unsigned long long)life_s);
				status = QX_FAILED;
				break;
			}
			continue;
		}
		if (r) {
			fprintf(stderr, "vmig qemu: helper connection failed: %s\n", strerror(-r));
			continue;
		}
		status = d.incoming ? session_dest(&d, vmm) : session_source(&d, vmm);
		break;
	}
	vmig_vmm_close(vmm);
	qemu_vm_close(&d.vm);
	for (i = 0; i < n; i++)
		close(fds[i]);
	return status;
}

const struct vmig_cmd vmig_cmd_qemu = {
	.name = "qemu",
	.summary = "drive an unmodified QEMU through a migration (QMP)",
	.run = qemu_run,
};
