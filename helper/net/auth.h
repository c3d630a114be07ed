/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Who may join a session.  Every connection authenticates before anything
 * about the session crosses it (wire.h, "Authentication"): under TLS by its
 * handshake (tls.h), on plain TCP by a challenge-response with the token
 * both sides were given (--token-file) or, with --insecure on both sides,
 * an empty token.  Either way each connection ends up with a secret of its
 * own (TLS: the RFC 8446 exporter; plain: an HMAC of the token and both
 * sides' nonces).
 *
 * Session binding: a main channel derives a session key from its
 * connection's secret and the session id.  When its handshake succeeds
 * that key becomes the process's current session key, and the first one
 * also its root key.  Every other channel header is followed by
 * HMAC(current key, "vmig-channel-v1" || header || that connection's
 * secret); RESUME carries HMAC(root key, "vmig-resume-v1" || session ||
 * the new connection's secret), which only the source that began the
 * session can compute, and, under x509, must come from the same
 * certificate.  The session id itself is no secret and never a credential.
 *
 * One migration per process.  The keys are shared with the destination's
 * admission threads (admit.c), hence the lock inside.
 */
#ifndef VMIG_AUTH_H
#define VMIG_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define AUTH_KEY_LEN		32
#define AUTH_TOKEN_MIN		16	/* bytes in a token file, at least */
#define AUTH_TOKEN_MAX		1024

/* AUTH_UNSET: nothing configured (the fuzz targets): no binding is checked. */
enum auth_mode { AUTH_UNSET, AUTH_TLS, AUTH_TOKEN, AUTH_INSECURE };

/*
 * From the command line: TLS (configured in tls.c already), a token file,
 * or --insecure; exactly one.  0, or -errno with err filled (-EDOM: not
 * exactly one was given, a usage error).
 */
int auth_configure(bool tls, const char *token_file, bool insecure, char *err,
		   size_t errlen);
enum auth_mode auth_mode(void);
/* "TLS", "token", "insecure": for messages. */
const char *auth_mode_name(void);
/* Tests: corrupt the binding key ("key") or the channels' session id ("session"). */
int auth_inject(const char *what);

/* Plain TCP: the exchange before the channel header (nothing under TLS). */
int auth_client(struct stream *s);
int auth_server(struct stream *s);

/* channel.c, around the channel header: derive the main key, or prove / check binding. */
int auth_hdr_send(struct stream *s, struct wire_chan_hdr *h);	/* may alter h (tests) */
int auth_hdr_sent(struct stream *s, const struct wire_chan_hdr *h);
int auth_hdr_recv(struct stream *s, const struct wire_chan_hdr *h);

/* The main channel on s completed HELLO or RESUME: channels now bind to it. */
void auth_session_established(struct stream *s);

/* RESUME: the source's proof for the main channel s; the destination's check. */
int auth_resume_proof(struct stream *s, uint8_t proof[AUTH_KEY_LEN]);
int auth_resume_check(struct stream *s, const uint8_t proof[AUTH_KEY_LEN]);
/*
 * The answer's RESUMED: the destination proves the root key too, so a
 * source never re-sends pages to a peer that merely holds the credential.
 */
int auth_resumed_proof(struct stream *s, uint8_t proof[AUTH_KEY_LEN]);
int auth_resumed_check(struct stream *s, const uint8_t proof[AUTH_KEY_LEN]);
/*
 * The answer "the guest never ran here" (wire.h, NOT_SWITCHED): proven the
 * same way, so that only the destination that holds the session can make
 * the source resume its own guest.
 */
int auth_notswitched_proof(struct stream *s, uint8_t proof[AUTH_KEY_LEN]);
int auth_notswitched_check(struct stream *s, const uint8_t proof[AUTH_KEY_LEN]);

/*
 * Taking a session over (handover.h): a helper leaves the session's root
 * key, and under x509 the identity of the peer that began it, with its VMM
 * (AUTH_ROOT_LEN bytes); a helper that replaces it after a crash (--attach)
 * takes them from there, so its RESUME (source) or its check of the
 * source's RESUME (destination) is the dead helper's.  Export: false while
 * no session was established.
 */
#define AUTH_ROOT_LEN		(2 * AUTH_KEY_LEN)
bool auth_root_export(uint8_t out[AUTH_ROOT_LEN]);
void auth_root_import(const uint8_t in[AUTH_ROOT_LEN]);

#endif
