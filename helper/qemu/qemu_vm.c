// SPDX-License-Identifier: GPL-2.0
/*
 * One QEMU driven over QMP (see qemu_vm.h).
 *
 * The device state is QEMU's own migration stream with x-ignore-shared on
 * both ends: RAM blocks mapped from share=on files (the vmig regions) are
 * left out, everything else goes in.  Source: getfd hands QEMU the write
 * end of a pipe, "migrate" to fd:NAME writes the stream into it, we read
 * until QEMU closes it and then wait for query-migrate to say completed.
 * A running guest is stopped by that migration itself (pause-before-
 * switchover, qemu_vm_stop_migrating), so its setup is not downtime.
 * Destination: the same with the read end and "migrate-incoming".  The
 * pipe carries the bytes while they are made; qemu_vm_finish_save keeps
 * them whole (at most SAVE_AHEAD_MAX, the caller decides whether to use
 * it), as the destination's caller does before it loads.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "qemu_vm.h"
#include "util.h"

#define STATE_FDNAME	"vmig-state"
#define STATE_BUF	(256u << 10)

static int cmd(struct qemu_vm *vm, const char *json, int fd, char *out, size_t len)
{
	return qmp_cmd(&vm->qmp, json, fd, vm->timeout_ms, out, len);
}

int qemu_vm_open(struct qemu_vm *vm, const char *qmp_path, bool incoming, int timeout_ms,
		 char *err, size_t len)
{
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	char status[32];
	int r;

	memset(vm, 0, sizeof(*vm));
	vm->pending_fd = vm->load_fd = -1;
	vm->timeout_ms = timeout_ms;
	vm->state_timeout_ms = timeout_ms;
	r = qmp_connect(&vm->qmp, qmp_path, timeout_ms);
	if (r) {
		snprintf(err, len, "%s", vm->qmp.err);
		return r;
	}
	if (!getsockopt(vm->qmp.fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl))
		vm->pid = cred.pid;
	r = qemu_vm_status(vm, status, sizeof(status), err, len);
	if (r)
		return r;
	if (incoming && strcmp(status, "inmigrate")) {
		snprintf(err, len, "QEMU at %s is %s, not waiting for an incoming migration "
			 "(start it with -incoming defer)", qmp_path, status);
		return -EINVAL;
	}
	if (!incoming && !strcmp(status, "inmigrate")) {
		snprintf(err, len, "QEMU at %s waits for an incoming migration: it has no "
			 "guest to send (use --incoming on the destination)", qmp_path);
		return -EINVAL;
	}
	/* In the inmigrate state "stop" means: do not start the guest after loading. */
	if (incoming)
		r = cmd(vm, "{\"execute\":\"stop\"}", -1, err, len);
	if (!r)
		r = cmd(vm, "{\"execute\":\"migrate-set-capabilities\",\"arguments\":"
			"{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":true},"
			"{\"capability\":\"events\",\"state\":true}]}}",
			-1, err, len);
	if (!r)
		r = cmd(vm, "{\"execute\":\"migrate-set-parameters\",\"arguments\":"
			"{\"max-bandwidth\":1099511627776}}", -1, err, len);
	return r;
}

static void drop_pending(struct qemu_vm *vm)
{
	if (vm->pending_fd >= 0)
		close(vm->pending_fd);
	vm->pending_fd = -1;
	free(vm->early);
	vm->early = NULL;
	vm->early_len = vm->early_cap = 0;
	vm->saved = false;
}

void qemu_vm_close(struct qemu_vm *vm)
{
	if (vm->load_fd >= 0)
		close(vm->load_fd);
	vm->load_fd = -1;
	drop_pending(vm);
	qmp_close(&vm->qmp);
}

int qemu_vm_status(struct qemu_vm *vm, char *status, size_t slen, char *err, size_t len)
{
	char reply[512];
	int r = cmd(vm, "{\"execute\":\"query-status\"}", -1, reply, sizeof(reply));

	if (r) {
		snprintf(err, len, "%s", reply);
		return r;
	}
	if (qmp_json_str(reply, "status", status, slen)) {
		snprintf(err, len, "query-status: no status in %.200s", reply);
		return -EPROTO;
	}
	return 0;
}

/* Run cmd, then check that query-status says want. */
static int run_and_check(struct qemu_vm *vm, const char *json, const char *what,
			 const char *want, char *err, size_t len)
{
	char status[32];
	int r = cmd(vm, json, -1, err, len);

	if (!r)
		r = qemu_vm_status(vm, status, sizeof(status), err, len);
	if (!r && strcmp(status, want)) {
		snprintf(err, len, "%s: QEMU is %s afterwards, not %s", what, status, want);
		r = -EPROTO;
	}
	return r;
}

int qemu_vm_stop(struct qemu_vm *vm, char *err, size_t len)
{
	return run_and_check(vm, "{\"execute\":\"stop\"}", "stop", "paused", err, len);
}

/*
 * cont returns once the vCPUs run again, and QEMU's RESUME event comes
 * before that reply: seen, it says what query-status would.
 */
int qemu_vm_cont(struct qemu_vm *vm, char *err, size_t len)
{
	char status[32];
	int r;

	vm->qmp.resume_event_us = 0;
	r = cmd(vm, "{\"execute\":\"cont\"}", -1, err, len);
	if (r || vm->qmp.resume_event_us)
		return r;
	r = qemu_vm_status(vm, status, sizeof(status), err, len);
	if (!r && strcmp(status, "running")) {
		snprintf(err, len, "cont: QEMU is %s afterwards, not running", status);
		r = -EPROTO;
	}
	return r;
}

void qemu_vm_quit(struct qemu_vm *vm)
{
	int saved = vm->timeout_ms;

	vm->timeout_ms = 2000;
	cmd(vm, "{\"execute\":\"quit\"}", -1, NULL, 0);
	vm->timeout_ms = saved;
}

bool qemu_vm_alive(struct qemu_vm *vm)
{
	return !qmp_poll_events(&vm->qmp);
}

int qemu_vm_maps_shared(struct qemu_vm *vm, int fd, uint64_t size, char *err, size_t len)
{
	char path[64], line[512];
	uint64_t mapped = 0;
	struct stat st;
	FILE *f;

	if (fstat(fd, &st))
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)vm->pid);
	f = vm->pid > 0 ? fopen(path, "re") : NULL;
	if (!f) {
		snprintf(err, len, "cannot read QEMU's memory map (%s): %s", path,
			 strerror(vm->pid > 0 ? errno : ESRCH));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, ino;
		unsigned int maj, min;
		char perms[8];

		if (sscanf(line, "%llx-%llx %7s %*x %x:%x %llu", &start, &end, perms, &maj, &min,
			   &ino) != 6)
			continue;
		if (maj == major(st.st_dev) && min == minor(st.st_dev) && ino == st.st_ino &&
		    perms[3] == 's')
			mapped += end - start;
	}
	fclose(f);
	if (mapped < size) {
		snprintf(err, len, "QEMU (pid %d) maps %" PRIu64 " of its %" PRIu64 " bytes "
			 "shared (give it memory-backend-file,mem-path=THAT FILE,share=on)",
			 (int)vm->pid, mapped, size);
		return -ENXIO;
	}
	return 0;
}

uint64_t qemu_vm_state_estimate(struct qemu_vm *vm, const uint64_t *skip, unsigned int nskip)
{
	char *reply = malloc(QMP_LINE_MAX), *text = malloc(QMP_LINE_MAX), *line, *save;
	bool used[16] = { false };
	uint64_t total = 0;

	if (!reply || !text || nskip > 16 ||
	    cmd(vm, "{\"execute\":\"human-monitor-command\",\"arguments\":"
		"{\"command-line\":\"info ramblock\"}}", -1, reply, QMP_LINE_MAX) ||
	    qmp_json_str(reply, "return", text, QMP_LINE_MAX)) {
		free(reply);
		free(text);
		return 0;
	}
	for (line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		unsigned long long off, blk;
		unsigned int i;
		char name[128];

		if (sscanf(line, "%127s %*s %*s 0x%llx 0x%llx", name, &off, &blk) != 3)
			continue;
		for (i = 0; i < nskip; i++) {
			if (!used[i] && skip[i] == blk) {
				used[i] = true;
				break;
			}
		}
		if (i == nskip)
			total += blk;
	}
	free(reply);
	free(text);
	return total;
}

/*
 * Up to ms for QEMU to say something on QMP (an event: MIGRATION's status
 * changes come so, with the "events" capability) or for fd to be readable;
 * what QMP said is taken in (qmp_poll_events).
 */
static void wait_qmp(struct qemu_vm *vm, int fd, int ms)
{
	struct pollfd p[2] = { { .fd = vm->qmp.fd, .events = POLLIN },
			       { .fd = fd, .events = POLLIN } };

	if (poll(p, fd >= 0 ? 2 : 1, ms) > 0 && p[0].revents)
		qmp_poll_events(&vm->qmp);
}

/*
 * One query-migrate: its status into status (at most 32 bytes); -EIO with
 * QEMU's reason in err if the migration failed or was cancelled, or had
 * ended some other way than end_ok allows ("completed", or none at all).
 */
static int query_migration(struct qemu_vm *vm, const char *what, bool end_ok, char *status,
			   char *err, size_t len)
{
	char reply[2048], desc[400];
	int r = cmd(vm, "{\"execute\":\"query-migrate\"}", -1, reply, sizeof(reply));

	if (r) {
		snprintf(err, len, "%s: %s", what, reply);
		return r;
	}
	if (qmp_json_str(reply, "status", status, 32))
		snprintf(status, 32, "none");
	if (!strcmp(status, "failed") || !strcmp(status, "cancelled") ||
	    (!end_ok && (!strcmp(status, "completed") || !strcmp(status, "none")))) {
		if (qmp_json_str(reply, "error-desc", desc, sizeof(desc)))
			snprintf(desc, sizeof(desc), "no reason given");
		snprintf(err, len, "%s: QEMU's migration %s: %s", what, status, desc);
		return -EIO;
	}
	return 0;
}

/* query-migrate until it ends: 0 completed, else the reason in err. */
static int wait_migration(struct qemu_vm *vm, const char *what, char *err, size_t len)
{
	uint64_t deadline = now_ns() + (uint64_t)vm->state_timeout_ms * 1000000;
	char status[32];
	int r;

	for (;;) {
		r = query_migration(vm, what, true, status, err, len);
		if (r || !strcmp(status, "completed"))
			return r;
		if (now_ns() > deadline) {
			snprintf(err, len, "%s: QEMU's migration still %s after %d ms", what,
				 status, vm->state_timeout_ms);
			return -ETIMEDOUT;
		}
		wait_qmp(vm, -1, 2);
	}
}

/* Wait until QEMU's migration is no longer running, however it ended. */
static void wait_migration_ended(struct qemu_vm *vm)
{
	uint64_t deadline = now_ns() + (uint64_t)vm->state_timeout_ms * 1000000;
	char reply[2048], status[32];

	while (now_ns() < deadline) {
		if (cmd(vm, "{\"execute\":\"query-migrate\"}", -1, reply, sizeof(reply)))
			return;
		if (qmp_json_str(reply, "status", status, sizeof(status)) ||
		    !strcmp(status, "cancelled") || !strcmp(status, "failed") ||
		    !strcmp(status, "completed"))
			return;
		wait_qmp(vm, -1, 2);
	}
}

static const char *early_error(int r)
{
	return r == -EFBIG ? "more than 256 MiB, which no device state is (RAM blocks "
			     "outside the --ram regions?)" : strerror(-r);
}

/* Take what the pipe holds now into vm->early; -errno if it cannot. */
static int take_early(struct qemu_vm *vm)
{
	for (;;) {
		ssize_t n;

		if (vm->early_cap - vm->early_len < STATE_BUF) {
			size_t cap = vm->early_cap ? vm->early_cap * 2 : 2 * STATE_BUF;
			char *p;

			if (cap > SAVE_AHEAD_MAX)
				return -EFBIG;	/* more than a device state: its RAM blocks? */
			p = realloc(vm->early, cap);
			if (!p)
				return -ENOMEM;
			vm->early = p;
			vm->early_cap = cap;
		}
		n = read(vm->pending_fd, vm->early + vm->early_len, vm->early_cap - vm->early_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			return 0;	/* QEMU closed it: query-migrate says why */
		vm->early_len += n;
	}
}

/* Hand QEMU one end of a pipe under STATE_FDNAME; returns our end. */
static int pass_pipe(struct qemu_vm *vm, bool give_write_end, const char *what, char *err,
		     size_t len)
{
	char reply[600];
	int p[2], r;

	if (pipe2(p, O_CLOEXEC)) {
		r = -errno;
		snprintf(err, len, "%s: pipe: %s", what, strerror(errno));
		return r;
	}
	fcntl(p[0], F_SETPIPE_SZ, 1 << 20);	/* fewer wake-ups; best effort */
	r = cmd(vm, "{\"execute\":\"getfd\",\"arguments\":{\"fdname\":\"" STATE_FDNAME "\"}}",
		p[give_write_end], reply, sizeof(reply));
	close(p[give_write_end]);
	if (r) {
		close(p[!give_write_end]);
		snprintf(err, len, "%s: %s", what, reply);
		return r;
	}
	return p[!give_write_end];
}

static int set_pause(struct qemu_vm *vm, bool on, const char *what, char *err, size_t len)
{
	char json[200], reply[600];
	int r;

	snprintf(json, sizeof(json), "{\"execute\":\"migrate-set-capabilities\",\"arguments\":"
		 "{\"capabilities\":[{\"capability\":\"pause-before-switchover\",\"state\":%s}]}}",
		 on ? "true" : "false");
	r = cmd(vm, json, -1, reply, sizeof(reply));
	if (r)
		snprintf(err, len, "%s: %s", what, reply);
	return r;
}

/* migrate into a fresh pipe; our end, or -errno with err set. */
static int start_migrate(struct qemu_vm *vm, bool pause, const char *what, char *err,
			 size_t len)
{
	char reply[600];
	int fd, r;

	r = set_pause(vm, pause, what, err, len);
	if (r)
		return r;
	fd = pass_pipe(vm, true, what, err, len);
	if (fd < 0)
		return fd;
	r = cmd(vm, "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"fd:" STATE_FDNAME "\"}}",
		-1, reply, sizeof(reply));
	if (r) {
		snprintf(err, len, "%s: %s", what, reply);
		cmd(vm, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"" STATE_FDNAME "\"}}",
		    -1, NULL, 0);
		close(fd);
		return r;
	}
	return fd;
}

static uint64_t realtime_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t.tv_sec * 1000000ull + t.tv_nsec / 1000;
}

int qemu_vm_stop_migrating(struct qemu_vm *vm, uint64_t *ran_ns, char *err, size_t len)
{
	static const char what[] = "stop for the switchover (QEMU's migration up to "
				   "pre-switchover)";
	uint64_t t0 = now_ns(), t0_us = realtime_us(), deadline, took, next_query = 0;
	char status[32];
	int r;

	*ran_ns = 0;
	deadline = t0 + (uint64_t)vm->state_timeout_ms * 1000000;
	vm->qmp.stop_event_us = 0;
	vm->qmp.mig_status[0] = 0;
	r = start_migrate(vm, true, what, err, len);
	if (r < 0)
		return r;
	vm->pending_fd = r;
	fcntl(r, F_SETFL, O_NONBLOCK);
	for (;;) {
		r = take_early(vm);
		if (r) {
			snprintf(err, len, "%s: reading QEMU's stream: %s", what, early_error(r));
			goto fail;
		}
		/* QEMU's MIGRATION event says it at once; query-migrate now and then. */
		if (!strcmp(vm->qmp.mig_status, "pre-switchover"))
			break;
		if (now_ns() < next_query && strcmp(vm->qmp.mig_status, "failed") &&
		    strcmp(vm->qmp.mig_status, "cancelled")) {
			wait_qmp(vm, vm->pending_fd, 5);
			continue;
		}
		next_query = now_ns() + 50000000;
		r = query_migration(vm, what, false, status, err, len);
		if (r)
			goto fail;
		if (!strcmp(status, "pre-switchover"))
			break;
		if (now_ns() > deadline) {
			snprintf(err, len, "%s: QEMU's migration still %s after %d ms", what,
				 status, vm->state_timeout_ms);
			r = -ETIMEDOUT;
			goto fail;
		}
		wait_qmp(vm, vm->pending_fd, 5);
	}
	/*
	 * The vCPUs stopped: pre-switchover comes after QEMU's vm_stop, whose
	 * STOP event came first on QMP.  Without one, ask.
	 */
	qmp_poll_events(&vm->qmp);
	if (!vm->qmp.stop_event_us)
		r = qemu_vm_status(vm, status, sizeof(status), err, len);
	if (!r && !vm->qmp.stop_event_us && strcmp(status, "finish-migrate")) {
		snprintf(err, len, "%s: QEMU is %s in pre-switchover, not finish-migrate", what,
			 status);
		r = -EPROTO;
	}
	if (r)
		goto fail;
	took = now_ns() - t0;
	if (vm->qmp.stop_event_us > t0_us) {
		*ran_ns = (vm->qmp.stop_event_us - t0_us) * 1000;
		if (*ran_ns > took)
			*ran_ns = took;
	}
	return 0;
fail:
	qemu_vm_cancel_pending(vm, NULL, 0);
	return r;
}

int qemu_vm_cancel_pending(struct qemu_vm *vm, char *err, size_t len)
{
	char reply[600];
	int r;

	if (vm->pending_fd < 0)
		return 0;
	r = cmd(vm, "{\"execute\":\"migrate_cancel\"}", -1, reply, sizeof(reply));
	if (r && err)
		snprintf(err, len, "cancelling QEMU's paused migration: %s", reply);
	drop_pending(vm);	/* a QEMU still writing gets EPIPE */
	if (!r)
		wait_migration_ended(vm);
	return r;
}

int qemu_vm_finish_save(struct qemu_vm *vm, char *err, size_t len)
{
	static const char what[] = "device state save";
	uint64_t t0 = now_ns();
	char reply[600];
	int r;

	if (vm->pending_fd < 0) {
		snprintf(err, len, "%s: no migration waits in pre-switchover", what);
		return -EINVAL;
	}
	r = cmd(vm, "{\"execute\":\"migrate-continue\",\"arguments\":"
		"{\"state\":\"pre-switchover\"}}", -1, reply, sizeof(reply));
	if (r) {
		snprintf(err, len, "%s: %s", what, reply);
		goto fail;
	}
	fcntl(vm->pending_fd, F_SETFL, 0);	/* blocking: take_early reads to the end */
	r = take_early(vm);
	if (r) {
		snprintf(err, len, "%s: reading QEMU's stream: %s", what, early_error(r));
		goto fail;
	}
	r = wait_migration(vm, what, err, len);
	if (r)
		goto fail;
	close(vm->pending_fd);
	vm->pending_fd = -1;
	vm->saved = true;
	vm->save_ns = now_ns() - t0;
	return 0;
fail:
	qemu_vm_cancel_pending(vm, NULL, 0);
	return r;
}

int qemu_vm_save_state(struct qemu_vm *vm, qemu_state_sink sink, void *arg,
		       uint64_t *bytes, char *err, size_t len)
{
	static const char what[] = "device state save";
	char reply[600], *buf = malloc(STATE_BUF);
	int fd, r = 0;

	*bytes = 0;
	if (!buf)
		return -ENOMEM;
	if (vm->saved) {	/* qemu_vm_finish_save has all of it */
		r = sink(arg, vm->early, vm->early_len);
		if (r)
			snprintf(err, len, "%s: passing QEMU's stream on: %s", what, strerror(-r));
		else
			*bytes = vm->early_len;
		drop_pending(vm);
		free(buf);
		return r;
	}
	vm->save_ns = now_ns();
	if (vm->pending_fd >= 0) {
		/* Stopped in pre-switchover: what came before, then the rest. */
		fd = vm->pending_fd;
		vm->pending_fd = -1;
		fcntl(fd, F_SETFL, 0);
		if (vm->early_len)
			r = sink(arg, vm->early, vm->early_len);
		if (r) {
			snprintf(err, len, "%s: passing QEMU's stream on: %s", what, strerror(-r));
			cmd(vm, "{\"execute\":\"migrate_cancel\"}", -1, NULL, 0);
			goto out;
		}
		*bytes = vm->early_len;
		free(vm->early);
		vm->early = NULL;
		vm->early_len = vm->early_cap = 0;
		r = cmd(vm, "{\"execute\":\"migrate-continue\",\"arguments\":"
			"{\"state\":\"pre-switchover\"}}", -1, reply, sizeof(reply));
		if (r) {
			snprintf(err, len, "%s: %s", what, reply);
			cmd(vm, "{\"execute\":\"migrate_cancel\"}", -1, NULL, 0);
			goto out;
		}
	} else {
		fd = start_migrate(vm, false, what, err, len);
		if (fd < 0) {
			free(buf);
			return fd;
		}
	}
	for (;;) {
		ssize_t n = read(fd, buf, STATE_BUF);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, len, "%s: reading QEMU's stream: %s", what, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		r = sink(arg, buf, n);
		if (r) {
			snprintf(err, len, "%s: passing QEMU's stream on: %s", what, strerror(-r));
			break;
		}
		*bytes += n;
	}
	if (r) {
		/* Our end closes below: QEMU's writes fail, its migration ends. */
		cmd(vm, "{\"execute\":\"migrate_cancel\"}", -1, NULL, 0);
		goto out;
	}
	r = wait_migration(vm, what, err, len);
	vm->save_ns = now_ns() - vm->save_ns;
out:
	close(fd);
	free(buf);
	return r;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= w;
	}
	return 0;
}

int qemu_vm_load_begin(struct qemu_vm *vm, char *err, size_t len)
{
	static const char what[] = "device state load";
	char reply[600];
	int fd, r;

	if (vm->load_fd >= 0)
		return 0;
	fd = pass_pipe(vm, false, what, err, len);
	if (fd < 0)
		return fd;
	r = cmd(vm, "{\"execute\":\"migrate-incoming\",\"arguments\":{\"uri\":\"fd:"
		STATE_FDNAME "\"}}", -1, reply, sizeof(reply));
	if (r) {
		snprintf(err, len, "%s: %s", what, reply);
		cmd(vm, "{\"execute\":\"closefd\",\"arguments\":{\"fdname\":\"" STATE_FDNAME "\"}}",
		    -1, NULL, 0);
		close(fd);
		return r;
	}
	vm->load_fd = fd;
	return 0;
}

int qemu_vm_load_state(struct qemu_vm *vm, qemu_state_source source, void *arg,
		       uint64_t *bytes, char *err, size_t len)
{
	static const char what[] = "device state load";
	char *buf = malloc(STATE_BUF);
	int fd, r;

	*bytes = 0;
	if (!buf)
		return -ENOMEM;
	vm->load_ns = now_ns();
	r = qemu_vm_load_begin(vm, err, len);
	if (r) {
		free(buf);
		return r;
	}
	fd = vm->load_fd;
	vm->load_fd = -1;
	for (;;) {
		long n = source(arg, buf, STATE_BUF);

		if (n < 0) {
			r = (int)n;
			snprintf(err, len, "%s: the state did not arrive whole: %s", what,
				 strerror(-r));
			break;
		}
		if (n == 0)
			break;
		r = write_all(fd, buf, n);
		if (r) {
			/* EPIPE: QEMU stopped reading; query-migrate says why. */
			snprintf(err, len, "%s: writing to QEMU: %s", what, strerror(-r));
			break;
		}
		*bytes += n;
	}
	close(fd);
	free(buf);
	if (r == -EPIPE)
		wait_migration(vm, what, err, len);
	if (!r)
		r = wait_migration(vm, what, err, len);
	vm->load_ns = now_ns() - vm->load_ns;
	if (r && !qemu_vm_alive(vm))
		/* QEMU 7.2 exits when an incoming migration fails. */
		snprintf(err, len, "%s: QEMU exited during migrate-incoming (a destination "
			 "QEMU exits when it cannot load the state; its stderr says why)", what);
	return r;
}
