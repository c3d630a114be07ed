/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A raw generic netlink client for the module selftests: no library, so a
 * test can send exactly the bytes it means, including malformed ones, and
 * see the kernel's error and extended-ack message.
 */
#ifndef VMIG_NL_H
#define VMIG_NL_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/vmig.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define NLT_BUF 16384

struct nlt {
	int fd;
	uint16_t family;
	uint32_t events_grp;
	uint32_t seq;
	int datagrams;		/* datagrams the last nlt_talk() read */
	char errmsg[256];	/* extack message of the last error, or "" */
};

/* A message being built: netlink header, genl header, attributes. */
struct nlt_msg {
	union {
		struct nlmsghdr nlh;
		char buf[NLT_BUF];
	};
};

static inline void nlt_msg_init(struct nlt_msg *m, uint16_t type, uint16_t flags,
				uint8_t cmd, uint8_t version)
{
	struct genlmsghdr *g;

	memset(m, 0, sizeof(*m));
	m->nlh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	m->nlh.nlmsg_type = type;
	m->nlh.nlmsg_flags = flags;
	g = NLMSG_DATA(&m->nlh);
	g->cmd = cmd;
	g->version = version;
}

static inline struct genlmsghdr *nlt_genl(struct nlt_msg *m)
{
	return NLMSG_DATA(&m->nlh);
}

static inline void nlt_msg_attr(struct nlt_msg *m, uint16_t type,
				const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + NLMSG_ALIGN(m->nlh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	m->nlh.nlmsg_len = NLMSG_ALIGN(m->nlh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static inline void nlt_msg_u32(struct nlt_msg *m, uint16_t type, uint32_t v)
{
	nlt_msg_attr(m, type, &v, sizeof(v));
}

/* Iterate the attributes of a payload. */
#define nlt_for_each_attr(a, start, len)					\
	for (a = (struct nlattr *)(start);					\
	     (char *)(a) + NLA_HDRLEN <= (char *)(start) + (len) &&		\
	     a->nla_len >= NLA_HDRLEN &&					\
	     (char *)(a) + a->nla_len <= (char *)(start) + (len);		\
	     a = (struct nlattr *)((char *)(a) + NLA_ALIGN(a->nla_len)))

static inline void *nlt_attr_data(struct nlattr *a)
{
	return (char *)a + NLA_HDRLEN;
}

static inline uint64_t nlt_attr_uint(struct nlattr *a)
{
	uint64_t v64;
	uint32_t v32;
	uint16_t v16;
	uint8_t v8;

	switch (a->nla_len - NLA_HDRLEN) {
	case 8: memcpy(&v64, nlt_attr_data(a), 8); return v64;
	case 4: memcpy(&v32, nlt_attr_data(a), 4); return v32;
	case 2: memcpy(&v16, nlt_attr_data(a), 2); return v16;
	case 1: memcpy(&v8, nlt_attr_data(a), 1); return v8;
	default: return ~0ULL;
	}
}

/* Find attribute @type among the genl attributes of @nlh; NULL if absent. */
static inline struct nlattr *nlt_find(struct nlmsghdr *nlh, uint16_t type)
{
	char *start = (char *)NLMSG_DATA(nlh) + GENL_HDRLEN;
	struct nlattr *a;

	nlt_for_each_attr(a, start, nlh->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN))
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

static inline struct nlattr *nlt_find_nested(struct nlattr *nest, uint16_t type)
{
	struct nlattr *a;

	nlt_for_each_attr(a, nlt_attr_data(nest), nest->nla_len - NLA_HDRLEN)
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

/* Send @len raw bytes to the kernel. */
static inline int nlt_send_raw(struct nlt *nl, const void *buf, size_t len)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };

	if (sendto(nl->fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* Receive one datagram, waiting at most @timeout_ms; its length or -errno. */
static inline int nlt_recv(struct nlt *nl, void *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = nl->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recv(nl->fd, buf, len, 0);
	return n < 0 ? -errno : (int)n;
}

/* Remember the extack message of an error message. */
static inline void nlt_note_extack(struct nlt *nl, struct nlmsghdr *nlh)
{
	struct nlmsgerr *e = NLMSG_DATA(nlh);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *a;

	nl->errmsg[0] = 0;
	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += e->msg.nlmsg_len - sizeof(e->msg);
	nlt_for_each_attr(a, (char *)nlh + off, nlh->nlmsg_len - off)
		if (a->nla_type == NLMSGERR_ATTR_MSG)
			snprintf(nl->errmsg, sizeof(nl->errmsg), "%s",
				 (char *)nlt_attr_data(a));
}

typedef int (*nlt_cb)(struct nlmsghdr *nlh, void *arg);

/*
 * Send @m (as a request with an ack wanted; a dump if NLM_F_DUMP is set)
 * and read the answers until the ack, the error, or NLMSG_DONE.  Each data
 * message goes to @cb.  Returns 0 or the kernel's -errno.
 */
static inline int nlt_talk(struct nlt *nl, struct nlt_msg *m, nlt_cb cb, void *arg)
{
	static char buf[65536];
	uint32_t seq = ++nl->seq;
	struct nlmsghdr *nlh;
	int n, err;

	m->nlh.nlmsg_seq = seq;
	m->nlh.nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	nl->errmsg[0] = 0;
	nl->datagrams = 0;
	err = nlt_send_raw(nl, m, m->nlh.nlmsg_len);
	if (err)
		return err;
	for (;;) {
		n = nlt_recv(nl, buf, sizeof(buf), 5000);
		if (n < 0)
			return n;
		nl->datagrams++;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, (unsigned int)n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nlh);

				nlt_note_extack(nl, nlh);
				/* A dump's ack comes after its DONE; a do ends here. */
				return e->error;
			}
			if (nlh->nlmsg_type == NLMSG_DONE) {
				int *done = NLMSG_DATA(nlh);

				return *done;
			}
			if (cb) {
				err = cb(nlh, arg);
				if (err)
					return err;
			}
		}
	}
}

static inline int nlt_family_cb(struct nlmsghdr *nlh, void *arg)
{
	struct nlt *nl = arg;
	struct nlattr *a, *grps, *g, *f;

	a = nlt_find(nlh, CTRL_ATTR_FAMILY_ID);
	if (a)
		nl->family = nlt_attr_uint(a);
	grps = nlt_find(nlh, CTRL_ATTR_MCAST_GROUPS);
	if (!grps)
		return 0;
	nlt_for_each_attr(g, nlt_attr_data(grps), grps->nla_len - NLA_HDRLEN) {
		f = nlt_find_nested(g, CTRL_ATTR_MCAST_GRP_NAME);
		if (f && !strcmp(nlt_attr_data(f), VMIG_GENL_MCGRP_EVENTS)) {
			f = nlt_find_nested(g, CTRL_ATTR_MCAST_GRP_ID);
			if (f)
				nl->events_grp = nlt_attr_uint(f);
		}
	}
	return 0;
}

/* Open a socket and resolve the "vmig" family; 0 or -errno. */
static inline int nlt_open(struct nlt *nl)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlt_msg m;
	int one = 1, err;

	memset(nl, 0, sizeof(*nl));
	nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (nl->fd < 0)
		return -errno;
	if (bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    setsockopt(nl->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one))) {
		err = -errno;
		close(nl->fd);
		return err;
	}
	nlt_msg_init(&m, GENL_ID_CTRL, 0, CTRL_CMD_GETFAMILY, 1);
	nlt_msg_attr(&m, CTRL_ATTR_FAMILY_NAME, VMIG_GENL_NAME, sizeof(VMIG_GENL_NAME));
	err = nlt_talk(nl, &m, nlt_family_cb, nl);
	if (!err && !nl->family)
		err = -ENOENT;
	if (err)
		close(nl->fd);
	return err;
}

static inline void nlt_close(struct nlt *nl)
{
	close(nl->fd);
}

/* Start a vmig request. */
static inline void nlt_vmig_msg(struct nlt *nl, struct nlt_msg *m, uint8_t cmd,
				uint16_t flags)
{
	nlt_msg_init(m, nl->family, flags, cmd, VMIG_GENL_VERSION);
}

static inline int nlt_join_events(struct nlt *nl)
{
	uint32_t grp = nl->events_grp;

	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		return -errno;
	return 0;
}

#endif /* VMIG_NL_H */
