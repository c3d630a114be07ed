// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "control.h"

int control_recv(struct stream *s, bool expect_resumed, struct ctl_event *ev)
{
	struct wire_pkt_hdr h;
	int r;

	memset(ev, 0, sizeof(*ev));
	r = stream_recv_hdr(s, &h);
	if (r)
		return r;
	ev->type = h.type;
	switch (h.type) {
	case WIRE_PKT_ERROR:
		return stream_read_error(s, &h);
	case WIRE_PKT_NOP:
		return h.len ? stream_fail(s, EPROTO, "NOP with %u bytes", h.len) : 0;
	case WIRE_PKT_RESUMED:
		if (!expect_resumed)
			break;
		if (h.len == sizeof(ev->resumed))
			return stream_read(s, &ev->resumed, sizeof(ev->resumed));
		return h.len ? stream_fail(s, EPROTO, "RESUMED with %u bytes", h.len) : 0;
	case WIRE_PKT_DEVSTATE:
		if (expect_resumed)
			break;
		ev->len = h.len;	/* the caller reads the rest (devstate_recv.c) */
		return 0;
	case WIRE_PKT_ROUND:
		if (expect_resumed)
			break;
		if (h.len != sizeof(ev->round))
			return stream_fail(s, EPROTO, "malformed ROUND: %u bytes", h.len);
		return stream_read(s, &ev->round, sizeof(ev->round));
	case WIRE_PKT_DEV_LOAD:
		if (!expect_resumed)
			return h.len ? stream_fail(s, EPROTO, "DEV_LOAD question with %u bytes",
						   h.len) : 0;
		if (h.len < sizeof(ev->dev_load))
			return stream_fail(s, EPROTO, "malformed DEV_LOAD: %u bytes", h.len);
		r = stream_read(s, &ev->dev_load, sizeof(ev->dev_load));
		if (r)
			return r;
		if (ev->dev_load.nr_devices > WIRE_MAX_DEVICES || ev->dev_load.reserved ||
		    h.len != sizeof(ev->dev_load) + ev->dev_load.nr_devices * sizeof(ev->loaded[0]))
			return stream_fail(s, EPROTO, "malformed DEV_LOAD: %u devices in %u bytes",
					   ev->dev_load.nr_devices, h.len);
		return stream_read(s, ev->loaded, ev->dev_load.nr_devices * sizeof(ev->loaded[0]));
	case WIRE_PKT_DONE:
		if (!expect_resumed)
			break;
		return h.len ? stream_fail(s, EPROTO, "DONE with %u bytes", h.len) : 0;
	case WIRE_PKT_POSTCOPY:
		if (expect_resumed)
			break;
		if (h.len != sizeof(ev->postcopy))
			return stream_fail(s, EPROTO, "malformed POSTCOPY: %u bytes", h.len);
		return stream_read(s, &ev->postcopy, sizeof(ev->postcopy));
	case WIRE_PKT_DISCARD:
		if (expect_resumed)
			break;
		if (h.len < sizeof(ev->discard))
			return stream_fail(s, EPROTO, "malformed DISCARD: %u bytes", h.len);
		r = stream_read(s, &ev->discard, sizeof(ev->discard));
		if (r)
			return r;
		if (!ev->discard.count || ev->discard.count > WIRE_MAX_DISCARD ||
		    h.len != sizeof(ev->discard) + 16ull * ev->discard.count)
			return stream_fail(s, EPROTO, "malformed DISCARD: %u ranges in %u bytes",
					   ev->discard.count, h.len);
		return stream_read(s, ev->ranges, 16ull * ev->discard.count);
	case WIRE_PKT_COMPLETE:
		if (expect_resumed)
			break;
		if (h.len != sizeof(ev->complete))
			return stream_fail(s, EPROTO, "malformed COMPLETE: %u bytes", h.len);
		r = stream_read(s, &ev->complete, sizeof(ev->complete));
		if (!r && ev->complete.reserved)
			return stream_fail(s, EPROTO, "malformed COMPLETE: reserved field set");
		return r;
	}
	return stream_fail(s, EPROTO, "out-of-order packet on the main channel: %s",
			   wire_pkt_name(h.type));
}

int control_dev_load(struct stream *s, struct ctl_event *ev)
{
	int r = stream_send_pkt(s, WIRE_PKT_DEV_LOAD, NULL, 0);

	do {
		if (!r)
			r = control_recv(s, true, ev);
	} while (!r && ev->type == WIRE_PKT_NOP);
	if (!r && ev->type != WIRE_PKT_DEV_LOAD)
		r = stream_fail(s, EPROTO, "%s instead of DEV_LOAD", wire_pkt_name(ev->type));
	return r;
}
