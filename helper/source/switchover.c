// SPDX-License-Identifier: GPL-2.0
/* The switchover's predicted downtime, part by part (switchover.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "switchover.h"
#include "wire.h"

/*
 * The devices through a pool of @slots savers: each active device runs at
 * its own cap, the bandwidth shared max-min fairly among the active ones;
 * a device that ends hands its slot to the next.  With @use_load the caps
 * include the load rates.  Milliseconds until the last one ends; *last is
 * the device that ends last.
 */
static double dev_makespan(const struct sw_inputs *in, unsigned int slots, bool use_load,
			   unsigned int *last)
{
	unsigned int n = in->nr_devices < WIRE_MAX_DEVICES ? in->nr_devices : WIRE_MAX_DEVICES;
	double left[WIRE_MAX_DEVICES], cap[WIRE_MAX_DEVICES], rate[WIRE_MAX_DEVICES];
	unsigned int act[WIRE_MAX_DEVICES], nact = 0, next = 0, i, j;
	double t = 0, bw = in->dev_bandwidth > 0 ? in->dev_bandwidth :
			   in->bandwidth > 0 ? in->bandwidth : INFINITY;

	*last = 0;
	for (i = 0; i < n; i++) {
		const struct sw_device *d = &in->dev[i];

		left[i] = d->remaining;
		cap[i] = d->save_rate > 0 ? d->save_rate : INFINITY;
		if (use_load && d->load_rate > 0 && d->load_rate < cap[i])
			cap[i] = d->load_rate;
	}
	for (;;) {
		double share, bw_left = bw, dt = INFINITY;
		unsigned int k;

		while (nact < slots && next < n) {
			if (left[next] > 0)
				act[nact++] = next;
			next++;
		}
		if (!nact)
			break;
		/* Max-min fair: the slowest caps first, the rest share what is left. */
		for (i = 1; i < nact; i++)
			for (j = i; j > 0 && cap[act[j]] < cap[act[j - 1]]; j--) {
				k = act[j];
				act[j] = act[j - 1];
				act[j - 1] = k;
			}
		for (i = 0; i < nact; i++) {
			share = bw_left / (nact - i);
			rate[act[i]] = cap[act[i]] < share ? cap[act[i]] : share;
			bw_left -= rate[act[i]];
		}
		for (i = 0; i < nact; i++)
			if (left[act[i]] / rate[act[i]] < dt)
				dt = left[act[i]] / rate[act[i]];
		if (!isfinite(dt))
			break;		/* unlimited everywhere: no time */
		t += dt;
		for (i = 0, k = 0; i < nact; i++) {
			if (left[act[i]] / rate[act[i]] <= dt * (1 + 1e-9)) {
				left[act[i]] = 0;
				*last = act[i];
			} else {
				left[act[i]] -= rate[act[i]] * dt;
				act[k++] = act[i];
			}
		}
		nact = k;
	}
	return t * 1e3;
}

void sw_predict(const struct sw_inputs *in, struct sw_parts *out)
{
	unsigned int slots = in->on_main || !in->threads ? 1 : in->threads, last, i;
	double bw = in->bandwidth > 0 ? in->bandwidth : INFINITY, save, all;
	double dev_bw = in->dev_bandwidth > 0 ? in->dev_bandwidth : bw;
	uint64_t sum = 0;

	memset(out, 0, sizeof(*out));
	out->stop = in->ctl_rtt_ms;
	out->resume = in->ctl_rtt_ms;
	out->pages = in->harvest_ms;
	if (!in->postcopy)
		out->pages += in->dirty_bytes / bw * 1e3;
	if (!in->nr_devices)
		return;
	for (i = 0; i < in->nr_devices; i++)
		sum += in->dev[i].remaining;
	save = dev_makespan(in, slots, false, &last);
	all = dev_makespan(in, slots, true, &last);
	/* Every device's save is opened and ended: a control round trip each. */
	out->dev_save = save + (in->nr_devices + slots - 1) / slots * in->ctl_rtt_ms;
	out->load = all - save;
	if (sum) {
		uint64_t tail = in->dev[last].remaining < WIRE_DEV_CHUNK_MAX ?
				in->dev[last].remaining : WIRE_DEV_CHUNK_MAX;

		out->transfer = WIRE_DEV_CHUNK_MAX / dev_bw * 1e3;
		if (in->dev[last].load_rate > 0)
			out->load += tail / in->dev[last].load_rate * 1e3;
	}
	/* A load that lags takes its backlog and the rest at its own rate from now. */
	for (i = 0; i < in->nr_devices && i < WIRE_MAX_DEVICES; i++) {
		const struct sw_device *d = &in->dev[i];
		double end;

		if (!d->backlog || d->load_rate <= 0)
			continue;
		end = ((double)d->backlog + d->remaining) / d->load_rate * 1e3;
		if (end - out->dev_save - out->transfer > out->load)
			out->load = end - out->dev_save - out->transfer;
	}
}

void sw_dest_load_apply(const struct wire_dev_loaded *l, uint64_t sent, struct sw_device *d)
{
	double rate = d->load_rate, behind;

	if (getenv("VMIG_SWITCHOVER_NO_LOAD_LAG"))
		return;
	/*
	 * Figures no destination can have (more loaded than arrived, more
	 * arrived than was sent and a chunk in flight) are left out: the
	 * prediction keeps what the source knows.
	 */
	if (l->loaded > l->received || l->received > sent + WIRE_DEV_CHUNK_MAX)
		return;
	/* More than a chunk waiting: the load went at its own rate, not the arrivals'. */
	if (rate <= 0 && l->received > l->loaded + WIRE_DEV_CHUNK_MAX && l->loaded >= (1u << 20) &&
	    l->load_ns)
		rate = l->loaded / (l->load_ns / 1e9);
	if (rate <= 0)
		return;
	/*
	 * Since it began the load can have taken rate x load_ns at most: the
	 * rest of what was sent (arrived or on its way) waits for it.  And what
	 * waits on the destination now goes at that rate at best, if the load
	 * fell behind even that (a load starved of CPU).
	 */
	behind = sent - rate * (l->load_ns / 1e9);
	if (l->received > l->loaded && l->received - l->loaded > behind)
		behind = l->received - l->loaded;
	if (behind < 1)
		return;
	d->backlog = behind < (double)sent + WIRE_DEV_CHUNK_MAX ? behind : sent + WIRE_DEV_CHUNK_MAX;
	d->load_rate = rate;
}

double sw_total(const struct sw_parts *p)
{
	return p->stop + p->pages + p->dev_save + p->transfer + p->load + p->resume;
}

static unsigned int largest(const struct sw_parts *p, double *ms)
{
	const double v[] = { p->stop, p->pages, p->dev_save, p->transfer, p->load, p->resume };
	unsigned int i, best = 0;

	for (i = 1; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] > v[best])
			best = i;
	*ms = v[best];
	return best;
}

const char *sw_largest(const struct sw_parts *p)
{
	static const char *const name[] = { "stop", "final dirty pages", "device state save",
					    "transfer", "device state load", "resume" };
	double ms;

	return name[largest(p, &ms)];
}

double sw_largest_ms(const struct sw_parts *p)
{
	double ms;

	largest(p, &ms);
	return ms;
}
