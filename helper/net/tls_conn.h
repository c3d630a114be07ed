/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inside the TLS layer only (tls.c, tls_io.c; nothing else includes this):
 * one connection's state, made by tls_attach() in tls.c and owned by the
 * stream it was given to, and what the two files ask of each other.
 * tls.c holds the process's configuration (context, credentials, peer
 * identity); tls_io.c moves records (handshake, reads, writes, kTLS or our
 * own output buffer).
 */
#ifndef VMIG_TLS_CONN_H
#define VMIG_TLS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "tls.h"

#define TLS_WBUF_LEN		(16 * 1024)	/* small pieces gathered per SSL_write */

struct tls_conn {
	SSL *ssl;
	int fd;
	bool server;
	enum tls_mode mode;		/* for the hints of a failed handshake */
	bool done;			/* handshake finished */
	bool got_data;			/* the peer has sent application data */
	size_t wpend;			/* bytes of wbuf offered, awaiting a retry */
	int lowat;			/* SO_RCVLOWAT set (0: default) */
	uint8_t *obuf;			/* coalesced ciphertext not yet sent */
	size_t olen, ooff, ocap;
	uint8_t wbuf[TLS_WBUF_LEN];
};

/* tls.c: the first error on this thread's OpenSSL queue as text, or NULL. */
const char *tls_ssl_reason(char *buf, size_t len);

/*
 * tls_io.c: the record layer of ctx, once: kernel TLS where the kernel has
 * it, else OpenSSL's records gathered in the connection and sent in one
 * go.  0 or -ENOMEM with err filled.
 */
int tls_io_setup(SSL_CTX *ctx, char *err, size_t errlen);
/* tls_io.c: c's SSL reads and writes c->fd (through our buffer without kTLS). */
int tls_io_bind(struct tls_conn *c);

#endif
