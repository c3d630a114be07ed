// SPDX-License-Identifier: GPL-2.0
/* Handshake: version and capability negotiation on the main channel. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "handshake.h"

int hs_send_offer(struct stream *s, const struct hs_offer *o)
{
	uint8_t buf[sizeof(struct wire_hello) + 8 * WIRE_MAX_REGIONS];
	struct wire_hello h = {
		.version_min = o->version_min, .version_max = o->version_max,
		.caps = o->caps, .page_size = WIRE_PAGE_SIZE,
		.nr_multifd = o->nr_multifd, .nr_regions = o->nr_regions,
	};

	if (o->nr_regions > WIRE_MAX_REGIONS)
		return -EINVAL;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), o->region_pages, 8 * o->nr_regions);
	return stream_send_pkt(s, WIRE_PKT_HELLO, buf, sizeof(h) + 8 * o->nr_regions);
}

int hs_recv_offer(struct stream *s, struct hs_offer *o)
{
	struct wire_pkt_hdr ph;
	int r;

	r = stream_recv_hdr(s, &ph);
	if (r)
		return r;
	return hs_parse_offer(s, &ph, o);
}

int hs_parse_offer(struct stream *s, const struct wire_pkt_hdr *ph, struct hs_offer *o)
{
	struct wire_hello h;
	int r;

	if (ph->type != WIRE_PKT_HELLO)
		return stream_fail(s, EPROTO, "out-of-order packet: %s before HELLO",
				   wire_pkt_name(ph->type));
	if (ph->len < sizeof(h))
		return stream_fail(s, EPROTO, "truncated HELLO: %u bytes", ph->len);
	r = stream_read(s, &h, sizeof(h));
	if (r)
		return r;
	if (h.nr_regions > WIRE_MAX_REGIONS || ph->len != sizeof(h) + 8ull * h.nr_regions)
		return stream_fail(s, EPROTO, "malformed HELLO: %u regions in %u bytes",
				   h.nr_regions, ph->len);
	if (h.reserved)
		return stream_fail(s, EPROTO, "malformed HELLO: reserved field set");
	memset(o, 0, sizeof(*o));
	o->version_min = h.version_min;
	o->version_max = h.version_max;
	o->caps = h.caps;
	o->nr_multifd = h.nr_multifd;
	o->nr_regions = h.nr_regions;
	r = stream_read(s, o->region_pages, 8 * h.nr_regions);
	if (r)
		return r;
	if (h.page_size != WIRE_PAGE_SIZE)
		return stream_fail(s, EPROTO, "source uses %u-byte pages, this side %u",
				   h.page_size, WIRE_PAGE_SIZE);
	return 0;
}

int hs_decide(const struct hs_offer *offer, const struct hs_offer *local,
	      struct hs_result *res, char *msg, size_t msglen)
{
	uint32_t i;

	memset(res, 0, sizeof(*res));
	if (offer->version_min > offer->version_max ||
	    offer->version_min > local->version_max || offer->version_max < local->version_min) {
		snprintf(msg, msglen, "wire version mismatch: source speaks %u..%u, "
			 "destination %u..%u", offer->version_min, offer->version_max,
			 local->version_min, local->version_max);
		return -EPROTONOSUPPORT;
	}
	res->version = offer->version_max < local->version_max ? offer->version_max :
								  local->version_max;
	res->caps = offer->caps & local->caps;
	if ((offer->caps & WIRE_CAPS_REQUIRED) != WIRE_CAPS_REQUIRED ||
	    (res->caps & WIRE_CAPS_REQUIRED) != WIRE_CAPS_REQUIRED) {
		snprintf(msg, msglen, "capability mismatch: source offers 0x%llx, destination "
			 "supports 0x%llx, both need 0x%llx",
			 (unsigned long long)offer->caps, (unsigned long long)local->caps,
			 (unsigned long long)WIRE_CAPS_REQUIRED);
		return -EPROTONOSUPPORT;
	}
	if (offer->nr_multifd < 1 || offer->nr_multifd > WIRE_MAX_CHANNELS) {
		snprintf(msg, msglen, "source wants %u multifd channels (1..%u allowed)",
			 offer->nr_multifd, WIRE_MAX_CHANNELS);
		return -EINVAL;
	}
	if (offer->nr_regions != local->nr_regions) {
		snprintf(msg, msglen, "source guest has %u RAM regions, destination guest %u",
			 offer->nr_regions, local->nr_regions);
		return -EINVAL;
	}
	for (i = 0; i < offer->nr_regions; i++) {
		if (offer->region_pages[i] != local->region_pages[i]) {
			snprintf(msg, msglen, "RAM region %u: source has %llu MiB, destination "
				 "%llu MiB", i,
				 (unsigned long long)(offer->region_pages[i] >> 8),
				 (unsigned long long)(local->region_pages[i] >> 8));
			return -EINVAL;
		}
	}
	return 0;
}

int hs_send_reply(struct stream *s, int status, const struct hs_result *res, const char *msg)
{
	uint8_t buf[sizeof(struct wire_hello_reply) + WIRE_MAX_MSG];
	struct wire_hello_reply r = { .status = status };
	size_t n = status ? strnlen(msg, WIRE_MAX_MSG) : 0;

	if (!status) {
		r.version = res->version;
		r.caps = res->caps;
	}
	memcpy(buf, &r, sizeof(r));
	memcpy(buf + sizeof(r), msg, n);
	if (!status)
		auth_session_established(s);	/* other channels now bind to this one */
	return stream_send_pkt(s, WIRE_PKT_HELLO_REPLY, buf, sizeof(r) + n);
}

int hs_recv_reply(struct stream *s, const struct hs_offer *offer, struct hs_result *res)
{
	struct wire_hello_reply r;
	struct wire_pkt_hdr ph;
	char msg[WIRE_MAX_MSG + 1];
	size_t n, i;
	int ret;

	ret = stream_recv_hdr(s, &ph);
	if (ret)
		return ret;
	if (ph.type == WIRE_PKT_ERROR)
		return stream_read_error(s, &ph);
	if (ph.type != WIRE_PKT_HELLO_REPLY)
		return stream_fail(s, EPROTO, "out-of-order packet: %s instead of HELLO_REPLY",
				   wire_pkt_name(ph.type));
	if (ph.len < sizeof(r) || ph.len > sizeof(r) + WIRE_MAX_MSG)
		return stream_fail(s, EPROTO, "malformed HELLO_REPLY: %u bytes", ph.len);
	n = ph.len - sizeof(r);
	ret = stream_read(s, &r, sizeof(r));
	if (!ret)
		ret = stream_read(s, msg, n);
	if (ret)
		return ret;
	msg[n] = 0;
	for (i = 0; i < n; i++)
		if (msg[i] < 0x20 || msg[i] > 0x7e)
			msg[i] = '?';
	if (r.status)
		return stream_fail(s, r.status < 0 ? -r.status : EPROTO,
				   "destination refused the migration: %s", msg);
	if (r.version < offer->version_min || r.version > offer->version_max)
		return stream_fail(s, EPROTO, "destination chose wire version %u, outside %u..%u",
				   r.version, offer->version_min, offer->version_max);
	if (r.caps & ~offer->caps)
		return stream_fail(s, EPROTO, "destination accepted capabilities 0x%llx never "
				   "offered", (unsigned long long)(r.caps & ~offer->caps));
	res->version = r.version;
	res->caps = r.caps;
	auth_session_established(s);
	return 0;
}
