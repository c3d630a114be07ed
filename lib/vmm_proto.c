// SPDX-License-Identifier: LGPL-2.1-or-later
/* Control-protocol messages: framing and SCM_RIGHTS fd passing. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm_proto.h"

int vmm_msg_send(int sock, uint16_t type, const void *payload, uint32_t len,
		 const int *fds, unsigned int nfds)
{
	return vmm_msg_send_flags(sock, type, 0, payload, len, fds, nfds);
}

int vmm_msg_send_flags(int sock, uint16_t type, uint32_t flags, const void *payload,
		       uint32_t len, const int *fds, unsigned int nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VMM_MAX_REGIONS)];
		struct cmsghdr align;
	} ctl;
	struct vmm_msg_hdr hdr = { .magic = VMM_PROTO_MAGIC, .type = type,
				   .nfds = nfds, .len = len, .flags = flags };
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)payload, .iov_len = len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	ssize_t n;

	if (len > VMM_MAX_PAYLOAD || nfds > VMM_MAX_REGIONS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE ? -ECONNRESET : -errno;
	return (size_t)n == sizeof(hdr) + len ? 0 : -EPROTO;
}

static void close_fds(int *fds, unsigned int n)
{
	while (n--)
		close(fds[n]);
}

int vmm_msg_recv(int sock, struct vmm_msg *msg, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * VMM_MAX_REGIONS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ .iov_base = &msg->hdr, .iov_len = sizeof(msg->hdr) },
		{ .iov_base = msg->payload, .iov_len = sizeof(msg->payload) },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2,
			     .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	unsigned int nfds = 0;
	struct cmsghdr *c;
	ssize_t n;
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			unsigned int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			if (nfds + k > VMM_MAX_REGIONS) {
				close_fds((int *)CMSG_DATA(c), k);
				continue;
			}
			memcpy(msg->fds + nfds, CMSG_DATA(c), k * sizeof(int));
			nfds += k;
		}
	}
	if ((size_t)n < sizeof(msg->hdr) || msg->hdr.magic != VMM_PROTO_MAGIC ||
	    msg->hdr.len != (size_t)n - sizeof(msg->hdr) || msg->hdr.nfds != nfds ||
	    (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		close_fds(msg->fds, nfds);
		return -EPROTO;
	}
	return 0;
}
