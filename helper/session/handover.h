/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The handover record: what a source helper leaves with the source VMM
 * before its postcopy switch can reach the destination, so that if the
 * helper dies, 'vmig migrate --attach' can take the migration over (the
 * VMM holds the guest memory; the destination's received bitmap says what
 * it still lacks).  The VMM keeps it opaque (lib/vmm_proto.h, HANDOVER).
 *
 * The destination leaves one too, once the guest runs there (flag
 * HANDOVER_DEST): 'vmig listen --attach' takes the paused postcopy over
 * and answers the source's RESUME from it.
 *
 * Everything a RESUME needs that the VMM cannot tell: the session id, the
 * negotiated version and capabilities, the channel layout, where the
 * destination was, and room for a per-session secret the destination will
 * ask a RESUME to prove (session authentication fills it; the VMM's
 * memory outlives the helper, a file would need its own protection).
 */
#ifndef VMIG_HANDOVER_H
#define VMIG_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HANDOVER_MAGIC		0x31484d56u	/* "VMH1" */
#define HANDOVER_SECRET_MAX	64

#define HANDOVER_PREEMPT	1u	/* the session has a preempt channel */
#define HANDOVER_DEST		2u	/* a destination's record: to[] is where it listens */

struct handover {
	uint32_t magic;
	uint32_t wire_version;		/* negotiated */
	uint64_t session;
	uint64_t caps;			/* negotiated WIRE_CAP_* */
	uint32_t nr_chans;		/* multifd channels of the session */
	uint32_t flags;			/* HANDOVER_* */
	uint32_t secret_len;		/* 0 until sessions carry a secret */
	uint32_t reserved;
	uint8_t secret[HANDOVER_SECRET_MAX];
	char to[256];			/* the destination (or where it listens), NUL-terminated */
};

/* Check a record read back from a VMM: true if it is one of ours and sane. */
bool handover_valid(const struct handover *h, size_t len);

#endif
