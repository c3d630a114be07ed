// SPDX-License-Identifier: GPL-2.0
/* TCP connections and channel headers. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "tls.h"
#include "util.h"

static int split_hostport(const char *hostport, char *host, size_t hostlen, const char **port)
{
	const char *colon = strrchr(hostport, ':');

	if (!colon) {
		snprintf(host, hostlen, "0.0.0.0");
		*port = hostport;
		return 0;
	}
	if ((size_t)(colon - hostport) >= hostlen)
		return -EINVAL;
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = 0;
	if (host[0] == '[') {	/* [v6addr] */
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = 0;
	}
	*port = colon + 1;
	return 0;
}

int chan_connect(struct stream *s, const char *hostport, int connect_ms, int timeout_ms,
		 char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	struct tls_conn *tls;
	char host[256];
	const char *port;
	uint64_t t0;
	int r, one = 1;

	stream_init_fd(s, -1, NULL, timeout_ms);

	if (split_hostport(hostport, host, sizeof(host), &port) || !*port) {
		snprintf(err, errlen, "bad address '%s' (want HOST:PORT)", hostport);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	t0 = now_ns();
	for (;;) {
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		socklen_t sl = sizeof(int);

		if (fd < 0) {
			r = -errno;
			break;
		}
		r = 0;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen)) {
			r = -errno;
			if (r == -EINPROGRESS) {
				long left = connect_ms - (long)((now_ns() - t0) / 1000000);

				int so_err = 0;

				r = poll_fd(fd, POLLOUT, left > 0 ? left : 0);
				if (!r)
					r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_err, &sl) ?
					    -errno : -so_err;
			}
		}
		if (!r) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			freeaddrinfo(ai);
			r = tls_attach(fd, false, host, &tls, err, errlen);
			if (r) {
				close(fd);
				return r;
			}
			stream_init_fd(s, fd, tls, timeout_ms);
			return 0;
		}
		close(fd);
		if (r != -ECONNREFUSED || (now_ns() - t0) / 1000000 >= (uint64_t)connect_ms)
			break;
		usleep(50000);
	}
	freeaddrinfo(ai);
	snprintf(err, errlen, "cannot connect to %s: %s", hostport, strerror(-r));
	return r;
}

int chan_listen(const char *hostport, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
	char host[256];
	const char *port;
	int fd, r, one = 1;

	if (split_hostport(hostport, host, sizeof(host), &port) || !*port) {
		snprintf(err, errlen, "bad address '%s' (want [ADDR:]PORT)", hostport);
		return -EINVAL;
	}
	r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "%s: %s", hostport, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", hostport, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return r;
	}
	freeaddrinfo(ai);
	return fd;
}

int chan_accept(struct stream *s, int listen_fd, int wait_ms, int timeout_ms)
{
	int r = poll_fd(listen_fd, POLLIN, wait_ms), fd, one = 1;
	struct tls_conn *tls;
	char err[128];

	stream_init_fd(s, -1, NULL, timeout_ms);
	if (r)
		return r;
	fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	r = tls_attach(fd, true, NULL, &tls, err, sizeof(err));
	if (r) {
		close(fd);
		return r;
	}
	stream_init_fd(s, fd, tls, timeout_ms);
	return 0;
}

void chan_mark_urgent(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int tos = IPTOS_DSCP_EF, prio = 6;

	if (!getsockname(fd, (struct sockaddr *)&ss, &sl)) {
		if (ss.ss_family == AF_INET)
			setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
		else if (ss.ss_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos));
	}
	/* After IP_TOS, which sets a priority of its own from the TOS bits. */
	setsockopt(fd, SOL_SOCKET, SO_PRIORITY, &prio, sizeof(prio));
}

int chan_send_hdr(struct stream *s, uint16_t kind, uint64_t session, uint32_t index)
{
	struct wire_chan_hdr h = {
		.magic = WIRE_MAGIC, .version = WIRE_VERSION_MAX, .kind = kind,
		.session = session, .index = index,
	};

	int r = auth_client(s);		/* plain TCP: the token exchange first */

	if (!r)
		r = auth_hdr_send(s, &h);
	if (!r)
		r = stream_write(s, &h, sizeof(h));
	if (!r)
		r = auth_hdr_sent(s, &h);	/* the session key, or this channel's proof */
	return r;
}

int chan_recv_hdr(struct stream *s, struct wire_chan_hdr *h)
{
	int r = stream_read(s, h, sizeof(*h));

	if (r)
		return r;
	if (h->magic != WIRE_MAGIC && (h->magic & 0xff) == 22 && !s->tls)
		return stream_fail(s, EPROTO, "not a vmig connection: a TLS handshake, but "
				   "this side runs without --tls-creds/--tls-psk");
	if (h->magic != WIRE_MAGIC)
		return stream_fail(s, EPROTO, "not a vmig connection: bad magic 0x%08x "
				   "(expected 0x%08x)", h->magic, WIRE_MAGIC);
	if (h->version < WIRE_VERSION_MIN)
		return stream_fail(s, EPROTONOSUPPORT, "peer speaks wire version %u, this vmig "
				   "needs %u..%u", h->version, WIRE_VERSION_MIN,
				   WIRE_VERSION_MAX);
	if (h->kind < WIRE_CHAN_MAIN || h->kind > WIRE_CHAN_RETURN)
		return stream_fail(s, EPROTO, "unknown channel kind %u", h->kind);
	if (!h->session)
		return stream_fail(s, EPROTO, "channel header with session id 0");
	if (h->reserved0 || h->reserved1)
		return stream_fail(s, EPROTO, "channel header with non-zero reserved fields");
	if (h->kind == WIRE_CHAN_MULTIFD ? h->index >= WIRE_MAX_CHANNELS : h->index != 0)
		return stream_fail(s, EPROTO, "%s channel with index %u",
				   wire_kind_name(h->kind), h->index);
	return auth_hdr_recv(s, h);	/* the session key, or check the channel's proof */
}

/*
 * A vanilla postcopy of 1 GiB here held 2.5-3.5 MB unsent on the source and
 * 1.3-1.6 MB in the destination's receive queue (ss -tm): a requested page
 * waited 2-40 ms behind them.  Loopback moves 256 KiB in well under a
 * millisecond, and the destination places pages far slower than that: the
 * receive queue stays full, so a requested page waits for its size at the
 * placing rate (~2 Gbit/s).  64 KiB (the kernel doubles it) against 256:
 * the guest's slow accesses averaged 465/356/445 us against 774/530/528
 * (p99 2.4 against 2.9-4.7 ms), the whole postcopy took ~20 % longer.
 */
#define CHAN_SHALLOW_BYTES	(64 << 10)

void chan_shallow_send(int fd)
{
	int v = CHAN_SHALLOW_BYTES / 4;

	setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &v, sizeof(v));
}

void chan_shallow_recv(int fd)
{
	int v = CHAN_SHALLOW_BYTES;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
}
