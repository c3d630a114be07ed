// SPDX-License-Identifier: GPL-2.0
/* Who may join a session: connection authentication, session keys, binding proofs. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "tls.h"

#define LBL_DST		"vmig-auth-dst-v1"
#define LBL_SRC		"vmig-auth-src-v1"
#define LBL_CONN	"vmig-auth-conn-v1"
#define LBL_SESSION	"vmig-session-v1"
#define LBL_CHANNEL	"vmig-channel-v1"
#define LBL_RESUME	"vmig-resume-v1"
#define LBL_RESUMED	"vmig-resumed-v1"
#define LBL_NOTSWITCHED	"vmig-notswitched-v1"

static struct {
	enum auth_mode mode;
	uint8_t token[AUTH_TOKEN_MAX];
	size_t token_len;
	pthread_mutex_t lock;
	bool have_session, have_root;
	uint64_t session;
	uint8_t key[AUTH_KEY_LEN];	/* current: channels bind to it */
	uint8_t root[AUTH_KEY_LEN];	/* the first: RESUME proves it */
	uint8_t root_peer[AUTH_KEY_LEN];	/* TLS: who established it */
	bool inject_key, inject_session;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void auth_cleanup(void)
{
	OPENSSL_cleanse(g.token, sizeof(g.token));
	OPENSSL_cleanse(g.key, sizeof(g.key));
	OPENSSL_cleanse(g.root, sizeof(g.root));
}

static int load_token(const char *file, char *err, size_t errlen)
{
	struct stat st;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the token file %s: %s", file, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "the token file %s is not a regular file", file);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		snprintf(err, errlen, "the token file %s is readable by group or others; "
			 "whoever reads it can migrate into this guest (chmod 600 %s)", file, file);
		return -EACCES;
	}
	n = read(fd, g.token, sizeof(g.token));
	close(fd);
	while (n > 0 && (g.token[n - 1] == '\n' || g.token[n - 1] == '\r'))
		n--;
	if (n < AUTH_TOKEN_MIN || (size_t)n >= sizeof(g.token)) {
		OPENSSL_cleanse(g.token, sizeof(g.token));
		snprintf(err, errlen, "the token file %s must hold %d..%d bytes (e.g. "
			 "'openssl rand -hex 32 >%s')", file, AUTH_TOKEN_MIN, AUTH_TOKEN_MAX - 1,
			 file);
		return -EINVAL;
	}
	g.token_len = n;
	return 0;
}

/*
 * OpenSSL reads its configuration and sets up SHA-256 at the first use:
 * 1-7 ms, which the first connection's handshake would wait for (on both
 * sides, in the migration's setup).  Done here, before any peer.
 */
static void warm_up(void)
{
	uint8_t out[AUTH_KEY_LEN];
	unsigned int len = sizeof(out);
	static const uint8_t zero[32];

	HMAC(EVP_sha256(), zero, sizeof(zero), zero, sizeof(zero), out, &len);
}

int auth_configure(bool tls, const char *token_file, bool insecure, char *err, size_t errlen)
{
	int n = !!tls + !!token_file + !!insecure;

	if (n != 1) {
		snprintf(err, errlen, n ? "choose one of --tls-creds/--tls-psk, --token-file and "
			 "--insecure" : "say who may connect: --tls-creds DIR or --tls-psk FILE "
			 "(TLS), --token-file FILE (a shared secret, plain TCP), or --insecure "
			 "(anyone who can reach the port)");
		return -EDOM;
	}
	atexit(auth_cleanup);
	warm_up();
	if (tls) {
		g.mode = AUTH_TLS;
		return 0;
	}
	if (insecure) {
		g.mode = AUTH_INSECURE;
		return 0;
	}
	g.mode = AUTH_TOKEN;
	return load_token(token_file, err, errlen);
}

enum auth_mode auth_mode(void)
{
	return g.mode;
}

const char *auth_mode_name(void)
{
	switch (g.mode) {
	case AUTH_TLS: return "TLS";
	case AUTH_TOKEN: return "token";
	case AUTH_INSECURE: return "insecure";
	default: return "none";
	}
}

int auth_inject(const char *what)
{
	if (!strcmp(what, "key"))
		g.inject_key = true;
	else if (!strcmp(what, "session"))
		g.inject_session = true;
	else
		return -EINVAL;
	return 0;
}

/* HMAC-SHA256 over label || a || b (b may be NULL). */
static int mac3(const uint8_t *key, size_t keylen, const char *label, const void *a,
		size_t alen, const void *b, size_t blen, uint8_t out[AUTH_KEY_LEN])
{
	uint8_t buf[64 + 2 * 64];
	size_t ll = strlen(label);
	unsigned int len = AUTH_KEY_LEN;
	static const uint8_t empty;

	if (ll + alen + blen > sizeof(buf))
		return -EINVAL;
	memcpy(buf, label, ll);
	memcpy(buf + ll, a, alen);
	if (blen)
		memcpy(buf + ll + alen, b, blen);
	if (!HMAC(EVP_sha256(), keylen ? key : &empty, keylen, buf, ll + alen + blen, out, &len))
		return -EPROTO;
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

static int nonce_mac(const char *label, const uint8_t nc[32], const uint8_t nd[32],
		     uint8_t out[AUTH_KEY_LEN])
{
	uint8_t n[64];

	memcpy(n, nc, 32);
	memcpy(n + 32, nd, 32);
	return mac3(g.token, g.token_len, label, n, sizeof(n), NULL, 0, out);
}

static uint16_t my_method(void)
{
	return g.mode == AUTH_TOKEN ? WIRE_AUTH_TOKEN : WIRE_AUTH_NONE;
}

int auth_client(struct stream *s)
{
	struct wire_auth_hello hello = { .magic = WIRE_AUTH_MAGIC, .version = WIRE_AUTH_VERSION,
					 .method = my_method() };
	struct wire_auth_challenge ch;
	uint8_t want[AUTH_KEY_LEN];
	int r;

	if (g.mode == AUTH_TLS || g.mode == AUTH_UNSET)
		return 0;
	if (getrandom(hello.nonce, sizeof(hello.nonce), 0) != sizeof(hello.nonce))
		return stream_fail(s, EIO, "no random bytes for a nonce");
	r = stream_write(s, &hello, sizeof(hello));
	if (!r)
		r = stream_read(s, &ch, sizeof(ch));
	if (r)
		return r;
	if (ch.magic != WIRE_AUTH_MAGIC) {
		uint8_t b = ch.magic & 0xff;

		return stream_fail(s, EPROTO, "the destination did not answer the authentication%s",
				   b == 22 || b == 21 ? ": it runs TLS (give this side the same "
				   "--tls-creds/--tls-psk)" : " (not a vmig listener, or an older one)");
	}
	if (ch.status == WIRE_AUTH_WANT_TOKEN)
		return stream_fail(s, EACCES, "the destination requires a token: give both sides "
				   "the same --token-file");
	if (ch.status == WIRE_AUTH_WANT_NONE)
		return stream_fail(s, EACCES, "the destination runs --insecure, this side "
				   "--token-file: give both sides the same");
	if (ch.status)
		return stream_fail(s, EPROTO, "the destination refused the authentication "
				   "(status %u)", ch.status);
	r = nonce_mac(LBL_DST, hello.nonce, ch.nonce, want);
	if (r)
		return stream_fail(s, EPROTO, "HMAC failed");
	if (CRYPTO_memcmp(want, ch.mac, sizeof(want)))
		return stream_fail(s, EACCES, "the destination does not know this side's token: "
				   "wrong --token-file on one side, or not the destination you "
				   "meant");
	r = nonce_mac(LBL_SRC, hello.nonce, ch.nonce, want);
	if (!r)
		r = nonce_mac(LBL_CONN, hello.nonce, ch.nonce, s->conn_secret);
	if (r)
		return stream_fail(s, EPROTO, "HMAC failed");
	r = stream_write(s, want, sizeof(want));
	if (r)
		return r;
	s->authed = true;
	return 0;
}

int auth_server(struct stream *s)
{
	struct wire_auth_challenge ch = { .magic = WIRE_AUTH_MAGIC };
	struct wire_auth_hello hello;
	uint8_t got[AUTH_KEY_LEN], want[AUTH_KEY_LEN];
	int r;

	if (g.mode == AUTH_TLS || g.mode == AUTH_UNSET)
		return 0;
	r = stream_read(s, &hello, sizeof(hello));
	if (r)
		return r;
	if (hello.magic != WIRE_AUTH_MAGIC) {
		uint8_t b = hello.magic & 0xff;

		if (hello.magic == WIRE_MAGIC)
			return stream_fail(s, EACCES, "a vmig channel without authentication "
					   "(an older vmig): refused");
		return stream_fail(s, EPROTO, "not a vmig connection%s", b == 22 ?
				   ": a TLS handshake, but this side runs without "
				   "--tls-creds/--tls-psk" : "");
	}
	if (hello.version != WIRE_AUTH_VERSION)
		ch.status = WIRE_AUTH_BAD_VERSION;
	else if (hello.method != my_method())
		ch.status = my_method() == WIRE_AUTH_TOKEN ? WIRE_AUTH_WANT_TOKEN :
			    WIRE_AUTH_WANT_NONE;
	if (ch.status) {
		stream_write(s, &ch, sizeof(ch));
		return stream_fail(s, EACCES, "a source %s: refused", ch.status ==
				   WIRE_AUTH_BAD_VERSION ? "with another authentication version" :
				   ch.status == WIRE_AUTH_WANT_TOKEN ? "without a token (the "
				   "destination runs --token-file; give both sides the same)" :
				   "with a token, but the destination runs --insecure");
	}
	if (getrandom(ch.nonce, sizeof(ch.nonce), 0) != sizeof(ch.nonce))
		return stream_fail(s, EIO, "no random bytes for a nonce");
	if (nonce_mac(LBL_DST, hello.nonce, ch.nonce, ch.mac) ||
	    nonce_mac(LBL_SRC, hello.nonce, ch.nonce, want))
		return stream_fail(s, EPROTO, "HMAC failed");
	r = stream_write(s, &ch, sizeof(ch));
	if (!r)
		r = stream_read(s, got, sizeof(got));
	if (r)
		return r;
	if (CRYPTO_memcmp(got, want, sizeof(got)))
		return stream_fail(s, EACCES, "a source that does not know the token: refused");
	if (nonce_mac(LBL_CONN, hello.nonce, ch.nonce, s->conn_secret))
		return stream_fail(s, EPROTO, "HMAC failed");
	s->authed = true;
	return 0;
}

/* This connection's secret: the exchange's, or the TLS exporter's (after the handshake). */
static int conn_secret(struct stream *s)
{
	int r;

	if (s->authed)
		return 0;
	if (g.mode != AUTH_TLS)
		return stream_fail(s, EACCES, "connection not authenticated");
	r = tls_export_conn(s, s->conn_secret);
	if (!r)
		s->authed = true;
	return r;
}

static int derive_main(struct stream *s, uint64_t session)
{
	int r = conn_secret(s);

	if (r)
		return r;
	if (g.mode == AUTH_TLS)
		r = tls_export_session(s, session, s->main_key);
	else if (mac3(s->conn_secret, sizeof(s->conn_secret), LBL_SESSION, &session,
		      sizeof(session), NULL, 0, s->main_key))
		r = stream_fail(s, EPROTO, "HMAC failed");
	if (r)
		return r;
	s->main_session = session;
	s->main_keyed = true;
	return 0;
}

static int proof(struct stream *s, const struct wire_chan_hdr *h, uint8_t out[AUTH_KEY_LEN])
{
	uint8_t key[AUTH_KEY_LEN];
	int r = conn_secret(s);

	if (r)
		return r;
	pthread_mutex_lock(&g.lock);
	memcpy(key, g.key, sizeof(key));
	pthread_mutex_unlock(&g.lock);
	r = mac3(key, sizeof(key), LBL_CHANNEL, h, sizeof(*h), s->conn_secret,
		 sizeof(s->conn_secret), out);
	OPENSSL_cleanse(key, sizeof(key));
	return r ? stream_fail(s, EPROTO, "HMAC failed") : 0;
}

static bool have_session(uint64_t *session)
{
	bool ok;

	pthread_mutex_lock(&g.lock);
	ok = g.have_session;
	*session = g.session;
	pthread_mutex_unlock(&g.lock);
	return ok;
}

int auth_hdr_send(struct stream *s, struct wire_chan_hdr *h)
{
	(void)s;
	if (h->kind != WIRE_CHAN_MAIN && g.inject_session)
		h->session ^= 2;
	return 0;
}

int auth_hdr_sent(struct stream *s, const struct wire_chan_hdr *h)
{
	uint8_t p[AUTH_KEY_LEN];
	uint64_t session;
	int r;

	if (g.mode == AUTH_UNSET)
		return 0;
	if (h->kind == WIRE_CHAN_MAIN)
		return derive_main(s, h->session);
	if (!have_session(&session))
		return stream_fail(s, EPROTO, "a %s channel before the main channel's handshake",
				   wire_kind_name(h->kind));
	r = proof(s, h, p);
	if (!r)
		r = stream_write(s, p, sizeof(p));
	return r;
}

int auth_hdr_recv(struct stream *s, const struct wire_chan_hdr *h)
{
	uint8_t got[AUTH_KEY_LEN], want[AUTH_KEY_LEN];
	uint64_t session;
	int r;

	if (g.mode == AUTH_UNSET)
		return 0;
	if (h->kind == WIRE_CHAN_MAIN)
		return derive_main(s, h->session);
	/*
	 * Page channels are only ever read through the stream, never poll()ed
	 * between packets: let OpenSSL read ahead, many records per syscall.
	 */
	if (h->kind == WIRE_CHAN_MULTIFD && s->tls)
		tls_read_ahead(s);
	if (!have_session(&session))
		return stream_fail(s, EPROTO, "a %s channel before any main channel finished "
				   "its handshake: refused", wire_kind_name(h->kind));
	if (h->session != session)
		return stream_fail(s, EPROTO, "a %s channel of another session: refused",
				   wire_kind_name(h->kind));
	r = stream_read(s, got, sizeof(got));
	if (!r)
		r = proof(s, h, want);
	if (r)
		return r;
	if (CRYPTO_memcmp(got, want, sizeof(got)))
		return stream_fail(s, EACCES, "a %s channel without proof of the session's key "
				   "(another session, or a replay): refused",
				   wire_kind_name(h->kind));
	return 0;
}

void auth_session_established(struct stream *s)
{
	if (!s->main_keyed)
		return;
	pthread_mutex_lock(&g.lock);
	memcpy(g.key, s->main_key, sizeof(g.key));
	g.session = s->main_session;
	g.have_session = true;
	if (!g.have_root) {
		memcpy(g.root, s->main_key, sizeof(g.root));
		if (g.mode == AUTH_TLS)
			tls_peer_id(s, g.root_peer);
		g.have_root = true;
	}
	if (g.inject_key)
		getrandom(g.key, sizeof(g.key), 0);
	pthread_mutex_unlock(&g.lock);
}

bool auth_root_export(uint8_t out[AUTH_ROOT_LEN])
{
	bool have;

	pthread_mutex_lock(&g.lock);
	have = g.have_root;
	if (have) {
		memcpy(out, g.root, AUTH_KEY_LEN);
		memcpy(out + AUTH_KEY_LEN, g.root_peer, AUTH_KEY_LEN);
	}
	pthread_mutex_unlock(&g.lock);
	return have;
}

void auth_root_import(const uint8_t in[AUTH_ROOT_LEN])
{
	pthread_mutex_lock(&g.lock);
	memcpy(g.root, in, AUTH_KEY_LEN);
	memcpy(g.root_peer, in + AUTH_KEY_LEN, AUTH_KEY_LEN);
	g.have_root = true;
	pthread_mutex_unlock(&g.lock);
}

static int resume_mac(struct stream *s, const char *label, uint8_t out[AUTH_KEY_LEN])
{
	uint8_t root[AUTH_KEY_LEN];
	bool have;
	int r = conn_secret(s);

	if (r)
		return r;
	pthread_mutex_lock(&g.lock);
	have = g.have_root;
	memcpy(root, g.root, sizeof(root));
	pthread_mutex_unlock(&g.lock);
	if (!have)
		return stream_fail(s, EPROTO, "RESUME before any session was established");
	r = mac3(root, sizeof(root), label, &s->main_session, sizeof(s->main_session),
		 s->conn_secret, sizeof(s->conn_secret), out);
	OPENSSL_cleanse(root, sizeof(root));
	return r ? stream_fail(s, EPROTO, "HMAC failed") : 0;
}

/*
 * The proofs of a resumed session: HMAC(root key, label || session ||
 * this connection's secret).  Nothing is proven or checked without a
 * configured mode (the fuzz targets).
 */
static int root_proof(struct stream *s, const char *label, uint8_t out[AUTH_KEY_LEN])
{
	if (g.mode == AUTH_UNSET) {
		memset(out, 0, AUTH_KEY_LEN);
		return 0;
	}
	return resume_mac(s, label, out);
}

/* 0 when @got is the proof for @label, else the stream fails with @refusal. */
static int root_check(struct stream *s, const char *label, const uint8_t got[AUTH_KEY_LEN],
		      const char *refusal)
{
	uint8_t want[AUTH_KEY_LEN];
	int r;

	if (g.mode == AUTH_UNSET)
		return 0;
	r = resume_mac(s, label, want);
	if (r)
		return r;
	if (CRYPTO_memcmp(got, want, sizeof(want)))
		return stream_fail(s, EACCES, "%s", refusal);
	return 0;
}

int auth_resume_proof(struct stream *s, uint8_t out[AUTH_KEY_LEN])
{
	return root_proof(s, LBL_RESUME, out);
}

int auth_resume_check(struct stream *s, const uint8_t got[AUTH_KEY_LEN])
{
	uint8_t peer[AUTH_KEY_LEN];
	int r;

	r = root_check(s, LBL_RESUME, got, "RESUME without proof of the session's key (not "
		       "the source that began it): refused");
	if (r || g.mode != AUTH_TLS)
		return r;
	tls_peer_id(s, peer);
	pthread_mutex_lock(&g.lock);
	r = CRYPTO_memcmp(peer, g.root_peer, sizeof(peer));
	pthread_mutex_unlock(&g.lock);
	if (r)
		return stream_fail(s, EACCES, "RESUME from another TLS identity than the "
				   "source that began the session: refused");
	return 0;
}

int auth_resumed_proof(struct stream *s, uint8_t out[AUTH_KEY_LEN])
{
	return root_proof(s, LBL_RESUMED, out);
}

int auth_resumed_check(struct stream *s, const uint8_t got[AUTH_KEY_LEN])
{
	return root_check(s, LBL_RESUMED, got, "RESUMED without proof of the session's key "
			  "(not the destination that holds the session): nothing re-sent");
}

int auth_notswitched_proof(struct stream *s, uint8_t out[AUTH_KEY_LEN])
{
	return root_proof(s, LBL_NOTSWITCHED, out);
}

int auth_notswitched_check(struct stream *s, const uint8_t got[AUTH_KEY_LEN])
{
	return root_check(s, LBL_NOTSWITCHED, got, "NOT_SWITCHED without proof of the "
			  "session's key (not the destination that holds the session): the "
			  "guest stays paused");
}
