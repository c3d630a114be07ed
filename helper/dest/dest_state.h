/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One destination session's state, shared by the rooms of the destination
 * (dest.c sequences them): accepting a session and its channels
 * (dest_accept.c), running it (dest_run.c), postcopy here (dest_postcopy.c),
 * taking over from a dead helper (dest_attach.c) and recovery
 * (dest_recover.c).  Each is handed the struct dest it works on.
 */
#ifndef VMIG_DEST_STATE_H
#define VMIG_DEST_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "admit.h"
#include "dest.h"
#include "devstate_recv.h"
#include "handshake.h"
#include "multifd_recv.h"
#include "postcopy_dst.h"
#include "stream.h"

struct receiver {
	struct recv_chan rc;
	pthread_t thread;
	bool started;
	_Atomic int state;		/* 0 running, 1 ended, -errno failed */
};

struct dest {
	const struct dest_opts *o;
	struct report *rep;
	struct progress prog;
	struct vmig_ctl *ctl;
	struct vmig_ram *ram;
	struct dest_mem mem;
	struct hs_offer local;
	int listen_fd;
	struct admit *adm;		/* authenticated connections (admit.h) */
	struct stream main;
	bool main_open;
	uint64_t session;
	struct hs_result hs;
	unsigned int nr_chans;
	struct receiver *rx;
	struct devstate_recv ds;
	uint64_t t_complete;
	/* postcopy (postcopy_dst.c does the work) */
	int rp_fd, pre_fd;		/* return path, preempt channel: -1 if none */
	struct pc_dst pc;
	bool pc_ready, pc_running;	/* pc set up; the guest runs here in postcopy */
	bool pc_done;			/* postcopy finished here (DONE sent) */
	uint64_t t_switch;
	char listen_addr[256];		/* where we listen (--port, or the record's) */
};

/* The first reason given is the one reported (report_fail). */
#define fail(d, err, ...)	report_fail((d)->rep, err, __VA_ARGS__)

#endif
