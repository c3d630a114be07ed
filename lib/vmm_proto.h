/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The VMM control protocol: messages on a SOCK_SEQPACKET UNIX socket, one
 * message per packet, file descriptors attached with SCM_RIGHTS.
 *
 *   VMM                                   helper
 *   HELLO {role, pid, regions} + memfds  ->
 *                                        <- TRACK {mode}         (source only)
 *   TRACKING {status, mode} + uffd       ->
 *                                        <- STOP
 *   STOPPED                              ->
 *                                        <- RESUME
 *   RESUMED                              ->
 *                                        <- COMPLETE | ERROR {message}
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
};

struct vmm_msg_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t nfds;
	uint32_t len;		/* payload bytes after this header */
	uint32_t reserved;
};

struct vmm_region_desc {
	uint64_t size;
	uint64_t addr;		/* where the VMM maps it (for /proc/pid/pagemap) */
};

struct vmm_hello {
	uint32_t version;
	uint32_t role;
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

struct vmm_msg {
	struct vmm_msg_hdr hdr;
	uint8_t payload[VMM_MAX_PAYLOAD];
	int fds[VMM_MAX_REGIONS];
};

/* Send one message; fds may be NULL. 0 or -errno. */
int vmm_msg_send(int sock, uint16_t type, const void *payload, uint32_t len,
		 const int *fds, unsigned int nfds);
/*
 * Receive one message within timeout_ms (-1: forever).  Returns 0,
 * -ETIMEDOUT, -ECONNRESET on hang-up, -EPROTO on a malformed message (its
 * fds are closed).  Received fds are the caller's.
 */
int vmm_msg_recv(int sock, struct vmm_msg *msg, int timeout_ms);

#endif
