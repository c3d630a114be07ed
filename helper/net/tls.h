/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TLS 1.3 (OpenSSL) under every channel, whatever its kind.
 *
 * Configured once per process from the command line (--tls-creds DIR with
 * ca.pem, cert.pem, key.pem: x509 with peer verification both ways; or
 * --tls-psk FILE: an external pre-shared key).  Then chan_connect() and
 * chan_accept() give each stream they return its own TLS connection
 * (struct stream's tls, freed by stream_close()): the stream's reads and
 * writes go through it, the handshake runs lazily on the first I/O with
 * the stream's deadline, and a failure lands in the stream's err like any
 * other I/O failure (so the destination drops such a connection with a
 * message and keeps waiting).  Without TLS, a peer that is not on loopback
 * gets a warning once.
 *
 * tls.c holds the configuration and identities (context, credentials,
 * exporters, peer identity), tls_io.c the records (handshake, reads,
 * writes, kernel TLS).
 *
 * Session binding (auth.h) uses two RFC 8446 exporters of each connection:
 * one as the connection's own secret, one (context = the session id) as a
 * main channel's session key.  A channel from another session, or a
 * recorded one replayed, cannot prove the binding and is refused even when
 * its certificate or PSK is valid.
 *
 * Records: the sender writes each stream_writev() as its own TLS records,
 * so a record never spans two writes; but one write may carry several
 * packets (the destination's page requests go in batches), and OpenSSL
 * then holds the later ones where poll() cannot see them.  Code that
 * sleeps on a stream's fd between packets asks stream_ready() first.
 */
#ifndef VMIG_TLS_H
#define VMIG_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "stream.h"

#define TLS_PROOF_LEN		32
#define TLS_MAX_CERT_LIST	(64 * 1024)	/* peer certificate chain, bytes */

enum tls_mode { TLS_NONE, TLS_X509, TLS_PSK };

/* Set up from the command line; 0 or -errno with err filled. */
int tls_configure(enum tls_mode mode, const char *path, bool server, char *err, size_t errlen);
bool tls_enabled(void);
/*
 * channel.c: after connect (host = what the user named) or accept, the
 * TLS connection for fd into *out (NULL: plain TCP).  0 or -errno with err.
 */
int tls_attach(int fd, bool server, const char *host, struct tls_conn **out, char *err,
	       size_t errlen);
/* stream.c: free a connection (NULL: nothing); the caller closes its fd. */
void tls_free(struct tls_conn *c);
/*
 * stream.c: like readv()/writev() on a non-blocking socket, through c, the
 * TLS connection of s (whose deadline bounds the handshake's waits and
 * whose err says why it failed): >= 0, or -1 with errno.
 */
ssize_t tls_readv(struct tls_conn *c, struct stream *s, const struct iovec *iov, int cnt);
ssize_t tls_writev(struct tls_conn *c, struct stream *s, const struct iovec *iov, int cnt);

/* Bytes OpenSSL holds for s that poll() on its fd cannot see (false for plain TCP). */
bool tls_pending(const struct stream *s);

/* A stream only ever read through stream_read(), never poll()ed: read ahead. */
void tls_read_ahead(struct stream *s);
/* auth.c: this connection's exporter secret; a main channel's session key. */
int tls_export_conn(struct stream *s, uint8_t out[32]);
int tls_export_session(struct stream *s, uint64_t session, uint8_t out[32]);
/* auth.c: SHA-256 of the peer's certificate (x509) or of the PSK identity. */
int tls_peer_id(struct stream *s, uint8_t out[32]);

#endif
