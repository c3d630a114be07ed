// SPDX-License-Identifier: GPL-2.0
/* TLS 1.3 under every channel (OpenSSL), and the binding of channels to a session. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "auth.h"
#include "tls.h"
#include "util.h"

#define WBUF_LEN		(16 * 1024)	/* small pieces gathered per SSL_write */
#define DIRECT_MIN		(16 * 1024)	/* contiguous runs written in place ... */
#define DIRECT_MAX		(256 * 1024)	/* ... up to this much per SSL_write */
#define RBUF_LEN		(256 * 1024)	/* read-ahead buffer (multifd) */
#define RUN_MAX			(1024 * 1024)	/* contiguous iovecs read as one */
#define LOWAT_SLACK		(32 * 1024)	/* > a record with its overhead */
#define LOWAT_MAX		(256 * 1024)
#define PSK_MIN			16
#define PSK_MAX			64
#define LABEL_SESSION		"EXPORTER-vmig-session-v1"
#define LABEL_CHANNEL		"EXPORTER-vmig-channel-v1"
#define PROOF_PREFIX		"vmig-channel-v1"

struct tls_conn {
	SSL *ssl;
	int fd;
	bool server;
	bool done;			/* handshake finished */
	bool got_data;			/* the peer has sent application data */
	size_t wpend;			/* bytes of wbuf offered, awaiting a retry */
	int lowat;			/* SO_RCVLOWAT set (0: default) */
	uint8_t *obuf;			/* coalesced ciphertext not yet sent */
	size_t olen, ooff, ocap;
	uint8_t wbuf[WBUF_LEN];
};

static struct {
	enum tls_mode mode;
	bool server;
	SSL_CTX *ctx;
	char psk_id[128];
	uint8_t psk[PSK_MAX];
	unsigned int psk_len;
	pthread_mutex_t lock;
	struct tls_conn **tab;		/* by fd */
	int tab_len;
	bool any_data;			/* some peer has sent application data */
	char warned[INET6_ADDRSTRLEN];	/* the last plain-TCP peer warned about */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static BIO_METHOD *obio_meth;	/* NULL: kernel TLS, OpenSSL writes to the socket */

bool tls_enabled(void)
{
	return g.mode != TLS_NONE;
}

static void conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c->obuf);
	free(c);
}

static void tls_cleanup(void)
{
	int i;

	for (i = 0; i < g.tab_len; i++)
		conn_free(g.tab[i]);
	free(g.tab);
	g.tab = NULL;
	g.tab_len = 0;
	SSL_CTX_free(g.ctx);
	g.ctx = NULL;
	BIO_meth_free(obio_meth);
	obio_meth = NULL;
	OPENSSL_cleanse(g.psk, sizeof(g.psk));
}

/* The first error on this thread's OpenSSL queue, as text. */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r;

	if (!e)
		return NULL;
	r = ERR_reason_error_string(e);
	if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
				  unsigned int max_identity_len, unsigned char *psk,
				  unsigned int max_psk_len)
{
	(void)ssl;
	(void)hint;
	if (strlen(g.psk_id) + 1 > max_identity_len || g.psk_len > max_psk_len)
		return 0;
	strcpy(identity, g.psk_id);
	memcpy(psk, g.psk, g.psk_len);
	return g.psk_len;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
				  unsigned int max_psk_len)
{
	(void)ssl;
	if (!identity || strcmp(identity, g.psk_id) || g.psk_len > max_psk_len)
		return 0;
	memcpy(psk, g.psk, g.psk_len);
	return g.psk_len;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* "IDENTITY:HEXKEY" (psktool's format, as QEMU reads it) or "HEXKEY" (identity "vmig"). */
static int load_psk(const char *file, char *err, size_t errlen)
{
	char line[512], *key, *end;
	struct stat st;
	size_t n, i;
	FILE *f = fopen(file, "re");

	if (!f) {
		snprintf(err, errlen, "cannot open the pre-shared key file %s: %s", file,
			 strerror(errno));
		return -errno;
	}
	if (!fstat(fileno(f), &st) && (st.st_mode & 077))
		fprintf(stderr, "vmig: warning: %s is readable by group or others; the key "
			"protects guest memory (chmod 600)\n", file);
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n")] = 0;
	key = strrchr(line, ':');
	if (key) {
		*key++ = 0;
		if (!line[0] || strlen(line) >= sizeof(g.psk_id))
			goto bad;
		snprintf(g.psk_id, sizeof(g.psk_id), "%s", line);
	} else {
		key = line;
		snprintf(g.psk_id, sizeof(g.psk_id), "vmig");
	}
	end = key + strlen(key);
	n = end - key;
	if (n % 2 || n / 2 < PSK_MIN || n / 2 > PSK_MAX)
		goto bad;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(key[2 * i]), lo = hexval(key[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto bad;
		g.psk[i] = hi << 4 | lo;
	}
	g.psk_len = n / 2;
	OPENSSL_cleanse(line, sizeof(line));
	return 0;
bad:
	OPENSSL_cleanse(line, sizeof(line));
	snprintf(err, errlen, "%s: want one line IDENTITY:HEXKEY or HEXKEY with a key of "
		 "%d..%d bytes (e.g. psktool -u vmig -p FILE)", file, PSK_MIN, PSK_MAX);
	return -EINVAL;
}

static int load_x509(const char *dir, char *err, size_t errlen)
{
	char ca[4096], cert[4096], key[4096], why[160];

	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	if (SSL_CTX_load_verify_locations(g.ctx, ca, NULL) != 1) {
		snprintf(err, errlen, "cannot load the CA certificate %s: %s", ca,
			 ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	if (SSL_CTX_use_certificate_chain_file(g.ctx, cert) != 1) {
		snprintf(err, errlen, "cannot load the certificate %s: %s", cert,
			 ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(g.ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(g.ctx) != 1) {
		snprintf(err, errlen, "cannot use the private key %s: %s", key,
			 ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

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

static int set_bios(struct tls_conn *c)
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

int tls_configure(enum tls_mode mode, const char *path, bool server, char *err, size_t errlen)
{
	int r;

	if (mode == TLS_NONE)
		return 0;
	g.mode = mode;
	g.server = server;
	g.ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (!g.ctx) {
		snprintf(err, errlen, "cannot set up TLS (OpenSSL)");
		return -ENOMEM;
	}
	atexit(tls_cleanup);
	/* OpenSSL writes to the socket without MSG_NOSIGNAL: a peer gone is EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(g.ctx, TLS1_3_VERSION);
	/*
	 * AES-128-GCM first: AES-NI makes it the fastest here, and it is what
	 * kernel TLS offloads.  OpenSSL switches the record layer to kTLS by
	 * itself when the kernel has the "tls" ULP (SSL_OP_ENABLE_KTLS).
	 */
	SSL_CTX_set_ciphersuites(g.ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				 "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF |
			    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(g.ctx, 0);	/* no resumption: every channel a full handshake */
	SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(g.ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_ENABLE_PARTIAL_WRITE);
	/* Limit: how much certificate chain a peer may make us buffer and parse. */
	SSL_CTX_set_max_cert_list(g.ctx, TLS_MAX_CERT_LIST);
	SSL_CTX_set_default_read_buffer_len(g.ctx, RBUF_LEN);
	if (ktls_available()) {
		SSL_CTX_set_options(g.ctx, SSL_OP_ENABLE_KTLS);
	} else {
		obio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vmig-out");
		if (!obio_meth || !BIO_meth_set_write(obio_meth, obio_write) ||
		    !BIO_meth_set_ctrl(obio_meth, obio_ctrl) ||
		    !BIO_meth_set_create(obio_meth, obio_create)) {
			snprintf(err, errlen, "cannot set up TLS (OpenSSL BIO)");
			return -ENOMEM;
		}
	}
	if (mode == TLS_PSK) {
		r = load_psk(path, err, errlen);
		if (r)
			return r;
		if (server)
			SSL_CTX_set_psk_server_callback(g.ctx, psk_server_cb);
		else
			SSL_CTX_set_psk_client_callback(g.ctx, psk_client_cb);
		return 0;
	}
	return load_x509(path, err, errlen);
}

static bool peer_is_loopback(int fd, char *name, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getpeername(fd, (struct sockaddr *)&ss, &sl))
		return true;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, name, len);
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, name, len);
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127;
	}
	return true;
}

int tls_attach(int fd, bool server, const char *host, char *err, size_t errlen)
{
	struct tls_conn *c, *old = NULL;
	unsigned char addr[16];
	char name[INET6_ADDRSTRLEN] = "?";

	if (!tls_enabled()) {
		/* Once for every peer address, not once per process. */
		if (!peer_is_loopback(fd, name, sizeof(name))) {
			pthread_mutex_lock(&g.lock);
			if (strcmp(name, g.warned)) {
				snprintf(g.warned, sizeof(g.warned), "%s", name);
				fprintf(stderr, "vmig: warning: plain TCP with %s: guest memory "
					"crosses the network unencrypted%s (use --tls-creds or "
					"--tls-psk on both sides)\n", name,
					auth_mode() == AUTH_INSECURE ? " and unauthenticated" :
					", and anyone on the path can alter it");
			}
			pthread_mutex_unlock(&g.lock);
		}
		return 0;
	}
	if (server != g.server) {
		snprintf(err, errlen, "TLS set up for the other side");
		return -EINVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->fd = fd;
	if (!c || !(c->ssl = SSL_new(g.ctx)) || set_bios(c)) {
		conn_free(c);
		snprintf(err, errlen, "cannot set up a TLS connection: out of memory");
		return -ENOMEM;
	}
	c->server = server;
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		/* x509: the destination's certificate must name the host we dialled. */
		if (g.mode == TLS_X509 && host && *host) {
			if (inet_pton(AF_INET, host, addr) == 1 ||
			    inet_pton(AF_INET6, host, addr) == 1)
				X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
			else {
				SSL_set1_host(c->ssl, host);
				SSL_set_tlsext_host_name(c->ssl, host);
			}
		}
	}
	pthread_mutex_lock(&g.lock);
	if (fd >= g.tab_len) {
		int n = fd + 16;
		struct tls_conn **t = realloc(g.tab, n * sizeof(*t));

		if (!t) {
			pthread_mutex_unlock(&g.lock);
			conn_free(c);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		memset(t + g.tab_len, 0, (n - g.tab_len) * sizeof(*t));
		g.tab = t;
		g.tab_len = n;
	}
	old = g.tab[fd];		/* a closed connection whose fd was reused */
	g.tab[fd] = c;
	pthread_mutex_unlock(&g.lock);
	conn_free(old);
	return 0;
}

struct tls_conn *tls_lookup(int fd)
{
	struct tls_conn *c = NULL;

	pthread_mutex_lock(&g.lock);
	if (fd >= 0 && fd < g.tab_len)
		c = g.tab[fd];
	pthread_mutex_unlock(&g.lock);
	return c;
}


/* Explain a failed handshake in s->err. */
static int hs_fail(struct stream *s, struct tls_conn *c, int ret)
{
	char why[160];
	const char *reason = ssl_reason(why, sizeof(why));
	long v = SSL_get_verify_result(c->ssl);
	int e = SSL_get_error(c->ssl, ret);
	const char *hint = "";

	if (g.mode == TLS_PSK)
		hint = " (do both sides use the same --tls-psk key and identity?)";
	else if (!c->server)
		hint = " (does the destination use TLS, with a certificate from the same CA?)";
	if (g.mode == TLS_X509 && v != X509_V_OK)
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
	reason = ssl_reason(why, sizeof(why));
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
	if (!c->got_data && !g.any_data && (ret == 0 || errno == ECONNRESET || errno == EPIPE)) {
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

ssize_t tls_readv(struct stream *s, const struct iovec *iov, int cnt)
{
	struct tls_conn *c = s->tls;
	size_t n, run;
	int r, ok, i;

	if (!c->done) {
		r = handshake(s, c);
		if (r) {
			errno = -r;
			return -1;
		}
	}
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
			c->got_data = g.any_data = true;
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

ssize_t tls_writev(struct stream *s, const struct iovec *iov, int cnt)
{
	struct tls_conn *c = s->tls;
	size_t len = 0, run = 0, n, done;
	const void *buf;
	int r, i, ok;

	if (!c->done) {
		r = handshake(s, c);
		if (r) {
			errno = -r;
			return -1;
		}
	}
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

static int export(SSL *ssl, const char *label, const void *ctx, size_t ctxlen, uint8_t out[32])
{
	return SSL_export_keying_material(ssl, out, 32, label, strlen(label), ctx, ctxlen,
					  ctx != NULL) == 1 ? 0 : -EPROTO;
}

void tls_read_ahead(struct stream *s)
{
	if (s->tls)
		SSL_set_read_ahead(s->tls->ssl, 1);
}

int tls_export_conn(struct stream *s, uint8_t out[32])
{
	if (!s->tls || !s->tls->done || export(s->tls->ssl, LABEL_CHANNEL, NULL, 0, out))
		return stream_fail(s, EPROTO, "TLS: cannot export keying material");
	return 0;
}

int tls_export_session(struct stream *s, uint64_t session, uint8_t out[32])
{
	if (!s->tls || !s->tls->done ||
	    export(s->tls->ssl, LABEL_SESSION, &session, sizeof(session), out))
		return stream_fail(s, EPROTO, "TLS: cannot export keying material");
	return 0;
}

int tls_peer_id(struct stream *s, uint8_t out[32])
{
	unsigned int len = 32;
	const char *id;
	X509 *x;
	int r = -EPROTO;

	memset(out, 0, 32);
	if (!s->tls || !s->tls->done)
		return -EPROTO;
	x = SSL_get1_peer_certificate(s->tls->ssl);
	if (x) {
		r = X509_digest(x, EVP_sha256(), out, &len) == 1 ? 0 : -EPROTO;
		X509_free(x);
		return r;
	}
	id = SSL_get_psk_identity(s->tls->ssl);
	if (!id)
		id = g.psk_id;		/* the client side: its own identity is the session's */
	return EVP_Digest(id, strlen(id), out, &len, EVP_sha256(), NULL) == 1 ? 0 : -EPROTO;
}
