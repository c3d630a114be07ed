/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The source's precopy engine: bulk stage, dirty rounds until the expected
 * downtime fits (or a stall), switchover, completion; or the switch to
 * postcopy.  State is per migration: what the source's rooms share in
 * struct src (src.h), each room's own beside it; channels own theirs.
 */
#ifndef VMIG_PRECOPY_H
#define VMIG_PRECOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "libvmig.h"
#include "recovery.h"
#include "report.h"
#include "thread_sched.h"
#include "util.h"

/*
 * Fault injection for the selftests (the hidden --inject-* and --wire-version
 * options, docs/testing.md), apart from what a user may ask for.
 */
struct src_test_opts {
	struct rec_cuts cuts;		/* cut every connection at these points */
	bool hint_before_tracking;	/* break the free-hint rule (the test proves it matters) */
	unsigned int inject_corrupt;	/* corrupt the Nth PAGES packet of channel 0 */
	uint32_t wire_version;		/* offer only this version (0: the real range) */
	bool no_reply_return;		/* offer no WIRE_CAP_REPLY_RETURN: pages on pre */
};

struct precopy_opts {
	const char *vmm_path;		/* the source VMM's control socket */
	const char *to;			/* HOST:PORT of vmig listen */
	unsigned int channels;		/* multifd page channels */
	double downtime_limit_ms;
	uint64_t switchover_bandwidth;	/* bytes/s for the prediction, 0: measured */
	bool round_events;		/* --json: a "round" event per switchover decision */
	uint64_t max_bandwidth;		/* bytes/s over all channels, 0: unlimited */
	unsigned int max_rounds;	/* dirty rounds before it counts as a stall */
	bool abort_on_stall;		/* give up instead of switching over */
	bool auto_converge;		/* throttle the guest when rounds stop shrinking */
	enum vmig_track track;
	enum vmig_backend backend;	/* auto: what the VMM's RAM is */
	enum vmig_dirty_mode dirty_mode;	/* kmod backend */
	int timeout_ms;			/* any single wait */
	bool progress;
	bool device_state_on_main;	/* device state on the main channel, not multifd */
	unsigned int device_threads;	/* saving pool (0: default) */
	bool no_free_hints;		/* send hinted-free pages anyway */
	/* postcopy: switch after this many passes (bulk = 1), or on a stall */
	bool postcopy;
	unsigned int postcopy_after;
	bool no_preempt;		/* requested pages at the head of the multifd queues */
	int spin_us;			/* return path: poll this long before sleeping */
	enum urgent_sched sched;	/* return-path thread's scheduling */
	bool cpu_any;			/* return-path thread stays unpinned */
	unsigned int postcopy_batch;	/* background pages per packet after the switch */
	int recovery_timeout_ms;	/* postcopy: reconnect for this long (0: never) */
	bool no_auto_resume;		/* ... only when asked (vmig migrate --resume) */
	const char *control_path;	/* the paused source's control socket (NULL: default) */
	struct src_test_opts test;	/* tests only: all zero in real use */
};

/* Migrate; fills rep (rep->ok, rep->error).  0 or -errno. */
int precopy_migrate(const struct precopy_opts *o, struct report *rep);
/*
 * Take over the postcopy migration of the VMM at o->vmm_path whose helper
 * died (vmig migrate --attach); o->to may name a new destination address.
 * Fills rep as precopy_migrate does.  0 or -errno.
 */
int precopy_attach(const struct precopy_opts *o, struct report *rep);

#endif
