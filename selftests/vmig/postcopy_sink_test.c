// SPDX-License-Identifier: GPL-2.0
/*
 * VMIG_POSTCOPY_SET_SINK: the module writes each new request to a TCP
 * socket itself.  The record arrives whole at the peer with the page
 * number where the caller asked, and the request is still read() with
 * VMIG_REQ_SENT; a full send buffer makes the module give the request
 * back unsent, with nothing half written; detaching, REQUEUE, the end
 * of postcopy mode and the exit of the process that attached take the
 * socket and the flag away; anything but a connected plain TCP socket is
 * refused.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "vmig_test.h"
#include "postcopy_util.h"
#include "kselftest_harness.h"

#define REC_LEN		24
#define PAGE_AT		16

static long ps;

/* A connected loopback pair: *a the client side, *b the accepted one. */
static int tcp_pair(int *a, int *b, int sndbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1, small = 4096;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		return -errno;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0)
		return -errno;
	if (sndbuf) {
		setsockopt(*a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		return -errno;
	*b = accept(l, NULL, NULL);
	close(l);
	return *b < 0 ? -errno : 0;
}

/* Read exactly @len bytes from @fd, waiting at most 20 s. */
static int recv_all(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 20000) != 1)
			return -ETIMEDOUT;
		n = recv(fd, (char *)buf + got, len - got, 0);
		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += n;
	}
	return 0;
}

static void sink_init(struct vmig_sink *s, int fd)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->len = REC_LEN;
	s->page_at = PAGE_AT;
	for (i = 0; i < PAGE_AT; i++)
		s->record[i] = 0xa0 + i;
}

static int set_sink(int fd, struct vmig_sink *s)
{
	return ioctl(fd, VMIG_POSTCOPY_SET_SINK, s) ? -errno : 0;
}

static int detach(int fd)
{
	struct vmig_sink s = { .fd = -1 };

	return set_sink(fd, &s);
}

/* The record the module writes for @page. */
static void want_record(uint8_t *rec, uint64_t page)
{
	int i;

	for (i = 0; i < PAGE_AT; i++)
		rec[i] = 0xa0 + i;
	for (i = 0; i < 8; i++)
		rec[PAGE_AT + i] = page >> (8 * i);
}

FIXTURE(sink) {
	int dev, fd, a, b;
	uint64_t npages;
	char *map;
};

FIXTURE_SETUP(sink)
{
	struct vmig_api api;

	ps = vmig_page_size();
	self->fd = self->a = self->b = -1;
	self->map = NULL;
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	if (!(api.features & VMIG_FEATURE_REQ_SINK))
		SKIP(return, "the module does not offer VMIG_FEATURE_REQ_SINK");
	self->npages = 64;
	self->fd = vmig_region_new(self->dev, self->npages * ps,
				   VMIG_REGION_POSTCOPY | VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, self->npages * ps, 0);
	ASSERT_NE(NULL, self->map);
}

FIXTURE_TEARDOWN(sink)
{
	if (self->map)
		munmap(self->map, self->npages * ps);
	if (self->fd >= 0)
		close(self->fd);
	if (self->a >= 0)
		close(self->a);
	if (self->b >= 0)
		close(self->b);
	close(self->dev);
}

TEST_F(sink, the_module_writes_the_request_and_still_reports_it)
{
	uint8_t rec[REC_LEN], want[REC_LEN];
	struct vmig_request req;
	struct vmig_stats st;
	struct vmig_sink s;
	uint64_t pat[512];
	struct pc_toucher t;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	pc_toucher_start(&t, self->map + 37 * ps);
	/* The record, whole, with the page number where it was asked. */
	ASSERT_EQ(0, recv_all(self->b, rec, sizeof(rec)));
	want_record(want, 37);
	EXPECT_EQ(0, memcmp(want, rec, sizeof(rec)));
	/* Queued for read() too, flagged: the reader must not write it. */
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(37 * ps, req.offset);
	EXPECT_TRUE(req.flags & VMIG_REQ_SENT);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(self->fd, 37, 5));
	pthread_join(t.thread, NULL);
	vmig_pattern_fill(pat, 37, 5);
	EXPECT_EQ(pat[0], t.value);
	/* The worker counts after its write: detaching waits for it. */
	ASSERT_EQ(0, detach(self->fd));
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(1, st.sink_sent);
	EXPECT_EQ(0, st.sink_unsent);
}

TEST_F(sink, many_faults_many_whole_records)
{
	uint8_t rec[16 * REC_LEN], want[REC_LEN];
	struct pc_toucher t[16];
	struct vmig_sink s;
	uint64_t seen = 0;
	int i, j;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	for (i = 0; i < 16; i++)
		pc_toucher_start(&t[i], self->map + (2 + 3 * i) * ps);
	ASSERT_EQ(0, recv_all(self->b, rec, sizeof(rec)));
	for (i = 0; i < 16; i++) {
		uint64_t page = 0;

		for (j = 0; j < 8; j++)
			page |= (uint64_t)rec[i * REC_LEN + PAGE_AT + j] << (8 * j);
		want_record(want, page);
		EXPECT_EQ(0, memcmp(want, rec + i * REC_LEN, REC_LEN));
		ASSERT_EQ(2, page % 3);
		ASSERT_GT(50, page);
		seen |= 1ull << page;
	}
	for (i = 0; i < 16; i++)
		EXPECT_TRUE(seen & (1ull << (2 + 3 * i)));
	for (i = 0; i < 16; i++)
		ASSERT_EQ(0, vmig_place_page(self->fd, 2 + 3 * i, 1));
	for (i = 0; i < 16; i++)
		pthread_join(t[i].thread, NULL);
}

/*
 * The send buffer full: the module writes nothing (no half record) and
 * gives the request back unsent, waking the reader.
 */
TEST_F(sink, a_full_socket_gives_the_request_back_unsent)
{
	static char junk[65536];
	struct pollfd p = { .fd = self->fd, .events = POLLIN };
	size_t filled = 0, drained = 0;
	struct vmig_request req;
	struct pc_toucher t, t2;
	struct vmig_stats st;
	struct vmig_sink s;
	ssize_t n;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 4096));
	ASSERT_EQ(0, fcntl(self->a, F_SETFL, O_NONBLOCK));
	/* Fill both buffers: the peer reads nothing yet. */
	for (;;) {
		n = send(self->a, junk, sizeof(junk), MSG_DONTWAIT);
		if (n < 0) {
			ASSERT_EQ(EAGAIN, errno);
			break;
		}
		filled += n;
	}
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	pc_toucher_start(&t, self->map + 9 * ps);
	/* Given back, so read() wakes for it; and not flagged. */
	ASSERT_EQ(1, poll(&p, 1, 20000));
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(9 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(0, st.sink_sent);
	EXPECT_EQ(1, st.sink_unsent);
	/* A failed sink writes no more: this one comes back unsent at once. */
	pc_toucher_start(&t2, self->map + 10 * ps);
	ASSERT_EQ(1, poll(&p, 1, 20000));
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(10 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	ASSERT_EQ(0, vmig_place_page(self->fd, 10, 1));
	pthread_join(t2.thread, NULL);
	ASSERT_EQ(0, detach(self->fd));
	/* The peer gets exactly the filler: not a byte of any record. */
	shutdown(self->a, SHUT_WR);
	p = (struct pollfd){ .fd = self->b, .events = POLLIN };
	for (;;) {
		ASSERT_EQ(1, poll(&p, 1, 20000));
		n = recv(self->b, junk, sizeof(junk), 0);
		ASSERT_LE(0, n);
		if (!n)
			break;
		drained += n;
	}
	EXPECT_EQ(filled, drained);
	ASSERT_EQ(0, vmig_place_page(self->fd, 9, 1));
	pthread_join(t.thread, NULL);
}

/*
 * REQUEUE (a helper taking over): what the sink wrote may be lost with
 * the dead helper's connection, so the flag goes; and the sink is
 * detached, since the new reader writes requests itself.
 */
TEST_F(sink, requeue_takes_the_sent_flag_and_the_sink_away)
{
	uint8_t rec[REC_LEN];
	struct vmig_request req;
	struct vmig_sink s;
	struct pc_toucher t, t2;
	struct pollfd p;
	char c;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	pc_toucher_start(&t, self->map + 4 * ps);
	ASSERT_EQ(0, recv_all(self->b, rec, sizeof(rec)));
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_TRUE(req.flags & VMIG_REQ_SENT);
	EXPECT_EQ(1, ioctl(self->fd, VMIG_REQUEUE));
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(4 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	/* A new fault: read() wakes for it, and nothing reaches the socket. */
	pc_toucher_start(&t2, self->map + 8 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(8 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	ASSERT_EQ(1, send(self->a, "y", 1, 0));
	ASSERT_EQ(0, recv_all(self->b, &c, 1));
	EXPECT_EQ('y', c);
	p = (struct pollfd){ .fd = self->b, .events = POLLIN };
	EXPECT_EQ(0, poll(&p, 1, 0));
	ASSERT_EQ(0, vmig_place_page(self->fd, 4, 1));
	ASSERT_EQ(0, vmig_place_page(self->fd, 8, 1));
	pthread_join(t.thread, NULL);
	pthread_join(t2.thread, NULL);
}

/*
 * Detached (fd -1), the module writes nothing more and requests are
 * plain again; the socket stays usable by its owner.
 */
TEST_F(sink, detached_the_module_writes_nothing)
{
	struct vmig_request req;
	struct vmig_sink s;
	struct pc_toucher t;
	char c;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	ASSERT_EQ(0, detach(self->fd));
	pc_toucher_start(&t, self->map + 6 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(6 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	/* The owner's own byte is the first thing the peer gets. */
	ASSERT_EQ(1, send(self->a, "x", 1, 0));
	ASSERT_EQ(0, recv_all(self->b, &c, 1));
	EXPECT_EQ('x', c);
	ASSERT_EQ(0, vmig_place_page(self->fd, 6, 1));
	pthread_join(t.thread, NULL);
}

/*
 * The module holds the socket while attached (the caller may close its
 * fd), and lets it go when postcopy mode ends: the peer then sees EOF.
 */
TEST_F(sink, the_end_of_postcopy_mode_lets_the_socket_go)
{
	struct pollfd p;
	struct vmig_sink s;
	char c;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	close(self->a);
	self->a = -1;
	p = (struct pollfd){ .fd = self->b, .events = POLLIN };
	EXPECT_EQ(0, poll(&p, 1, 200));	/* still open: the module holds it */
	ASSERT_EQ(0, ioctl(self->fd, VMIG_POSTCOPY_DISABLE));
	ASSERT_EQ(1, poll(&p, 1, 20000));
	EXPECT_EQ(0, recv(self->b, &c, 1, 0));
}

/* In a child: attach @sock through the inherited region fd; then exit. */
static pid_t attach_in_child(int region, int sock)
{
	pid_t pid = fork();
	struct vmig_sink s;

	if (pid)
		return pid;
	sink_init(&s, sock);
	_exit(set_sink(region, &s) ? 1 : 0);
}

static bool exited_ok(pid_t pid)
{
	int status;

	return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status);
}

/*
 * A helper that dies with a sink attached does not leave its connection
 * open behind it: its exit closes its descriptors of the region, and with
 * them the sink lets the socket go, so the peer sees EOF at once, as it
 * would without a sink (and recovery can start).
 */
TEST_F(sink, the_attacher_exiting_lets_the_socket_go)
{
	struct vmig_request req;
	struct pc_toucher t;
	struct pollfd p;
	pid_t pid;
	char c;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	pid = attach_in_child(self->fd, self->a);
	ASSERT_LT(0, pid);
	close(self->a);			/* the child's copy and the module's are left */
	self->a = -1;
	ASSERT_TRUE(exited_ok(pid));
	p = (struct pollfd){ .fd = self->b, .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, 20000));
	EXPECT_EQ(0, recv(self->b, &c, 1, 0));
	/* The sink is gone, not just the socket: a request is read() unsent. */
	pc_toucher_start(&t, self->map + 11 * ps);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(11 * ps, req.offset);
	EXPECT_FALSE(req.flags & VMIG_REQ_SENT);
	ASSERT_EQ(0, vmig_place_page(self->fd, 11, 1));
	pthread_join(t.thread, NULL);
}

/* Another process closing its copy of the region fd leaves the sink. */
TEST_F(sink, another_process_closing_the_region_leaves_the_sink)
{
	uint8_t rec[REC_LEN], want[REC_LEN];
	struct pc_toucher t;
	struct vmig_sink s;
	pid_t pid;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	sink_init(&s, self->a);
	ASSERT_EQ(0, set_sink(self->fd, &s));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(self->fd);
		_exit(0);
	}
	ASSERT_TRUE(exited_ok(pid));
	pc_toucher_start(&t, self->map + 9 * ps);
	ASSERT_EQ(0, recv_all(self->b, rec, sizeof(rec)));
	want_record(want, 9);
	EXPECT_EQ(0, memcmp(rec, want, sizeof(rec)));
	ASSERT_EQ(0, vmig_place_page(self->fd, 9, 1));
	pthread_join(t.thread, NULL);
}

TEST_F(sink, only_a_connected_tcp_socket_with_a_sane_record)
{
	struct vmig_postcopy_enable en = { 0 };
	struct vmig_sink s;
	int u, sv[2], t;

	ASSERT_EQ(0, tcp_pair(&self->a, &self->b, 0));
	/* Not a socket; UDP; a unix stream; not connected. */
	sink_init(&s, self->fd);
	EXPECT_EQ(-ENOTSOCK, set_sink(self->fd, &s));
	u = socket(AF_INET, SOCK_DGRAM, 0);
	sink_init(&s, u);
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	close(u);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	sink_init(&s, sv[0]);
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	close(sv[0]);
	close(sv[1]);
	t = socket(AF_INET, SOCK_STREAM, 0);
	sink_init(&s, t);
	EXPECT_EQ(-ENOTCONN, set_sink(self->fd, &s));
	close(t);
	sink_init(&s, 1000);
	EXPECT_EQ(-EBADF, set_sink(self->fd, &s));
	/* The record: 8..32 bytes, the page inside it, zeroes past it. */
	sink_init(&s, self->a);
	s.len = 7;
	s.page_at = 0;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	sink_init(&s, self->a);
	s.len = VMIG_SINK_RECORD_MAX + 1;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	sink_init(&s, self->a);
	s.page_at = REC_LEN - 7;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	sink_init(&s, self->a);
	s.record[REC_LEN] = 1;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	sink_init(&s, self->a);
	s.flags = 1;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	sink_init(&s, self->a);
	s.reserved = 1;
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	/* Detaching takes no record; with none attached it is a no-op. */
	sink_init(&s, -1);
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	EXPECT_EQ(0, detach(self->fd));
	/* Outside postcopy mode there is nothing to write. */
	ASSERT_EQ(0, ioctl(self->fd, VMIG_POSTCOPY_DISABLE));
	sink_init(&s, self->a);
	EXPECT_EQ(-EINVAL, set_sink(self->fd, &s));
	/* Sane arguments on a postcopy region: accepted. */
	ASSERT_EQ(0, ioctl(self->fd, VMIG_POSTCOPY_ENABLE, &en));
	sink_init(&s, self->a);
	EXPECT_EQ(0, set_sink(self->fd, &s));
}

TEST_HARNESS_MAIN
