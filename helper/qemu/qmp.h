/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small QMP client: one JSON object per line on a UNIX stream socket.
 * The greeting is read and capabilities negotiated on connect; a command
 * waits for its reply, skipping the events QEMU sends in between (the
 * times of the last STOP and RESUME events are kept, and the last
 * MIGRATION event's status); a file
 * descriptor can ride along with a command (SCM_RIGHTS, for "getfd").
 * One command at a time: the calls lock the connection.
 */
#ifndef VMIG_QMP_H
#define VMIG_QMP_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define QMP_LINE_MAX	(64u << 10)

struct qmp {
	int fd;
	pthread_mutex_t lock;
	size_t len;			/* bytes buffered in buf */
	char buf[QMP_LINE_MAX];
	char reply[QMP_LINE_MAX];	/* the line read last (under lock) */
	char err[640];			/* why the last call failed (under lock) */
	uint64_t stop_event_us;		/* the last STOP event's time (CLOCK_REALTIME); 0: none */
	char mig_status[32];		/* the last MIGRATION event's status; "": none */
	uint64_t resume_event_us;	/* the last RESUME event's time; 0: none */
};

/*
 * Connect to QEMU's QMP socket at path within timeout_ms (retrying while it
 * does not exist yet), read the greeting, negotiate capabilities.
 * 0 or -errno, with q->err saying why.  Not thread-safe; qmp_cmd is.
 */
int qmp_connect(struct qmp *q, const char *path, int timeout_ms);
void qmp_close(struct qmp *q);
/*
 * Without waiting: read what QEMU sent unasked (events are dropped, but
 * for the times of a STOP and a RESUME and a MIGRATION's status).
 * 0, or -ECONNRESET once QEMU closed the connection.
 */
int qmp_poll_events(struct qmp *q);
/*
 * Run one command: cmd is its JSON object.  fd >= 0 is passed with it.
 * Returns 0 on a "return" reply, -EREMOTEIO on an "error" reply, -ETIMEDOUT,
 * or -ECONNRESET when QEMU went away.  out (len bytes, may be NULL) gets
 * the reply line, or on failure the reason, naming the command (for an
 * error reply QEMU's class and description).
 */
int qmp_cmd(struct qmp *q, const char *cmd, int fd, int timeout_ms, char *out, size_t len);
/*
 * The string value of the first member named key anywhere in json (keys
 * inside strings do not count), unescaped into out.  0, or -ENOENT.
 */
int qmp_json_str(const char *json, const char *key, char *out, size_t len);

#endif
