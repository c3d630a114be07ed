// SPDX-License-Identifier: GPL-2.0
/*
 * The stream layer over real loopback TCP: reads complete however the
 * bytes arrive, every wait ends by its deadline, and the low-water mark
 * used for large payloads never makes a read wait for bytes it does not need;
 * and what TLS buffered counts as ready to read.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "../../helper/net/stream.c"

struct pair {
	int a, b;			/* a writes, b reads */
};

static void tcp_pair(struct pair *p)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	bind(l, (struct sockaddr *)&sa, sizeof(sa));
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&sa, &len);
	p->a = socket(AF_INET, SOCK_STREAM, 0);
	connect(p->a, (struct sockaddr *)&sa, sizeof(sa));
	p->b = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	close(l);
}

struct writer {
	int fd;
	size_t first, second;
	int gap_ms;
};

static void *write_two_parts(void *arg)
{
	struct writer *w = arg;
	char *buf = calloc(1, w->first + w->second);

	send(w->fd, buf, w->first, 0);
	usleep(w->gap_ms * 1000);
	send(w->fd, buf + w->first, w->second, 0);
	free(buf);
	return NULL;
}

TEST(read_completes_when_the_tail_is_below_the_low_water_mark)
{
	struct writer w = { .first = (300 << 10) - 100, .second = 100, .gap_ms = 200 };
	char *buf = malloc(300 << 10);
	struct stream s;
	struct pair p;
	pthread_t t;

	tcp_pair(&p);
	w.fd = p.a;
	stream_init_fd(&s, p.b, NULL, 3000);
	stream_set_lowat(&s, 300 << 10);	/* capped at 256 KiB */
	ASSERT_EQ(pthread_create(&t, NULL, write_two_parts, &w), 0);
	EXPECT_EQ(stream_read(&s, buf, 300 << 10), 0) TH_LOG("%s", s.err);
	pthread_join(t, NULL);
	free(buf);
	close(p.a);
	close(p.b);
}

TEST(a_silent_peer_times_out_with_a_message)
{
	struct stream s;
	struct pair p;
	char c;

	tcp_pair(&p);
	stream_init_fd(&s, p.b, NULL, 200);
	EXPECT_EQ(stream_read(&s, &c, 1), -ETIMEDOUT);
	EXPECT_NE(strstr(s.err, "no data from peer for 200 ms"), NULL);
	close(p.a);
	close(p.b);
}

TEST(a_closed_peer_is_reported)
{
	struct stream s;
	struct pair p;
	char c[4];

	tcp_pair(&p);
	send(p.a, "ab", 2, 0);
	close(p.a);
	stream_init_fd(&s, p.b, NULL, 1000);
	EXPECT_EQ(stream_read(&s, c, 4), -ECONNRESET);	/* truncated */
	EXPECT_NE(strstr(s.err, "peer closed the connection"), NULL);
	close(p.b);
}

TEST(a_moved_connection_is_read_by_its_new_owner_and_closed_once)
{
	struct stream from, to;
	struct pair p;
	char c[2];

	tcp_pair(&p);
	stream_init_fd(&from, p.b, NULL, 1000);
	from.bytes_in = 7;
	stream_move(&to, &from, 500);
	EXPECT_EQ(from.fd, -1);
	EXPECT_EQ(to.fd, p.b);
	EXPECT_EQ(to.timeout_ms, 500);
	EXPECT_EQ(to.bytes_in, 0);
	send(p.a, "ok", 2, 0);
	EXPECT_EQ(stream_read(&to, c, 2), 0);
	stream_close(&from);			/* closed already: nothing happens */
	stream_close(&to);
	EXPECT_EQ(to.fd, -1);
	EXPECT_EQ(recv(p.a, c, 1, 0), 0);	/* the peer sees the close */
	close(p.a);
}

TEST(oversized_and_unknown_packets_are_refused)
{
	struct wire_pkt_hdr big = { .type = WIRE_PKT_PAGES, .len = WIRE_MAX_PKT + 1 };
	struct wire_pkt_hdr odd = { .type = 99 };
	struct wire_pkt_hdr h;
	struct stream s;

	stream_init_mem(&s, &big, sizeof(big));
	EXPECT_EQ(stream_recv_hdr(&s, &h), -EMSGSIZE);
	EXPECT_NE(strstr(s.err, "oversized PAGES packet"), NULL);
	stream_init_mem(&s, &odd, sizeof(odd));
	EXPECT_EQ(stream_recv_hdr(&s, &h), -EPROTO);
	EXPECT_NE(strstr(s.err, "unknown type 99"), NULL);
}

/*
 * One TLS write carrying two packets (as the destination's batched page
 * requests do): after the first packet is read, the second sits in
 * OpenSSL's buffer and the socket is empty.  stream_ready() must say so;
 * a reader that only polled the fd slept with the request unread.  One
 * process is either the TLS client or the server: the client is a child.
 */
TEST(two_packets_in_one_tls_record_are_both_seen_as_ready)
{
	struct {
		struct wire_pkt_hdr h;
		struct wire_req q;
	} __attribute__((packed)) two[2] = {
		{ { .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) }, { .page = 11 } },
		{ { .type = WIRE_PKT_REQ, .len = sizeof(struct wire_req) }, { .page = 22 } },
	};
	char psk[] = "/tmp/vmig-stream-test-XXXXXX", err[256] = "";
	struct tls_conn *c = NULL;
	struct wire_pkt_hdr h;
	struct wire_req q;
	struct stream s;
	struct pollfd pfd;
	struct pair p;
	int fd = mkstemp(psk), status;
	pid_t pid;

	ASSERT_GE(fd, 0);
	ASSERT_GT(dprintf(fd, "vmig:%s\n", "00112233445566778899aabbccddeeff"
			  "00112233445566778899aabbccddeeff"), 0);
	close(fd);
	tcp_pair(&p);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		char ack;

		close(p.b);
		fcntl(p.a, F_SETFL, O_NONBLOCK);
		if (tls_configure(TLS_PSK, psk, false, err, sizeof(err)) ||
		    tls_attach(p.a, false, "127.0.0.1", &c, err, sizeof(err)))
			_exit(2);
		stream_init_fd(&s, p.a, c, 5000);
		if (stream_write(&s, two, sizeof(two)))
			_exit(3);
		/* Stay until the reader is done: no close_notify meanwhile. */
		_exit(stream_read(&s, &ack, 1) ? 4 : 0);
	}
	close(p.a);
	ASSERT_EQ(tls_configure(TLS_PSK, psk, true, err, sizeof(err)), 0) TH_LOG("%s", err);
	ASSERT_EQ(tls_attach(p.b, true, NULL, &c, err, sizeof(err)), 0) TH_LOG("%s", err);
	stream_init_fd(&s, p.b, c, 5000);
	ASSERT_EQ(stream_recv_hdr(&s, &h), 0) TH_LOG("%s", s.err);
	ASSERT_EQ(stream_read(&s, &q, sizeof(q)), 0) TH_LOG("%s", s.err);
	EXPECT_EQ(q.page, 11);
	/* The socket is empty: a reader that only polled it would sleep here. */
	pfd = (struct pollfd){ .fd = p.b, .events = POLLIN };
	EXPECT_EQ(poll(&pfd, 1, 200), 0);
	EXPECT_TRUE(stream_ready(&s));
	ASSERT_EQ(stream_recv_hdr(&s, &h), 0) TH_LOG("%s", s.err);
	ASSERT_EQ(stream_read(&s, &q, sizeof(q)), 0) TH_LOG("%s", s.err);
	EXPECT_EQ(q.page, 22);
	EXPECT_FALSE(stream_ready(&s));
	EXPECT_EQ(stream_write(&s, "k", 1), 0);
	waitpid(pid, &status, 0);
	unlink(psk);	/* not before: the client reads it */
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) TH_LOG("client status %#x", status);
	stream_close(&s);
}

/* A reply of the preempt channel: header, PAGES fields, entry, page. */
struct reply {
	struct wire_pkt_hdr h;
	struct wire_pages wp;
	uint64_t entry;
	uint8_t page[WIRE_PAGE_SIZE];
};
_Static_assert(sizeof(struct reply) == 24 + WIRE_PAGE_SIZE, "a reply has no padding");

static void fill_reply(struct reply *r, uint64_t page)
{
	*r = (struct reply){
		.h = { .type = WIRE_PKT_PAGES, .len = sizeof(*r) - sizeof(r->h) },
		.wp = { .count = 1 }, .entry = page,
	};
	memset(r->page, (int)page, sizeof(r->page));
}

/*
 * With a read-ahead buffer the first small read takes all that is there:
 * three replies sent at once are all in the buffer after the first
 * header's read (the socket is empty, stream_ready() says there is more),
 * and each part of each reply is read right, the page included.
 */
TEST(read_ahead_takes_the_packets_there_in_one_read)
{
	static struct reply out[3], in;
	static uint8_t ra[4 * (WIRE_PAGE_SIZE + 64)];
	struct pollfd pfd;
	struct stream s;
	struct pair p;
	int i;

	tcp_pair(&p);
	for (i = 0; i < 3; i++)
		fill_reply(&out[i], 40 + i);
	ASSERT_EQ(send(p.a, out, sizeof(out), 0), (ssize_t)sizeof(out));
	stream_init_fd(&s, p.b, NULL, 5000);
	stream_readahead(&s, ra, sizeof(ra));
	pfd = (struct pollfd){ .fd = p.b, .events = POLLIN };
	ASSERT_EQ(poll(&pfd, 1, 2000), 1);
	usleep(50 * 1000);	/* all of it on the socket (one send on loopback) */
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(stream_recv_hdr(&s, &in.h), 0) TH_LOG("%s", s.err);
		if (!i) {
			EXPECT_EQ(s.ra_len, sizeof(out));	/* one read took it all */
			EXPECT_EQ(poll(&pfd, 1, 0), 0);
		}
		ASSERT_EQ(stream_read(&s, &in.wp, sizeof(in.wp)), 0);
		ASSERT_EQ(stream_read(&s, &in.entry, sizeof(in.entry)), 0);
		ASSERT_EQ(stream_read(&s, in.page, sizeof(in.page)), 0);
		EXPECT_EQ(memcmp(&in, &out[i], sizeof(in)), 0) TH_LOG("reply %d", i);
		EXPECT_EQ(stream_ready(&s), i < 2);
	}
	EXPECT_EQ(s.bytes_in, sizeof(out));
	close(p.a);
	EXPECT_TRUE(stream_ready(&s));		/* the end: the read says so */
	EXPECT_EQ(stream_recv_hdr(&s, &in.h), -ECONNRESET);
	stream_close(&s);
}

struct send_rest {
	int fd;
	const uint8_t *buf;
	size_t len;
};

static void *send_all(void *arg)
{
	struct send_rest *w = arg;

	send(w->fd, w->buf, w->len, 0);
	return NULL;
}

/*
 * A read larger than the buffer after a small one: the bytes read ahead
 * come first, the rest straight from the socket, in order.
 */
TEST(a_large_read_gets_what_was_read_ahead_first)
{
	size_t len = 200 << 10;
	uint8_t *out = malloc(8 + len), *in = malloc(len), ra[2048];
	struct send_rest w;
	struct wire_pkt_hdr h;
	pthread_t t;
	struct stream s;
	struct pair p;
	size_t i;

	ASSERT_NE(out, NULL);
	ASSERT_NE(in, NULL);
	tcp_pair(&p);
	h = (struct wire_pkt_hdr){ .type = WIRE_PKT_PAGES, .len = 16 };
	memcpy(out, &h, sizeof(h));
	for (i = 0; i < len; i++)
		out[8 + i] = (uint8_t)(i * 31 + i / 4096);
	stream_init_fd(&s, p.b, NULL, 5000);
	stream_readahead(&s, ra, sizeof(ra));
	ASSERT_EQ(send(p.a, out, 8 + 1000, 0), 8 + 1000);
	usleep(50 * 1000);
	ASSERT_EQ(stream_recv_hdr(&s, &h), 0) TH_LOG("%s", s.err);
	EXPECT_EQ(s.ra_len - s.ra_pos, 1000);
	w = (struct send_rest){ .fd = p.a, .buf = out + 8 + 1000, .len = len - 1000 };
	ASSERT_EQ(pthread_create(&t, NULL, send_all, &w), 0);
	ASSERT_EQ(stream_read(&s, in, len), 0) TH_LOG("%s", s.err);
	pthread_join(t, NULL);
	EXPECT_EQ(memcmp(in, out + 8, len), 0);
	EXPECT_EQ(s.bytes_in, 8 + len);
	close(p.a);
	stream_close(&s);
	free(out);
	free(in);
}

TEST_HARNESS_MAIN
