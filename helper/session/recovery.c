// SPDX-License-Identifier: GPL-2.0
/* Postcopy recovery: the received bitmap on the wire, what to re-send, test cuts. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth.h"
#include "recovery.h"
#include "util.h"

bool rec_transient(int err)
{
	switch (err < 0 ? -err : err) {
	case ECONNRESET: case EPIPE: case ETIMEDOUT: case ENOTCONN: case ECONNREFUSED:
	case EHOSTUNREACH: case ENETUNREACH: case ESHUTDOWN: case ENETDOWN:
		return true;
	default:
		return false;
	}
}

int rec_send_bitmap(struct stream *s, struct pc_dst *pc)
{
	static uint64_t words[WIRE_RECEIVED_WORDS];	/* the main thread only */
	uint8_t proof[AUTH_KEY_LEN];
	unsigned int i;
	int r;

	for (i = 0; i < pc->mem->nr_regions; i++) {
		uint64_t nw = (pc->mem->pages[i] + 63) / 64, w = 0;

		while (w < nw) {
			struct wire_received wr = { .region = i, .first_word = w };
			struct wire_pkt_hdr h = { .type = WIRE_PKT_RECEIVED };
			struct iovec iov[3];
			uint64_t k;

			wr.nwords = nw - w < WIRE_RECEIVED_WORDS ? nw - w : WIRE_RECEIVED_WORDS;
			for (k = 0; k < wr.nwords; k++)
				words[k] = atomic_load(&pc->recv[i][w + k]);
			h.len = sizeof(wr) + 8 * wr.nwords;
			iov[0] = (struct iovec){ &h, sizeof(h) };
			iov[1] = (struct iovec){ &wr, sizeof(wr) };
			iov[2] = (struct iovec){ words, 8 * wr.nwords };
			r = stream_writev(s, iov, 3);
			if (r)
				return r;
			w += wr.nwords;
		}
	}
	r = auth_resumed_proof(s, proof);
	return r ? r : stream_send_pkt(s, WIRE_PKT_RESUMED, proof, sizeof(proof));
}

void rec_free_bitmap(uint64_t **bm)
{
	unsigned int i;

	for (i = 0; i < WIRE_MAX_REGIONS; i++) {
		free(bm[i]);
		bm[i] = NULL;
	}
}

int rec_recv_bitmap(struct stream *s, struct vmig_ram *ram, uint64_t **bm)
{
	unsigned int nr = vmig_ram_region_count(ram), i;
	uint64_t got[WIRE_MAX_REGIONS] = { 0 };
	bool got_any = false, not_switched = false;

	for (i = 0; i < nr; i++) {
		bm[i] = calloc((vmig_ram_region_pages(ram, i) + 63) / 64, 8);
		if (!bm[i])
			return stream_fail(s, ENOMEM, "out of memory");
	}
	for (;;) {
		struct wire_pkt_hdr h;
		struct wire_received wr;
		uint64_t nw;
		int r = stream_recv_hdr(s, &h);

		if (r && not_switched) {	/* proven: the ERROR only adds words */
			s->err[0] = 0;
			stream_fail(s, ECONNRESET, "the destination proved its guest never ran");
			return 2;
		}
		if (r)
			return r;
		if (h.type == WIRE_PKT_ERROR) {
			r = stream_read_error(s, &h);
			if (r != -ECONNABORTED || s->peer_code != WIRE_ERR_NOT_SWITCHED)
				return r;
			if (!not_switched) {	/* anyone with the credential could say it */
				s->err[0] = 0;	/* not the peer's words: why it is not believed */
				return stream_fail(s, EACCES, "ERROR NOT_SWITCHED without proof of "
						   "the session's key (not the destination that "
						   "holds the session): the guest stays paused");
			}
			return 2;
		}
		if (not_switched)
			return stream_fail(s, EPROTO, "%s after NOT_SWITCHED instead of ERROR",
					   wire_pkt_name(h.type));
		if (h.type == WIRE_PKT_NOT_SWITCHED && h.len == AUTH_KEY_LEN && !got_any) {
			uint8_t proof[AUTH_KEY_LEN];

			r = stream_read(s, proof, sizeof(proof));
			if (!r)
				r = auth_notswitched_check(s, proof);
			if (r)
				return r;
			not_switched = true;
			continue;
		}
		if (h.type == WIRE_PKT_DONE && h.len == AUTH_KEY_LEN && !got_any) {
			uint8_t proof[AUTH_KEY_LEN];

			r = stream_read(s, proof, sizeof(proof));
			return r ? r : auth_resumed_check(s, proof) ?: 1;
		}
		got_any = true;
		if (h.type == WIRE_PKT_RESUMED && h.len == AUTH_KEY_LEN) {
			uint8_t proof[AUTH_KEY_LEN];

			r = stream_read(s, proof, sizeof(proof));
			if (!r)
				r = auth_resumed_check(s, proof);
			if (r)
				return r;
			break;
		}
		if (h.type != WIRE_PKT_RECEIVED || h.len < sizeof(wr))
			return stream_fail(s, EPROTO, "%s (%u bytes) instead of RECEIVED",
					   wire_pkt_name(h.type), h.len);
		r = stream_read(s, &wr, sizeof(wr));
		if (r)
			return r;
		if (wr.region >= nr)
			return stream_fail(s, EPROTO, "RECEIVED for region %u of %u", wr.region, nr);
		nw = (vmig_ram_region_pages(ram, wr.region) + 63) / 64;
		if (!wr.nwords || wr.nwords > WIRE_RECEIVED_WORDS || wr.first_word > nw ||
		    wr.nwords > nw - wr.first_word || h.len != sizeof(wr) + 8ull * wr.nwords)
			return stream_fail(s, EPROTO, "malformed RECEIVED: words %llu+%u of %llu",
					   (unsigned long long)wr.first_word, wr.nwords,
					   (unsigned long long)nw);
		r = stream_read(s, bm[wr.region] + wr.first_word, 8ull * wr.nwords);
		if (r)
			return r;
		got[wr.region] += wr.nwords;
	}
	for (i = 0; i < nr; i++)
		if (got[i] != (vmig_ram_region_pages(ram, i) + 63) / 64)
			return stream_fail(s, EPROTO, "RECEIVED covered %llu words of region %u",
					   (unsigned long long)got[i], i);
	return 0;
}

struct missing_ctx {
	uint64_t *bm;
	int (*fn)(void *, unsigned int, uint64_t, uint64_t);
	void *arg;
};

static int split_missing(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct missing_ctx *m = arg;
	uint64_t p = first, end = first + n;

	while (p < end) {
		uint64_t q;
		int r;

		if (m->bm[p / 64] & (1ull << (p % 64))) {
			p++;
			continue;
		}
		for (q = p; q < end && !(m->bm[q / 64] & (1ull << (q % 64))); q++)
			;
		r = m->fn(m->arg, region, p, q - p);
		if (r)
			return r;
		p = q;
	}
	return 0;
}

int rec_missing_data(struct vmig_ram *ram, uint64_t **bm,
		     int (*fn)(void *, unsigned int, uint64_t, uint64_t), void *arg)
{
	unsigned int i;
	int r = 0;

	for (i = 0; i < vmig_ram_region_count(ram) && !r; i++) {
		struct missing_ctx m = { .bm = bm[i], .fn = fn, .arg = arg };

		r = vmig_ram_for_each_data(ram, i, split_missing, &m);
	}
	return r;
}

int rec_parse_cuts(struct rec_cuts *c, const char *spec)
{
	char buf[256], *save = NULL, *t;

	memset(c, 0, sizeof(*c));
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;

		if (c->n == REC_MAX_CUTS)
			return -EINVAL;
		if (!strcmp(t, "switchlost")) {
			c->kind[c->n++] = CUT_SWITCH_LOST;
			continue;
		}
		if (!strcmp(t, "resume") || !strcmp(t, "done") || !strcmp(t, "switch")) {
			c->kind[c->n++] = *t == 'r' ? CUT_RESUME : *t == 'd' ? CUT_DONE : CUT_SWITCH;
			continue;
		}
		if (!strncmp(t, "pages:", 6))
			c->kind[c->n] = CUT_PAGES;
		else if (!strncmp(t, "reqhold:", 8))
			c->kind[c->n] = CUT_REQHOLD;
		else if (!strncmp(t, "reqdrop:", 8))
			c->kind[c->n] = CUT_REQDROP;
		else if (!strncmp(t, "req:", 4))
			c->kind[c->n] = CUT_REQ;
		else
			return -EINVAL;
		t = strchr(t, ':') + 1;
		errno = 0;
		c->arg[c->n] = strtoull(t, &end, 10);
		if (errno || *end || end == t || !c->arg[c->n])
			return -EINVAL;
		c->n++;
	}
	return c->n ? 0 : -EINVAL;
}

enum rec_cut_kind rec_cut_armed(const struct rec_cuts *c, uint64_t *arg)
{
	if (c->next >= c->n)
		return CUT_NONE;
	*arg = c->arg[c->next];
	return c->kind[c->next];
}

int rec_wait_done_ack(struct stream *s, int timeout_ms)
{
	uint64_t deadline = now_ns() + timeout_ms * 1000000ull;

	for (;;) {
		struct wire_pkt_hdr h;
		int r;

		if (now_ns() > deadline)
			return stream_fail(s, ETIMEDOUT, "the source did not acknowledge DONE");
		r = stream_recv_hdr(s, &h);	/* bounded by the stream's timeout */
		if (r)
			return r;
		if (h.type == WIRE_PKT_DONE && !h.len)
			return 0;
		if (h.type == WIRE_PKT_ERROR) {
			stream_read_error(s, &h);
			return -ECONNABORTED;
		}
		if (h.type != WIRE_PKT_NOP || h.len)
			return stream_fail(s, EPROTO, "%s instead of DONE", wire_pkt_name(h.type));
	}
}

void rec_ctl_default_path(char *buf, size_t len, uint64_t session)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");

	snprintf(buf, len, "%s/vmig-%u/%016llx.sock", dir && *dir ? dir : "/tmp",
		 (unsigned int)geteuid(), (unsigned long long)session);
}

/*
 * The directory of a default control socket: this user's own, mode 0700.
 * One that exists must be a real directory (not a link) owned by this
 * user and closed to everyone else, or someone else could watch or
 * replace the socket.
 */
static int private_dir(const char *path)
{
	char dir[108];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return -EINVAL;
	*slash = 0;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return -EPERM;
	return 0;
}

static int ctl_addr(const char *path, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	strcpy(a->sun_path, path);
	return 0;
}

int rec_ctl_listen(const char *path, bool own_dir)
{
	struct sockaddr_un a;
	int fd, r = ctl_addr(path, &a);

	if (!r && own_dir)
		r = private_dir(path);
	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	/* 0600 (the mode bind() leaves follows the umask); rec_ctl_wait() checks the peer too. */
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || chmod(path, 0600) || listen(fd, 4)) {
		r = -errno;
		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

/* Only this user or root may steer a paused migration. */
static bool peer_allowed(int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return false;
	*uid = cr.uid;
	return cr.uid == geteuid() || cr.uid == 0;
}

/* One line (up to len-1 bytes, without the newline) within ms: 0 or -errno. */
static int read_line(int fd, char *buf, size_t len, int ms)
{
	uint64_t deadline = now_ns() + ms * 1000000ull;
	size_t n = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - now_ns()) / 1000000;
		ssize_t k;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&p, 1, left) <= 0)
			continue;
		k = read(fd, buf + n, 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -ECONNRESET;
		if (buf[n] == '\n') {
			buf[n] = 0;
			return 0;
		}
		if (++n == len)
			return -EMSGSIZE;
	}
}

int rec_ctl_wait(int lfd, int ms, int *cfd, char *to, size_t tolen)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	uid_t uid = (uid_t)-1;
	char line[300];
	int fd;

	if (lfd < 0) {
		if (ms > 0)
			usleep(ms * 1000);
		return 0;
	}
	if (poll(&p, 1, ms) <= 0)
		return 0;
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return 0;
	if (read_line(fd, line, sizeof(line), 1000)) {
		close(fd);
		return 0;
	}
	/* (After reading the request: a close with it unread would reset the answer.) */
	if (!peer_allowed(fd, &uid)) {
		fprintf(stderr, "vmig migrate: refused a control request from uid %u (only uid "
			"%u or root may)\n", (unsigned int)uid, (unsigned int)geteuid());
		rec_ctl_reply(fd, "error permission denied: only the user who runs the "
			      "migration, or root, may resume it");
		close(fd);
		return 0;
	}
	if (rec_ctl_parse(line, to, tolen)) {
		rec_ctl_reply(fd, "error unknown request '%.64s'", line);
		close(fd);
		return 0;
	}
	*cfd = fd;
	return 1;
}

int rec_ctl_parse(const char *line, char *to, size_t tolen)
{
	const char *arg = line + 6;
	size_t i;

	if (strncmp(line, "resume", 6) || (*arg && *arg != ' '))
		return -EINVAL;
	arg += !!*arg;
	if (strlen(arg) >= tolen)
		return -ENAMETOOLONG;
	for (i = 0; arg[i]; i++)	/* HOST:PORT: printable, no spaces */
		if (arg[i] <= ' ' || arg[i] > '~')
			return -EINVAL;
	strcpy(to, arg);
	return 0;
}

void rec_ctl_reply(int cfd, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (send(cfd, buf, n, MSG_NOSIGNAL) < 0)
		return;	/* the client went away: nothing to tell */
}

int rec_ctl_resume(const char *path, const char *to, int timeout_ms, char *reply,
		   size_t len)
{
	struct sockaddr_un a;
	char line[300];
	int fd, r = ctl_addr(path, &a), n;

	if (r)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = -errno;
		close(fd);
		return r;
	}
	n = snprintf(line, sizeof(line), "resume%s%s\n", to && *to ? " " : "", to ? to : "");
	if (n >= (int)sizeof(line)) {
		close(fd);
		return -ENAMETOOLONG;
	}
	if (send(fd, line, n, MSG_NOSIGNAL) != n) {
		r = -errno;
		close(fd);
		return r;
	}
	r = read_line(fd, reply, len, timeout_ms);
	close(fd);
	if (r)
		return r;
	return strncmp(reply, "ok", 2) ? 1 : 0;
}
