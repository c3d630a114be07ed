// SPDX-License-Identifier: GPL-2.0
/*
 * Postcopy: faults on missing pages become one request per page, read()
 * and poll()ed from the region fd; VMIG_PLACE fills pages atomically and
 * wakes the waiters; VMIG_ABORT and release end every wait; bad input is
 * refused with nothing placed.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>

#include "vmig_test.h"
#include "postcopy_util.h"
#include "kselftest_harness.h"

static long ps;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t stat_missing_faults(int fd)
{
	struct vmig_stats st;

	return vmig_region_stats(fd, &st) ? 0 : st.missing_faults;
}

/* Wait (at most 20 s) until @n faults have found their page missing. */
static int wait_missing_faults(int fd, uint64_t n)
{
	int i;

	for (i = 0; i < 20000; i++) {
		if (stat_missing_faults(fd) >= n)
			return 0;
		usleep(1000);
	}
	return -ETIMEDOUT;
}

/* No request is queued (the region fd must be nonblocking). */
static int no_request_queued(int fd)
{
	struct vmig_request req;

	return read(fd, &req, sizeof(req)) < 0 && errno == EAGAIN;
}

/* --- a server thread playing the network --------------------------------- */

struct server {
	int fd;
	uint64_t npages, seed;
	atomic_int stop;
	atomic_uint *requested;		/* requests seen, per page */
	atomic_ulong requests;
	int error;			/* first failure, 0 if none */
	pthread_t thread;
};

static void *server_main(void *arg)
{
	struct server *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	struct vmig_request req[8];
	ssize_t n, i;
	uint64_t idx;
	int err;

	while (!atomic_load(&s->stop)) {
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		n = read(s->fd, req, sizeof(req));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0 || n % sizeof(req[0])) {
			s->error = n < 0 ? errno : EIO;
			break;
		}
		for (i = 0; i < n / (ssize_t)sizeof(req[0]); i++) {
			idx = req[i].offset / ps;
			if (req[i].offset % ps || idx >= s->npages ||
			    req[i].reserved || (req[i].flags & ~VMIG_REQ_WRITE)) {
				s->error = EPROTO;
				return NULL;
			}
			atomic_fetch_add(&s->requested[idx], 1);
			atomic_fetch_add(&s->requests, 1);
			err = vmig_place_page(s->fd, idx, s->seed);
			if (err) {
				s->error = -err;
				return NULL;
			}
		}
	}
	return NULL;
}

static int server_start(struct server *s, int fd, uint64_t npages,
			uint64_t seed)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->npages = npages;
	s->seed = seed;
	s->requested = calloc(npages, sizeof(*s->requested));
	if (!s->requested)
		return -ENOMEM;
	return -pthread_create(&s->thread, NULL, server_main, s);
}

static int server_stop(struct server *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->thread, NULL);
	return s->error;
}

/* --- faulting threads ------------------------------------------------------ */

struct faulter {
	char *map;
	uint64_t npages, seed, accesses;
	unsigned int rand;
	atomic_ulong *writes;		/* increments, per page */
	uint64_t bad;			/* pages seen with wrong data */
	pthread_t thread;
};

/*
 * Random reads and writes.  A write adds 1 to the page's last word, so the
 * rest of the page still carries the pattern and can be checked anytime.
 */
static void *faulter_main(void *arg)
{
	struct faulter *f = arg;
	uint64_t i, idx;
	char *page;

	for (i = 0; i < f->accesses; i++) {
		idx = rand_r(&f->rand) % f->npages;
		page = f->map + idx * ps;
		if (rand_r(&f->rand) & 1) {
			__atomic_fetch_add((uint64_t *)(page + ps - 8), 1,
					   __ATOMIC_RELAXED);
			atomic_fetch_add(&f->writes[idx], 1);
		}
		if (vmig_pattern_errors(page, idx, f->seed, 1))
			f->bad++;
	}
	return NULL;
}

/* A thread that touches one page, then says so. */
struct toucher {
	volatile char *addr;
	int write;
	atomic_int done;
	char value;
	uint64_t start_ns;
	pthread_t thread;
};

static void *toucher_main(void *arg)
{
	struct toucher *t = arg;

	t->start_ns = now_ns();
	if (t->write)
		*t->addr = 0x5a;
	t->value = *t->addr;
	atomic_store(&t->done, 1);
	return NULL;
}

static void toucher_start(struct toucher *t, void *addr, int write)
{
	memset(t, 0, sizeof(*t));
	t->addr = addr;
	t->write = write;
	pthread_create(&t->thread, NULL, toucher_main, t);
}

/* --- tests ----------------------------------------------------------------- */

FIXTURE(postcopy) {
	int dev, fd;
	uint64_t npages, size;
	char *map;
};

FIXTURE_SETUP(postcopy)
{
	struct vmig_api api;

	ps = vmig_page_size();
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);
	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	if (!(api.features & VMIG_FEATURE_POSTCOPY))
		SKIP(return, "the module does not offer VMIG_FEATURE_POSTCOPY");
	self->npages = 256;
	self->size = self->npages * ps;
	self->fd = vmig_region_new(self->dev, self->size,
				   VMIG_REGION_POSTCOPY | VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, self->fd);
	self->map = vmig_region_map(self->fd, self->size, 0);
	ASSERT_NE(NULL, self->map);
}

FIXTURE_TEARDOWN(postcopy)
{
	if (self->map)
		munmap(self->map, self->size);
	close(self->fd);
	close(self->dev);
}

TEST_F(postcopy, api_reports_postcopy_and_batch)
{
	struct vmig_api api;

	ASSERT_EQ(0, ioctl(self->dev, VMIG_GET_API, &api));
	EXPECT_TRUE(api.features & VMIG_FEATURE_POSTCOPY);
	EXPECT_TRUE(api.features & VMIG_FEATURE_PLACE_BATCH);
}

TEST_F_TIMEOUT(postcopy, threads_faulting_random_pages_get_right_data_one_request_per_page, 120)
{
	const int nthreads = 4;
	struct faulter f[nthreads];
	atomic_ulong *writes;
	struct vmig_stats st;
	struct server s;
	uint64_t i, present = 0, hist = 0, bad = 0;
	int t;

	writes = calloc(self->npages, sizeof(*writes));
	ASSERT_NE(NULL, writes);
	ASSERT_EQ(0, server_start(&s, self->fd, self->npages, 7));
	for (t = 0; t < nthreads; t++) {
		f[t] = (struct faulter){
			.map = self->map, .npages = self->npages, .seed = 7,
			.accesses = 400, .rand = t + 1, .writes = writes,
		};
		ASSERT_EQ(0, pthread_create(&f[t].thread, NULL, faulter_main, &f[t]));
	}
	for (t = 0; t < nthreads; t++) {
		pthread_join(f[t].thread, NULL);
		bad += f[t].bad;
	}
	ASSERT_EQ(0, server_stop(&s));
	EXPECT_EQ(0, bad);

	for (i = 0; i < self->npages; i++) {
		uint64_t *last = (uint64_t *)(self->map + (i + 1) * ps) - 1;
		uint64_t want[ps / 8];

		EXPECT_GE(1, s.requested[i]) TH_LOG("page %lu requested %u times",
						     (unsigned long)i, s.requested[i]);
		if (!s.requested[i])
			continue;
		present++;
		vmig_pattern_fill(want, i, 7);
		EXPECT_EQ(0, vmig_pattern_errors(self->map + i * ps, i, 7, 1));
		EXPECT_EQ(want[ps / 8 - 1] + writes[i], *last);
	}
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(present, st.pages_present);
	EXPECT_EQ(present, st.requests);
	EXPECT_EQ(present, s.requests);
	EXPECT_EQ(present, st.pages_placed);
	EXPECT_LE(st.requests, st.missing_faults);
	for (i = 0; i < VMIG_HIST_BUCKETS; i++)
		hist += st.wait_hist[i];
	/* Every request's first fault waited; a fault may also find it placed. */
	EXPECT_LE(st.requests, hist);
	EXPECT_GE(st.missing_faults, hist);
	EXPECT_EQ(1, no_request_queued(self->fd));
	free(writes);
}

/* With wait_spin_ns set, faults spin before sleeping and still get their page. */
TEST_F_TIMEOUT(postcopy, faults_that_spin_before_sleeping_get_their_pages, 60)
{
	const char *param = "/sys/module/vmig/parameters/wait_spin_ns";
	struct faulter f[2];
	atomic_ulong *writes;
	struct server s;
	int t, fd;

	fd = open(param, O_WRONLY);
	if (fd < 0)
		SKIP(return, "%s: %s", param, strerror(errno));
	ASSERT_EQ(7, write(fd, "2000000", 7));
	writes = calloc(self->npages, sizeof(*writes));
	ASSERT_NE(NULL, writes);
	ASSERT_EQ(0, server_start(&s, self->fd, self->npages, 17));
	for (t = 0; t < 2; t++) {
		f[t] = (struct faulter){
			.map = self->map, .npages = self->npages, .seed = 17,
			.accesses = 100, .rand = t + 50, .writes = writes,
		};
		ASSERT_EQ(0, pthread_create(&f[t].thread, NULL, faulter_main, &f[t]));
	}
	for (t = 0; t < 2; t++) {
		pthread_join(f[t].thread, NULL);
		EXPECT_EQ(0, f[t].bad);
	}
	EXPECT_EQ(0, server_stop(&s));
	EXPECT_EQ(1, write(fd, "0", 1));
	close(fd);
	free(writes);
}

TEST_F(postcopy, request_carries_offset_write_flag_and_fault_time)
{
	struct vmig_request req;
	struct toucher t;
	uint64_t after;

	toucher_start(&t, self->map + 3 * ps + 100, 0);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	after = now_ns();
	EXPECT_EQ(3 * ps, req.offset);
	EXPECT_EQ(0, req.flags);
	EXPECT_EQ(0, req.reserved);
	EXPECT_LE(t.start_ns, req.time_ns);
	EXPECT_GE(after, req.time_ns);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(self->fd, 3, 1));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(self->map[3 * ps + 100], t.value);

	toucher_start(&t, self->map + 5 * ps, 1);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(5 * ps, req.offset);
	EXPECT_EQ(VMIG_REQ_WRITE, req.flags);
	ASSERT_EQ(0, vmig_place(self->fd, 5 * ps, ps, NULL, VMIG_PLACE_ZERO, NULL));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0x5a, t.value);
	EXPECT_EQ(1, no_request_queued(self->fd));
}

TEST_F(postcopy, read_blocks_unless_nonblocking_and_poll_epoll_report_requests)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct vmig_request req[4];
	struct toucher t;
	int ep, fl;

	/* Nothing to read: -EAGAIN at once, poll and epoll say not ready. */
	EXPECT_EQ(-1, read(self->fd, req, sizeof(req)));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 0));

	/* A blocking fd: read() sleeps until the fault queues a request. */
	fl = fcntl(self->fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl & ~O_NONBLOCK));
	toucher_start(&t, self->map + 9 * ps, 0);
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 20000));
	EXPECT_TRUE(out.events & EPOLLIN);
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	/* A buffer of four records returns the one there is. */
	ASSERT_EQ(sizeof(req[0]), read(self->fd, req, sizeof(req)));
	EXPECT_EQ(9 * ps, req[0].offset);
	ASSERT_EQ(0, fcntl(self->fd, F_SETFL, fl));
	EXPECT_EQ(0, poll(&pfd, 1, 0));
	ASSERT_EQ(0, vmig_place_page(self->fd, 9, 2));
	pthread_join(t.thread, NULL);
	close(ep);
}

TEST_F(postcopy, read_refuses_short_buffer_and_keeps_request_on_bad_buffer)
{
	void *volatile bad_buf = (void *)8;
	struct vmig_request req;
	struct toucher t;
	int plain;

	toucher_start(&t, self->map + 11 * ps, 0);
	ASSERT_EQ(0, wait_missing_faults(self->fd, 1));
	EXPECT_EQ(-1, read(self->fd, &req, sizeof(req) - 1));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, read(self->fd, bad_buf, sizeof(req)));
	EXPECT_EQ(EFAULT, errno);
	/* The request survived both failures. */
	ASSERT_EQ(sizeof(req), read(self->fd, &req, sizeof(req)));
	EXPECT_EQ(11 * ps, req.offset);
	ASSERT_EQ(0, vmig_place_page(self->fd, 11, 3));
	pthread_join(t.thread, NULL);

	/* A region without POSTCOPY has no requests to read or abort. */
	plain = vmig_region_new(self->dev, ps, VMIG_REGION_NONBLOCK);
	ASSERT_LE(0, plain);
	EXPECT_EQ(-1, read(plain, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(plain, VMIG_ABORT));
	EXPECT_EQ(EINVAL, errno);
	close(plain);
}

TEST_F(postcopy, place_over_present_page_is_eexist_and_changes_nothing)
{
	char buf[ps];
	struct vmig_stats st;
	uint64_t placed = 99;

	ASSERT_EQ(0, vmig_place_page(self->fd, 20, 4));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 20 * ps, 20, 4, 0));
	memset(buf, 0xee, ps);
	EXPECT_EQ(-EEXIST, vmig_place(self->fd, 20 * ps, ps, buf, 0, &placed));
	EXPECT_EQ(0, placed);
	EXPECT_EQ(-EEXIST, vmig_place(self->fd, 20 * ps, ps, NULL, VMIG_PLACE_ZERO, NULL));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 20 * ps, 20, 4, 0));

	/* A range stops at the first present page and says how far it got. */
	EXPECT_EQ(-EEXIST, vmig_place(self->fd, 18 * ps, 4 * ps, NULL,
				 VMIG_PLACE_ZERO, &placed));
	EXPECT_EQ(2 * ps, placed);
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(3, st.pages_present);
	EXPECT_EQ(3, st.pages_placed);
	EXPECT_EQ(3, st.place_exist);
	EXPECT_EQ(0, self->map[18 * ps]);
}

TEST_F(postcopy, zero_placement_and_batch_fill_pages_and_count_exist)
{
	struct vmig_place ent[3];
	struct vmig_place_batch b;
	char data[2 * ps];
	uint64_t i;

	vmig_pattern_fill(data, 30, 5);
	vmig_pattern_fill(data + ps, 31, 5);
	ASSERT_EQ(0, vmig_place_page(self->fd, 40, 5));
	memset(ent, 0, sizeof(ent));
	ent[0] = (struct vmig_place){ .offset = 30 * ps, .len = 2 * ps,
				      .src = (uintptr_t)data };
	ent[1] = (struct vmig_place){ .offset = 40 * ps, .len = ps,
				      .flags = VMIG_PLACE_ZERO };
	ent[2] = (struct vmig_place){ .offset = 41 * ps, .len = 3 * ps,
				      .flags = VMIG_PLACE_ZERO };
	memset(&b, 0, sizeof(b));
	b.entries = (uintptr_t)ent;
	b.count = 3;
	ASSERT_EQ(0, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(3, b.done);
	EXPECT_EQ(1, b.exist);
	EXPECT_EQ(2 * ps, ent[0].placed);
	EXPECT_EQ(0, ent[1].placed);
	EXPECT_EQ(3 * ps, ent[2].placed);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 30 * ps, 30, 5, 0));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 31 * ps, 31, 5, 0));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 40 * ps, 40, 5, 0));
	for (i = 41 * ps; i < 44 * ps; i++)
		ASSERT_EQ(0, self->map[i]);
}

TEST_F(postcopy, placing_an_unread_request_removes_it)
{
	struct toucher t;

	toucher_start(&t, self->map + 50 * ps, 0);
	ASSERT_EQ(0, wait_missing_faults(self->fd, 1));
	/* The page arrives in the background stream before anyone reads. */
	ASSERT_EQ(0, vmig_place_page(self->fd, 50, 6));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 50 * ps, 50, 6, 0));
	EXPECT_EQ(1, no_request_queued(self->fd));
}

TEST_F(postcopy, plain_region_pages_can_be_placed_before_first_touch)
{
	struct vmig_stats st;
	int plain = vmig_region_new(self->dev, 8 * ps, 0);
	char *p;

	ASSERT_LE(0, plain);
	p = vmig_region_map(plain, 8 * ps, 0);
	ASSERT_NE(NULL, p);
	p[0] = 1;	/* touched: zero filled */
	ASSERT_EQ(0, vmig_place_page(plain, 2, 8));
	EXPECT_EQ(-EEXIST, vmig_place_page(plain, 0, 8));
	EXPECT_EQ(0, vmig_pattern_errors(p + 2 * ps, 2, 8, 0));
	EXPECT_EQ(1, p[0]);
	ASSERT_EQ(0, vmig_region_stats(plain, &st));
	EXPECT_EQ(2, st.pages_present);
	EXPECT_EQ(0, st.missing_faults);
	munmap(p, 8 * ps);
	close(plain);
}

/* get_user_pages callers: with retry (process_vm_readv), without it
 * (/proc/self/mem), and a kernel-mode copy (write() to a pipe).
 */
struct gup_reader {
	char *addr;
	int how;
	ssize_t ret;
	char buf[64];
	pthread_t thread;
};

static void *gup_reader_main(void *arg)
{
	struct gup_reader *g = arg;
	struct iovec local = { g->buf, sizeof(g->buf) };
	struct iovec remote = { g->addr, sizeof(g->buf) };
	int fd, p[2];

	switch (g->how) {
	case 0:
		g->ret = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
		break;
	case 1:
		fd = open("/proc/self/mem", O_RDONLY);
		g->ret = pread(fd, g->buf, sizeof(g->buf), (uintptr_t)g->addr);
		close(fd);
		break;
	default:
		if (pipe(p)) {
			g->ret = -1;
			break;
		}
		g->ret = write(p[1], g->addr, sizeof(g->buf));
		if (g->ret > 0 && read(p[0], g->buf, g->ret) != g->ret)
			g->ret = -1;
		close(p[0]);
		close(p[1]);
	}
	return NULL;
}

TEST_F(postcopy, get_user_pages_and_kernel_copies_wait_for_the_page)
{
	struct gup_reader g[3];
	struct vmig_request req;
	int i;

	/*
	 * /proc/self/mem cannot retry: it waits holding mmap_lock, so it
	 * starts last; nothing here may take the lock for writing (e.g.
	 * pthread_create's stack mmap) until its page is placed.
	 */
	for (i = 2; i >= 0; i--) {
		int j = i == 2 ? 0 : i == 1 ? 2 : 1;

		g[j].addr = self->map + (60 + j) * ps;
		g[j].how = j;
		ASSERT_EQ(0, pthread_create(&g[j].thread, NULL, gup_reader_main, &g[j]));
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, vmig_read_request(self->fd, &req));
		ASSERT_EQ(0, vmig_place_page(self->fd, req.offset / ps, 9));
	}
	for (i = 0; i < 3; i++) {
		pthread_join(g[i].thread, NULL);
		EXPECT_EQ(sizeof(g[i].buf), g[i].ret) TH_LOG("reader %d", i);
		EXPECT_EQ(0, memcmp(g[i].buf, g[i].addr, sizeof(g[i].buf)));
	}
	EXPECT_EQ(1, no_request_queued(self->fd));
}

/* Fork a child that reads page @index of @map and exits 0 if it got data. */
static pid_t child_touch(char *map, uint64_t index)
{
	pid_t pid = fork();

	if (pid == 0) {
		volatile char c = map[index * ps];

		(void)c;
		_exit(0);
	}
	return pid;
}

static int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

TEST_F(postcopy, two_processes_faulting_one_page_make_one_request)
{
	struct vmig_request req;
	pid_t a, b;

	a = child_touch(self->map, 70);
	b = child_touch(self->map, 70);
	ASSERT_LT(0, a);
	ASSERT_LT(0, b);
	ASSERT_EQ(0, wait_missing_faults(self->fd, 2));
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(70 * ps, req.offset);
	EXPECT_EQ(1, no_request_queued(self->fd));
	ASSERT_EQ(0, vmig_place_page(self->fd, 70, 10));
	EXPECT_EQ(0, child_status(a));
	EXPECT_EQ(0, child_status(b));
}

TEST_F(postcopy, eight_threads_faulting_one_page_make_one_request)
{
	const int nthreads = 8;
	struct toucher t[nthreads];
	struct vmig_request req;
	struct vmig_stats st;
	int i;

	for (i = 0; i < nthreads; i++)
		toucher_start(&t[i], self->map + 75 * ps + 64 * i, i & 1);
	ASSERT_EQ(0, wait_missing_faults(self->fd, nthreads));
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(75 * ps, req.offset);
	EXPECT_EQ(1, no_request_queued(self->fd));
	ASSERT_EQ(0, vmig_place_page(self->fd, 75, 16));
	for (i = 0; i < nthreads; i++) {
		pthread_join(t[i].thread, NULL);
		EXPECT_EQ(1, atomic_load(&t[i].done));
	}
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 75 * ps, 75, 16, ps / 8 - 1));
	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(1, st.requests);
	EXPECT_LE(nthreads, st.missing_faults);
}

static atomic_int usr1_seen;

static void on_usr1(int sig)
{
	atomic_fetch_add(&usr1_seen, 1);
}

/*
 * A signal handler runs while its thread waits for a page; the access then
 * faults again and waits on the same request.
 */
TEST_F(postcopy, signal_handler_runs_during_the_wait_and_the_access_resumes)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct vmig_request req;
	struct toucher t;
	uint64_t faults;
	int i;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	toucher_start(&t, self->map + 140 * ps, 0);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	faults = stat_missing_faults(self->fd);
	ASSERT_EQ(0, pthread_kill(t.thread, SIGUSR1));
	for (i = 0; i < 20000 && !atomic_load(&usr1_seen); i++)
		usleep(1000);
	EXPECT_EQ(1, atomic_load(&usr1_seen));
	ASSERT_EQ(0, wait_missing_faults(self->fd, faults + 1));
	EXPECT_EQ(0, atomic_load(&t.done));
	EXPECT_EQ(1, no_request_queued(self->fd));
	ASSERT_EQ(0, vmig_place_page(self->fd, 140, 18));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 140 * ps, 140, 18, 0));
}

TEST_F(postcopy, abort_gives_waiters_and_later_faults_sigbus_and_read_eof)
{
	struct pollfd pfd = { .fd = self->fd, .events = POLLIN };
	struct vmig_request req;
	pid_t pid[3];
	int i, status;

	for (i = 0; i < 3; i++) {
		pid[i] = child_touch(self->map, 80 + (i & 1));
		ASSERT_LT(0, pid[i]);
	}
	ASSERT_EQ(0, wait_missing_faults(self->fd, 3));
	ASSERT_EQ(0, vmig_place_page(self->fd, 90, 11));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_ABORT));
	for (i = 0; i < 3; i++) {
		status = child_status(pid[i]);
		EXPECT_TRUE(WIFSIGNALED(status));
		EXPECT_EQ(SIGBUS, WTERMSIG(status));
	}
	/* Later faults on missing pages: SIGBUS at once; present pages work. */
	pid[0] = child_touch(self->map, 82);
	status = child_status(pid[0]);
	EXPECT_TRUE(WIFSIGNALED(status));
	EXPECT_EQ(SIGBUS, WTERMSIG(status));
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 90 * ps, 90, 11, 0));
	/* Readers see end of file, poll says hang-up. */
	EXPECT_EQ(0, read(self->fd, &req, sizeof(req)));
	ASSERT_EQ(1, poll(&pfd, 1, 0));
	EXPECT_TRUE(pfd.revents & POLLHUP);
	EXPECT_EQ(0, ioctl(self->fd, VMIG_ABORT));
}

TEST_F(postcopy, waiting_process_killed_with_sigkill_exits_cleanly)
{
	struct vmig_request req;
	struct toucher t;
	pid_t pid, gup;
	int status;

	/* One waiter through a plain fault, one inside get_user_pages. */
	pid = child_touch(self->map, 100);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	gup = fork();
	ASSERT_LE(0, gup);
	if (gup == 0) {
		int fd = open("/proc/self/mem", O_RDONLY);
		char c;

		_exit(pread(fd, &c, 1, (uintptr_t)(self->map + 101 * ps)) == 1 ? 0 : 3);
	}
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	EXPECT_EQ(101 * ps, req.offset);
	kill(pid, SIGKILL);
	kill(gup, SIGKILL);
	status = child_status(pid);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	status = child_status(gup);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	/* The service goes on: the pages still arrive and are seen. */
	toucher_start(&t, self->map + 100 * ps, 0);
	ASSERT_EQ(0, vmig_place_page(self->fd, 100, 12));
	ASSERT_EQ(0, vmig_place_page(self->fd, 101, 12));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 100 * ps, 100, 12, 0));
}

TEST_F(postcopy, munmap_and_mmap_proceed_while_a_fault_waits)
{
	struct vmig_request req;
	struct toucher t;
	char *other;

	other = vmig_region_map(self->fd, 4 * ps, 0);
	ASSERT_NE(NULL, other);
	toucher_start(&t, self->map + 110 * ps, 0);
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	/* These need mmap_lock for writing: the waiter must not hold it. */
	ASSERT_EQ(0, munmap(other, 4 * ps));
	other = mmap(NULL, ps, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, other);
	munmap(other, ps);
	EXPECT_EQ(0, atomic_load(&t.done));
	ASSERT_EQ(0, vmig_place_page(self->fd, 110, 13));
	pthread_join(t.thread, NULL);
	EXPECT_EQ(0, vmig_pattern_errors(self->map + 110 * ps, 110, 13, 0));
}

/*
 * A waiting fault holds the region like a mapping does: with every fd
 * closed and every mapping unmapped the region lives on until the waiter
 * is gone, then it is freed.
 */
TEST_F(postcopy, a_waiting_fault_keeps_the_region_until_it_is_killed)
{
	struct vmig_global_stats g0, g;
	struct vmig_request req;
	int go[2], unmapped[2], status;
	char c;
	pid_t pid;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(unmapped));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct toucher t;

		close(self->fd);
		toucher_start(&t, self->map + 120 * ps, 0);
		if (read(go[0], &c, 1) != 1)
			_exit(4);
		munmap(self->map, self->size);
		if (write(unmapped[1], "u", 1) != 1)
			_exit(5);
		pthread_join(t.thread, NULL);
		_exit(6);
	}
	ASSERT_EQ(0, vmig_read_request(self->fd, &req));
	munmap(self->map, self->size);
	self->map = NULL;
	ASSERT_EQ(1, write(go[1], "g", 1));
	ASSERT_EQ(1, read(unmapped[0], &c, 1));
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g0));
	close(self->fd);
	self->fd = -1;
	usleep(100000);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.regions, g.regions);
	/* Nor can the module go: the waiter still runs its code. */
	close(self->dev);
	EXPECT_NE(0, vmig_module_unload());
	self->dev = vmig_dev_open();
	ASSERT_LE(0, self->dev);

	kill(pid, SIGKILL);
	status = child_status(pid);
	EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	ASSERT_EQ(0, vmig_global_stats(self->dev, &g));
	EXPECT_EQ(g0.regions - 1, g.regions);
}

/* Many threads fault a page while it is being placed: all see the data. */
TEST_F_TIMEOUT(postcopy, place_racing_faults_on_the_same_page, 120)
{
	const int nthreads = 3;
	struct toucher t[nthreads];
	uint64_t idx;
	int i;

	for (idx = 0; idx < 100; idx++) {
		for (i = 0; i < nthreads; i++)
			toucher_start(&t[i], self->map + idx * ps + 8 * i, i & 1);
		if (idx & 1)
			usleep(idx * 10);
		ASSERT_EQ(0, vmig_place_page(self->fd, idx, 14));
		for (i = 0; i < nthreads; i++)
			pthread_join(t[i].thread, NULL);
		ASSERT_EQ(0, vmig_pattern_errors(self->map + idx * ps, idx, 14,
					    ps / 8 - 1));
	}
	/* Requests of pages placed before anyone read them were removed. */
	EXPECT_EQ(1, no_request_queued(self->fd));
}

/*
 * A background stream places every page while a server places the pages
 * the faulting threads request.  Each page is placed exactly once, by one
 * of the two; the other gets -EEXIST; no page ever mixes the two sources.
 */
struct streamer {
	int fd;
	uint64_t npages;
	unsigned char fill;
	atomic_uint *won;		/* per page: placements that succeeded */
	atomic_uint *lost;		/* per page: -EEXIST */
	atomic_int *stop;
	int error;
	pthread_t thread;
};

static void *background_main(void *arg)
{
	struct streamer *s = arg;
	char buf[ps];
	uint64_t i;
	int err;

	memset(buf, s->fill, ps);
	for (i = 0; i < s->npages; i++) {
		err = vmig_place(s->fd, i * ps, ps, buf, 0, NULL);
		if (err == -EEXIST) {
			atomic_fetch_add(&s->lost[i], 1);
		} else if (err) {
			s->error = -err;
			break;
		} else {
			atomic_fetch_add(&s->won[i], 1);
		}
	}
	return NULL;
}

static void *demand_main(void *arg)
{
	struct streamer *s = arg;
	struct pollfd pfd = { .fd = s->fd, .events = POLLIN };
	struct vmig_request req;
	char buf[ps];
	uint64_t i;
	int err;

	memset(buf, s->fill, ps);
	while (!atomic_load(s->stop)) {
		if (poll(&pfd, 1, 20) <= 0 || read(s->fd, &req, sizeof(req)) != sizeof(req))
			continue;
		i = req.offset / ps;
		err = vmig_place(s->fd, req.offset, ps, buf, 0, NULL);
		if (err == -EEXIST) {
			atomic_fetch_add(&s->lost[i], 1);
		} else if (err) {
			s->error = -err;
			break;
		} else {
			atomic_fetch_add(&s->won[i], 1);
		}
	}
	return NULL;
}

static void *uniform_reader_main(void *arg)
{
	struct faulter *f = arg;
	const unsigned char *p;
	uint64_t i, idx;
	long j;

	for (i = 0; i < f->accesses; i++) {
		idx = rand_r(&f->rand) % f->npages;
		p = (const unsigned char *)f->map + idx * ps;
		for (j = 1; j < ps; j++)
			if (p[j] != p[0])
				break;
		if (j < ps || (p[0] != 0xb0 && p[0] != 0xd0))
			f->bad++;
	}
	return NULL;
}

TEST_F_TIMEOUT(postcopy, background_place_races_demand_place_first_wins, 120)
{
	atomic_uint *won, *lost;
	struct streamer bg, dm;
	struct faulter f[2];
	atomic_int stop = 0;
	uint64_t i;
	int t;

	won = calloc(self->npages, sizeof(*won));
	lost = calloc(self->npages, sizeof(*lost));
	ASSERT_NE(NULL, won);
	ASSERT_NE(NULL, lost);
	bg = (struct streamer){ .fd = self->fd, .npages = self->npages,
				.fill = 0xb0, .won = won, .lost = lost,
				.stop = &stop };
	dm = bg;
	dm.fill = 0xd0;
	ASSERT_EQ(0, pthread_create(&dm.thread, NULL, demand_main, &dm));
	for (t = 0; t < 2; t++) {
		f[t] = (struct faulter){ .map = self->map, .npages = self->npages,
					 .accesses = 200, .rand = 100 + t };
		ASSERT_EQ(0, pthread_create(&f[t].thread, NULL, uniform_reader_main, &f[t]));
	}
	usleep(2000);
	ASSERT_EQ(0, pthread_create(&bg.thread, NULL, background_main, &bg));
	pthread_join(bg.thread, NULL);
	for (t = 0; t < 2; t++) {
		pthread_join(f[t].thread, NULL);
		EXPECT_EQ(0, f[t].bad);
	}
	atomic_store(&stop, 1);
	pthread_join(dm.thread, NULL);
	EXPECT_EQ(0, bg.error);
	EXPECT_EQ(0, dm.error);
	for (i = 0; i < self->npages; i++) {
		const unsigned char *p = (unsigned char *)self->map + i * ps;
		long j;

		ASSERT_EQ(1, won[i]) TH_LOG("page %lu placed %u times",
					    (unsigned long)i, won[i]);
		for (j = 1; j < ps; j++)
			ASSERT_EQ(p[0], p[j]);
	}
	free(won);
	free(lost);
}

/* --- bad input ------------------------------------------------------------- */

struct bad_place {
	const char *what;
	struct vmig_place pl;
	int err;
};

TEST_F(postcopy, bad_placements_fail_with_clear_errno_and_place_nothing)
{
	static char src[8192] __attribute__((aligned(4096)));
	uint64_t size = self->size, s = (uintptr_t)src;
	const struct bad_place bad[] = {
		{ "unaligned offset", { 1, ps, s, 0, 0, 0 }, EINVAL },
		{ "zero length", { 0, 0, s, 0, 0, 0 }, EINVAL },
		{ "unaligned length", { 0, ps + 1, s, 0, 0, 0 }, EINVAL },
		{ "offset at the end", { size, ps, s, 0, 0, 0 }, EINVAL },
		{ "range past the end", { size - ps, 2 * ps, s, 0, 0, 0 }, EINVAL },
		{ "offset + len overflows", { size - ps, -(uint64_t)ps, s, 0, 0, 0 }, EINVAL },
		{ "huge offset", { -(uint64_t)ps, ps, s, 0, 0, 0 }, EINVAL },
		{ "unknown flag", { 0, ps, s, 1u << 7, 0, 0 }, EINVAL },
		{ "reserved set", { 0, ps, s, 0, 1, 0 }, EINVAL },
		{ "ZERO with a source", { 0, ps, s, VMIG_PLACE_ZERO, 0, 0 }, EINVAL },
		{ "NULL source", { 0, ps, 0, 0, 0, 0 }, EFAULT },
		{ "unmapped source", { 0, ps, 4096, 0, 0, 0 }, EFAULT },
		{ "kernel source", { 0, ps, 0xffff888000000000ull, 0, 0, 0 }, EFAULT },
		{ "source wraps", { 0, 2 * ps, -(uint64_t)ps, 0, 0, 0 }, EFAULT },
	};
	struct vmig_place_batch b;
	struct vmig_place ent[2];
	struct vmig_stats st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vmig_place pl = bad[i].pl;

		EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE, &pl)) TH_LOG("%s", bad[i].what);
		EXPECT_EQ(bad[i].err, errno) TH_LOG("%s", bad[i].what);
	}
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE, NULL));
	EXPECT_EQ(EFAULT, errno);

	/* Batches: bad header fields, bad array, one bad entry among good. */
	memset(ent, 0, sizeof(ent));
	ent[0] = (struct vmig_place){ .offset = 0, .len = ps, .src = s };
	ent[1] = (struct vmig_place){ .offset = 1, .len = ps, .src = s };
	memset(&b, 0, sizeof(b));
	b.entries = (uintptr_t)ent;
	b.count = 2;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(0, b.done);
	b.count = 0;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(EINVAL, errno);
	b.count = VMIG_PLACE_BATCH_MAX + 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(EINVAL, errno);
	b.count = 1;
	b.flags = 1;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(EINVAL, errno);
	b.flags = 0;
	b.entries = 8;
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, &b));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->fd, VMIG_PLACE_BATCH, NULL));
	EXPECT_EQ(EFAULT, errno);

	ASSERT_EQ(0, vmig_region_stats(self->fd, &st));
	EXPECT_EQ(0, st.pages_present);
	EXPECT_EQ(0, st.pages_placed);
	EXPECT_EQ(0, st.requests);
	EXPECT_EQ(1, no_request_queued(self->fd));
}

TEST_F(postcopy, tracepoints_report_missing_faults_and_placements)
{
	const char *tr = "/sys/kernel/tracing";
	char path[256], *buf;
	struct toucher t;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/events/vmig/enable", tr);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		SKIP(return, "no tracefs at %s (%s)", tr, strerror(errno));
	ASSERT_EQ(1, write(fd, "1", 1));
	close(fd);
	snprintf(path, sizeof(path), "%s/trace", tr);
	fd = open(path, O_WRONLY | O_TRUNC);
	ASSERT_LE(0, fd);
	close(fd);

	toucher_start(&t, self->map + 130 * ps, 1);
	ASSERT_EQ(0, wait_missing_faults(self->fd, 1));
	ASSERT_EQ(0, vmig_place_page(self->fd, 130, 15));
	pthread_join(t.thread, NULL);

	buf = calloc(1, 1 << 20);
	ASSERT_NE(NULL, buf);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	n = read(fd, buf, (1 << 20) - 1);
	close(fd);
	ASSERT_LT(0, n);
	EXPECT_NE(NULL, strstr(buf, "vmig_missing_fault:")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "vmig_missing_wake:"));
	EXPECT_NE(NULL, strstr(buf, "vmig_place:"));
	EXPECT_NE(NULL, strstr(buf, "new_request=1"));
	snprintf(path, sizeof(path), "%s/events/vmig/enable", tr);
	fd = open(path, O_WRONLY);
	if (fd >= 0) {
		ASSERT_EQ(1, write(fd, "0", 1));
		close(fd);
	}
	free(buf);
}

/* A destination may become a source: dirty logging on a placed region. */
TEST_F(postcopy, dirty_logging_can_be_enabled_after_placement)
{
	struct vmig_dirty_enable en = { 0 };
	struct vmig_dirty_log log;
	uint64_t bitmap[4];

	ASSERT_EQ(0, vmig_place(self->fd, 0, self->size, NULL, VMIG_PLACE_ZERO, NULL));
	if (ioctl(self->fd, VMIG_DIRTY_ENABLE, &en) && errno == ENOTTY)
		SKIP(return, "dirty logging is not in this module (ENOTTY)");
	memset(&log, 0, sizeof(log));
	log.num_pages = self->npages;
	log.bitmap = (uintptr_t)bitmap;
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_DIRTY_LOG, &log));
	self->map[3 * ps] = 1;
	memset(bitmap, 0, sizeof(bitmap));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_DIRTY_LOG, &log));
	EXPECT_TRUE(bitmap[0] & (1ull << 3));
	EXPECT_EQ(0, ioctl(self->fd, VMIG_DIRTY_DISABLE));
}

/* A page placed while logging is on is new data: it is reported dirty. */
TEST_F(postcopy, page_placed_while_dirty_logging_is_on_is_reported_dirty)
{
	struct vmig_dirty_enable en = { 0 };
	struct vmig_dirty_log log;
	uint64_t bitmap[4];

	if (ioctl(self->fd, VMIG_DIRTY_ENABLE, &en) && errno == ENOTTY)
		SKIP(return, "dirty logging is not in this module (ENOTTY)");
	memset(&log, 0, sizeof(log));
	log.num_pages = self->npages;
	log.bitmap = (uintptr_t)bitmap;
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_DIRTY_LOG, &log));
	ASSERT_EQ(0, vmig_place_page(self->fd, 7, 19));
	memset(bitmap, 0, sizeof(bitmap));
	ASSERT_EQ(0, ioctl(self->fd, VMIG_GET_DIRTY_LOG, &log));
	EXPECT_EQ(1ull << 7, bitmap[0]);
	EXPECT_EQ(0, bitmap[1] | bitmap[2] | bitmap[3]);
	EXPECT_EQ(0, ioctl(self->fd, VMIG_DIRTY_DISABLE));
}

TEST_HARNESS_MAIN
