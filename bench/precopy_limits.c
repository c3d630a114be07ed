// SPDX-License-Identifier: GPL-2.0
/*
 * What this machine allows precopy at most (issue 19): how fast it writes
 * guest memory in the state a destination has it, and how fast loopback TCP
 * moves pages into such memory, with the helper's I/O shapes.
 *
 *   precopy_limits [-s SIZE] [-n "1 2 4"] [-r RUNS] [-w mem|tcp|all] [-H DIR] [-k KIND]
 *
 * KIND (fresh, prefaulted, hugetlb, thp, file) measures into that memory alone.
 * SIZE (default 1G; K/M/G suffixes) of non-zero pages in a source memfd is
 * copied 4 KiB at a time (the size of the helper's copies) into a memfd that
 * is fresh (first touch), prefaulted (MADV_POPULATE_WRITE, as `vmig listen`
 * does), hugetlb-backed, or shmem with MADV_HUGEPAGE, where the system allows
 * it, and (-H) an unnamed file on the tmpfs at DIR, prefaulted: what `vmig
 * guest --mem-path DIR` gives the destination, in 2 MiB pages on a tmpfs
 * mounted huge=always.  Then over loopback TCP with N streams, each a sender
 * and a receiver thread with the helper's sizes: TCP_NODELAY, kernel-tuned socket buffers,
 * sendmsg of WIRE_MAX_BATCH page iovecs, non-blocking readv of as many with
 * SO_RCVLOWAT at what the batch still needs, poll only when nothing is there
 * (helper/source/multifd_send.c, helper/dest/multifd_recv.c, helper/net/stream.c).
 * The last column is the CPU time the process spent per GiB moved (both
 * ends of every stream, the kernel's work on their behalf included; not
 * the destination's allocation): over TCP, what no migration over these
 * sockets spends less than.  Each figure is the median of RUNS (default
 * 3).  Prints a markdown table; its first column is a key scripts can look
 * up (bench/migrate_bench.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PAGE		4096ul
#define BATCH		128		/* WIRE_MAX_BATCH: pages per packet */
#define HUGE_PAGE	(2ul << 20)
#define MAX_RUNS	15
#define MAX_STREAMS	16

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

enum dst_kind { DST_FRESH, DST_PREFAULTED, DST_HUGETLB, DST_THP, DST_FILE };

static const char *const kind_name[] = { "fresh", "prefaulted", "hugetlb", "thp", "file" };
static const char *const kind_text[] = {
	"fresh memfd (first touch)", "prefaulted memfd", "hugetlb memfd (2 MiB)",
	"shmem memfd, MADV_HUGEPAGE", "prefaulted file on the -H tmpfs",
};
static const char *file_dir;		/* -H: where DST_FILE memory lives */
static const char *only_kind;		/* -k: measure into this kind alone */

static size_t size;
static uint8_t *src;
static unsigned int stalls;		/* receive waits that passed without a wakeup */

/* The process's CPU seconds so far: all threads, the softirq work charged to them included. */
static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* A shared mapping of SIZE bytes: a memfd with flags, or (file) a file on -H. */
static uint8_t *map_memfd(unsigned int flags, bool file)
{
	int fd = file ? open(file_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) :
		 memfd_create("precopy_limits", MFD_CLOEXEC | flags);
	void *p;

	if (fd < 0 || ftruncate(fd, size)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

static long meminfo(const char *key)
{
	char line[128];
	long v = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key)))
			v = atol(line + strlen(key));
	if (f)
		fclose(f);
	return v;
}

/* Why a kind of destination memory cannot be had here (NULL: it can). */
static const char *unavailable(enum dst_kind k)
{
	static char why[160];
	char mode[128] = "";
	FILE *f;

	if (k == DST_HUGETLB) {
		long free_pages = meminfo("HugePages_Free:");

		if (size % HUGE_PAGE)
			return "size not a multiple of 2 MiB";
		if (free_pages < 0 || (size_t)free_pages * HUGE_PAGE < size) {
			snprintf(why, sizeof(why), "%ld free hugetlb pages; vm.nr_hugepages "
				 "reserves them", free_pages < 0 ? 0 : free_pages);
			return why;
		}
	}
	if (k == DST_FILE && !file_dir)
		return "no -H DIR";
	if (k == DST_THP) {
		f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
		if (!f || !fgets(mode, sizeof(mode), f))
			mode[0] = 0;
		if (f)
			fclose(f);
		mode[strcspn(mode, "\n")] = 0;
		if (!mode[0])
			return "no shmem THP in this kernel";
		if (strstr(mode, "[never]") || strstr(mode, "[deny]")) {
			snprintf(why, sizeof(why), "shmem_enabled: %s", mode);
			return why;
		}
	}
	return NULL;
}

/* Destination memory of a kind, in the state the destination has it before pages arrive. */
static uint8_t *dst_alloc(enum dst_kind k)
{
	uint8_t *p = map_memfd(k == DST_HUGETLB ? MFD_HUGETLB : 0, k == DST_FILE);

	if (!p)
		die("destination memfd");
	if (k == DST_THP && madvise(p, size, MADV_HUGEPAGE))
		die("MADV_HUGEPAGE");
	if (k != DST_FRESH && madvise(p, size, MADV_POPULATE_WRITE))
		die("MADV_POPULATE_WRITE");
	return p;
}

/* Seconds to copy the source into destination memory of kind k, page by page. */
static double copy_once(enum dst_kind k, double *cpu)
{
	uint8_t *dst = dst_alloc(k);
	double t0 = now(), c0 = cpu_now(), t;
	size_t off;

	for (off = 0; off < size; off += PAGE)
		memcpy(dst + off, src + off, PAGE);
	t = now() - t0;
	*cpu = cpu_now() - c0;
	if (memcmp(dst + size - PAGE, src + size - PAGE, PAGE))
		die("copy");
	munmap(dst, size);
	return t;
}

struct stream {
	int fd;
	uint8_t *buf;			/* this stream's part of source or destination */
	size_t len;
};

static void *send_stream(void *arg)
{
	struct stream *s = arg;
	struct iovec iov[BATCH];
	size_t off = 0, i;

	while (off < s->len) {
		struct msghdr mh = { .msg_iov = iov };
		ssize_t n;

		for (i = 0; i < BATCH && off + i * PAGE < s->len; i++)
			iov[i] = (struct iovec){ s->buf + off + i * PAGE, PAGE };
		mh.msg_iovlen = i;
		n = sendmsg(s->fd, &mh, MSG_NOSIGNAL);
		if (n <= 0)
			die("sendmsg");
		off += n;	/* a short send restarts at the byte it stopped */
		if (off % PAGE) {
			size_t part = off % PAGE;

			if (send(s->fd, s->buf + off, PAGE - part, MSG_NOSIGNAL | MSG_WAITALL) !=
			    (ssize_t)(PAGE - part))
				die("send");
			off += PAGE - part;
		}
	}
	return NULL;
}

static void *recv_stream(void *arg)
{
	struct stream *s = arg;
	struct iovec iov[BATCH];
	size_t off = 0, i;

	while (off < s->len) {
		size_t want = s->len - off < BATCH * PAGE ? s->len - off : BATCH * PAGE, got = 0;

		for (i = 0; i * PAGE < want; i++)
			iov[i] = (struct iovec){ s->buf + off + i * PAGE, PAGE };
		while (got < want) {
			struct iovec *v = iov + got / PAGE;	/* resume where it stopped */
			int lowat = want - got;			/* never wait for more */
			ssize_t n;

			setsockopt(s->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
			v->iov_base = s->buf + off + got;
			v->iov_len = PAGE - got % PAGE;
			n = readv(s->fd, v, i - got / PAGE);
			if (n < 0 && errno == EAGAIN) {	/* as the helper: wait only when empty */
				struct pollfd pf = { .fd = s->fd, .events = POLLIN };

				if (!poll(&pf, 1, 10))
					stalls++;	/* data may be there: read again */
				continue;
			}
			if (n <= 0)
				die("readv");
			got += n;
		}
		off += want;
	}
	return NULL;
}

static void connect_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || bind(l, (void *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (void *)&sa, &sl))
		die("listen");
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (void *)&sa, sizeof(sa)))
		die("connect");
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		die("accept");
	close(l);
	fcntl(*b, F_SETFL, O_NONBLOCK);
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/*
 * Seconds to move the source over n loopback streams into destination
 * memory of kind k; *cpu: the CPU seconds both ends spent on it (the
 * destination's allocation, before, not counted).
 */
static double tcp_once(unsigned int n, enum dst_kind k, double *cpu)
{
	struct stream tx[MAX_STREAMS], rx[MAX_STREAMS];
	pthread_t th[2 * MAX_STREAMS];
	size_t part = size / n / PAGE * PAGE;
	uint8_t *dst = dst_alloc(k);
	unsigned int i;
	double t0, c0, t;

	for (i = 0; i < n; i++) {
		size_t len = i == n - 1 ? size - i * part : part;

		connect_pair(&tx[i].fd, &rx[i].fd);
		tx[i].buf = src + i * part;
		rx[i].buf = dst + i * part;
		tx[i].len = rx[i].len = len;
	}
	t0 = now();
	c0 = cpu_now();
	for (i = 0; i < n; i++)
		if (pthread_create(&th[2 * i], NULL, recv_stream, &rx[i]) ||
		    pthread_create(&th[2 * i + 1], NULL, send_stream, &tx[i]))
			die("pthread_create");
	for (i = 0; i < 2 * n; i++)
		pthread_join(th[i], NULL);
	t = now() - t0;
	*cpu = cpu_now() - c0;
	for (i = 0; i < n; i++) {
		close(tx[i].fd);
		close(rx[i].fd);
	}
	if (memcmp(dst, src, PAGE) || memcmp(dst + size - PAGE, src + size - PAGE, PAGE))
		die("received pages differ");
	munmap(dst, size);
	return t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median seconds of runs of a measurement (tcp: n streams; mem: n == 0); *cpu: CPU-s median. */
static double median(unsigned int runs, unsigned int n, enum dst_kind k, double *cpu)
{
	double t[MAX_RUNS], c[MAX_RUNS];
	unsigned int i;

	for (i = 0; i < runs; i++)
		t[i] = n ? tcp_once(n, k, &c[i]) : copy_once(k, &c[i]);
	qsort(t, runs, sizeof(t[0]), cmp_double);
	qsort(c, runs, sizeof(c[0]), cmp_double);
	*cpu = c[runs / 2];
	return t[runs / 2];
}

static void row(const char *key, const char *what, unsigned int runs, unsigned int n,
		enum dst_kind k)
{
	const char *why = unavailable(k);
	double s, cpu;

	if (only_kind && strcmp(only_kind, kind_name[k]))
		return;
	if (why) {
		printf("| %s | %s | n/a (%s) | n/a | n/a |\n", key, what, why);
		return;
	}
	s = median(runs, n, k, &cpu);
	printf("| %s | %s | %.2f | %.2f | %.3f |\n", key, what, size / s / (1 << 30),
	       size * 8 / s / 1e9, cpu / ((double)size / (1 << 30)));
	fflush(stdout);
}

static size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'G': case 'g': v *= 1 << 30; break;
	case 'M': case 'm': v *= 1 << 20; break;
	case 'K': case 'k': v *= 1 << 10; break;
	}
	return (size_t)v / HUGE_PAGE * HUGE_PAGE;
}

int main(int argc, char **argv)
{
	const char *streams = "1 2 4", *what = "all", *p;
	unsigned int runs = 3, n;
	char key[64], text[128];
	enum dst_kind k;
	size_t off;
	int o;

	size = 1ul << 30;
	while ((o = getopt(argc, argv, "s:n:r:w:H:k:")) != -1) {
		switch (o) {
		case 's': size = parse_size(optarg); break;
		case 'n': streams = optarg; break;
		case 'r': runs = atoi(optarg); break;
		case 'w': what = optarg; break;
		case 'H': file_dir = optarg; break;
		case 'k': only_kind = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-s SIZE] [-n \"1 2 4\"] [-r RUNS] "
				"[-w mem|tcp|all] [-H DIR] [-k KIND]\n", argv[0]);
			return 2;
		}
	}
	for (k = DST_FRESH; only_kind && k <= DST_FILE && strcmp(only_kind, kind_name[k]); k++)
		;
	if (only_kind && k > DST_FILE) {
		fprintf(stderr, "precopy_limits: -k %s: not a kind of memory (fresh, prefaulted, "
			"hugetlb, thp, file)\n", only_kind);
		return 2;
	}
	if (!size || !runs || runs > MAX_RUNS) {
		fprintf(stderr, "precopy_limits: size >= 2M and 1..%d runs\n", MAX_RUNS);
		return 2;
	}
	src = map_memfd(0, false);
	if (!src)
		die("source memfd");
	for (off = 0; off < size; off += 8)
		*(uint64_t *)(src + off) = off * 0x9e3779b97f4a7c15ull | 1;

	printf("| key | limit (%zu MiB, median of %u) | GiB/s | Gbit/s | CPU-s per GiB |\n"
	       "| --- | --- | --- | --- | --- |\n",
	       size >> 20, runs);
	if (strcmp(what, "tcp"))
		for (k = DST_FRESH; k <= DST_FILE; k++) {
			snprintf(key, sizeof(key), "mem-%s", kind_name[k]);
			snprintf(text, sizeof(text), "memory write, 4 KiB copies into %s",
				 kind_text[k]);
			row(key, text, runs, 0, k);
		}
	if (strcmp(what, "mem"))
		for (p = streams; sscanf(p, "%u", &n) == 1; p += strcspn(p, " ,"),
		     p += strspn(p, " ,")) {
			if (!n || n > MAX_STREAMS)
				break;
			for (k = DST_FRESH; k <= DST_FILE; k++) {
				if (k == DST_HUGETLB || k == DST_THP || (k == DST_FILE && !file_dir))
					continue;
				snprintf(key, sizeof(key), "tcp%u-%s", n, kind_name[k]);
				snprintf(text, sizeof(text), "loopback TCP, %u stream%s, into %s", n,
					 n == 1 ? "" : "s", kind_text[k]);
				row(key, text, runs, n, k);
			}
		}
	if (stalls)
		fprintf(stderr, "precopy_limits: %u receive waits of 10 ms passed without a wakeup "
			"(read again then; a loaded machine, or a missed SO_RCVLOWAT wakeup)\n", stalls);
	return 0;
}
