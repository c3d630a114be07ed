/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A byte stream with deadlines: a socket (every wait bounded by timeout_ms)
 * or, for the fuzz target and tests, a buffer in memory.  Packets are framed
 * and their headers checked here; payload parsing lives with each consumer.
 */
#ifndef VMIG_STREAM_H
#define VMIG_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "wire.h"

struct tls_conn;

/*
 * A connection's state travels with its stream: copying the struct hands
 * the connection (socket and TLS state) to the copy, and exactly one copy
 * closes it (stream_close).
 */
struct stream {
	int fd;				/* -1: read from mem, or closed */
	struct tls_conn *tls;		/* owned; NULL: plain TCP (tls.h) */
	const uint8_t *mem;
	size_t mem_len, mem_pos;
	int timeout_ms;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC bound on every wait (0: none) */
	int lowat;			/* SO_RCVLOWAT set (0: default) */
	uint64_t bytes_in, bytes_out;
	char err[192];			/* what went wrong, for the user */
	int32_t peer_code;		/* the last ERROR packet's code */
	/* stream_readahead: bytes read from fd, not yet read by the caller */
	uint8_t *ra;
	size_t ra_cap, ra_pos, ra_len;
	/* auth.c: this connection's secret; a main channel's session key */
	bool authed, main_keyed;
	uint64_t main_session;
	uint8_t conn_secret[32], main_key[32];
};

/* A connected socket and its TLS connection (NULL: plain TCP), now s's. */
void stream_init_fd(struct stream *s, int fd, struct tls_conn *tls, int timeout_ms);
void stream_init_mem(struct stream *s, const void *buf, size_t len);
/*
 * Go on with from's connection in to, a new owner's stream: its socket and
 * TLS state, with timeout_ms, counters and err from zero.  to owns the
 * connection from now on; from is left closed.
 */
void stream_move(struct stream *to, struct stream *from, int timeout_ms);
/*
 * The same, but from keeps owning (and closes) the connection: to is a
 * view on it for the one thread that does its I/O.
 */
void stream_view(struct stream *to, const struct stream *from, int timeout_ms);
/* Close the socket and free its TLS state; s is closed after (fd -1). */
void stream_close(struct stream *s);
/*
 * How long the next wait may last: timeout_ms, or less when deadline_ns
 * (a bound on the whole connection so far, e.g. its handshake) comes first.
 */
int stream_wait_ms(const struct stream *s);
/* poll() the socket for @events up to stream_wait_ms(): 0, -ETIMEDOUT, -errno. */
int stream_wait(struct stream *s, short events);
/*
 * Something to read now, without blocking: bytes TLS already holds for s,
 * or bytes (or the end, or an error) on the socket.  Code that sleeps on a
 * stream's fd between packets asks this first: one TLS record may carry
 * several packets, and what OpenSSL buffered poll() cannot see.
 */
bool stream_ready(struct stream *s);
/* Bytes read already (read-ahead, TLS): stream_ready() without a system call. */
bool stream_buffered(const struct stream *s);
/*
 * Read small packets in one system call: a read of fewer than @cap bytes
 * first takes all that is there, up to @cap, into @buf (the caller's, as
 * long as s reads from this connection) and is served from it, as are the
 * reads after it; stream_ready() takes what is there too.  For a thread
 * that reads packets of a few parts (header, fields, a page) one at a
 * time, as postcopy's request and reply paths do: one read instead of
 * four.  Only where this stream is the connection's only reader until its
 * end: what was read ahead is gone with it.  Off again at stream_init_fd().
 */
void stream_readahead(struct stream *s, void *buf, size_t cap);

/* All of n bytes, or -ETIMEDOUT, -ECONNRESET (peer closed), -errno. */
int stream_read(struct stream *s, void *buf, size_t n);
int stream_readv(struct stream *s, struct iovec *iov, int cnt);
int stream_writev(struct stream *s, struct iovec *iov, int cnt);
int stream_write(struct stream *s, const void *buf, size_t n);
/*
 * Wake the reader only when this many bytes (capped at 256 KiB) are queued:
 * fewer wake-ups for a large payload.  Set it back to 1 before reading
 * anything shorter, or a wait would outlast the data.
 */
void stream_set_lowat(struct stream *s, size_t bytes);

/* Read and check a packet header: known type, flags 0, len in bounds. */
int stream_recv_hdr(struct stream *s, struct wire_pkt_hdr *h);
/* Send a packet with a payload of len bytes. */
int stream_send_pkt(struct stream *s, uint16_t type, const void *payload, uint32_t len);
/* Send ERROR {code, msg} (best effort, short timeout). */
void stream_send_error(struct stream *s, int code, const char *msg);
/* Read the rest of an ERROR packet into s->err. */
int stream_read_error(struct stream *s, const struct wire_pkt_hdr *h);

/* Record a failure in s->err (first one wins) and return -code. */
int stream_fail(struct stream *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
