// SPDX-License-Identifier: GPL-2.0
/*
 * TLS (tls.h): the process's configuration and each connection's identity.
 * The context from the command line (TLS 1.3 only, no resumption, the
 * credentials: x509 with peer verification both ways, or a pre-shared
 * key), a TLS connection for each socket a channel opens (the name the
 * destination's certificate must carry), the warning for plain TCP off
 * loopback, and what auth.c asks of a finished handshake: the exporter
 * secrets and the peer's identity.  Records themselves are tls_io.c's.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
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
#include "tls_conn.h"
#include "util.h"

#define PSK_MIN			16
#define PSK_MAX			64
#define LABEL_SESSION		"EXPORTER-vmig-session-v1"
#define LABEL_CHANNEL		"EXPORTER-vmig-channel-v1"

static struct {
	enum tls_mode mode;
	bool server;
	SSL_CTX *ctx;
	char psk_id[128];
	uint8_t psk[PSK_MAX];
	unsigned int psk_len;
	pthread_mutex_t lock;		/* for warned */
	char warned[INET6_ADDRSTRLEN];	/* the last plain-TCP peer warned about */
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

bool tls_enabled(void)
{
	return g.mode != TLS_NONE;
}

void tls_free(struct tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl);
	free(c->obuf);
	free(c);
}

const char *tls_ssl_reason(char *buf, size_t len)
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
			 tls_ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	if (SSL_CTX_use_certificate_chain_file(g.ctx, cert) != 1) {
		snprintf(err, errlen, "cannot load the certificate %s: %s", cert,
			 tls_ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(g.ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(g.ctx) != 1) {
		snprintf(err, errlen, "cannot use the private key %s: %s", key,
			 tls_ssl_reason(why, sizeof(why)) ?: "?");
		return -EINVAL;
	}
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
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
	/*
	 * g.ctx, the BIO method and the key live until the process ends: no
	 * atexit() frees them, since threads still handshaking (a connection
	 * being admitted when the session ends) would use them after the free.
	 */
	/* OpenSSL writes to the socket without MSG_NOSIGNAL: a peer gone is EPIPE, not death. */
	signal(SIGPIPE, SIG_IGN);
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(g.ctx, TLS1_3_VERSION);
	/* AES-128-GCM first: AES-NI makes it the fastest here, and kernel TLS offloads it. */
	SSL_CTX_set_ciphersuites(g.ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				 "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF |
			    SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(g.ctx, 0);	/* no resumption: every channel a full handshake */
	SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
	/* Limit: how much certificate chain a peer may make us buffer and parse. */
	SSL_CTX_set_max_cert_list(g.ctx, TLS_MAX_CERT_LIST);
	r = tls_io_setup(g.ctx, err, errlen);
	if (r)
		return r;
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

int tls_attach(int fd, bool server, const char *host, struct tls_conn **out, char *err,
	       size_t errlen)
{
	struct tls_conn *c;
	unsigned char addr[16];
	char name[INET6_ADDRSTRLEN] = "?";

	*out = NULL;
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
	if (!c || !(c->ssl = SSL_new(g.ctx)) || tls_io_bind(c)) {
		tls_free(c);
		snprintf(err, errlen, "cannot set up a TLS connection: out of memory");
		return -ENOMEM;
	}
	c->server = server;
	c->mode = g.mode;
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
	*out = c;
	return 0;
}

static int export(SSL *ssl, const char *label, const void *ctx, size_t ctxlen, uint8_t out[32])
{
	return SSL_export_keying_material(ssl, out, 32, label, strlen(label), ctx, ctxlen,
					  ctx != NULL) == 1 ? 0 : -EPROTO;
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
