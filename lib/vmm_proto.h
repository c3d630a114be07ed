/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMM control protocol: messages on a SOCK_SEQPACKET UNIX socket, one
 * message per packet, file descriptors attached with SCM_RIGHTS.
 *
 *   VMM                                   helper
 *   HELLO {role, pid, regions} + memfds  ->   (header flags: VMM_HELLO_*)
 *                                        <- TRACK {mode}         (source only)
 *   TRACKING {status, mode} + uffd       ->
 *                                        <- STOP {flags}
 *   STOPPED {ran_ns}                     ->
 *                                        <- RESUME
 *   RESUMED                              ->
 *                                        <- COMPLETE | ERROR {message}
 *
 * Device state and free-page hints (lib/vmm_dev.c), at any time after HELLO:
 *                                        <- DEV_QUERY
 *   DEV_LIST {devices}                   ->
 *                                        <- DEV_SAVE | DEV_LOAD {index, flags} + stream fd
 *     (the VMM runs the device's save/load in its own thread on that fd:
 *      records {len, status} + len bytes; len 0 ends, with status.
 *      On DEV_LOAD the end comes only once guest RAM may be read: every
 *      page placed (precopy) or the RAM in postcopy mode, served.
 *      DEV_SAVE with VMM_DEV_OPEN_PRECOPY, during precopy, once per
 *      session and only for a VMIG_DEV_PRECOPY device: the part saved while
 *      the guest runs; the DEV_SAVE at switchover then sends the rest.
 *      DEV_QUERY starts a session: it forgets earlier precopy parts.)
 *                                        <- FREE_QUERY        (after TRACKING)
 *   FREE_HINT {status, regions} + memfd of bitmaps ->
 *     (asked again before each slice of the bulk stage: updates.  Every
 *      hint, first or update, must be computed when asked, so after dirty
 *      tracking started; the VMM never sends FREE_HINT unasked.)
 *
 * The VMM's own dirty log (source; VMM_HELLO_DIRTY_LOG in HELLO says it has
 * one, vmig_vmm_set_dirty_log):
 *                                        <- TRACK {VMIG_TRACK_VMM}
 *   TRACKING {status, mode} + memfd      ->  (the log's bitmaps, region after
 *                                             region, each padded to 8 bytes)
 *                                        <- DIRTY_QUERY
 *   DIRTY_LOG {status}                   ->  (the bitmaps now hold the pages
 *                                             written since the last query)
 *   The VMM clears the bitmaps, then sets the bit of every page written since
 *   the previous DIRTY_QUERY (since TRACK for the first) and arms its
 *   tracking again for them, all before it answers: a write after DIRTY_LOG
 *   shows in a later one.  The helper reads the bitmaps after DIRTY_LOG and
 *   before its next DIRTY_QUERY.  A VMM linked with a libvmig from before
 *   answers TRACK {VMIG_TRACK_VMM} with -EINVAL, so a helper asks only a VMM
 *   whose HELLO offers the log.
 *
 * Auto-converge (source, only when the helper was asked for it):
 *                                        <- THROTTLE {percent}
 *   THROTTLED {status, percent}          ->
 *   The VMM keeps its vCPUs stopped that share of the time (0: not at
 *   all) until the next THROTTLE; it falls back to 0 when the session
 *   ends (COMPLETE, ERROR, hang-up).  A VMM linked with a libvmig older
 *   than THROTTLE drops the connection on it, so the helper sends it only
 *   with --auto-converge.
 *
 * Handover (source, postcopy): the VMM, not the helper, holds guest memory,
 * so a helper that dies during postcopy can be replaced.
 *                                        <- HANDOVER {record}  (before the
 *                                           switch reaches the destination)
 *   HANDOVER_OK {status}                 ->
 *   The VMM keeps the opaque record (at most VMM_HANDOVER_MAX bytes; the
 *   helper's business: session, capabilities, destination, credentials)
 *   across helper connections until COMPLETE, or a HANDOVER with no
 *   record (the destination never ran the guest).  While it holds one the
 *   guest may run on the destination: the VMM stays stopped whatever
 *   happens to the helper (ERROR, hang-up), refuses TRACK (status -EBUSY)
 *   and treats RESUME as a protocol error.  The next helper asks:
 *                                        <- HANDOVER_QUERY
 *   HANDOVER_INFO {status, len, record}  ->  (status -ENOENT: none)
 *   and finishes the migration from the memory the VMM still holds.
 *
 * Handover (destination, postcopy): after RESUMED the helper leaves its
 * record too (session, capabilities, where it listens).  A helper that
 * hangs up without COMPLETE or ERROR then leaves the guest running on its
 * registration (the MISSING uffd, or vmig.ko regions in postcopy mode;
 * threads on missing pages wait), and the VMM waits for the next helper.
 * Its HELLO says VMM_HELLO_HANDED_OVER in role; until that helper has
 * asked HANDOVER_QUERY (taking it over) the VMM refuses its TRACK (-EBUSY),
 * and treats its HANDOVER, COMPLETE or ERROR as a protocol error, so a
 * helper that does not know can neither restart nor discard the guest.
 * After HANDOVER_QUERY, TRACK {MISSING} answers with the same uffd (none on
 * vmig.ko regions).  COMPLETE drops the record; so does ERROR (the helper
 * gave up: the migration failed).
 *
 * A hang-up without COMPLETE counts as ERROR.  On ERROR the VMM's library
 * tears tracking down (unregisters the range: no write faults any more).
 * Postcopy (destination): TRACK {VMIG_TRACK_MISSING} registers guest RAM
 * for missing-page faults; the TRACKING reply carries that uffd.
 */
#ifndef VMIG_VMM_PROTO_H
#define VMIG_VMM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define VMM_PROTO_MAGIC		0x564d4d31u	/* "VMM1" */
#define VMM_PROTO_VERSION	1
#define VMM_MAX_REGIONS		16
#define VMM_MAX_PAYLOAD		4096

enum vmm_msg_type {
	VMM_HELLO = 1,
	VMM_TRACK,
	VMM_TRACKING,
	VMM_STOP,
	VMM_STOPPED,
	VMM_RESUME,
	VMM_RESUMED,
	VMM_COMPLETE,
	VMM_ERROR,
	VMM_DEV_QUERY,
	VMM_DEV_LIST,
	VMM_DEV_SAVE,
	VMM_DEV_LOAD,
	VMM_FREE_QUERY,
	VMM_FREE_HINT,
	VMM_THROTTLE,
	VMM_THROTTLED,
	VMM_HANDOVER,
	VMM_HANDOVER_OK,
	VMM_HANDOVER_QUERY,
	VMM_HANDOVER_INFO,
	VMM_DEV_PENDING,
	VMM_DEV_STATUS,
	VMM_DIRTY_QUERY,
	VMM_DIRTY_LOG,
};

#define VMM_THROTTLE_MAX	99	/* percent */

struct vmm_msg_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t nfds;
	uint32_t len;		/* payload bytes after this header */
	uint32_t flags;		/* HELLO: VMM_HELLO_*; 0 in every other message */
};

/*
 * HELLO flags.  Older helpers ignore them (the field was reserved, sent 0
 * and never checked), so a VMM may always send them.
 */
#define VMM_HELLO_MIRRORED	(1u << 0)	/* a secondary MMU (KVM) writes guest
						 * RAM through its own page tables */
#define VMM_HELLO_DIRTY_LOG	(1u << 1)	/* TRACK {VMIG_TRACK_VMM}: the VMM's
						 * own dirty log */

struct vmm_region_desc {
	uint64_t size;
	uint64_t addr;		/* where the VMM maps it (for /proc/pid/pagemap) */
};

/* HELLO role: the destination runs a postcopy whose helper died (see Handover). */
#define VMM_HELLO_HANDED_OVER	0x100u

struct vmm_hello {
	uint32_t version;
	uint32_t role;		/* enum vmig_role, | VMM_HELLO_HANDED_OVER */
	uint32_t pid;
	uint32_t nr_regions;
	struct vmm_region_desc regions[];
};

struct vmm_track {
	uint32_t mode;		/* enum vmig_track */
	uint32_t reserved;
};

struct vmm_tracking {
	int32_t status;		/* 0 or -errno */
	uint32_t mode;		/* what was set up */
};

/*
 * STOP's flags.  A VMM linked with a libvmig from before ignores STOP's
 * payload (it never checked it), so a helper may always send one.
 * VMM_STOP_RAN: the helper takes a STOPPED that says how long the vCPUs
 * ran on after STOP arrived (struct vmm_stopped); without it STOPPED is
 * empty, as it always was.
 */
#define VMM_STOP_RAN		(1u << 0)

struct vmm_stop {
	uint32_t flags;		/* VMM_STOP_* */
	uint32_t reserved;
};

/*
 * STOPPED's payload when STOP asked for it: the vCPUs still ran this long
 * after STOP arrived, because the VMM prepared the switchover first with
 * them running (QEMU: its migration's setup, vmig qemu).  The downtime
 * starts that much later than STOP; the helper's final harvest comes after
 * STOPPED, so whatever the guest wrote meanwhile is still sent.
 */
struct vmm_stopped {
	uint64_t ran_ns;
};

struct vmm_dirty_log {		/* DIRTY_LOG */
	int32_t status;			/* 0 or -errno (the bitmaps mean nothing) */
	uint32_t reserved;
};

struct vmm_throttle {
	uint32_t percent;	/* 0..VMM_THROTTLE_MAX */
	uint32_t reserved;
};

struct vmm_throttled {
	int32_t status;		/* 0 or -errno */
	uint32_t percent;	/* what is in force now */
};

#define VMM_HANDOVER_MAX	1024	/* bytes of a handover record (VMIG_HANDOVER_MAX) */

struct vmm_status {		/* HANDOVER_OK */
	int32_t status;			/* 0 or -errno */
	uint32_t reserved;
};

struct vmm_handover_info {	/* HANDOVER_INFO: + len bytes of record */
	int32_t status;			/* 0, or -ENOENT: no record */
	uint32_t len;
	uint8_t record[];
};

#define VMM_MAX_DEVICES		64
#define VMM_DEV_NAME_MAX	32

struct vmm_dev_desc {		/* 48 bytes */
	char name[VMM_DEV_NAME_MAX];	/* NUL-terminated */
	uint32_t instance;
	uint32_t flags;			/* VMIG_DEV_* */
	uint64_t size;			/* approximate bytes of state */
};

/*
 * DEV_LIST's revision: what the VMM's libvmig answers beyond DEV_QUERY,
 * DEV_SAVE and DEV_LOAD.  0: nothing more (a libvmig from before; the field
 * was reserved and zero, and older helpers ignore it).  1: DEV_PENDING.
 * HELLO's version stays 1, so old helpers and old VMMs keep working both
 * ways; the helper sends DEV_PENDING only to a VMM of revision 1 or later.
 */
#define VMM_DEV_REVISION	1

struct vmm_dev_list {
	uint32_t nr_devices;
	uint32_t revision;		/* VMM_DEV_REVISION of the VMM's libvmig */
	struct vmm_dev_desc devices[];
};

struct vmm_dev_status_ent {	/* 24 bytes */
	uint64_t size;			/* the whole state now, approximate bytes */
	uint64_t save_rate;		/* bytes/s the save runs at; 0: unknown */
	uint64_t load_rate;		/* bytes/s the load runs at; 0: unknown */
};

struct vmm_dev_status {		/* DEV_STATUS, the answer to DEV_PENDING */
	uint32_t nr_devices;		/* as in DEV_LIST */
	uint32_t reserved;
	struct vmm_dev_status_ent devices[];
};

#define VMM_DEV_OPEN_PRECOPY	1u	/* DEV_SAVE: the part before switchover */

struct vmm_dev_open {		/* DEV_SAVE / DEV_LOAD, + 1 fd */
	uint32_t index;
	uint32_t flags;			/* VMM_DEV_OPEN_*, other bits zero */
};

/* A record on a device stream (both directions). */
struct vmm_dev_rec {
	uint32_t len;			/* bytes that follow; 0: end of stream */
	int32_t status;			/* with len 0: 0 or -errno */
};

struct vmm_free_hint {		/* + 1 memfd (status 0): bitmaps, region after region */
	int32_t status;			/* 0, or -errno (no hint) */
	uint32_t nr_regions;
	uint64_t pages[VMM_MAX_REGIONS];	/* bits per region; each bitmap padded to 8 bytes */
};

struct vmm_msg {
	struct vmm_msg_hdr hdr;
	uint8_t payload[VMM_MAX_PAYLOAD];
	int fds[VMM_MAX_REGIONS];
};

/* Send one message; fds may be NULL. 0 or -errno. */
int vmm_msg_send(int sock, uint16_t type, const void *payload, uint32_t len,
		 const int *fds, unsigned int nfds);
/* The same with header flags (HELLO only). */
int vmm_msg_send_flags(int sock, uint16_t type, uint32_t flags, const void *payload,
		       uint32_t len, const int *fds, unsigned int nfds);
/*
 * Receive one message within timeout_ms (-1: forever).  Returns 0,
 * -ETIMEDOUT, -ECONNRESET on hang-up, -EPROTO on a malformed message (its
 * fds are closed).  Received fds are the caller's.
 */
int vmm_msg_recv(int sock, struct vmm_msg *msg, int timeout_ms);

#endif
