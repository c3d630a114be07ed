// SPDX-License-Identifier: GPL-2.0
/*
 * Destination: the sequencer.  Set up (the VMM, guest RAM, the listener),
 * accept a session and its channels (dest_accept.c), run it (dest_run.c),
 * recover a broken postcopy (dest_recover.c), resume the guest and report.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admit.h"
#include "auth.h"
#include "channel.h"
#include "dest.h"
#include "dest_accept.h"
#include "dest_attach.h"
#include "dest_postcopy.h"
#include "dest_recover.h"
#include "dest_run.h"
#include "libvmig.h"
#include "recovery.h"
#include "util.h"

/* How long a broken session's receivers get to read what they hold. */
#define RX_SETTLE_MS	2000

static int setup(struct dest *d)
{
	const struct dest_opts *o = d->o;
	char err[256];
	unsigned int i;
	int r;

	d->ctl = vmig_ctl_connect(o->vmm_path, o->timeout_ms);
	if (!d->ctl)
		return fail(d, errno, "cannot reach the VMM at %s: %s", o->vmm_path,
			    strerror(errno));
	if (vmig_ctl_role(d->ctl) != VMIG_ROLE_DEST)
		return fail(d, EINVAL, "the VMM at %s is not waiting for an incoming guest "
			    "(start it with --incoming)", o->vmm_path);
	/* Before guest RAM is touched (--prefault would hide missing pages as zeros). */
	if (vmig_ctl_handed_over(d->ctl) && !o->attach)
		return fail(d, EBUSY, "the VMM at %s runs a postcopy guest whose helper died; "
			    "only 'vmig listen --attach' may take it over (nothing was touched)",
			    o->vmm_path);
	if (!vmig_ctl_handed_over(d->ctl) && o->attach)
		return fail(d, ENOENT, "the VMM at %s has no postcopy migration to take over "
			    "(no helper died while the guest ran there)", o->vmm_path);
	d->ram = vmig_ram_open(d->ctl, o->backend, VMIG_DIRTY_MODE_MANUAL_INIT);
	if (!d->ram && errno == EMEDIUMTYPE)
		return fail(d, errno, "--backend %s: the VMM's guest RAM is %s",
			    vmig_backend_name(o->backend),
			    o->backend == VMIG_BACKEND_KMOD ? "not vmig.ko regions (memfds)" :
			    "vmig.ko regions, not memfds");
	if (!d->ram)
		return fail(d, errno, "cannot map guest RAM: %s", strerror(errno));
	d->rep->backend = vmig_ram_backend(d->ram);
	r = devstate_recv_init(&d->ds, d->ctl, o->max_device_buffer, o->device_threads,
			       o->timeout_ms);
	if (r)
		return fail(d, r, "%s", d->ds.error);
	d->local.version_min = WIRE_VERSION_MIN;
	d->local.version_max = WIRE_VERSION_MAX;
	d->local.caps = WIRE_CAPS_V1 | (o->no_postcopy ? 0 : WIRE_CAPS_POSTCOPY);
	d->local.nr_regions = vmig_ram_region_count(d->ram);
	d->mem.nr_regions = d->local.nr_regions;
	for (i = 0; i < d->local.nr_regions; i++) {
		d->local.region_pages[i] = vmig_ram_region_pages(d->ram, i);
		d->mem.pages[i] = d->local.region_pages[i];
		d->mem.base[i] = vmig_ram_page(d->ram, i, 0);
		d->rep->guest_bytes += d->mem.pages[i] * WIRE_PAGE_SIZE;
	}
	d->mem.populate = !o->prefault;
	if (o->prefault && !o->attach) {
		uint64_t t0 = now_ns();
		double cpu0 = report_cpu_now();

		r = vmig_ram_prefault(d->ram);
		if (r)
			return fail(d, r, "cannot allocate guest RAM: %s", strerror(-r));
		d->rep->prefault_ns = now_ns() - t0;
		d->rep->prefault_cpu_s = report_cpu_now() - cpu0;
	}
	snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", o->listen ? o->listen : "");
	if (o->attach) {
		r = dest_attach(d);
		if (r)
			return r;
	}
	d->listen_fd = chan_listen(d->listen_addr, err, sizeof(err));
	if (d->listen_fd < 0)
		return fail(d, d->listen_fd, "%s", err);
	/* Each connection's whole opening (handshake, header, HELLO) within --timeout. */
	d->adm = admit_start(d->listen_fd, o->timeout_ms, o->timeout_ms);
	if (!d->adm)
		return fail(d, errno, "cannot start accepting: %s", strerror(errno));
	if (o->attach)
		fprintf(stderr, "vmig listen: took over the postcopy of session %016llx: %llu "
			"pages missing; waiting on %s for the source to resume it (%s)\n",
			(unsigned long long)d->ses.id, (unsigned long long)pcd_missing(&d->pc),
			d->listen_addr, auth_mode_name());
	else
		fprintf(stderr, "vmig listen: waiting for a source on %s (%s)\n", d->listen_addr,
			auth_mode() == AUTH_TLS ? "TLS" : auth_mode() == AUTH_TOKEN ?
			"token: authenticated, not encrypted" : "INSECURE: anyone who reaches "
			"this port can migrate a guest into this VMM");
	return 0;
}


int dest_receive(const struct dest_opts *o, struct report *rep)
{
	struct dest d = { .o = o, .rep = rep, .listen_fd = -1, .rp.fd = -1, .pre.fd = -1 };
	struct wire_resumed rs = { 0 };
	uint64_t t0 = now_ns(), t_session = 0;
	int r;

	session_init(&d.ses, NULL, o->timeout_ms);
	rep->role = "destination";
	rep->backend = "uffd";
	rep->tracking = "";
	progress_init(&d.prog, o->progress);
	r = setup(&d);
	if (!r && o->attach) {
		/* The dead helper's session, paused: the source comes back by itself. */
		t_session = now_ns();
		snprintf(rep->error, sizeof(rep->error), "took over from a helper that died");
		r = dest_recover(&d, -ECONNRESET);
		if (!r && !d.pc_done)
			r = dest_run(&d);
	} else {
		if (!r)
			r = dest_accept_session(&d);
		if (!r) {
			t_session = now_ns();
			rep->channels = d.ses.nr_chans;
			r = dest_pc_prepare(&d);
		}
		if (!r)
			r = dest_accept_channels(&d);
		rep->setup_ns = (t_session ? now_ns() - t_session : 0);
		if (!r)
			r = dest_run(&d);
	}
	while (r && d.pc_running && o->recovery_timeout_ms > 0 && rec_transient(r) &&
	       !vmig_ctl_lost(d.ctl)) {
		r = dest_recover(&d, r);
		if (r || d.pc_done)
			break;	/* not resumed in time: give up; or it had finished */
		r = dest_run(&d);
	}
	/*
	 * The switch had begun (a POSTCOPY or a parked receiver), the guest not
	 * run.  A receiver may not have read its marker yet when the main
	 * channel broke (the source sent every marker before POSTCOPY): let
	 * the receivers drain their sockets first, briefly (a channel whose
	 * link is gone holds nothing more).
	 */
	if (r && !d.pc_running && d.pc_ready && o->recovery_timeout_ms > 0 && rec_transient(r) &&
	    !vmig_ctl_lost(d.ctl)) {
		if (!d.t_switch)
			dest_rx_settle(&d, RX_SETTLE_MS);
		if (d.t_switch || __atomic_load_n(&d.pc.parked, __ATOMIC_RELAXED))
			dest_refuse_resume(&d);
	}
	progress_clear(&d.prog);
	trace("dst: all placed");
	if (!r && !d.pc_running) {
		uint64_t t = now_ns();

		rs.load_wait_ns = t - d.t_complete;
		r = vmig_ctl_resume(d.ctl, o->timeout_ms);
		rs.resume_ns = now_ns() - t;
		rs.dev_buffer_peak = d.ds.peak;
		trace("dst: resumed");
		if (r)
			fail(&d, r, "the VMM did not resume: %s", strerror(-r));
	}
	if (!r && d.pc_running) {
		vmig_ctl_complete(d.ctl);
	} else if (!r) {
		r = stream_send_pkt(&d.ses.main, WIRE_PKT_RESUMED, &rs, sizeof(rs));
		if (r)
			fprintf(stderr, "vmig listen: the guest runs here, but the source did "
				"not get RESUMED: %s\n", d.ses.main.err);
		r = 0;
		vmig_ctl_complete(d.ctl);
	} else {
		devstate_recv_cancel(&d.ds);
		if (d.pc_running) {
			pcd_stop(&d.pc);
			snprintf(rep->error + strlen(rep->error), sizeof(rep->error) - strlen(rep->error),
				 "; postcopy interrupted with %llu pages never received: the "
				 "guest cannot continue", (unsigned long long)pcd_missing(&d.pc));
		}
		if (d.ses.main_open)	/* first the reason, then drop the channels */
			stream_send_error(&d.ses.main, d.pc_running ? WIRE_ERR_GUEST_RAN : r,
					  rep->error);
		dest_rx_stop(&d);
		/* --attach that did not take over: the record stays for another try. */
		if (d.ctl && !(o->attach && !d.pc_running))
			vmig_ctl_error(d.ctl, rep->error);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - (t_session ? t_session : t0);
	report_note_cpu(rep);
	dest_rx_stop(&d);
	rep->devices = d.ds.nr_devices;
	rep->device_bytes = d.ds.bytes;
	rep->device_buffer_peak = d.ds.peak;
	rep->dt_load_ns = rs.load_wait_ns;
	rep->dt_resume_ns = rs.resume_ns;
	devstate_recv_destroy(&d.ds);
	if (d.pc_ready) {
		pcd_report(&d.pc, rep);
		pcd_destroy(&d.pc);
	}
	dest_close_channels(&d);	/* after the fault thread, which used rp and pre */
	admit_stop(d.adm);
	if (d.listen_fd >= 0)
		close(d.listen_fd);
	vmig_ram_close(d.ram);
	vmig_ctl_close(d.ctl);
	return r;
}
