// SPDX-License-Identifier: GPL-2.0
/* Destination: sessions, receiver threads, resume. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admit.h"
#include "auth.h"
#include "channel.h"
#include "control.h"
#include "dest.h"
#include "devstate_recv.h"
#include "handover.h"
#include "handshake.h"
#include "libvmig.h"
#include "multifd_recv.h"
#include "postcopy_dst.h"
#include "recovery.h"
#include "util.h"

struct receiver {
	struct recv_chan rc;
	pthread_t thread;
	bool started;
	_Atomic int state;		/* 0 running, 1 ended, -errno failed */
};

struct dest {
	const struct dest_opts *o;
	struct report *rep;
	struct progress prog;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
	struct dest_mem mem;
	struct hs_offer local;
	int listen_fd;
	struct admit *adm;		/* authenticated connections (admit.h) */
	struct stream main;
	bool main_open;
	uint64_t session;
	struct hs_result hs;
	unsigned int nr_chans;
	struct receiver *rx;
	struct devstate_recv ds;
	uint64_t t_complete;
	/* postcopy (postcopy_dst.c does the work) */
	int rp_fd, pre_fd;		/* return path, preempt channel: -1 if none */
	struct pc_dst pc;
	bool pc_ready, pc_running;	/* pc set up; the guest runs here in postcopy */
	bool pc_done;			/* postcopy finished here (DONE sent) */
	uint64_t t_switch;
	char listen_addr[256];		/* where we listen (--port, or the record's) */
};

/* The first reason given is the one reported (report_fail). */
#define fail(d, err, ...)	report_fail((d)->rep, err, __VA_ARGS__)

static int attach_session(struct dest *d);

static void *receiver_thread(void *arg)
{
	struct receiver *r = arg;
	int ret = recv_chan_run(&r->rc);

	atomic_store(&r->state, ret ? ret : 1);
	return NULL;
}

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
	if (o->prefault && !o->attach) {
		r = vmig_ram_prefault(d->ram);
		if (r)
			return fail(d, r, "cannot allocate guest RAM: %s", strerror(-r));
	}
	snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", o->listen ? o->listen : "");
	if (o->attach) {
		r = attach_session(d);
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
			(unsigned long long)d->session, (unsigned long long)pcd_missing(&d->pc),
			d->listen_addr, auth_mode_name());
	else
		fprintf(stderr, "vmig listen: waiting for a source on %s (%s)\n", d->listen_addr,
			auth_mode() == AUTH_TLS ? "TLS" : auth_mode() == AUTH_TOKEN ?
			"token: authenticated, not encrypted" : "INSECURE: anyone who reaches "
			"this port can migrate a guest into this VMM");
	return 0;
}

/* After the handshake: postcopy state (received bitmap from the first page) if negotiated. */
static int postcopy_prepare(struct dest *d)
{
	int memfds[WIRE_MAX_REGIONS];
	uint64_t base[WIRE_MAX_REGIONS], size;
	unsigned int i;
	int r;

	if (!(d->hs.caps & WIRE_CAP_POSTCOPY))
		return 0;
	for (i = 0; i < d->mem.nr_regions; i++)
		vmig_ctl_region(d->ctl, i, &memfds[i], &size, &base[i]);
	r = pcd_init(&d->pc, &d->mem, memfds, base, d->hs.caps & WIRE_CAP_PREEMPT,
		     d->o->spin_us);
	if (r)
		return fail(d, r, "out of memory");
	d->pc.sched = d->o->sched;
	/* vmig.ko regions serve missing pages themselves (postcopy_kmod.c). */
	d->pc.kmod = !strcmp(vmig_ram_backend(d->ram), "kmod");
	d->pc.nr_chans = d->nr_chans;
	d->pc_ready = true;
	d->rep->pc.preempt = d->hs.caps & WIRE_CAP_PREEMPT;
	return 0;
}

/*
 * Leave with the VMM what a helper needs to take this postcopy over if we
 * die (handover.h): the guest runs here, the source holds what it lacks.
 * The session's root key and the source's identity (auth.h) go in
 * h.secret, so attach_session can check the source's RESUME as we would.
 */
static int handover_leave(struct dest *d)
{
	struct handover h = {
		.magic = HANDOVER_MAGIC, .wire_version = d->hs.version,
		.session = d->session, .caps = d->hs.caps, .nr_chans = d->nr_chans,
		.flags = HANDOVER_DEST | (d->hs.caps & WIRE_CAP_PREEMPT ? HANDOVER_PREEMPT : 0),
	};

	int r;

	snprintf(h.to, sizeof(h.to), "%s", d->listen_addr);
	/* What the source's RESUME must prove to a helper that replaces us (auth.h). */
	if (auth_root_export(h.secret))
		h.secret_len = AUTH_ROOT_LEN;
	r = vmig_ctl_handover(d->ctl, &h, sizeof(h), d->o->timeout_ms);
	explicit_bzero(h.secret, sizeof(h.secret));
	return r;
}

/* vmig.ko regions: a page is present when it is in the region's page cache. */
static int received_from_mincore(struct dest *d, unsigned int i)
{
	unsigned char *vec = malloc(d->mem.pages[i]);
	uint64_t p;

	if (!vec)
		return -ENOMEM;
	if (mincore(d->mem.base[i], d->mem.pages[i] * WIRE_PAGE_SIZE, vec)) {
		free(vec);
		return -errno;
	}
	for (p = 0; p < d->mem.pages[i]; p++)
		if (vec[p] & 1)
			pcd_note_received(&d->pc, i, p);
	free(vec);
	return 0;
}

/*
 * Mark received what guest RAM holds: pages are placed whole or not at
 * all, and what never arrived was punched out at the switch.  A page
 * reported missing that is there is only sent again and refused (EEXIST),
 * never overwritten; the other way round is what must not happen.
 */
static int received_from_presence(struct dest *d)
{
	uint64_t size, base;
	off_t data, hole;
	unsigned int i;
	int fd, r;

	for (i = 0; i < d->mem.nr_regions; i++) {
		vmig_ctl_region(d->ctl, i, &fd, &size, &base);
		if (d->pc.kmod) {
			r = received_from_mincore(d, i);
			if (r)
				return r;
			continue;
		}
		for (hole = 0; (uint64_t)hole < size; ) {
			data = lseek(fd, hole, SEEK_DATA);
			if (data < 0 && errno == ENXIO)
				break;
			if (data < 0)
				return -errno;
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				return -errno;
			for (; data < hole; data += WIRE_PAGE_SIZE)
				pcd_note_received(&d->pc, i, data / WIRE_PAGE_SIZE);
		}
	}
	return 0;
}

/*
 * vmig listen --attach: take over a postcopy whose destination helper died.
 * The VMM still runs the guest on its registration and holds the dead
 * helper's record; the source, paused as after a broken link, reconnects
 * with RESUME by itself.  So this is the state of a paused recovery,
 * rebuilt without the dead helper: session and channel layout from the
 * record, the received bitmap from what guest RAM holds, the same uffd
 * with its waiters woken to fault again.  The caller then waits for RESUME.
 */
static int attach_session(struct dest *d)
{
	const struct dest_opts *o = d->o;
	struct handover h;
	int r, uffd;

	r = vmig_ctl_handover_query(d->ctl, &h, sizeof(h), o->timeout_ms);
	if (r < 0)
		return fail(d, r, "the VMM at %s did not give its handover record: %s",
			    o->vmm_path, strerror(-r));
	if (!handover_valid(&h, r) || !(h.flags & HANDOVER_DEST) ||
	    !(h.caps & WIRE_CAP_POSTCOPY))
		return fail(d, EPROTO, "the VMM at %s holds a handover record this vmig cannot "
			    "use (%d bytes; another version?)", o->vmm_path, r);
	if (auth_mode() != AUTH_UNSET && h.secret_len != AUTH_ROOT_LEN)
		return fail(d, EPROTO, "the VMM at %s holds no session key in its handover "
			    "record: the source's RESUME could not be checked", o->vmm_path);
	if (h.secret_len == AUTH_ROOT_LEN)
		auth_root_import(h.secret);
	explicit_bzero(h.secret, sizeof(h.secret));
	d->session = h.session;
	d->hs.version = h.wire_version;
	d->hs.caps = h.caps;
	d->nr_chans = h.nr_chans;
	d->rep->channels = d->nr_chans;
	if (!d->listen_addr[0])
		snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", h.to);
	r = postcopy_prepare(d);
	if (r)
		return r;
	r = received_from_presence(d);
	if (r)
		return fail(d, r, "cannot tell which pages guest RAM holds: %s", strerror(-r));
	/*
	 * Every page here: the dead helper had finished (it may have sent DONE);
	 * the source, if it comes back, only has to hear it (recover()).
	 */
	d->pc_done = !pcd_missing(&d->pc);
	/* vmig.ko regions: no uffd, they stayed in postcopy mode. */
	uffd = vmig_ctl_postcopy(d->ctl, o->timeout_ms);
	if (uffd < 0 || !uffd != d->pc.kmod) {
		if (uffd > 0)
			close(uffd);
		return fail(d, uffd < 0 ? uffd : EPROTO, "the VMM did not hand over its "
			    "registration: %s", uffd < 0 ? strerror(-uffd) : d->pc.kmod ?
			    "a userfaultfd for vmig.ko regions" : "no userfaultfd");
	}
	if (d->pc.kmod)
		uffd = -1;
	r = pcd_adopt(&d->pc, uffd);
	if (r == -ENOTTY)
		return fail(d, r, "this vmig.ko cannot queue again the requests the dead helper "
			    "had read (no VMIG_REQUEUE): load a newer module");
	if (r)
		return fail(d, r, "cannot take over the %s: %s", d->pc.kmod ? "regions' requests" :
			    "userfaultfd", strerror(-r));
	if (d->pc_done && d->pc.kmod)
		pck_disable(&d->pc);	/* the regions become ordinary, as after pcd_finish */
	d->pc_running = true;
	d->rep->pc.on = true;
	d->rep->pc.preempt = d->hs.caps & WIRE_CAP_PREEMPT;
	d->t_switch = now_ns();
	/* Ours now: where we listen, for the next one. */
	r = handover_leave(d);
	if (r)
		return fail(d, r, "the VMM did not take the new handover record: %s",
			    strerror(-r));
	return 0;
}

static void drop(int fd, struct stream *s, const char *what)
{
	fprintf(stderr, "vmig listen: dropped %s: %s\n", what, s->err);
	close(fd);
}

/* Wait for a main channel with an acceptable handshake. */
static int accept_session(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->accept_timeout_ms * 1000000ull;

	for (;;) {
		struct admitted c;
		char msg[WIRE_MAX_MSG];
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		int r;

		if (left <= 0)
			return fail(d, ETIMEDOUT, "no source connected within %d s",
				    o->accept_timeout_ms / 1000);
		if (admit_next(d->adm, left, &c))
			continue;
		if (c.h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_HELLO) {
			stream_fail(&c.s, EPROTO, "%s before any session", c.h.kind !=
				    WIRE_CHAN_MAIN ? wire_kind_name(c.h.kind) : "RESUME");
			admit_refuse(&c, -EPROTO, "connection");
			continue;
		}
		d->main = c.s;
		msg[0] = 0;
		r = hs_decide(&c.offer, &d->local, &d->hs, msg, sizeof(msg));
		/* --insecure: the peer is nobody in particular; the layout stays in this log. */
		if (hs_send_reply(&d->main, r, &d->hs, r && auth_mode() == AUTH_INSECURE ?
				  "refused (the reason is in the destination's log)" : msg) && !r)
			r = -EPIPE;
		if (r) {
			stream_fail(&d->main, -r, "%s", msg[0] ? msg : "handshake failed");
			drop(d->main.fd, &d->main, "migration request");
			continue;
		}
		d->session = c.h.session;
		d->nr_chans = c.offer.nr_multifd;
		d->main_open = true;
		if (d->hs.caps & WIRE_CAP_DEVICE_STATE) {
			r = devstate_recv_setup(&d->ds, &d->main);
			if (r) {
				stream_send_error(&d->main, r, d->main.err);
				return fail(d, r, "%s", d->main.err);
			}
		} else if (vmig_ctl_device_count(d->ctl)) {
			return fail(d, EPROTONOSUPPORT, "the source sends no device state, but "
				    "the VMM has devices");
		}
		return 0;
	}
}

static int accept_channels(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->timeout_ms * 1000000ull;
	unsigned int got = 0;

	d->rx = calloc(d->nr_chans, sizeof(*d->rx));
	if (!d->rx)
		return fail(d, ENOMEM, "out of memory");
	unsigned int want = d->nr_chans + !!(d->hs.caps & WIRE_CAP_RETURN_PATH) +
			    !!(d->hs.caps & WIRE_CAP_PREEMPT);

	while (got < want) {
		struct wire_chan_hdr h;
		struct admitted c;
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		struct receiver *rx;
		int fd, r = 0;

		if (left <= 0)
			return fail(d, ETIMEDOUT, "only %u of %u channels connected", got, want);
		if (admit_next(d->adm, left, &c))
			continue;
		h = c.h;
		fd = c.s.fd;
		if (h.session == d->session &&
		    ((h.kind == WIRE_CHAN_RETURN && (d->hs.caps & WIRE_CAP_RETURN_PATH) &&
		      d->rp_fd < 0) ||
		     (h.kind == WIRE_CHAN_PREEMPT && (d->hs.caps & WIRE_CAP_PREEMPT) &&
		      d->pre_fd < 0))) {
			*(h.kind == WIRE_CHAN_RETURN ? &d->rp_fd : &d->pre_fd) = fd;
			chan_mark_urgent(fd);
			got++;
			continue;
		}
		/* The binding proof was checked: only the session's source gets here. */
		if (h.kind != WIRE_CHAN_MULTIFD || h.session != d->session)
			r = stream_fail(&c.s, EPROTO, "a %s channel while a session sets up",
					wire_kind_name(h.kind));
		if (!r && (h.index >= d->nr_chans || d->rx[h.index].started))
			r = stream_fail(&c.s, EPROTO, "multifd channel index %u unexpected", h.index);
		if (r) {
			admit_refuse(&c, r, "connection");
			continue;
		}
		rx = &d->rx[h.index];
		recv_chan_init(&rx->rc, h.index, fd, o->timeout_ms, &d->mem,
			       d->hs.caps & WIRE_CAP_ZERO_PAGES);
		if (d->ds.dev) {
			rx->rc.devstate = devstate_recv_chunk;
			rx->rc.devstate_arg = &d->ds;
		}
		if (d->pc_ready)
			rx->rc.pc = &d->pc;
		if (d->pc_running) {	/* resumed: the switch is behind us */
			rx->rc.bounce = malloc((size_t)WIRE_MAX_BATCH * WIRE_PAGE_SIZE);
			if (!rx->rc.bounce) {
				close(fd);
				return fail(d, ENOMEM, "out of memory");
			}
		}
		r = pthread_create(&rx->thread, NULL, receiver_thread, rx);
		if (r) {
			close(fd);
			return fail(d, r, "cannot start a receiver thread");
		}
		rx->started = true;
		got++;
	}
	return 0;
}

static int check_receivers(struct dest *d, bool *all_ended)
{
	unsigned int i;

	*all_ended = true;
	for (i = 0; i < d->nr_chans; i++) {
		int st = atomic_load(&d->rx[i].state);

		if (st < 0)
			return fail(d, st, "multifd channel %u: %s", i, d->rx[i].rc.s.err);
		if (st != 1)
			*all_ended = false;
	}
	return 0;
}

static uint64_t pages_received(struct dest *d)
{
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < d->nr_chans; i++)
		sum += __atomic_load_n(&d->rx[i].rc.pages, __ATOMIC_RELAXED);
	return sum;
}

/*
 * Postcopy switch.  DISCARDs are kept until POSTCOPY; then, with every
 * receiver parked at its POSTCOPY marker (no precopy write in flight), the
 * received bitmap is built, the discarded pages punched out, the VMM's
 * MISSING uffd taken, the fault thread started, the receivers released, the
 * devices loaded (their state precedes the markers) and the guest resumed.
 */
static int postcopy_event(struct dest *d, const struct ctl_event *ev)
{
	const struct dest_opts *o = d->o;
	struct wire_resumed rs = { 0 };
	uint64_t t_load, t_wait;
	uint32_t i;
	int r, uffd;

	if (!d->pc_ready || d->pc_running)
		return fail(d, EPROTO, "main channel: %s %s", wire_pkt_name(ev->type),
			    d->pc_running ? "after the switch" : "but postcopy was not negotiated");
	if (ev->type == WIRE_PKT_DISCARD) {
		if (!d->t_switch) {
			d->t_switch = now_ns();
			r = pcd_wait_parked(&d->pc, o->timeout_ms);
			if (r)
				return fail(d, r, "multifd channels did not reach the postcopy switch");
			r = pcd_mark_received(&d->pc);
			if (r)
				return fail(d, r, "cannot punch out the pages that never arrived: %s",
					    strerror(-r));
		}
		for (i = 0; i < ev->discard.count; i++) {
			r = pcd_discard(&d->pc, ev->discard.region, ev->ranges[2 * i],
					ev->ranges[2 * i + 1]);
			if (r)
				return fail(d, EPROTO, "DISCARD of pages %llu+%llu in region %u: %s",
					    (unsigned long long)ev->ranges[2 * i],
					    (unsigned long long)ev->ranges[2 * i + 1],
					    ev->discard.region, strerror(-r));
			d->rep->pc.discarded += ev->ranges[2 * i + 1];
		}
		return 0;
	}
	if (!d->t_switch) {
		d->t_switch = now_ns();
		r = pcd_wait_parked(&d->pc, o->timeout_ms);
		if (!r)
			r = pcd_mark_received(&d->pc);
		if (r)
			return fail(d, r, "postcopy switch failed: %s", strerror(-r));
	}
	if (ev->postcopy.discarded != d->rep->pc.discarded)
		return fail(d, EPROTO, "POSTCOPY says %llu pages were discarded, %llu arrived",
			    (unsigned long long)ev->postcopy.discarded,
			    (unsigned long long)d->rep->pc.discarded);
	/* The resume part counts from here: registration, load, resume (below). */
	t_load = now_ns();
	/* On vmig.ko regions the VMM registers nothing (no uffd); it learns of postcopy. */
	uffd = vmig_ctl_postcopy(d->ctl, o->timeout_ms);
	if (uffd < 0)
		return fail(d, uffd, "the VMM cannot register guest RAM for missing pages: %s",
			    strerror(-uffd));
	if (!uffd != d->pc.kmod) {
		if (uffd > 0)
			close(uffd);
		return fail(d, EPROTO, "the VMM answered the postcopy registration %s",
			    d->pc.kmod ? "with a userfaultfd for vmig.ko regions" :
			    "without a userfaultfd");
	}
	if (d->pc.kmod)
		uffd = -1;
	r = pcd_start(&d->pc, uffd, d->rp_fd, d->pre_fd, o->timeout_ms);
	if (r)
		return fail(d, r, "cannot start the postcopy fault thread: %s", strerror(-r));
	pcd_release(&d->pc, false);
	/*
	 * Device state came before every marker: loaded before the guest runs,
	 * with missing pages already served, since a real VMM's load may touch
	 * guest RAM (QEMU's does: its accesses wait in the module like a vCPU's).
	 */
	t_wait = now_ns();
	r = devstate_recv_finish(&d->ds);
	if (r) {
		pcd_stop(&d->pc);
		return fail(d, r, "%s", d->ds.error);
	}
	rs.load_wait_ns = now_ns() - t_wait;
	d->pc_running = true;
	d->rep->pc.on = true;
	trace("dst: resuming");
	r = vmig_ctl_resume(d->ctl, o->timeout_ms);
	trace("dst: resumed");
	if (r)
		return fail(d, r, "the VMM did not resume: %s", strerror(-r));
	/* resume: from the devices loaded (the registration included) to running */
	rs.resume_ns = now_ns() - t_load - rs.load_wait_ns;
	rs.dev_buffer_peak = d->ds.peak;
	/* From here a helper that dies leaves the guest to the next one. */
	r = handover_leave(d);
	if (r)
		return fail(d, r, "the VMM did not take the handover record (%s): a libvmig "
			    "without HANDOVER for destinations?", strerror(-r));
	fprintf(stderr, "vmig listen: postcopy: the guest runs here; missing pages are "
		"fetched on demand\n");
	/* Sources from before the parts took an empty RESUMED and take this too. */
	r = stream_send_pkt(&d->main, WIRE_PKT_RESUMED, &rs, sizeof(rs));
	if (r)
		return fail(d, r, "main channel: %s", d->main.err);
	return 0;
}

/* Follow the main channel until COMPLETE, watching the receivers. */
static int run_session(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t last_pkt = now_ns(), round_base = 0, round_pages = 0, t_round = now_ns();
	unsigned int round = 0, n_unans;
	struct ctl_event ev;
	uint64_t u_page;
	uint32_t u_region;
	bool ended;
	int r;

	for (;;) {
		struct pollfd p = { .fd = d->main.fd, .events = POLLIN };

		r = check_receivers(d, &ended);
		if (!r && d->pc_running && atomic_load(&d->pc.state) < 0)
			r = fail(d, atomic_load(&d->pc.state), "%s", d->pc.err);
		if (r)
			return r;
		if (vmig_ctl_lost(d->ctl))
			return fail(d, ECONNRESET, "the destination VMM went away");
		r = poll(&p, 1, 100);
		if (r < 0 && errno != EINTR)
			return fail(d, errno, "poll: %s", strerror(errno));
		if (r <= 0) {
			if (now_ns() - last_pkt > o->timeout_ms * 1000000ull)
				return fail(d, ETIMEDOUT, "main channel: nothing from the source "
					    "for %d ms", o->timeout_ms);
			progress_update(&d->prog, round, pages_received(d) - round_base,
					round_pages, (pages_received(d) - round_base) *
					(double)WIRE_PAGE_SIZE / ((now_ns() - t_round) / 1e9));
			continue;
		}
		last_pkt = now_ns();
		r = control_recv(&d->main, false, &ev);
		if (!r && ev.type == WIRE_PKT_DEVSTATE)
			r = devstate_recv_chunk(d->ds.dev ? &d->ds : NULL, &d->main, ev.len);
		if (r)
			return fail(d, r, "main channel: %s", d->main.err);
		if (ev.type == WIRE_PKT_ROUND) {
			round = ev.round.round;
			round_base = pages_received(d);
			round_pages = ev.round.dirty_pages;
			t_round = now_ns();
			if (round > d->rep->rounds)
				d->rep->rounds = round;
		}
		trace("dst: %s", wire_pkt_name(ev.type));
		if (ev.type == WIRE_PKT_DISCARD || ev.type == WIRE_PKT_POSTCOPY) {
			r = postcopy_event(d, &ev);
			if (r)
				return r;
		}
		if (ev.type == WIRE_PKT_COMPLETE)
			break;
	}
	d->t_complete = now_ns();
	/* Every channel has sent END before COMPLETE; wait for them to be placed. */
	{
		uint64_t deadline = now_ns() + o->timeout_ms * 1000000ull;

		for (;;) {
			r = check_receivers(d, &ended);
			if (!r && d->pc_running && atomic_load(&d->pc.state) < 0)
				r = fail(d, atomic_load(&d->pc.state), "%s", d->pc.err);
			if (r)
				return r;
			if (ended)
				break;
			if (now_ns() > deadline)
				return fail(d, ETIMEDOUT, "multifd channels did not finish");
			usleep(200);
		}
	}
	if (pages_received(d) != ev.complete.pages)
		return fail(d, EPROTO, "source sent %llu pages, %llu arrived",
			    (unsigned long long)ev.complete.pages,
			    (unsigned long long)pages_received(d));
	r = devstate_recv_finish(&d->ds);
	if (r)
		return fail(d, r, "%s", d->ds.error);
	if (d->pc_running) {
		r = pcd_finish(&d->pc, o->timeout_ms);
		if (r)
			return fail(d, r, "%s", d->pc.err);
		/* A guest thread would wait on it for ever (or see a zero page): refuse. */
		n_unans = pcd_unanswered(&d->pc, &u_region, &u_page);
		if (n_unans)
			return fail(d, EPROTO, "the source completed postcopy with %u requested "
				    "page%s never sent (page %llu of region %u)", n_unans,
				    n_unans == 1 ? "" : "s", (unsigned long long)u_page, u_region);
		d->rep->pc.switch_ns = now_ns() - d->t_switch;
		d->pc_done = true;
		r = stream_send_pkt(&d->main, WIRE_PKT_DONE, NULL, 0);
		if (!r && (d->hs.caps & WIRE_CAP_DONE_ACK))
			r = rec_wait_done_ack(&d->main, o->timeout_ms);
		/* Unconfirmed: wait for the source to come back and ask (recover()). */
		if (r && (d->hs.caps & WIRE_CAP_DONE_ACK) && rec_transient(r))
			return fail(d, r, "postcopy finished here, the source did not confirm: %s",
				    d->main.err);
		if (r)
			fprintf(stderr, "vmig listen: postcopy finished, but the source did not get "
				"DONE: %s\n", d->main.err);
	}
	return 0;
}

static void stop_receivers(struct dest *d)
{
	unsigned int i;

	if (d->pc_ready)
		pcd_release(&d->pc, true);
	for (i = 0; i < d->nr_chans; i++)
		if (d->rx && d->rx[i].started)
			shutdown(d->rx[i].rc.s.fd, SHUT_RDWR);
	for (i = 0; i < d->nr_chans; i++) {
		if (d->rx && d->rx[i].started) {
			pthread_join(d->rx[i].thread, NULL);
			close(d->rx[i].rc.s.fd);
			free(d->rx[i].rc.bounce);
			d->rx[i].rc.bounce = NULL;
			d->rx[i].started = false;
		}
	}
}

/* A paused postcopy: drop every channel of the broken connection. */
static void drop_session_channels(struct dest *d)
{
	unsigned int i;

	pcd_stop(&d->pc);
	stop_receivers(d);
	for (i = 0; i < d->nr_chans && d->rx; i++) {
		d->rep->normal_pages += d->rx[i].rc.normal_pages;
		d->rep->zero_pages += d->rx[i].rc.zero_pages_rcvd;
		d->rep->wire_bytes += d->rx[i].rc.s.bytes_in;
	}
	free(d->rx);
	d->rx = NULL;
	if (d->main_open) {
		d->rep->wire_bytes += d->main.bytes_in;
		close(d->main.fd);
		d->main_open = false;
	}
	if (d->rp_fd >= 0)
		close(d->rp_fd);
	if (d->pre_fd >= 0)
		close(d->pre_fd);
	d->rp_fd = d->pre_fd = -1;
}

/*
 * Postcopy recovery, destination side: pause (the guest runs on; threads
 * touching missing pages wait), keep listening, and take the session back
 * from a main channel that says RESUME with this session's id.
 */
static int recover(struct dest *d, int err)
{
	const struct dest_opts *o = d->o;
	uint64_t t0 = now_ns(), deadline = t0 + o->recovery_timeout_ms * 1000000ull;
	char reason[sizeof(d->rep->error)];

	char q[2][320];

	snprintf(reason, sizeof(reason), "%s", d->rep->error);
	drop_session_channels(d);
	if (d->pc_done)
		fprintf(stderr, "vmig listen: postcopy paused: %s; every page is here; waiting up "
			"to %d s for the source to reconnect and take the news\n", reason,
			o->recovery_timeout_ms / 1000);
	else
		fprintf(stderr, "vmig listen: postcopy paused: %s; %llu pages missing; the guest "
			"runs on, threads touching missing pages wait; waiting up to %d s for the "
			"source to reconnect\n", reason, (unsigned long long)pcd_missing(&d->pc),
			o->recovery_timeout_ms / 1000);
	report_event(d->rep, "paused", "\"reason\":%s,\"missing_pages\":%llu,\"complete\":%s,"
		     "\"timeout_s\":%d", json_quote(q[0], sizeof(q[0]), reason),
		     (unsigned long long)pcd_missing(&d->pc), d->pc_done ? "true" : "false",
		     o->recovery_timeout_ms / 1000);
	for (;;) {
		struct wire_chan_hdr h;
		struct wire_resume wr;
		struct admitted c;
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		int fd, r;

		if (left <= 0 && d->pc_done) {
			d->rep->error[0] = 0;
			fprintf(stderr, "vmig listen: postcopy had finished here; the source did not "
				"come back to hear it within %d s\n", o->recovery_timeout_ms / 1000);
			report_event(d->rep, "unconfirmed", NULL);
			return 0;
		}
		if (left <= 0 || vmig_ctl_lost(d->ctl)) {
			d->rep->error[0] = 0;
			return fail(d, err, "%s; no source resumed the migration within %d s", reason,
				    o->recovery_timeout_ms / 1000);
		}
		if (admit_next(d->adm, left < 200 ? left : 200, &c))
			continue;
		fd = c.s.fd;
		d->main = c.s;
		h = c.h;
		wr = c.resume;
		r = 0;
		if (h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_RESUME ||
		    h.session != d->session)
			r = stream_fail(&d->main, EPROTO, "%s while a session is paused",
					h.kind != WIRE_CHAN_MAIN ? "a channel of another kind than "
					"main" : c.first != WIRE_PKT_RESUME ? "HELLO" :
					"RESUME of another session");
		if (!r)
			r = auth_resume_check(&d->main, wr.proof);
		if (!r)
			report_event(d->rep, "resume_attempt", "\"attempt\":%u", wr.attempt);
		if (!r && d->pc_done) {
			/* Finished here: the source only has to hear it (from us: proved). */
			uint8_t proof[AUTH_KEY_LEN];

			r = auth_resumed_proof(&d->main, proof);
			if (!r)
				r = stream_send_pkt(&d->main, WIRE_PKT_DONE, proof, sizeof(proof));
			if (!r)
				r = rec_wait_done_ack(&d->main, o->timeout_ms);
			if (!r) {
				d->main_open = true;
				d->rep->error[0] = 0;
				d->rep->pc.recoveries++;
				d->rep->pc.last_pause_ns = now_ns() - t0;
				d->rep->pc.paused_ns += d->rep->pc.last_pause_ns;
				fprintf(stderr, "vmig listen: the source reconnected after %.3f s and "
					"took the completion\n", d->rep->pc.last_pause_ns / 1e9);
				report_event(d->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,"
					     "\"resent\":0,\"complete\":true", wr.attempt,
					     d->rep->pc.last_pause_ns / 1e6);
				return 0;
			}
		}
		/* Before RESUMED goes out: the channels that follow it bind to this key. */
		if (!r && !d->pc_done) {
			auth_session_established(&d->main);
			r = rec_send_bitmap(&d->main, &d->pc);
		}
		if (r) {
			stream_send_error(&d->main, r, d->main.err);
			drop(fd, &d->main, "connection while paused");
			continue;
		}
		d->main_open = true;
		r = accept_channels(d);
		if (!r)
			r = pcd_resume(&d->pc, d->rp_fd, d->pre_fd, o->timeout_ms);
		if (r) {
			fprintf(stderr, "vmig listen: resume attempt %u failed: %s\n", wr.attempt,
				d->rep->error[0] ? d->rep->error : strerror(-r));
			report_event(d->rep, "resume_failed", "\"attempt\":%u,\"error\":%s",
				     wr.attempt, json_quote(q[1], sizeof(q[1]), d->rep->error[0] ?
							    d->rep->error : strerror(-r)));
			d->rep->error[0] = 0;
			drop_session_channels(d);
			continue;
		}
		d->rep->error[0] = 0;
		d->rep->pc.recoveries++;
		d->rep->pc.last_pause_ns = now_ns() - t0;
		d->rep->pc.paused_ns += d->rep->pc.last_pause_ns;
		fprintf(stderr, "vmig listen: postcopy resumed after %.3f s (attempt %u)\n",
			d->rep->pc.last_pause_ns / 1e9, wr.attempt);
		report_event(d->rep, "resumed", "\"attempt\":%u,\"paused_ms\":%.3f,\"resent\":%llu,"
			     "\"missing_pages\":%llu,\"complete\":false", wr.attempt,
			     d->rep->pc.last_pause_ns / 1e6, (unsigned long long)d->pc.resent,
			     (unsigned long long)pcd_missing(&d->pc));
		return 0;
	}
}

/*
 * The link broke during the postcopy switch, before the guest ran here.
 * The source cannot know whether its POSTCOPY arrived: it keeps its guest
 * stopped and comes back with RESUME.  Answer that the guest never ran here
 * (NOT_SWITCHED with the proof of the session's key, then ERROR
 * WIRE_ERR_NOT_SWITCHED), so that it resumes its own; wait for it up to
 * --recovery-timeout.  This side fails either way.
 */
static void refuse_resume(struct dest *d)
{
	const struct dest_opts *o = d->o;
	uint64_t deadline = now_ns() + o->recovery_timeout_ms * 1000000ull;

	drop_session_channels(d);
	fprintf(stderr, "vmig listen: the link broke during the postcopy switch, before the "
		"guest ran here; waiting up to %d s to tell the source to resume its own\n",
		o->recovery_timeout_ms / 1000);
	for (;;) {
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		uint8_t proof[AUTH_KEY_LEN];
		struct admitted c;
		struct stream *s = &c.s;
		int r = 0;

		if (left <= 0 || vmig_ctl_lost(d->ctl))
			return;
		if (admit_next(d->adm, left < 200 ? left : 200, &c))
			continue;
		if (c.h.kind != WIRE_CHAN_MAIN || c.first != WIRE_PKT_RESUME ||
		    c.h.session != d->session)
			r = stream_fail(s, EPROTO, "no RESUME of this session");
		if (!r)
			r = auth_resume_check(s, c.resume.proof);
		if (!r)
			r = auth_notswitched_proof(s, proof);
		if (!r)		/* only the destination holding the session can */
			r = stream_send_pkt(s, WIRE_PKT_NOT_SWITCHED, proof, sizeof(proof));
		if (r) {
			admit_refuse(&c, r, "connection after the failed switch");
			continue;
		}
		stream_send_error(s, WIRE_ERR_NOT_SWITCHED, "the postcopy switch did not reach "
				  "the destination: its guest never ran");
		close(s->fd);
		fprintf(stderr, "vmig listen: told the source (RESUME attempt %u) that the guest "
			"never ran here\n", c.resume.attempt);
		return;
	}
}

int dest_receive(const struct dest_opts *o, struct report *rep)
{
	struct dest d = { .o = o, .rep = rep, .listen_fd = -1, .rp_fd = -1, .pre_fd = -1 };
	struct wire_resumed rs = { 0 };
	uint64_t t0 = now_ns(), t_session = 0;
	unsigned int i;
	int r;

	rep->role = "destination";
	rep->backend = "uffd";
	rep->tracking = "";
	progress_init(&d.prog, o->progress);
	r = setup(&d);
	if (!r && o->attach) {
		/* The dead helper's session, paused: the source comes back by itself. */
		t_session = now_ns();
		snprintf(rep->error, sizeof(rep->error), "took over from a helper that died");
		r = recover(&d, -ECONNRESET);
		if (!r && !d.pc_done)
			r = run_session(&d);
	} else {
		if (!r)
			r = accept_session(&d);
		if (!r) {
			t_session = now_ns();
			rep->channels = d.nr_chans;
			r = postcopy_prepare(&d);
		}
		if (!r)
			r = accept_channels(&d);
		rep->setup_ns = (t_session ? now_ns() - t_session : 0);
		if (!r)
			r = run_session(&d);
	}
	while (r && d.pc_running && o->recovery_timeout_ms > 0 && rec_transient(r) &&
	       !vmig_ctl_lost(d.ctl)) {
		r = recover(&d, r);
		if (r || d.pc_done)
			break;	/* not resumed in time: give up; or it had finished */
		r = run_session(&d);
	}
	/* The switch had begun (a POSTCOPY or a parked receiver), the guest not run. */
	if (r && !d.pc_running && d.pc_ready && o->recovery_timeout_ms > 0 && rec_transient(r) &&
	    !vmig_ctl_lost(d.ctl) && (d.t_switch || __atomic_load_n(&d.pc.parked, __ATOMIC_RELAXED)))
		refuse_resume(&d);
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
		r = stream_send_pkt(&d.main, WIRE_PKT_RESUMED, &rs, sizeof(rs));
		if (r)
			fprintf(stderr, "vmig listen: the guest runs here, but the source did "
				"not get RESUMED: %s\n", d.main.err);
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
		if (d.main_open)	/* first the reason, then drop the channels */
			stream_send_error(&d.main, d.pc_running ? WIRE_ERR_GUEST_RAN : r,
					  rep->error);
		stop_receivers(&d);
		/* --attach that did not take over: the record stays for another try. */
		if (d.ctl && !(o->attach && !d.pc_running))
			vmig_ctl_error(d.ctl, rep->error);
	}
	rep->ok = !r;
	rep->total_ns = now_ns() - (t_session ? t_session : t0);
	stop_receivers(&d);
	rep->devices = d.ds.nr_devices;
	rep->device_bytes = d.ds.bytes;
	rep->device_buffer_peak = d.ds.peak;
	rep->dt_load_ns = rs.load_wait_ns;
	rep->dt_resume_ns = rs.resume_ns;
	devstate_recv_destroy(&d.ds);
	for (i = 0; i < d.nr_chans && d.rx; i++) {
		rep->normal_pages += d.rx[i].rc.normal_pages;
		rep->zero_pages += d.rx[i].rc.zero_pages_rcvd;
		rep->wire_bytes += d.rx[i].rc.s.bytes_in;
	}
	if (d.main_open) {
		rep->wire_bytes += d.main.bytes_in;
		close(d.main.fd);
	}
	free(d.rx);
	if (d.pc_ready) {
		pcd_report(&d.pc, rep);
		pcd_destroy(&d.pc);
	}
	if (d.rp_fd >= 0)
		close(d.rp_fd);
	if (d.pre_fd >= 0)
		close(d.pre_fd);
	admit_stop(d.adm);
	if (d.listen_fd >= 0)
		close(d.listen_fd);
	vmig_ram_close(d.ram);
	vmig_ctl_close(d.ctl);
	return r;
}
