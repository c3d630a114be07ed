/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The destination's door.  Connections are accepted by a thread of their
 * own and each opens in a short-lived thread, at most ADMIT_MAX_OPENING at
 * once, within one deadline for its whole opening: TLS handshake or token
 * exchange (auth.h), channel header with its binding proof, and for a main
 * channel its first packet (HELLO or RESUME).  Only connections that got
 * through reach the main thread, in arrival order.  So a slow or hostile
 * connection holds one slot for at most the deadline, never the session's
 * setup or a recovery.  With every slot taken, a new connection cuts the
 * oldest unfinished opening short and takes its slot: connections that
 * drip their opening are always the oldest, so they cannot keep a source
 * out; only a flood faster than a source's own opening can delay it.
 */
#ifndef VMIG_ADMIT_H
#define VMIG_ADMIT_H

#include "handshake.h"
#include "stream.h"

#define ADMIT_MAX_OPENING	16

struct admitted {
	struct stream s;		/* open, authenticated, its header read */
	struct wire_chan_hdr h;
	uint16_t first;			/* main: WIRE_PKT_HELLO or WIRE_PKT_RESUME */
	struct hs_offer offer;		/* HELLO */
	struct wire_resume resume;	/* RESUME */
};

struct admit;

/*
 * Start admitting on listen_fd: each connection gets deadline_ms for its
 * opening, then timeout_ms per wait as usual.  NULL (errno) on failure.
 */
struct admit *admit_start(int listen_fd, int deadline_ms, int timeout_ms);
/* The next admitted connection within ms: 0 and *out, or -ETIMEDOUT. */
int admit_next(struct admit *a, int ms, struct admitted *out);
/*
 * The opening itself, on c->s (set up by the caller): authentication,
 * channel header, and a main channel's first packet.  0 or -errno.
 */
int admit_read_opening(struct admitted *c);
/* Refuse (ERROR with c->s.err) and close a connection the main thread does not want. */
void admit_refuse(struct admitted *c, int err, const char *what);
/* Log why a connection was dropped (s->err) and close it, without a word to the peer. */
void admit_drop(struct stream *s, const char *what);
/* Stop accepting, end every opening, close what was never taken. */
void admit_stop(struct admit *a);

#endif
