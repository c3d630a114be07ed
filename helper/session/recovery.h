/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Postcopy recovery (wire.h: RESUME, RECEIVED): a channel that breaks
 * during postcopy pauses both helpers instead of failing them.  The
 * destination's guest runs on (threads touching missing pages wait in
 * userfaultfd), the source keeps every page; the source reconnects with
 * backoff, the destination sends its received bitmap, the source re-sends
 * what is missing and the destination re-sends its outstanding requests.
 */
#ifndef VMIG_RECOVERY_H
#define VMIG_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libvmig.h"
#include "postcopy_dst.h"
#include "stream.h"

/* A failure a reconnection may cure (the peer or the link went away). */
bool rec_transient(int err);

/*
 * Destination: the received bitmap as RECEIVED packets, then RESUMED with
 * the destination's proof of the session's key (auth.h).
 */
int rec_send_bitmap(struct stream *s, struct pc_dst *pc);
/*
 * Source: read RECEIVED* up to RESUMED into per-region bitmaps (allocated
 * here, freed with rec_free_bitmap), checked against guest RAM's shape;
 * RESUMED (or DONE) must prove the session's key.
 * 1 when the destination answers DONE instead: it had finished.
 * 2 when it answers NOT_SWITCHED with a valid proof, then ERROR
 * WIRE_ERR_NOT_SWITCHED: its guest never ran (s->err holds its message);
 * that ERROR without the proof fails with -EACCES.
 */
int rec_recv_bitmap(struct stream *s, struct vmig_ram *ram, uint64_t **bm);
void rec_free_bitmap(uint64_t **bm);
/* Source: fn for every page range that holds data here and is missing there. */
int rec_missing_data(struct vmig_ram *ram, uint64_t **bm,
		     int (*fn)(void *, unsigned int, uint64_t, uint64_t), void *arg);

/*
 * Destination, after DONE: wait up to timeout_ms for the source's DONE.
 * 0, or -errno (the link broke: the caller waits for a RESUME to answer).
 */
int rec_wait_done_ack(struct stream *s, int timeout_ms);

/*
 * The paused source's control socket (vmig migrate --resume): a Unix
 * stream socket; a client writes one line "resume [HOST:PORT]\n" and reads
 * one line back, "ok ..." or "error ...".
 */
/*
 * Default path of a session's control socket: DIR/vmig-UID/SESSION.sock,
 * DIR $XDG_RUNTIME_DIR or /tmp.
 */
void rec_ctl_default_path(char *buf, size_t len, uint64_t session);
/*
 * Bind and listen on path (a stale socket there is replaced), mode 0600:
 * fd or -errno.  own_dir: the parent is this user's private directory,
 * made 0700 if missing; -EPERM if it exists and is not (another owner,
 * open to others, a link).  Requests from other users than this one and
 * root are refused (SO_PEERCRED) whatever the modes.
 */
int rec_ctl_listen(const char *path, bool own_dir);
/*
 * Wait up to ms for a request on the listening socket: 1 with *cfd open
 * (answer it with rec_ctl_reply) and to[] the new address ("" for the same
 * one), 0 on timeout.
 */
int rec_ctl_wait(int lfd, int ms, int *cfd, char *to, size_t tolen);
/* A request line (without its newline): "resume" or "resume HOST:PORT"; 0 or -errno. */
int rec_ctl_parse(const char *line, char *to, size_t tolen);
void rec_ctl_reply(int cfd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Client: ask the paused source at path to resume; 0 "ok", 1 refused, -errno. */
int rec_ctl_resume(const char *path, const char *to, int timeout_ms, char *reply,
		   size_t len);

/* Tests: where to cut every connection of the source (--inject-cut). */
enum rec_cut_kind { CUT_NONE, CUT_PAGES, CUT_REQ, CUT_RESUME, CUT_REQHOLD, CUT_DONE, CUT_REQDROP,
		    CUT_SWITCH, CUT_SWITCH_LOST };
#define REC_MAX_CUTS	8
struct rec_cuts {
	unsigned int n, next;
	enum rec_cut_kind kind[REC_MAX_CUTS];
	uint64_t arg[REC_MAX_CUTS];
};
/*
 * "pages:N,req:N,reqhold:N,reqdrop:N,resume,done,switch,...": 0 or -EINVAL.  reqhold is req
 * whose page is then left out of the background transfer for good (it
 * arrives only if the destination asks again; with it armed the background
 * goes from the last chunk backwards, so the guest's first faults find
 * pages not sent yet); reqdrop is reqhold whose page is not sent even when
 * asked again (a broken source: the destination must refuse to end); done
 * drops the
 * destination's DONE as a cut just before it would arrive; switch cuts
 * right after POSTCOPY went out (every channel's marker sent), before the
 * destination's RESUMED is read: the guest runs there, unconfirmed;
 * switchlost cuts instead of sending POSTCOPY (the markers sent), as if it
 * were lost with the link: the destination never switches.
 */
int rec_parse_cuts(struct rec_cuts *c, const char *spec);
/* The armed cut's kind (CUT_NONE when none is left) and its argument. */
enum rec_cut_kind rec_cut_armed(const struct rec_cuts *c, uint64_t *arg);

#endif
