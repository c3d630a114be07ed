// SPDX-License-Identifier: GPL-2.0
/*
 * TLS records (tls.h): the handshake, run lazily on a stream's first I/O
 * within its deadline; reads and writes shaped for page batches (runs of
 * contiguous iovecs per SSL call, small pieces gathered, SO_RCVLOWAT from
 * what a read still needs); and the record layer under them, kernel TLS
 * where the kernel has it, else OpenSSL's records gathered in the
 * connection and sent with one syscall.  Each call works on the TLS
 * connection it is given and reports into the stream it serves.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_conn.h"
#include "util.h"

#define WBUF_LEN		TLS_WBUF_LEN
#define DIRECT_MIN		(16 * 1024)	/* contiguous runs written in place ... */
#define DIRECT_MAX		(256 * 1024)	/* ... up to this much per SSL_write */
#define RBUF_LEN		(256 * 1024)	/* read-ahead buffer (multifd) */
#define RUN_MAX			(1024 * 1024)	/* contiguous iovecs read as one */
#define LOWAT_SLACK		(32 * 1024)	/* > a record with its overhead */
#define LOWAT_MAX		(256 * 1024)

static BIO_METHOD *obio_meth;	/* NULL: kernel TLS, OpenSSL writes to the socket */
static bool any_data;		/* some peer has sent application data */

/*
 * Without kernel TLS, OpenSSL would write each 16 KiB record with its own
 * syscall, which here cost more than the encryption.  Its records go to
 * this BIO instead, a buffer in the connection, and out_flush() sends
 * them in one go after each SSL call.
 */
static int obio_write(BIO *b, const char *data, int len)
{
	struct tls_conn *c = BIO_get_data(b);

	if (c->ooff == c->olen)
		c->ooff = c->olen = 0;
	if (c->olen + len > c->ocap) {
		size_t cap = (c->olen + len) * 2;
		uint8_t *n = realloc(c->obuf, cap);

		if (!n)
			return -1;
		c->obuf = n;
		c->ocap = cap;
	}
	memcpy(c->obuf + c->olen, data, len);
	c->olen += len;
	return len;
}

static long obio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;		/* out_flush() follows every SSL call */
	case BIO_CTRL_WPENDING:
	case BIO_CTRL_PENDING:
		return c ? (long)(c->olen - c->ooff) : 0;
	default:
		return 0;
	}
}

static int obio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

/*
 * Kernel TLS where the kernel has the "tls" ULP, unless VMIG_KTLS=off
 * keeps the record layer in OpenSSL (to compare the two in one boot).
 */
static bool ktls_available(void)
{
	const char *env = getenv("VMIG_KTLS");
	char buf[256] = "";
	FILE *f;

	if (env && !strcmp(env, "off"))
		return false;
	f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	for (char *w = strtok(buf, " \n"); w; w = strtok(NULL, " \n"))
		if (!strcmp(w, "tls"))
			return true;
	return false;
}

/* Send what the BIO collected; waits (bounded by the stream's timeout). 0 or -errno. */
static int out_flush(struct stream *s, struct tls_conn *c)
{
	while (c->ooff < c->olen) {
		ssize_t n = send(c->fd, c->obuf + c->ooff, c->olen - c->ooff,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n >= 0) {
			c->ooff += n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		n = stream_wait(s, POLLOUT);
		if (n)
			return n;
	}
	c->ooff = c->olen = 0;
	return 0;
}

int tls_io_bind(struct tls_conn *c)
{
	BIO *rb, *wb;

	if (!obio_meth)		/* kernel TLS: OpenSSL writes to the socket itself */
		return SSL_set_fd(c->ssl, c->fd) == 1 ? 0 : -ENOMEM;
	rb = BIO_new_socket(c->fd, BIO_NOCLOSE);
	wb = BIO_new(obio_meth);
	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		return -ENOMEM;
	}
	BIO_set_data(wb, c);
	SSL_set_bio(c->ssl, rb, wb);
	return 0;
}

int tls_io_setup(SSL_CTX *ctx, char *err, size_t errlen)
{
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_default_read_buffer_len(ctx, RBUF_LEN);
	/* OpenSSL switches the record layer to kTLS by itself (SSL_OP_ENABLE_KTLS). */
	if (ktls_available()) {
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
		return 0;
	}
	obio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vmig-out");
	if (!obio_meth || !BIO_meth_set_write(obio_meth, obio_write) ||
	    !BIO_meth_set_ctrl(obio_meth, obio_ctrl) ||
	    !BIO_meth_set_create(obio_meth, obio_create)) {
		snprintf(err, errlen, "cannot set up TLS (OpenSSL BIO)");
		return -ENOMEM;
	}
	return 0;
}

/* Explain a failed handshake in s->err. */
static int hs_fail(struct stream *s, struct tls_conn *c, int ret)
{
	char why[160];
	const char *reason = tls_ssl_reason(why, sizeof(why));
	long v = SSL_get_verify_result(c->ssl);
	int e = SSL_get_error(c->ssl, ret);
	const char *hint = "";

	if (c->mode == TLS_PSK)
		hint = " (do both sides use the same --tls-psk key and identity?)";
	else if (!c->server)
		hint = " (does the destination use TLS, with a certificate from the same CA?)";
	if (c->mode == TLS_X509 && v != X509_V_OK)
		return stream_fail(s, EACCES, "TLS handshake failed: the peer's certificate "
				   "was refused: %s", X509_verify_cert_error_string(v));
	if (reason)
		return stream_fail(s, EACCES, "TLS handshake failed: %s%s", reason, hint);
	if (e == SSL_ERROR_SYSCALL && errno && errno != EPIPE && errno != ECONNRESET)
		return stream_fail(s, errno, "TLS handshake failed: %s", strerror(errno));
	return stream_fail(s, ECONNRESET, "TLS handshake failed: the peer closed the "
			   "connection%s", hint);
}

static int handshake(struct stream *s, struct tls_conn *c)
{
	int r;

	if (c->server) {
		/*
		 * A TLS connection opens with a handshake record (type 22).
		 * Anything else, e.g. a plaintext vmig channel header, is
		 * refused with a message saying so instead of OpenSSL's.
		 */
		uint8_t b = 0;
		ssize_t n;

		for (;;) {
			n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
			if (n >= 0 || (errno != EAGAIN && errno != EINTR))
				break;
			r = stream_wait(s, POLLIN);
			if (r)
				return stream_fail(s, -r, "TLS handshake: %s", r == -ETIMEDOUT ?
						   "no ClientHello in time" : strerror(-r));
		}
		if (n <= 0)
			return stream_fail(s, ECONNRESET, "TLS handshake: the peer closed the "
					   "connection before a ClientHello");
		if (b != 22)
			return stream_fail(s, EPROTO, "not a TLS connection (first byte 0x%02x%s); "
					   "this listener requires TLS: start the source with "
					   "the same --tls-creds/--tls-psk option", b,
					   b == (WIRE_MAGIC & 0xff) ? ": a plaintext vmig channel" : "");
	}
	for (;;) {
		int fr;

		ERR_clear_error();
		r = SSL_do_handshake(c->ssl);
		fr = out_flush(s, c);	/* (on failure: the alert, so the peer knows why) */
		if (r == 1 && fr)
			return stream_fail(s, -fr, "TLS handshake: %s", strerror(-fr));
		if (r == 1)
			break;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			r = fr ? fr : stream_wait(s, POLLIN);
			break;
		case SSL_ERROR_WANT_WRITE:
			r = fr ? fr : stream_wait(s, POLLOUT);
			break;
		default:
			return hs_fail(s, c, r);
		}
		if (r)
			return stream_fail(s, -r, "TLS handshake: %s", r == -ETIMEDOUT ?
					   "the peer did not answer in time" : strerror(-r));
	}
	c->done = true;
	trace("tls: %s handshake done (%s, kTLS tx %d rx %d)", c->server ? "server" : "client",
	      SSL_get_cipher(c->ssl), (int)BIO_get_ktls_send(SSL_get_wbio(c->ssl)),
	      (int)BIO_get_ktls_recv(SSL_get_rbio(c->ssl)));
	return 0;
}

/* Before the first record: the handshake.  0, or -1 with errno. */
static int handshake_once(struct stream *s, struct tls_conn *c)
{
	int r = c->done ? 0 : handshake(s, c);

	if (r)
		errno = -r;
	return r ? -1 : 0;
}

/* An I/O error that is not EAGAIN or EOF: explain it, -1 with errno. */
static ssize_t io_err(struct stream *s, struct tls_conn *c, int ret, const char *what)
{
	char why[160];
	const char *reason;
	int e = SSL_get_error(c->ssl, ret);

	if (e == SSL_ERROR_SYSCALL) {
		if (!errno)
			return 0;	/* EOF */
		return -1;
	}
	reason = tls_ssl_reason(why, sizeof(why));
	stream_fail(s, EPROTO, "TLS %s failed: %s", what, reason ?: "protocol error");
	errno = EPROTO;
	return -1;
}

/*
 * In TLS 1.3 the server checks the client's certificate after the client
 * has finished its handshake, and a refusing server may close (or reset)
 * before its alert is read.  A peer gone before it sent anything is most
 * likely that: say so.
 */
static ssize_t closed_early(struct stream *s, struct tls_conn *c, ssize_t ret)
{
	if (!c->got_data && !any_data && (ret == 0 || errno == ECONNRESET || errno == EPIPE)) {
		stream_fail(s, ECONNRESET, "the peer closed the TLS connection before sending "
			    "anything: did it refuse our certificate or key? (see its log)");
		errno = ECONNRESET;
		return -1;
	}
	return ret;
}

/*
 * Before the stream waits for input: wake it only when enough ciphertext
 * is queued.  What it still wants (the rest of the iovecs) minus what
 * OpenSSL may hold already (the read-ahead buffer and a record) must yet
 * arrive on the socket, so that much can be waited for without ever
 * outlasting the data; fewer wake-ups for a large PAGES payload.
 */
static void set_lowat(struct tls_conn *c, const struct iovec *iov, int cnt)
{
	size_t need = 0;
	int i, v = 1;

	for (i = 0; i < cnt; i++)
		need += iov[i].iov_len;
	if (need > RBUF_LEN + LOWAT_SLACK)
		v = need - RBUF_LEN - LOWAT_SLACK > LOWAT_MAX ? LOWAT_MAX :
		    (int)(need - RBUF_LEN - LOWAT_SLACK);
	if (v != c->lowat) {
		setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
		c->lowat = v;
	}
}

ssize_t tls_readv(struct tls_conn *c, struct stream *s, const struct iovec *iov, int cnt)
{
	size_t n, run;
	int r, ok, i;

	if (handshake_once(s, c))
		return -1;
	while (cnt > 0 && !iov->iov_len) {
		iov++;
		cnt--;
	}
	if (!cnt)
		return 0;
	/*
	 * No ERR_clear_error() per call (one per 16 KiB record, 1.5 % of the
	 * receiver's time): the queue is empty here, every failure that fills
	 * it ends the connection (ssl_reason() empties it).
	 */
	/*
	 * Pages of a batch are mostly contiguous in guest memory: read the
	 * whole run of adjacent iovecs at once, so one SSL_read hands over a
	 * whole 16 KiB record, not 4 KiB pieces of it (4 calls per record).
	 */
	for (run = iov->iov_len, i = 1; i < cnt && run < RUN_MAX; i++) {
		if ((const uint8_t *)iov[i - 1].iov_base + iov[i - 1].iov_len !=
		    (const uint8_t *)iov[i].iov_base)
			break;
		run += iov[i].iov_len;
	}
	for (;;) {
		errno = 0;
		ok = SSL_read_ex(c->ssl, iov->iov_base, run, &n);
		r = ok ? SSL_ERROR_NONE : SSL_get_error(c->ssl, 0);
		if (c->olen) {
			int e = errno, fr = out_flush(s, c);

			if (fr && ok) {
				errno = -fr;
				return -1;
			}
			errno = e;
		}
		if (ok) {
			c->got_data = any_data = true;
			return n;
		}
		if (r == SSL_ERROR_ZERO_RETURN)
			return closed_early(s, c, 0);
		if (r == SSL_ERROR_WANT_READ) {
			set_lowat(c, iov, cnt);
			errno = EAGAIN;
			return -1;
		}
		if (r != SSL_ERROR_WANT_WRITE)
			return closed_early(s, c, io_err(s, c, 0, "read"));
		r = stream_wait(s, POLLOUT);
		if (r) {
			errno = -r;
			return -1;
		}
	}
}

ssize_t tls_writev(struct tls_conn *c, struct stream *s, const struct iovec *iov, int cnt)
{
	size_t len = 0, run = 0, n, done;
	const void *buf;
	int r, i, ok;

	if (handshake_once(s, c))
		return -1;
	/*
	 * A run of iovecs contiguous in memory (the pages of a batch usually
	 * are) is encrypted straight from there; short pieces are gathered in
	 * wbuf first, so that a record is not spent on each packet header.
	 * After WANT_WRITE the stream calls again with the same iovecs, and
	 * the same bytes are offered again as SSL_write requires (the gathered
	 * ones without copying them twice).
	 */
	for (i = 0; i < cnt && run < DIRECT_MAX; i++) {
		if (i && (const uint8_t *)iov[i - 1].iov_base + iov[i - 1].iov_len !=
			 (const uint8_t *)iov[i].iov_base)
			break;
		run += iov[i].iov_len;
	}
	if (run >= DIRECT_MIN) {
		buf = iov->iov_base;
		len = run < DIRECT_MAX ? run : DIRECT_MAX;
	} else if (c->wpend) {
		buf = c->wbuf;
		len = c->wpend;
	} else {
		for (; cnt > 0 && len < WBUF_LEN; iov++, cnt--) {
			size_t k = iov->iov_len < WBUF_LEN - len ? iov->iov_len : WBUF_LEN - len;

			/* stop before a long contiguous run: it goes direct next time */
			if (len && k >= DIRECT_MIN)
				break;
			memcpy(c->wbuf + len, iov->iov_base, k);
			len += k;
		}
		buf = c->wbuf;
		c->wpend = len;
	}
	if (!len)
		return 0;
	ERR_clear_error();
	errno = 0;
	/*
	 * With SSL_MODE_ENABLE_PARTIAL_WRITE each SSL_write returns after one
	 * 16 KiB record: into the memory BIO (which never refuses) keep going
	 * until the whole run is encrypted, then send it with one send() (was
	 * one send per record: 33 k per 512 MiB).  With kernel TLS the socket
	 * BIO may block: a partial write goes back to the stream as such.
	 */
	for (done = 0;;) {
		ok = SSL_write_ex(c->ssl, (const uint8_t *)buf + done, len - done, &n);
		if (!ok)
			break;
		done += n;
		if (done == len || !obio_meth)
			break;
	}
	if (ok) {
		c->wpend = 0;
		r = out_flush(s, c);
		if (r) {
			errno = -r;
			return closed_early(s, c, -1);
		}
		return done;
	}
	r = SSL_get_error(c->ssl, 0);
	if (r == SSL_ERROR_WANT_WRITE || r == SSL_ERROR_WANT_READ) {
		/* (WANT_READ: a key update in flight; polling for output is then harmless) */
		errno = EAGAIN;
		return -1;
	}
	c->wpend = 0;
	if (r == SSL_ERROR_SYSCALL && !errno)
		errno = EPIPE;
	return closed_early(s, c, io_err(s, c, 0, "write"));
}

bool tls_pending(const struct stream *s)
{
	return s->tls && s->tls->done && SSL_has_pending(s->tls->ssl);
}

void tls_read_ahead(struct stream *s)
{
	if (s->tls)
		SSL_set_read_ahead(s->tls->ssl, 1);
}
