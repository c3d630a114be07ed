// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The module's generic netlink family "vmig", through libmnl: module info,
 * the region dump, counter reset, and the events group.
 *
 * A handle holds one socket for requests and, once subscribed, a second one
 * for events, so events never interleave with a request's answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vmig.h>

#include "libvmig.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct vmig_nl {
	struct mnl_socket *req;
	struct mnl_socket *ev;		/* NULL until vmig_nl_subscribe */
	uint16_t family;
	uint32_t events_grp;
	uint32_t seq;
	char errmsg[256];
	char buf[65536];
};

_Static_assert(VMIG_NL_HIST_BUCKETS == VMIG_HIST_BUCKETS,
	       "libvmig.h and <linux/vmig.h> disagree on the histogram");

static struct mnl_socket *nl_socket_open(void)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	int one = 1, err;

	if (!s)
		return NULL;
	if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
		goto err;
	/* Older kernels lack these: errors then just carry no message. */
	mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &one, sizeof(one));
	mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &one, sizeof(one));
	return s;
err:
	err = errno;
	mnl_socket_close(s);
	errno = err;
	return NULL;
}

/* What a request's callbacks share; the control callbacks see it too. */
struct nl_ctx {
	struct vmig_nl *nl;
	void *out;
	vmig_nl_region_cb region_cb;
	void *arg;
	int cb_ret;
};

/* An error or ack: keep the extended-ack message, turn the error into errno. */
static int nl_error_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	struct nl_ctx *ctx = data;
	struct vmig_nl *nl = ctx->nl;
	const struct nlattr *attr;	/* the name mnl_attr_for_each_payload uses */
	size_t off;

	if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e))) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	if (!e->error)
		return MNL_CB_STOP;
	off = sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) && off < mnl_nlmsg_get_payload_len(nlh)) {
		mnl_attr_for_each_payload((const void *)((const char *)e + off),
					  mnl_nlmsg_get_payload_len(nlh) - off) {
			if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
			    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
				snprintf(nl->errmsg, sizeof(nl->errmsg), "%s",
					 mnl_attr_get_str(attr));
		}
	}
	errno = -e->error;
	return MNL_CB_ERROR;
}

static int nl_noop_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh, (void)data;
	return MNL_CB_OK;
}

static int nl_done_cb(const struct nlmsghdr *nlh, void *data)
{
	(void)nlh, (void)data;
	return MNL_CB_STOP;
}

static mnl_cb_t nl_ctl_cbs[NLMSG_MIN_TYPE] = {
	[NLMSG_NOOP]	= nl_noop_cb,
	[NLMSG_ERROR]	= nl_error_cb,
	[NLMSG_DONE]	= nl_done_cb,
};

static struct nlmsghdr *nl_msg_start(struct vmig_nl *nl, uint16_t type,
				     uint16_t flags, uint8_t cmd, uint8_t version)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++nl->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static int nl_ctrl_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	struct vmig_nl *nl = ctx->nl;
	const struct nlattr *a, *g, *f;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case CTRL_ATTR_FAMILY_ID:
			if (mnl_attr_validate(a, MNL_TYPE_U16) == 0)
				nl->family = mnl_attr_get_u16(a);
			break;
		case CTRL_ATTR_MCAST_GROUPS:
			mnl_attr_for_each_nested(g, a) {
				const char *name = NULL;
				uint32_t id = 0;

				mnl_attr_for_each_nested(f, g) {
					if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_NAME &&
					    mnl_attr_validate(f, MNL_TYPE_NUL_STRING) == 0)
						name = mnl_attr_get_str(f);
					if (mnl_attr_get_type(f) == CTRL_ATTR_MCAST_GRP_ID &&
					    mnl_attr_validate(f, MNL_TYPE_U32) == 0)
						id = mnl_attr_get_u32(f);
				}
				if (name && !strcmp(name, VMIG_GENL_MCGRP_EVENTS))
					nl->events_grp = id;
			}
			break;
		}
	}
	return MNL_CB_OK;
}

/* Send the request in nl->buf and run @cb on each answer; 0 or -errno. */
static int nl_talk_ctx(struct nl_ctx *ctx, struct nlmsghdr *nlh, mnl_cb_t cb)
{
	struct vmig_nl *nl = ctx->nl;
	uint32_t portid = mnl_socket_get_portid(nl->req);
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	nl->errmsg[0] = 0;
	if (mnl_socket_sendto(nl->req, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		n = mnl_socket_recvfrom(nl->req, nl->buf, sizeof(nl->buf));
		if (n < 0)
			return -errno;
		ret = mnl_cb_run2(nl->buf, n, seq, portid, cb, ctx,
				  nl_ctl_cbs, NLMSG_MIN_TYPE);
	} while (ret > 0);
	if (ret < 0)
		return -errno;
	return ctx->cb_ret;
}

struct vmig_nl *vmig_nl_open(void)
{
	struct nl_ctx ctx = { 0 };
	struct nlmsghdr *nlh;
	struct vmig_nl *nl;
	int err;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return NULL;
	nl->seq = time(NULL);
	nl->req = nl_socket_open();
	if (!nl->req) {
		err = errno;
		free(nl);
		errno = err;
		return NULL;
	}
	ctx.nl = nl;
	nlh = nl_msg_start(nl, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, 1);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, VMIG_GENL_NAME);
	err = nl_talk_ctx(&ctx, nlh, nl_ctrl_cb);
	if (!err && !nl->family)
		err = -ENOENT;
	if (err) {
		vmig_nl_close(nl);
		errno = -err;
		return NULL;
	}
	return nl;
}

void vmig_nl_close(struct vmig_nl *nl)
{
	if (!nl)
		return;
	if (nl->ev)
		mnl_socket_close(nl->ev);
	mnl_socket_close(nl->req);
	free(nl);
}

const char *vmig_nl_errmsg(const struct vmig_nl *nl)
{
	return nl->errmsg;
}

static uint64_t nl_uint(const struct nlattr *a)
{
	switch (mnl_attr_get_payload_len(a)) {
	case 1: return mnl_attr_get_u8(a);
	case 2: return mnl_attr_get_u16(a);
	case 4: return mnl_attr_get_u32(a);
	case 8: return mnl_attr_get_u64(a);
	default: return 0;
	}
}

static int nl_info_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	struct vmig_nl_info *info = ctx->out;
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case VMIG_A_MOD_VERSION:
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
				snprintf(info->mod_version, sizeof(info->mod_version),
					 "%s", mnl_attr_get_str(a));
			break;
		case VMIG_A_API_VERSION: info->api_version = nl_uint(a); break;
		case VMIG_A_FEATURES: info->features = nl_uint(a); break;
		case VMIG_A_PAGE_SIZE: info->page_size = nl_uint(a); break;
		case VMIG_A_MAX_REGION_BYTES: info->max_region_bytes = nl_uint(a); break;
		case VMIG_A_RESERVED_BYTES: info->reserved_bytes = nl_uint(a); break;
		case VMIG_A_PAGES_ALLOCATED: info->pages_allocated = nl_uint(a); break;
		case VMIG_A_REGION_COUNT: info->region_count = nl_uint(a); break;
		case VMIG_A_STALL_THRESHOLD_NS: info->stall_threshold_ns = nl_uint(a); break;
		}
	}
	return MNL_CB_OK;
}

int vmig_nl_info(struct vmig_nl *nl, struct vmig_nl_info *info)
{
	struct nl_ctx ctx = { .nl = nl, .out = info };

	memset(info, 0, sizeof(*info));
	return nl_talk_ctx(&ctx, nl_msg_start(nl, nl->family, 0, VMIG_CMD_GET_INFO,
					      VMIG_GENL_VERSION), nl_info_cb);
}

static void nl_parse_stats(const struct nlattr *nest, struct vmig_nl_region *r)
{
	struct vmig_nl_stats *s = &r->stats;
	const struct nlattr *a;
	size_t len;

	r->has_stats = true;
	mnl_attr_for_each_nested(a, nest) {
		switch (mnl_attr_get_type(a)) {
		case VMIG_STAT_PAGES_PRESENT: s->pages_present = nl_uint(a); break;
		case VMIG_STAT_WRITE_FAULTS: s->write_faults = nl_uint(a); break;
		case VMIG_STAT_HARVEST_CALLS: s->harvest_calls = nl_uint(a); break;
		case VMIG_STAT_PAGES_HARVESTED: s->pages_harvested = nl_uint(a); break;
		case VMIG_STAT_CLEAR_CALLS: s->clear_calls = nl_uint(a); break;
		case VMIG_STAT_PAGES_PROTECTED: s->pages_protected = nl_uint(a); break;
		case VMIG_STAT_MAX_PROTECT_NS: s->max_protect_ns = nl_uint(a); break;
		case VMIG_STAT_MISSING_FAULTS: s->missing_faults = nl_uint(a); break;
		case VMIG_STAT_REQUESTS: s->requests = nl_uint(a); break;
		case VMIG_STAT_PAGES_PLACED: s->pages_placed = nl_uint(a); break;
		case VMIG_STAT_PLACE_EXIST: s->place_exist = nl_uint(a); break;
		case VMIG_STAT_PAGES_DISCARDED: s->pages_discarded = nl_uint(a); break;
		case VMIG_STAT_NOWAIT_PLACED: s->nowait_placed = nl_uint(a); break;
		case VMIG_STAT_NOWAIT_FALLBACKS: s->nowait_fallbacks = nl_uint(a); break;
		case VMIG_STAT_SINK_SENT: s->sink_sent = nl_uint(a); break;
		case VMIG_STAT_SINK_UNSENT: s->sink_unsent = nl_uint(a); break;
		case VMIG_STAT_WAIT_HIST:
			len = mnl_attr_get_payload_len(a);
			if (len > sizeof(s->wait_hist))
				len = sizeof(s->wait_hist);
			memcpy(s->wait_hist, mnl_attr_get_payload(a), len);
			break;
		}
	}
}

/* Fill @r from the attributes of a region message or event. */
static void nl_parse_region(const struct nlmsghdr *nlh, struct vmig_nl_region *r,
			    struct vmig_nl_event *ev)
{
	const struct nlattr *a;

	mnl_attr_for_each(a, nlh, GENL_HDRLEN) {
		switch (mnl_attr_get_type(a)) {
		case VMIG_A_REGION_ID: r->id = nl_uint(a); break;
		case VMIG_A_REGION_SIZE: r->size = nl_uint(a); break;
		case VMIG_A_REGION_FLAGS: r->flags = nl_uint(a); break;
		case VMIG_A_DIRTY_ON: r->dirty_on = nl_uint(a); break;
		case VMIG_A_DIRTY_FLAGS: r->dirty_flags = nl_uint(a); break;
		case VMIG_A_POSTCOPY_ON: r->postcopy_on = nl_uint(a); break;
		case VMIG_A_STATS: nl_parse_stats(a, r); break;
		case VMIG_A_PID:
			if (ev)
				ev->pid = nl_uint(a);
			break;
		case VMIG_A_STALL_NS:
			if (ev)
				ev->stall_ns = nl_uint(a);
			break;
		}
	}
}

static int nl_region_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_ctx *ctx = data;
	struct vmig_nl_region r;

	memset(&r, 0, sizeof(r));
	nl_parse_region(nlh, &r, NULL);
	if (ctx->cb_ret)
		return MNL_CB_OK;	/* drain the dump after the caller said stop */
	ctx->cb_ret = ctx->region_cb(&r, ctx->arg);
	return MNL_CB_OK;
}

int vmig_nl_dump(struct vmig_nl *nl, vmig_nl_region_cb cb, void *arg)
{
	struct nl_ctx ctx = { .nl = nl, .region_cb = cb, .arg = arg };

	return nl_talk_ctx(&ctx, nl_msg_start(nl, nl->family, NLM_F_DUMP,
					      VMIG_CMD_GET_REGION, VMIG_GENL_VERSION),
			   nl_region_cb);
}

int vmig_nl_region(struct vmig_nl *nl, uint32_t id, vmig_nl_region_cb cb, void *arg)
{
	struct nl_ctx ctx = { .nl = nl, .region_cb = cb, .arg = arg };
	struct nlmsghdr *nlh;

	nlh = nl_msg_start(nl, nl->family, 0, VMIG_CMD_GET_REGION, VMIG_GENL_VERSION);
	mnl_attr_put_u32(nlh, VMIG_A_REGION_ID, id);
	return nl_talk_ctx(&ctx, nlh, nl_region_cb);
}

int vmig_nl_reset_stats(struct vmig_nl *nl, int64_t id)
{
	struct nl_ctx ctx = { .nl = nl };
	struct nlmsghdr *nlh;

	nlh = nl_msg_start(nl, nl->family, 0, VMIG_CMD_RESET_STATS, VMIG_GENL_VERSION);
	if (id >= 0)
		mnl_attr_put_u32(nlh, VMIG_A_REGION_ID, (uint32_t)id);
	return nl_talk_ctx(&ctx, nlh, NULL);
}

int vmig_nl_subscribe(struct vmig_nl *nl)
{
	uint32_t grp = nl->events_grp;

	if (nl->ev)
		return 0;
	if (!grp)
		return -ENOENT;
	nl->ev = nl_socket_open();
	if (!nl->ev)
		return -errno;
	if (mnl_socket_setsockopt(nl->ev, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
		int err = -errno;

		mnl_socket_close(nl->ev);
		nl->ev = NULL;
		return err;
	}
	return 0;
}

int vmig_nl_event_fd(const struct vmig_nl *nl)
{
	return nl->ev ? mnl_socket_get_fd(nl->ev) : -EBADF;
}

struct nl_ev_ctx {
	struct vmig_nl *nl;
	vmig_nl_event_cb cb;
	void *arg;
	int count;
	int cb_ret;
};

static int nl_event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct genlmsghdr *g = mnl_nlmsg_get_payload(nlh);
	struct nl_ev_ctx *ctx = data;
	struct vmig_nl_event ev;

	if (nlh->nlmsg_type != ctx->nl->family ||
	    mnl_nlmsg_get_payload_len(nlh) < sizeof(*g))
		return MNL_CB_OK;
	memset(&ev, 0, sizeof(ev));
	switch (g->cmd) {
	case VMIG_CMD_REGION_NEW: ev.kind = VMIG_NL_EV_REGION_NEW; break;
	case VMIG_CMD_REGION_DEL: ev.kind = VMIG_NL_EV_REGION_DEL; break;
	case VMIG_CMD_DIRTY: ev.kind = VMIG_NL_EV_DIRTY; break;
	case VMIG_CMD_STALL: ev.kind = VMIG_NL_EV_STALL; break;
	case VMIG_CMD_POSTCOPY: ev.kind = VMIG_NL_EV_POSTCOPY; break;
	default: return MNL_CB_OK;	/* a newer module's event */
	}
	nl_parse_region(nlh, &ev.region, &ev);
	ctx->count++;
	ctx->cb_ret = ctx->cb(&ev, ctx->arg);
	return ctx->cb_ret ? MNL_CB_STOP : MNL_CB_OK;
}

int vmig_nl_read_events(struct vmig_nl *nl, vmig_nl_event_cb cb, void *arg)
{
	struct nl_ev_ctx ctx = { .nl = nl, .cb = cb, .arg = arg };
	ssize_t n;
	int ret;

	if (!nl->ev)
		return -EBADF;
	n = mnl_socket_recvfrom(nl->ev, nl->buf, sizeof(nl->buf));
	if (n < 0)
		return -errno;
	ret = mnl_cb_run(nl->buf, n, 0, 0, nl_event_cb, &ctx);
	if (ret < 0)
		return -errno;
	return ctx.cb_ret < 0 ? ctx.cb_ret : ctx.count;
}
