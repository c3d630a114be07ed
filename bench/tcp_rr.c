// SPDX-License-Identifier: GPL-2.0
/*
 * The bare network round trip a postcopy page request cannot beat: a
 * 24-byte request, a 4 KiB + 24-byte answer, over one TCP connection with
 * TCP_NODELAY, one at a time.
 *
 *   tcp_rr server ADDR:PORT          answer until the client leaves
 *   tcp_rr client ADDR:PORT COUNT    print avg / p50 / p99 / max in us
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ	24
#define RESP	(4096 + 24)

static int full(int fd, void *buf, size_t n, int rd)
{
	size_t done = 0;

	while (done < n) {
		ssize_t k = rd ? read(fd, (char *)buf + done, n - done) :
				 write(fd, (char *)buf + done, n - done);

		if (k <= 0)
			return -1;
		done += k;
	}
	return 0;
}

static struct sockaddr_in parse(const char *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	char host[64];
	const char *c = strrchr(s, ':');

	if (!c || (size_t)(c - s) >= sizeof(host)) {
		fprintf(stderr, "tcp_rr: want ADDR:PORT\n");
		exit(2);
	}
	memcpy(host, s, c - s);
	host[c - s] = 0;
	inet_pton(AF_INET, host, &a.sin_addr);
	a.sin_port = htons(atoi(c + 1));
	return a;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ull + t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static char buf[RESP];
	struct sockaddr_in a;
	int one = 1, fd;

	if (argc < 3) {
		fprintf(stderr, "usage: tcp_rr server ADDR:PORT | client ADDR:PORT COUNT\n");
		return 2;
	}
	a = parse(argv[2]);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (!strcmp(argv[1], "server")) {
		int c;

		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1)) {
			perror("tcp_rr: listen");
			return 1;
		}
		c = accept(fd, NULL, NULL);
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while (!full(c, buf, REQ, 1) && !full(c, buf, RESP, 0))
			;
		return 0;
	}
	{
		int n = argc > 3 ? atoi(argv[3]) : 10000, i, tries;
		uint64_t *lat = calloc(n, sizeof(*lat)), sum = 0;

		for (tries = 0; connect(fd, (struct sockaddr *)&a, sizeof(a)); tries++) {
			if (tries > 100) {
				perror("tcp_rr: connect");
				return 1;
			}
			close(fd);
			fd = socket(AF_INET, SOCK_STREAM, 0);
			usleep(20000);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		for (i = 0; i < n; i++) {
			uint64_t t = now_ns();

			if (full(fd, buf, REQ, 0) || full(fd, buf, RESP, 1)) {
				fprintf(stderr, "tcp_rr: connection lost\n");
				return 1;
			}
			lat[i] = now_ns() - t;
			sum += lat[i];
		}
		qsort(lat, n, sizeof(*lat), cmp);
		printf("{\"count\":%d,\"avg\":%.2f,\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f}\n", n,
		       sum / 1e3 / n, lat[n / 2] / 1e3, lat[(n * 99) / 100] / 1e3, lat[n - 1] / 1e3);
	}
	return 0;
}
