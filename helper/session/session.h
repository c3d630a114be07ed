/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A migration's connections, as both ends see them: the session id, the
 * main channel, the handshake's result, how many multifd channels the
 * session has, and the peer's address.  Nothing about guest RAM.
 *
 * What it owns: the main stream (its fd, from session_connect_main or
 * session_adopt_main until session_close_main).  What it does not own: the
 * multifd channels' threads and queues (struct send_chan on the source,
 * struct recv_chan on the destination own their stream); session_connect_chan
 * opens one and hands its fd over.  Keys and TLS state stay in auth.c and
 * tls.c (process-wide, one session per process); the session only says
 * when they change (session_established).
 *
 * Lifetime: session_init, then any number of open/close cycles of the
 * main stream (postcopy recovery reconnects the same session), then
 * session_close_main.  No allocation.
 */
#ifndef VMIG_SESSION_H
#define VMIG_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"
#include "stream.h"

struct session {
	uint64_t id;			/* odd; 0 until chosen or taken over */
	struct stream main;		/* valid while main_open */
	bool main_open;
	struct hs_result hs;		/* negotiated version and capabilities */
	unsigned int nr_chans;		/* multifd channels of the session */
	int timeout_ms;			/* any single wait on its streams */
	char peer[256];			/* HOST:PORT of the other end (may change on resume) */
};

/* No connection yet; peer may be NULL. */
void session_init(struct session *s, const char *peer, int timeout_ms);
/* Source: a fresh random session id (odd, so never 0). */
void session_new_id(struct session *s);
/* Change the peer's address (vmig migrate --resume --to). */
void session_set_peer(struct session *s, const char *peer);

/*
 * Source: connect the main channel to s->peer (retrying refused connects
 * up to wait_ms) and send its channel header.  0 or -errno; err says why
 * when the connection failed, s->main.err when the header did.  The
 * stream stays open (main_open) when only the header failed.
 */
int session_connect_main(struct session *s, int wait_ms, char *err, size_t errlen);
/* Destination: take an accepted, header-checked connection as the main channel. */
void session_adopt_main(struct session *s, int fd);
/*
 * Source: connect one more channel of the session (kind WIRE_CHAN_*,
 * index) and send its header on tmp.  fd (now the caller's), or -errno:
 * err says why; tmp->fd is -1 if the connection failed, else the header
 * did (the fd is closed then).
 */
int session_connect_chan(struct session *s, uint16_t kind, uint32_t index, struct stream *tmp,
			 char *err, size_t errlen);
/*
 * A RESUME was proven on the main channel: channels opened from now on
 * bind to it (auth.h).  After HELLO the handshake (hs_*) does this itself.
 */
void session_established(struct session *s);
/* Both directions of the main channel down now, as a broken link would (tests). */
void session_shutdown_main(struct session *s);
/* Close the main channel if open; the bytes it sent (0 if it was not open). */
uint64_t session_close_main(struct session *s);

#endif
