/* SPDX-License-Identifier: GPL-2.0 */
/* TCP connections and the channel header every one of them opens with. */
#ifndef VMIG_CHANNEL_H
#define VMIG_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "stream.h"

/*
 * "host:port" -> s, connected (with its TLS connection when TLS is on),
 * retrying refused connects up to connect_ms; each later wait on s up to
 * timeout_ms.  0, or -errno with err filled and s closed.
 */
int chan_connect(struct stream *s, const char *hostport, int connect_ms, int timeout_ms,
		 char *err, size_t errlen);
/* "[addr:]port" -> a listening socket. */
int chan_listen(const char *hostport, char *err, size_t errlen);
/*
 * One connection into s (with its TLS connection), waiting up to wait_ms
 * for it; each later wait on s up to timeout_ms.  0, -ETIMEDOUT or -errno.
 */
int chan_accept(struct stream *s, int listen_fd, int wait_ms, int timeout_ms);
/*
 * Mark a postcopy urgent channel (return path, preempt): DSCP EF in the IP
 * header for the network, socket priority 6 (TC_PRIO_INTERACTIVE) for the
 * local qdisc, so a priority-aware one (pfifo_fast's band 0, a prio or htb
 * class an operator maps it to) sends its packets before queued bulk pages.
 */
void chan_mark_urgent(int fd);
/*
 * Postcopy without a preempt channel: a requested page goes at the head
 * of a multifd channel's queue, behind only what the sockets already hold.
 * These keep that short: the sender's unsent data (TCP_NOTSENT_LOWAT) and
 * the receiver's buffer (SO_RCVBUF, before data flows: a smaller buffer
 * than the window offered would drop segments).  See CHAN_SHALLOW_BYTES.
 */
void chan_shallow_send(int fd);
void chan_shallow_recv(int fd);

/* Authenticate (auth.h) and send a channel header (with its binding proof). */
int chan_send_hdr(struct stream *s, uint16_t kind, uint64_t session, uint32_t index);
/*
 * Read and check a channel header: magic, version, kind, reserved fields,
 * and the binding proof.  The connection must have authenticated first
 * (auth_server()).
 */
int chan_recv_hdr(struct stream *s, struct wire_chan_hdr *h);

#endif
