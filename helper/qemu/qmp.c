// SPDX-License-Identifier: GPL-2.0
/* A small QMP client (see qmp.h). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qmp.h"
#include "util.h"

static int qmp_fail(struct qmp *q, int err, const char *what)
{
	snprintf(q->err, sizeof(q->err), "%s: %s", what,
		 err == -ECONNRESET ? "QEMU closed the QMP connection" : strerror(-err));
	return err;
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t t = now_ns();

	if (!deadline)
		return -1;
	return t >= deadline ? 0 : (int)((deadline - t) / 1000000 + 1);
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : now_ns() + (uint64_t)timeout_ms * 1000000;
}

/* Next line into q->reply (NUL-terminated, without the line end). */
static int read_line(struct qmp *q, uint64_t deadline)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		struct pollfd p = { .fd = q->fd, .events = POLLIN };
		ssize_t n;
		int r;

		if (nl) {
			size_t l = nl - q->buf;

			memcpy(q->reply, q->buf, l);
			q->reply[l] = 0;
			if (l && q->reply[l - 1] == '\r')
				q->reply[l - 1] = 0;
			q->len -= l + 1;
			memmove(q->buf, nl + 1, q->len);
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return -EMSGSIZE;
		r = poll(&p, 1, remaining_ms(deadline));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		n = recv(q->fd, q->buf + q->len, sizeof(q->buf) - q->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		if (n == 0)
			return -ECONNRESET;
		q->len += n;
	}
}

static int send_line(struct qmp *q, const char *cmd, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov[2] = {
		{ .iov_base = (void *)cmd, .iov_len = strlen(cmd) },
		{ .iov_base = "\n", .iov_len = 1 },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	struct cmsghdr *c;

	if (fd >= 0) {
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof(ctl);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (mh.msg_iovlen) {
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EPIPE ? -ECONNRESET : -errno;
		mh.msg_control = NULL;	/* the fd went with the first byte */
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov->iov_len) {
			n -= mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= n;
		}
	}
	return 0;
}

/* Scan a JSON string starting after its opening quote; unescape into out if set. */
static const char *scan_string(const char *p, char *out, size_t len)
{
	size_t o = 0;

	for (; *p && *p != '"'; p++) {
		char c = *p;

		if (c == '\\' && p[1]) {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'u':
				c = '?';
				if (strnlen(p, 5) == 5)
					p += 4;
				break;
			default: c = *p; break;	/* \" \\ \/ */
			}
		}
		if (out && o + 1 < len)
			out[o++] = c;
	}
	if (out && len)
		out[o] = 0;
	return *p ? p + 1 : p;
}

int qmp_json_str(const char *json, const char *key, char *out, size_t len)
{
	const char *p = json;
	char name[64];

	while (*p) {
		const char *after;

		if (*p != '"') {
			p++;
			continue;
		}
		after = scan_string(p + 1, name, sizeof(name));
		p = after;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ':' || strcmp(name, key))
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '"')
			continue;	/* not a string value */
		scan_string(p + 1, out, len);
		return 0;
	}
	return -ENOENT;
}

/* Is key a member name somewhere in json? */
static bool json_has(const char *json, const char *key)
{
	char dummy[2];

	if (!qmp_json_str(json, key, dummy, sizeof(dummy)))
		return true;
	/* Non-string values: look for "key" followed by ':'. */
	for (const char *p = json; (p = strstr(p, key)); p++) {
		const char *e = p + strlen(key);

		if (p > json && p[-1] == '"' && *e == '"') {
			e++;
			while (*e == ' ')
				e++;
			if (*e == ':')
				return true;
		}
	}
	return false;
}

/*
 * An event line: keep the time of a STOP, {"timestamp": {"seconds": S,
 * "microseconds": U}, "event": "STOP"} (QEMU stamps it with the real-time
 * clock when the vCPUs have stopped), and of a RESUME; and the status a
 * MIGRATION event gives ({"event": "MIGRATION", "data": {"status": ...}},
 * with the "events" migration capability).
 */
static void note_event(struct qmp *q, const char *line)
{
	char name[32];
	const char *s, *u;
	uint64_t t;

	if (qmp_json_str(line, "event", name, sizeof(name)))
		return;
	if (!strcmp(name, "MIGRATION")) {
		if (qmp_json_str(line, "status", q->mig_status, sizeof(q->mig_status)))
			q->mig_status[0] = 0;
		return;
	}
	if (strcmp(name, "STOP") && strcmp(name, "RESUME"))
		return;
	s = strstr(line, "\"seconds\":");
	u = strstr(line, "\"microseconds\":");
	if (!s || !u)
		return;
	t = strtoull(s + 10, NULL, 10) * 1000000 + strtoull(u + 15, NULL, 10);
	if (!strcmp(name, "STOP"))
		q->stop_event_us = t;
	else
		q->resume_event_us = t;
}

/* Read lines until a reply (events are skipped). */
static int read_reply(struct qmp *q, uint64_t deadline, const char *what)
{
	char cls[64], desc[400];
	int r;

	for (;;) {
		r = read_line(q, deadline);
		if (r)
			return qmp_fail(q, r, what);
		if (json_has(q->reply, "event")) {
			note_event(q, q->reply);
			continue;
		}
		if (json_has(q->reply, "return"))
			return 0;
		if (json_has(q->reply, "error")) {
			if (qmp_json_str(q->reply, "class", cls, sizeof(cls)))
				snprintf(cls, sizeof(cls), "Error");
			if (qmp_json_str(q->reply, "desc", desc, sizeof(desc)))
				snprintf(desc, sizeof(desc), "(no description)");
			snprintf(q->err, sizeof(q->err), "%s: QEMU refused it: %s: %s", what,
				 cls, desc);
			return -EREMOTEIO;
		}
		if (json_has(q->reply, "QMP"))
			continue;	/* a greeting on a reconnect */
		snprintf(q->err, sizeof(q->err), "%s: unexpected QMP line: %.200s", what,
			 q->reply);
		return -EPROTO;
	}
}

int qmp_connect(struct qmp *q, const char *path, int timeout_ms)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = deadline_of(timeout_ms);
	int r;

	q->fd = -1;
	q->len = 0;
	q->err[0] = 0;
	q->stop_event_us = 0;
	q->mig_status[0] = 0;
	q->resume_event_us = 0;
	pthread_mutex_init(&q->lock, NULL);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(q->err, sizeof(q->err), "QMP socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	for (;;) {
		q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (q->fd < 0)
			return qmp_fail(q, -errno, "QMP socket");
		if (!connect(q->fd, (struct sockaddr *)&sa, sizeof(sa)))
			break;
		r = -errno;
		close(q->fd);
		q->fd = -1;
		if ((r != -ENOENT && r != -ECONNREFUSED) || !remaining_ms(deadline)) {
			snprintf(q->err, sizeof(q->err), "cannot connect to QMP at %s: %s", path,
				 strerror(-r));
			return r;
		}
		usleep(20000);
	}
	r = read_line(q, deadline);
	if (r)
		return qmp_fail(q, r, "QMP greeting");
	if (!json_has(q->reply, "QMP")) {
		snprintf(q->err, sizeof(q->err), "%s does not greet like QMP: %.200s", path,
			 q->reply);
		return -EPROTO;
	}
	r = qmp_cmd(q, "{\"execute\":\"qmp_capabilities\"}", -1, remaining_ms(deadline),
		    q->err, sizeof(q->err));
	return r;
}

int qmp_cmd(struct qmp *q, const char *cmd, int fd, int timeout_ms, char *out, size_t len)
{
	char what[96];
	int r;

	if (qmp_json_str(cmd, "execute", what, sizeof(what)))
		snprintf(what, sizeof(what), "QMP command");
	pthread_mutex_lock(&q->lock);
	if (q->fd < 0) {
		snprintf(q->err, sizeof(q->err), "%s: not connected to QMP", what);
		r = -ENOTCONN;
	} else {
		r = send_line(q, cmd, fd);
		if (r)
			qmp_fail(q, r, what);
		else
			r = read_reply(q, deadline_of(timeout_ms), what);
	}
	if (out && len && out != q->err)
		snprintf(out, len, "%s", r ? q->err : q->reply);
	pthread_mutex_unlock(&q->lock);
	return r;
}

int qmp_poll_events(struct qmp *q)
{
	int r = 0;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		char *nl;
		ssize_t n;

		while ((nl = memchr(q->buf, '\n', q->len))) {
			*nl = 0;
			note_event(q, q->buf);
			q->len -= nl + 1 - q->buf;
			memmove(q->buf, nl + 1, q->len);
		}
		if (q->fd < 0 || q->len == sizeof(q->buf)) {
			r = q->fd < 0 ? -ECONNRESET : 0;
			break;
		}
		n = recv(q->fd, q->buf + q->len, sizeof(q->buf) - q->len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			r = -ECONNRESET;
			break;
		}
		q->len += n;
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void qmp_close(struct qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	pthread_mutex_destroy(&q->lock);
}
