// SPDX-License-Identifier: GPL-2.0
/* Postcopy recovery: the received bitmap on the wire, what to re-send, test cuts. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "recovery.h"

bool rec_transient(int err)
{
	switch (err < 0 ? -err : err) {
	case ECONNRESET: case EPIPE: case ETIMEDOUT: case ENOTCONN: case ECONNREFUSED:
	case EHOSTUNREACH: case ENETUNREACH: case ESHUTDOWN: case ENETDOWN:
		return true;
	default:
		return false;
	}
}

int rec_send_bitmap(struct stream *s, struct pc_dst *pc)
{
	static uint64_t words[WIRE_RECEIVED_WORDS];	/* the main thread only */
	unsigned int i;
	int r;

	for (i = 0; i < pc->mem->nr_regions; i++) {
		uint64_t nw = (pc->mem->pages[i] + 63) / 64, w = 0;

		while (w < nw) {
			struct wire_received wr = { .region = i, .first_word = w };
			struct wire_pkt_hdr h = { .type = WIRE_PKT_RECEIVED };
			struct iovec iov[3];
			uint64_t k;

			wr.nwords = nw - w < WIRE_RECEIVED_WORDS ? nw - w : WIRE_RECEIVED_WORDS;
			for (k = 0; k < wr.nwords; k++)
				words[k] = atomic_load(&pc->recv[i][w + k]);
			h.len = sizeof(wr) + 8 * wr.nwords;
			iov[0] = (struct iovec){ &h, sizeof(h) };
			iov[1] = (struct iovec){ &wr, sizeof(wr) };
			iov[2] = (struct iovec){ words, 8 * wr.nwords };
			r = stream_writev(s, iov, 3);
			if (r)
				return r;
			w += wr.nwords;
		}
	}
	return stream_send_pkt(s, WIRE_PKT_RESUMED, NULL, 0);
}

void rec_free_bitmap(uint64_t **bm)
{
	unsigned int i;

	for (i = 0; i < WIRE_MAX_REGIONS; i++) {
		free(bm[i]);
		bm[i] = NULL;
	}
}

int rec_recv_bitmap(struct stream *s, struct vmig_ram *ram, uint64_t **bm)
{
	unsigned int nr = vmig_ram_region_count(ram), i;
	uint64_t got[WIRE_MAX_REGIONS] = { 0 };

	for (i = 0; i < nr; i++) {
		bm[i] = calloc((vmig_ram_region_pages(ram, i) + 63) / 64, 8);
		if (!bm[i])
			return stream_fail(s, ENOMEM, "out of memory");
	}
	for (;;) {
		struct wire_pkt_hdr h;
		struct wire_received wr;
		uint64_t nw;
		int r = stream_recv_hdr(s, &h);

		if (r)
			return r;
		if (h.type == WIRE_PKT_ERROR) {
			stream_read_error(s, &h);
			return -ECONNABORTED;
		}
		if (h.type == WIRE_PKT_RESUMED && !h.len)
			break;
		if (h.type != WIRE_PKT_RECEIVED || h.len < sizeof(wr))
			return stream_fail(s, EPROTO, "%s (%u bytes) instead of RECEIVED",
					   wire_pkt_name(h.type), h.len);
		r = stream_read(s, &wr, sizeof(wr));
		if (r)
			return r;
		if (wr.region >= nr)
			return stream_fail(s, EPROTO, "RECEIVED for region %u of %u", wr.region, nr);
		nw = (vmig_ram_region_pages(ram, wr.region) + 63) / 64;
		if (!wr.nwords || wr.nwords > WIRE_RECEIVED_WORDS || wr.first_word > nw ||
		    wr.nwords > nw - wr.first_word || h.len != sizeof(wr) + 8ull * wr.nwords)
			return stream_fail(s, EPROTO, "malformed RECEIVED: words %llu+%u of %llu",
					   (unsigned long long)wr.first_word, wr.nwords,
					   (unsigned long long)nw);
		r = stream_read(s, bm[wr.region] + wr.first_word, 8ull * wr.nwords);
		if (r)
			return r;
		got[wr.region] += wr.nwords;
	}
	for (i = 0; i < nr; i++)
		if (got[i] != (vmig_ram_region_pages(ram, i) + 63) / 64)
			return stream_fail(s, EPROTO, "RECEIVED covered %llu words of region %u",
					   (unsigned long long)got[i], i);
	return 0;
}

struct missing_ctx {
	uint64_t *bm;
	int (*fn)(void *, unsigned int, uint64_t, uint64_t);
	void *arg;
};

static int split_missing(void *arg, unsigned int region, uint64_t first, uint64_t n)
{
	struct missing_ctx *m = arg;
	uint64_t p = first, end = first + n;

	while (p < end) {
		uint64_t q;
		int r;

		if (m->bm[p / 64] & (1ull << (p % 64))) {
			p++;
			continue;
		}
		for (q = p; q < end && !(m->bm[q / 64] & (1ull << (q % 64))); q++)
			;
		r = m->fn(m->arg, region, p, q - p);
		if (r)
			return r;
		p = q;
	}
	return 0;
}

int rec_missing_data(struct vmig_ram *ram, uint64_t **bm,
		     int (*fn)(void *, unsigned int, uint64_t, uint64_t), void *arg)
{
	unsigned int i;
	int r = 0;

	for (i = 0; i < vmig_ram_region_count(ram) && !r; i++) {
		struct missing_ctx m = { .bm = bm[i], .fn = fn, .arg = arg };

		r = vmig_ram_for_each_data(ram, i, split_missing, &m);
	}
	return r;
}

int rec_parse_cuts(struct rec_cuts *c, const char *spec)
{
	char buf[256], *save = NULL, *t;

	memset(c, 0, sizeof(*c));
	if (strlen(spec) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, spec);
	for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;

		if (c->n == REC_MAX_CUTS)
			return -EINVAL;
		if (!strcmp(t, "resume")) {
			c->kind[c->n++] = CUT_RESUME;
			continue;
		}
		if (!strncmp(t, "pages:", 6))
			c->kind[c->n] = CUT_PAGES;
		else if (!strncmp(t, "req:", 4))
			c->kind[c->n] = CUT_REQ;
		else
			return -EINVAL;
		t = strchr(t, ':') + 1;
		errno = 0;
		c->arg[c->n] = strtoull(t, &end, 10);
		if (errno || *end || end == t || !c->arg[c->n])
			return -EINVAL;
		c->n++;
	}
	return c->n ? 0 : -EINVAL;
}

enum rec_cut_kind rec_cut_armed(const struct rec_cuts *c, uint64_t *arg)
{
	if (c->next >= c->n)
		return CUT_NONE;
	*arg = c->arg[c->next];
	return c->kind[c->next];
}
