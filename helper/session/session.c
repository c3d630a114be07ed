// SPDX-License-Identifier: GPL-2.0
/* A migration's connections (session.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "channel.h"
#include "session.h"
#include "util.h"
#include "wire.h"

void session_init(struct session *s, const char *peer, int timeout_ms)
{
	memset(s, 0, sizeof(*s));
	s->main.fd = -1;
	s->timeout_ms = timeout_ms;
	session_set_peer(s, peer);
}

void session_new_id(struct session *s)
{
	if (getrandom(&s->id, sizeof(s->id), 0) != sizeof(s->id))
		s->id = now_ns() ^ ((uint64_t)getpid() << 32);
	s->id |= 1;
}

void session_set_peer(struct session *s, const char *peer)
{
	snprintf(s->peer, sizeof(s->peer), "%s", peer ? peer : "");
}

int session_connect_main(struct session *s, int wait_ms, char *err, size_t errlen)
{
	int fd = chan_connect(s->peer, wait_ms, err, errlen);

	if (fd < 0)
		return fd;
	session_adopt_main(s, fd);
	return chan_send_hdr(&s->main, WIRE_CHAN_MAIN, s->id, 0);
}

void session_adopt_main(struct session *s, int fd)
{
	stream_init_fd(&s->main, fd, s->timeout_ms);
	s->main_open = true;
}

int session_connect_chan(struct session *s, uint16_t kind, uint32_t index, struct stream *tmp,
			 char *err, size_t errlen)
{
	int fd, r;

	memset(tmp, 0, sizeof(*tmp));
	tmp->fd = -1;
	fd = chan_connect(s->peer, s->timeout_ms, err, errlen);
	if (fd < 0)
		return fd;
	stream_init_fd(tmp, fd, s->timeout_ms);
	r = chan_send_hdr(tmp, kind, s->id, index);
	if (r) {
		close(fd);
		snprintf(err, errlen, "%s", tmp->err[0] ? tmp->err : strerror(-r));
		return r;
	}
	return fd;
}

void session_established(struct session *s)
{
	auth_session_established(&s->main);
}

void session_shutdown_main(struct session *s)
{
	if (s->main_open)
		shutdown(s->main.fd, SHUT_RDWR);
}

uint64_t session_close_main(struct session *s)
{
	uint64_t bytes;

	if (!s->main_open)
		return 0;
	bytes = s->main.bytes_out;
	close(s->main.fd);
	s->main_open = false;
	return bytes;
}
