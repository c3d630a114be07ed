// SPDX-License-Identifier: GPL-2.0
/* Stream framing: reads and writes with deadlines, packet headers. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "tls.h"
#include "util.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "the wire is little-endian; a big-endian port converts in stream.c");
_Static_assert(sizeof(struct wire_chan_hdr) == 32, "channel header is 32 bytes");
_Static_assert(sizeof(struct wire_pkt_hdr) == 8, "packet header is 8 bytes");

static const char *const pkt_names[] = {
	[WIRE_PKT_HELLO] = "HELLO", [WIRE_PKT_HELLO_REPLY] = "HELLO_REPLY",
	[WIRE_PKT_PAGES] = "PAGES", [WIRE_PKT_END] = "END", [WIRE_PKT_ROUND] = "ROUND",
	[WIRE_PKT_COMPLETE] = "COMPLETE", [WIRE_PKT_RESUMED] = "RESUMED",
	[WIRE_PKT_ERROR] = "ERROR", [WIRE_PKT_NOP] = "NOP",
	[WIRE_PKT_DEVICES] = "DEVICES", [WIRE_PKT_DEVSTATE] = "DEVSTATE",
	[WIRE_PKT_DISCARD] = "DISCARD",
	[WIRE_PKT_POSTCOPY] = "POSTCOPY", [WIRE_PKT_REQ] = "REQ", [WIRE_PKT_DONE] = "DONE", [WIRE_PKT_RESUME] = "RESUME", [WIRE_PKT_RECEIVED] = "RECEIVED",
	[WIRE_PKT_NOT_SWITCHED] = "NOT_SWITCHED", [WIRE_PKT_DEV_LOAD] = "DEV_LOAD",
};

const char *wire_pkt_name(unsigned int type)
{
	return type && type <= WIRE_PKT_TYPE_MAX ? pkt_names[type] : "unknown";
}

const char *wire_kind_name(unsigned int kind)
{
	switch (kind) {
	case WIRE_CHAN_MAIN: return "main";
	case WIRE_CHAN_MULTIFD: return "multifd";
	case WIRE_CHAN_PREEMPT: return "preempt";
	case WIRE_CHAN_RETURN: return "return-path";
	default: return "unknown";
	}
}

void stream_init_fd(struct stream *s, int fd, struct tls_conn *tls, int timeout_ms)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->tls = tls;
	s->timeout_ms = timeout_ms;
}

void stream_view(struct stream *to, const struct stream *from, int timeout_ms)
{
	stream_init_fd(to, from->fd, from->tls, timeout_ms);
}

void stream_move(struct stream *to, struct stream *from, int timeout_ms)
{
	stream_view(to, from, timeout_ms);
	from->fd = -1;
	from->tls = NULL;
}

void stream_close(struct stream *s)
{
	tls_free(s->tls);
	s->tls = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void stream_init_mem(struct stream *s, const void *buf, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->mem = buf;
	s->mem_len = len;
}

int stream_fail(struct stream *s, int code, const char *fmt, ...)
{
	va_list ap;

	if (!s->err[0]) {
		va_start(ap, fmt);
		vsnprintf(s->err, sizeof(s->err), fmt, ap);
		va_end(ap);
	}
	return -code;
}

int stream_wait_ms(const struct stream *s)
{
	uint64_t now, left;

	if (!s->deadline_ns)
		return s->timeout_ms;
	now = now_ns();
	if (now >= s->deadline_ns)
		return 0;
	/* Rounded up: a wait the deadline cut short ends after it, and says so. */
	left = (s->deadline_ns - now + 999999) / 1000000;
	return left < (uint64_t)s->timeout_ms ? (int)left : s->timeout_ms;
}

int stream_wait(struct stream *s, short events)
{
	return poll_fd(s->fd, events, stream_wait_ms(s));
}

static int io_fail(struct stream *s, int err, const char *what)
{
	if (err == -ECONNRESET)
		return stream_fail(s, ECONNRESET, "peer closed the connection (%s)", what);
	if (err == -ETIMEDOUT && s->deadline_ns && now_ns() >= s->deadline_ns)
		return stream_fail(s, ETIMEDOUT, "the peer did not finish its part in time (%s)",
				   what);
	if (err == -ETIMEDOUT)
		return stream_fail(s, ETIMEDOUT, "no data from peer for %d ms (%s)",
				   s->timeout_ms, what);
	return stream_fail(s, -err, "%s failed: %s", what, strerror(-err));
}

/* Past n bytes of the iovecs: the ones done dropped, the next one trimmed. */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

/* Into the read-ahead buffer, what fd has (at most ra_cap): as read(2). */
static ssize_t ra_fill(struct stream *s)
{
	struct iovec iov = { .iov_base = s->ra, .iov_len = s->ra_cap };
	ssize_t n = s->tls ? tls_readv(s->tls, s, &iov, 1) :
			     recv(s->fd, s->ra, s->ra_cap, MSG_DONTWAIT);

	if (n > 0) {
		s->ra_pos = 0;
		s->ra_len = n;
		s->bytes_in += n;
	}
	return n;
}

/* Whether a read of these iovecs goes through the read-ahead buffer. */
static bool ra_use(const struct stream *s, const struct iovec *iov, int cnt)
{
	size_t left = 0;
	int k;

	if (!s->ra)
		return false;
	for (k = 0; k < cnt && left < s->ra_cap; k++)
		left += iov[k].iov_len;
	return left < s->ra_cap;
}

int stream_readv(struct stream *s, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t n;
		bool fill = false;

		if (s->ra_pos < s->ra_len) {
			n = s->ra_len - s->ra_pos;
			if ((size_t)n > iov->iov_len)
				n = iov->iov_len;
			memcpy(iov->iov_base, s->ra + s->ra_pos, n);
			s->ra_pos += n;
			iov_advance(&iov, &cnt, n);
			continue;
		}
		if (s->fd < 0) {
			size_t k = iov->iov_len;

			if (k > s->mem_len - s->mem_pos)
				return io_fail(s, -ECONNRESET, "read");
			memcpy(iov->iov_base, s->mem + s->mem_pos, k);
			s->mem_pos += k;
			n = k;
		} else {
			/* Non-blocking socket: read first, wait only when nothing is there. */
			fill = ra_use(s, iov, cnt);
			n = fill ? ra_fill(s) :
			    s->tls ? tls_readv(s->tls, s, iov, cnt) :
				     readv(s->fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt);
			if (n < 0) {
				int r;

				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return io_fail(s, errno == ECONNRESET ? -ECONNRESET : -errno,
						       "read");
				/* Never wait for more than this read still needs. */
				if (s->lowat > 1) {
					size_t left = 0;
					int k;

					for (k = 0; k < cnt; k++)
						left += iov[k].iov_len;
					if (left < (size_t)s->lowat)
						stream_set_lowat(s, left);
				}
				r = stream_wait(s, POLLIN);
				if (r)
					return io_fail(s, r, "read");
				continue;
			}
			if (n == 0)
				return io_fail(s, -ECONNRESET, "read");
			if (fill)
				continue;	/* counted; served from the buffer */
		}
		s->bytes_in += n;
		iov_advance(&iov, &cnt, n);
	}
	return 0;
}

void stream_readahead(struct stream *s, void *buf, size_t cap)
{
	s->ra = buf;
	s->ra_cap = buf ? cap : 0;
	s->ra_pos = s->ra_len = 0;
}

void stream_set_lowat(struct stream *s, size_t bytes)
{
	int v = bytes > (1u << 18) ? 1 << 18 : (int)bytes;

	/* TLS: bytes on the socket are not bytes of payload; leave it at 1. */
	if (s->fd >= 0 && !s->tls && v != s->lowat) {
		setsockopt(s->fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v));
		s->lowat = v;
	}
}

bool stream_buffered(const struct stream *s)
{
	return s->ra_pos < s->ra_len || (s->fd >= 0 && s->tls && tls_pending(s));
}

bool stream_ready(struct stream *s)
{
	ssize_t n;
	char b;

	if (s->ra_pos < s->ra_len)
		return true;
	if (s->fd < 0)
		return false;	/* closed: nothing to read, as poll() ignores it */
	if (s->tls && tls_pending(s))
		return true;
	/* With a read-ahead buffer, take what is there: the read that follows is free. */
	n = s->ra && !s->tls ? ra_fill(s) : recv(s->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n >= 0)
		return true;	/* data, or the end: reading will say which */
	return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

int stream_read(struct stream *s, void *buf, size_t n)
{
	struct iovec iov = { .iov_base = buf, .iov_len = n };

	return n ? stream_readv(s, &iov, 1) : 0;
}

int stream_writev(struct stream *s, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = cnt > IOV_MAX ? IOV_MAX : cnt };
		ssize_t n;

		if (s->fd < 0) {
			n = 0;
			while (cnt > 0 && !iov->iov_len) {
				iov++;
				cnt--;
			}
			if (cnt > 0)
				n = iov->iov_len;
		} else {
			n = s->tls ? tls_writev(s->tls, s, iov, cnt) :
				     sendmsg(s->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				int r;

				if (errno == EINTR)
					continue;
				if (errno != EAGAIN)
					return io_fail(s, errno == EPIPE || errno == ECONNRESET ?
						       -ECONNRESET : -errno, "write");
				r = stream_wait(s, POLLOUT);
				if (r)
					return io_fail(s, r == -ETIMEDOUT ? -ETIMEDOUT : r, "write");
				continue;
			}
		}
		s->bytes_out += n;
		iov_advance(&iov, &cnt, n);
	}
	return 0;
}

int stream_write(struct stream *s, const void *buf, size_t n)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = n };

	return stream_writev(s, &iov, 1);
}

int stream_recv_hdr(struct stream *s, struct wire_pkt_hdr *h)
{
	int r = stream_read(s, h, sizeof(*h));

	if (r)
		return r;
	if (!h->type || h->type > WIRE_PKT_TYPE_MAX)
		return stream_fail(s, EPROTO, "malformed packet: unknown type %u", h->type);
	if (h->flags)
		return stream_fail(s, EPROTO, "malformed %s packet: flags 0x%x",
				   wire_pkt_name(h->type), h->flags);
	if (h->len > WIRE_MAX_PKT)
		return stream_fail(s, EMSGSIZE, "oversized %s packet: %u bytes (limit %u)",
				   wire_pkt_name(h->type), h->len, (unsigned int)WIRE_MAX_PKT);
	return 0;
}

int stream_send_pkt(struct stream *s, uint16_t type, const void *payload, uint32_t len)
{
	struct wire_pkt_hdr h = { .type = type, .len = len };
	struct iovec iov[2] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};

	return stream_writev(s, iov, len ? 2 : 1);
}

void stream_send_error(struct stream *s, int code, const char *msg)
{
	struct wire_error e = { .code = code };
	size_t n = strnlen(msg, WIRE_MAX_MSG);
	struct wire_pkt_hdr h = { .type = WIRE_PKT_ERROR, .len = sizeof(e) + n };
	struct iovec iov[3] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = &e, .iov_len = sizeof(e) },
		{ .iov_base = (void *)msg, .iov_len = n },
	};
	int saved = s->timeout_ms;
	char err[sizeof(s->err)];

	memcpy(err, s->err, sizeof(err));
	s->timeout_ms = 1000;
	stream_writev(s, iov, 3);
	s->timeout_ms = saved;
	memcpy(s->err, err, sizeof(err));
}

int stream_read_error(struct stream *s, const struct wire_pkt_hdr *h)
{
	char msg[WIRE_MAX_MSG + 1];
	struct wire_error e;
	size_t n;
	int r;

	if (h->len < sizeof(e) || h->len > sizeof(e) + WIRE_MAX_MSG)
		return stream_fail(s, EPROTO, "malformed ERROR packet: %u bytes", h->len);
	n = h->len - sizeof(e);
	r = stream_read(s, &e, sizeof(e));
	if (!r)
		r = stream_read(s, msg, n);
	if (r)
		return r;
	msg[n] = 0;
	s->peer_code = e.code;
	for (size_t i = 0; i < n; i++)
		if (msg[i] < 0x20 || msg[i] > 0x7e)
			msg[i] = '?';
	return stream_fail(s, ECONNABORTED, "peer reported an error: %s", msg);
}
