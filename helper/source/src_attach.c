// SPDX-License-Identifier: GPL-2.0
/* vmig migrate --attach (precopy.h: precopy_attach), on the postcopy source's rooms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "handover.h"
#include "postcopy_send.h"
#include "precopy.h"
#include "recovery.h"
#include "src_recover.h"
#include "util.h"

/* The first reason given is the one reported (report_fail). */
#define fail(pc, err, ...)	report_fail((pc)->src->rep, err, __VA_ARGS__)

/*
 * vmig migrate --attach: take over a postcopy migration whose source helper
 * died.  The source VMM still holds the guest memory (its vCPUs stopped)
 * and the dead helper's handover record; the destination, paused as after
 * a broken link, holds its received bitmap.  So this is a recovery with a
 * new process: reconnect with RESUME, send every page the destination
 * lacks (from the bitmap, not from anything the dead helper knew), serve
 * its requests, complete.  If the destination says it never ran the guest
 * (the switch did not reach it), the guest resumes here instead.
 */
static int attach_setup(struct postcopy *pc, struct precopy_opts *ao)
{
	struct src *s = pc->src;
	struct handover h;
	int r;

	s->ctl = vmig_ctl_connect(ao->vmm_path, ao->timeout_ms);
	if (!s->ctl)
		return fail(pc, errno, "cannot reach the VMM at %s: %s", ao->vmm_path,
			    strerror(errno));
	if (vmig_ctl_role(s->ctl) != VMIG_ROLE_SOURCE)
		return fail(pc, EINVAL, "the VMM at %s is not a migration source (started "
			    "with --incoming?)", ao->vmm_path);
	r = vmig_ctl_handover_query(s->ctl, &h, sizeof(h), ao->timeout_ms);
	if (r == -ENOENT)
		return fail(pc, r, "the VMM at %s has no postcopy migration to take over (no "
			    "helper died after a postcopy switch)", ao->vmm_path);
	if (r < 0)
		return fail(pc, r, "the VMM at %s did not give its handover record: %s "
			    "(a libvmig without HANDOVER?)", ao->vmm_path, strerror(-r));
	if (!handover_valid(&h, r))
		return fail(pc, EPROTO, "the VMM at %s holds a handover record this vmig "
			    "cannot use (%d bytes; another version?)", ao->vmm_path, r);
	if (auth_mode() != AUTH_UNSET && h.secret_len != AUTH_ROOT_LEN)
		return fail(pc, EPROTO, "the VMM at %s holds no session key in its handover "
			    "record: the destination would refuse this helper's RESUME",
			    ao->vmm_path);
	if (h.secret_len == AUTH_ROOT_LEN)
		auth_root_import(h.secret);
	explicit_bzero(h.secret, sizeof(h.secret));
	pc->handed_over = true;
	s->vm_stopped = true;
	pc->dest_runs = true;
	s->ses.id = h.session;
	s->ses.hs.version = h.wire_version;
	s->ses.hs.caps = h.caps;
	ao->postcopy = true;
	ao->channels = h.nr_chans;
	ao->no_preempt = !(h.flags & HANDOVER_PREEMPT);
	pc->ps.preempt = !ao->no_preempt;
	if (!ao->to)
		session_set_peer(&s->ses, h.to);
	s->ram = vmig_ram_open(s->ctl, ao->backend, ao->dirty_mode);
	if (!s->ram)
		return fail(pc, errno, "cannot map guest RAM: %s", strerror(errno));
	s->rep->backend = vmig_ram_backend(s->ram);
	s->rep->channels = ao->channels;
	for (r = 0; r < (int)vmig_ram_region_count(s->ram); r++)
		s->rep->guest_bytes += vmig_ram_region_pages(s->ram, r) * WIRE_PAGE_SIZE;
	s->chans = calloc(ao->channels, sizeof(*s->chans));
	if (!s->chans)
		return fail(pc, ENOMEM, "out of memory");
	for (r = 0; r < (int)ao->channels; r++)
		s->chans[r].s.fd = -1;
	s->ses.nr_chans = ao->channels;
	fprintf(stderr, "vmig migrate: taking over postcopy session %016llx from a helper "
		"that went away; the destination was %s%s%s\n",
		(unsigned long long)s->ses.id, h.to, ao->to ? ", now " : "",
		ao->to ? ao->to : "");
	return 0;
}

int precopy_attach(const struct precopy_opts *o, struct report *rep)
{
	struct precopy_opts ao = *o;
	struct src s = { .o = &ao, .rep = rep };
	struct postcopy pc;
	uint64_t t0 = now_ns();
	unsigned int i;
	int r;

	rep->role = "source";
	rep->backend = "uffd";
	rep->tracking = "";
	rep->pc.on = true;
	postcopy_init(&pc, &s);
	session_init(&s.ses, o->to, o->timeout_ms);
	r = attach_setup(&pc, &ao);
	rep->setup_ns = now_ns() - t0;
	rep->pc.preempt = !ao.no_preempt;
	if (!r) {
		snprintf(rep->error, sizeof(rep->error), "the previous source helper went away");
		r = -ECONNRESET;
	}
	/* As after a broken link in postcopy_switchover(), with nothing sent yet. */
	while (r == -ECONNRESET || (r && ao.recovery_timeout_ms > 0 && rec_transient(r) &&
				    !vmig_ctl_lost(s.ctl) &&
				    strncmp(rep->error, "destination:", 12))) {
		if (ao.recovery_timeout_ms <= 0)
			ao.recovery_timeout_ms = 30000;
		r = postcopy_recover(&pc, r);
		if (r == 2) {
			pc.dest_runs = false;
			rep->error[0] = 0;
			r = fail(&pc, ECONNRESET, "the destination never ran the guest (the "
				 "postcopy switch had not reached it when the helper went away)");
			break;
		}
		if (r == 1) {	/* it had finished: only DONE was missing */
			r = 0;
			break;
		}
		if (r)
			break;
		pc.switch_confirmed = true;
		r = postcopy_background(&pc);
	}
	if (!r) {
		rep->pc.requests = pc.ps.requests;
		rep->pc.switch_ns = now_ns() - t0;
	}
	if (r && s.ses.main_open)
		src_dest_reason(&s);
	if (r) {
		for (i = 0; i < s.ses.nr_chans; i++)
			send_chan_cancel(&s.chans[i]);
		if (s.ses.main_open)
			stream_send_error(&s.ses.main, r, rep->error);
		if (pc.dest_runs && pc.handed_over)
			snprintf(rep->error + strlen(rep->error),
				 sizeof(rep->error) - strlen(rep->error), "; the guest may run "
				 "on the destination: the source VMM stays stopped (try "
				 "--attach again)");
		else if (s.ctl && pc.handed_over) {
			handover_drop(&pc);
			if (vmig_ctl_resume(s.ctl, ao.timeout_ms))
				fprintf(stderr, "vmig migrate: the source VMM did not confirm "
					"resuming\n");
		}
		if (s.ctl)
			vmig_ctl_error(s.ctl, rep->error);
	} else {
		vmig_ctl_complete(s.ctl);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - t0;
	report_note_cpu(rep);
	src_collect(&s);
	postcopy_destroy(&pc);	/* before the channels its thread queues on */
	src_close(&s);
	return r;
}
