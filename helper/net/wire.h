/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The migration wire format, version 1.  All integers little-endian.
 *
 * Every TCP connection opens with a channel header naming the session and
 * what the connection carries; then packets: {type, flags, len} + len bytes.
 *
 *   main      src -> dst: HELLO, [DEVICES], ROUND*, [DEVSTATE*], COMPLETE | ERROR
 *                         (NOP at any time; DEV_LOAD before the switch)
 *             dst -> src: HELLO_REPLY, RESUMED | ERROR  (DEV_LOAD: the answer)
 *   multifd i src -> dst: PAGES*, DEVSTATE*, END            (NOP at any time)
 *
 * Device state (WIRE_CAP_DEVICE_STATE): DEVICES lists the source VMM's
 * devices; at switchover each device's state goes as DEVSTATE chunks
 * numbered from 0, spread over the multifd channels (or all on the main
 * channel); the destination puts each device's chunks back in order.
 *   postcopy (WIRE_CAP_POSTCOPY): the source stops the guest, sends DISCARD*
 *             (pages dirtied since they were sent) and POSTCOPY on main and
 *             POSTCOPY on every multifd channel (the rest is background);
 *             the destination punches the discarded pages, resumes the guest
 *             and answers RESUMED; after COMPLETE it answers DONE.
 *   return    dst -> src: REQ* (one missing page each), END   (postcopy only)
 *             src -> dst: PAGES* (only requested pages), END
 *                         (WIRE_CAP_PREEMPT and WIRE_CAP_REPLY_RETURN)
 *   preempt   src -> dst: PAGES* (only requested pages), END  (WIRE_CAP_PREEMPT
 *                         alone; with WIRE_CAP_REPLY_RETURN nothing)
 *             Without the preempt channel requested pages travel at the head
 *             of their multifd channel's queue.
 *
 * Authentication (helper/net/auth.h): with TLS (helper/net/tls.h) all of this runs
 * inside TLS 1.3.  On plain TCP every connection first runs the exchange
 * below (struct wire_auth_*), with a shared token or, --insecure, an empty
 * one.  Either way every channel header of a kind other than main is then
 * followed by a 32-byte proof that binds the channel to the session its
 * main channel established, and RESUME proves the session's first key;
 * every answer to it (RESUMED, DONE, NOT_SWITCHED) proves that key back.
 * Nothing about the session (id, RAM size, layout) is sent to a peer before
 * it has authenticated.
 *
 * Pages of one 2 MiB chunk always travel on the same multifd channel
 * (chunk index modulo the channel count), so a newer copy of a page can
 * never overtake an older one: no cross-channel synchronisation per round.
 */
#ifndef VMIG_WIRE_H
#define VMIG_WIRE_H

#include <stdint.h>

#define WIRE_MAGIC		0x47494d56u	/* "VMIG" on the wire */
#define WIRE_VERSION_MIN	1
#define WIRE_VERSION_MAX	1
#define WIRE_PAGE_SIZE		4096u
#define WIRE_MAX_REGIONS	16
#define WIRE_MAX_CHANNELS	64
#define WIRE_MAX_BATCH		128		/* pages per PAGES packet */
#define WIRE_CHUNK_PAGES	512		/* 2 MiB: unit of channel assignment */
#define WIRE_MAX_PKT		(8 + 8 * WIRE_MAX_BATCH + WIRE_MAX_BATCH * WIRE_PAGE_SIZE)
#define WIRE_MAX_MSG		256

enum wire_chan_kind {
	WIRE_CHAN_MAIN = 1,
	WIRE_CHAN_MULTIFD = 2,
	WIRE_CHAN_PREEMPT = 3,
	WIRE_CHAN_RETURN = 4,
};

/* Capabilities negotiated in HELLO: the destination answers the subset it accepts. */
#define WIRE_CAP_ZERO_PAGES	(1ull << 0)	/* PAGES entries may carry WIRE_PAGE_ZERO */
#define WIRE_CAP_MULTIFD	(1ull << 1)	/* nr_multifd > 0 page channels */
#define WIRE_CAP_POSTCOPY	(1ull << 2)	/* may switch to postcopy; needs RETURN_PATH */
#define WIRE_CAP_PREEMPT	(1ull << 3)	/* requested pages on a preempt channel */
#define WIRE_CAP_RETURN_PATH	(1ull << 4)	/* a return-path channel (page requests) */
#define WIRE_CAP_DEVICE_STATE	(1ull << 5)	/* DEVICES + DEVSTATE packets */
#define WIRE_CAP_DONE_ACK	(1ull << 6)	/* postcopy: the source acknowledges DONE */
#define WIRE_CAP_DEV_LOAD	(1ull << 7)	/* the destination answers DEV_LOAD */
/*
 * Postcopy from the start (offered by a source that switches before any
 * page: `--postcopy --postcopy-after 0`).  No precopy page will come, so a
 * destination that allocated guest RAM ahead releases it at the handshake,
 * while the guest still runs on the source, instead of punching it all out
 * at the switch, with the guest stopped (~200 ms per GiB here).
 */
#define WIRE_CAP_POSTCOPY_NOW	(1ull << 8)
/*
 * With WIRE_CAP_PREEMPT: the requested pages (and the END after them) come
 * back on the return-path connection, against its requests; the preempt
 * connection is still opened and carries nothing.  On one connection each
 * packet carries the TCP acknowledgement of the last one the other way;
 * over two, each carrying data one way, every acknowledgement is a packet
 * of its own, sent and received inside the system calls of the request
 * path: a 4 KiB request-answer round trip took 17.7 us over two loopback
 * connections against 14.0 over one here (2026-12-08, issue 19).
 */
#define WIRE_CAP_REPLY_RETURN	(1ull << 9)
#define WIRE_CAPS_V1		(WIRE_CAP_ZERO_PAGES | WIRE_CAP_MULTIFD | \
				 WIRE_CAP_DEVICE_STATE | WIRE_CAP_DEV_LOAD)
#define WIRE_CAPS_POSTCOPY	(WIRE_CAP_POSTCOPY | WIRE_CAP_PREEMPT | WIRE_CAP_RETURN_PATH | \
				 WIRE_CAP_DONE_ACK | WIRE_CAP_POSTCOPY_NOW | \
				 WIRE_CAP_REPLY_RETURN)
/* What a version-1 source must get to proceed. */
#define WIRE_CAPS_REQUIRED	(WIRE_CAP_MULTIFD)

/*
 * Plain-TCP authentication, before the channel header:
 *   src -> dst: wire_auth_hello		(nonce_c)
 *   dst -> src: wire_auth_challenge	(nonce_d, mac_d)
 *   src -> dst: 32-byte mac_c
 * With T the token (empty for WIRE_AUTH_NONE):
 *   mac_d  = HMAC-SHA256(T, "vmig-auth-dst-v1" || nonce_c || nonce_d)
 *   mac_c  = HMAC-SHA256(T, "vmig-auth-src-v1" || nonce_c || nonce_d)
 *   secret = HMAC-SHA256(T, "vmig-auth-conn-v1" || nonce_c || nonce_d)
 * Each side checks the other's MAC; a wrong one closes the connection.  A
 * method the destination does not run is answered with status != 0 and
 * zeros, then closed.  Under TLS the secret is the connection's exporter
 * ("EXPORTER-vmig-channel-v1", no context) and this exchange is skipped.
 * A main channel's session key: HMAC(secret, "vmig-session-v1" || le64
 * session), under TLS the exporter "EXPORTER-vmig-session-v1" with the
 * session id as context.
 */
#define WIRE_AUTH_MAGIC		0x41494d56u	/* "VMIA" on the wire */
#define WIRE_AUTH_VERSION	1
enum wire_auth_method { WIRE_AUTH_NONE = 0, WIRE_AUTH_TOKEN = 1 };
enum wire_auth_status {
	WIRE_AUTH_OK = 0,
	WIRE_AUTH_WANT_TOKEN = 1,	/* the destination runs with --token-file */
	WIRE_AUTH_WANT_NONE = 2,	/* the destination runs with --insecure */
	WIRE_AUTH_BAD_VERSION = 3,
};

struct wire_auth_hello {		/* 40 bytes */
	uint32_t magic;
	uint16_t version;
	uint16_t method;		/* enum wire_auth_method */
	uint8_t nonce[32];
};

struct wire_auth_challenge {		/* 72 bytes */
	uint32_t magic;
	uint32_t status;		/* enum wire_auth_status */
	uint8_t nonce[32];
	uint8_t mac[32];
};

struct wire_chan_hdr {			/* 32 bytes */
	uint32_t magic;
	uint16_t version;		/* the highest version the sender speaks */
	uint16_t kind;			/* enum wire_chan_kind */
	uint64_t session;		/* chosen by the source, never 0 */
	uint32_t index;			/* multifd: 0..nr_multifd-1; else 0 */
	uint32_t reserved0;
	uint64_t reserved1;
};

enum wire_pkt_type {
	WIRE_PKT_HELLO = 1,
	WIRE_PKT_HELLO_REPLY,
	WIRE_PKT_PAGES,
	WIRE_PKT_END,
	WIRE_PKT_ROUND,
	WIRE_PKT_COMPLETE,
	WIRE_PKT_RESUMED,
	WIRE_PKT_ERROR,
	WIRE_PKT_NOP,
	WIRE_PKT_DEVICES,
	WIRE_PKT_DEVSTATE,
	WIRE_PKT_DISCARD,		/* main: pages to drop before postcopy */
	WIRE_PKT_POSTCOPY,		/* main, multifd: switch to postcopy here */
	WIRE_PKT_REQ,			/* return path: one missing page */
	WIRE_PKT_DONE,			/* main, dst -> src: postcopy finished */
	WIRE_PKT_RESUME,		/* main, src -> dst: reconnect a paused postcopy */
	WIRE_PKT_RECEIVED,		/* main, dst -> src: received bitmap words */
	WIRE_PKT_NOT_SWITCHED,		/* main, dst -> src: proof before ERROR NOT_SWITCHED */
	WIRE_PKT_DEV_LOAD,		/* main: how far each device's load got (both ways) */
	WIRE_PKT_TYPE_MAX = WIRE_PKT_DEV_LOAD,
};

struct wire_pkt_hdr {			/* 8 bytes */
	uint16_t type;
	uint16_t flags;			/* 0 in version 1 */
	uint32_t len;			/* bytes after this header, <= WIRE_MAX_PKT */
};

struct wire_hello {			/* + nr_regions x le64 region_pages */
	uint32_t version_min;
	uint32_t version_max;
	uint64_t caps;
	uint32_t page_size;
	uint32_t nr_multifd;
	uint32_t nr_regions;
	uint32_t reserved;
};

struct wire_hello_reply {		/* + message (status != 0) */
	int32_t status;			/* 0 or -errno */
	uint32_t version;		/* chosen */
	uint64_t caps;			/* accepted */
};

/* PAGES: {region, count}, count x le64 entry, then 4 KiB per non-zero entry. */
struct wire_pages {
	uint32_t region;
	uint32_t count;			/* 1..WIRE_MAX_BATCH */
};
#define WIRE_PAGE_ZERO		(1ull << 63)	/* entry flag: the page is all zero */
#define WIRE_PAGE_INDEX_MASK	((1ull << 48) - 1)

struct wire_end {			/* the sender's totals on this channel */
	uint64_t pages;			/* entries sent (normal + zero) */
	uint64_t normal_pages;
};

struct wire_round {			/* informational */
	uint32_t round;
	uint32_t reserved;
	uint64_t dirty_pages;
};

struct wire_complete {
	uint64_t pages;			/* entries sent on all channels */
	uint32_t rounds;
	uint32_t reserved;
};

/* DEVICES: + nr_devices x struct wire_device. */
#define WIRE_MAX_DEVICES	64
#define WIRE_DEV_CHUNK_MAX	(256u << 10)
struct wire_devices {
	uint32_t nr_devices;
	uint32_t chunk_max;		/* no DEVSTATE payload is larger */
	uint32_t on_main;		/* 1: DEVSTATE travels on the main channel */
	uint32_t reserved;
};

struct wire_device {			/* 48 bytes */
	char name[32];			/* NUL-terminated */
	uint32_t instance;
	uint32_t flags;
	uint64_t size;			/* approximate */
};

/*
 * DEVSTATE: + len bytes of the device's state.  Only the last chunk may be
 * empty; a chunk's seq is at most WIRE_DEVSTATE_WINDOW - 1 past the
 * device's next chunk the destination has not loaded (a sender reorders
 * only what is in flight on its channels, far less).
 */
#define WIRE_DEVSTATE_LAST	1u	/* the device's last chunk (may be empty) */
#define WIRE_DEVSTATE_WINDOW	4096u
struct wire_devstate {
	uint32_t device;		/* index into DEVICES */
	uint32_t seq;			/* 0, 1, ... per device */
	uint32_t flags;
	uint32_t len;
};

/*
 * DEV_LOAD (WIRE_CAP_DEV_LOAD): before the switch the source may ask, with
 * an empty DEV_LOAD on main, how far each device's load got on the
 * destination; the destination answers at once with a DEV_LOAD carrying
 * this, + nr_devices x struct wire_dev_loaded in DEVICES order (none if no
 * device was announced).  The source waits for the answer before anything
 * else on main, so one is never in the way of RESUMED.  Its switchover
 * prediction counts what the loads lag behind (helper/source/switchover.h).
 */
struct wire_dev_load {
	uint32_t nr_devices;
	uint32_t reserved;
};

struct wire_dev_loaded {		/* 24 bytes, all as of the same moment */
	uint64_t received;		/* bytes of its state that arrived */
	uint64_t loaded;		/* ... of which its load has taken */
	uint64_t load_ns;		/* its load has run this long (0: not begun) */
};

/* RESUMED may carry the destination's side of the downtime (else len 0). */
struct wire_resumed {
	uint64_t load_wait_ns;		/* COMPLETE to every device loaded */
	uint64_t resume_ns;		/* the VMM's resume */
	uint64_t dev_buffer_peak;	/* bytes of device state buffered at most */
	uint64_t reserved;
};

/* DISCARD: {region, count}, then count x {le64 first, le64 n} page ranges. */
struct wire_discard {
	uint32_t region;
	uint32_t count;			/* 1..WIRE_MAX_DISCARD */
};
#define WIRE_MAX_DISCARD	1024

struct wire_postcopy {			/* on main */
	uint64_t discarded;		/* pages in the DISCARD packets before it */
};

struct wire_req {			/* return path */
	uint32_t region;
	uint32_t reserved;
	uint64_t page;
};

/*
 * Postcopy recovery: after any channel broke during postcopy, the source
 * opens a new main channel with the same session id (a new connection
 * secret, so a new binding key for the channels that follow) and sends
 * RESUME instead of HELLO, proving the session's root key (auth.h).  The
 * destination answers RECEIVED* (its received bitmap, raw, in slices) and
 * RESUMED carrying 32 bytes, HMAC(root key, "vmig-resumed-v1" || le64
 * session || this connection's secret): the destination proves the key
 * too before anything is re-sent (and so does a DONE answering RESUME).
 * Then the source opens every other
 * channel again, re-sends whatever is not in the bitmap in the background,
 * and the destination re-sends its outstanding page requests.
 *
 * A destination whose guest never ran (the link broke during the switch)
 * answers RESUME with NOT_SWITCHED {proof} and ERROR WIRE_ERR_NOT_SWITCHED
 * instead (see there).
 *
 * The end (WIRE_CAP_DONE_ACK): the source answers DONE with DONE.  A
 * destination whose DONE was not acknowledged (the link broke) keeps
 * listening for the session; to a RESUME it answers DONE instead of
 * RECEIVED, the source acknowledges, and both sides end successfully.
 */
struct wire_resume {
	uint32_t attempt;		/* 1, 2, ...: informational */
	uint32_t reserved;
	/* HMAC(root key, "vmig-resume-v1" || le64 session || this connection's secret) */
	uint8_t proof[32];
};

#define WIRE_RECEIVED_WORDS	8192	/* le64 bitmap words per RECEIVED packet at most */
struct wire_received {			/* + nwords x le64 (bit i of word w: page 64w+i) */
	uint32_t region;
	uint32_t nwords;
	uint64_t first_word;
};

struct wire_error {			/* + message */
	int32_t code;			/* -errno, or: */
	uint32_t reserved;
};
/*
 * The destination's answer to RESUME when the link broke during the
 * postcopy switch before its guest ran: NOT_SWITCHED carrying 32 bytes,
 * HMAC(root key, "vmig-notswitched-v1" || le64 session || this
 * connection's secret), then this ERROR.  The source resumes its own guest
 * only after a valid proof: an ERROR NOT_SWITCHED without one (a peer that
 * merely holds the credential) is a failed resume attempt, and the guest
 * stays paused.
 */
#define WIRE_ERR_NOT_SWITCHED	0x10000
/* An ERROR from a destination whose guest was resumed in postcopy (it may have run). */
#define WIRE_ERR_GUEST_RAN	0x10001

const char *wire_pkt_name(unsigned int type);
const char *wire_kind_name(unsigned int kind);

#endif
