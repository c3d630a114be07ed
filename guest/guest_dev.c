// SPDX-License-Identifier: GPL-2.0
/* Emulated devices for vmig guest: deterministic state, paced save and load. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_dev.h"
#include "util.h"

static uint64_t dev_seed(const struct guest_dev *d)
{
	uint64_t h = 1469598103934665603ull;
	const char *p;

	for (p = d->name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h ^ ((uint64_t)d->instance << 32);
}

/* Word at byte offset off (a multiple of 8) of the device's state. */
static inline uint64_t dev_word(uint64_t seed, uint64_t off)
{
	return (off / 8 + 1) * 0x9e3779b97f4a7c15ull ^ seed;
}

/* Sleep until done bytes at rate bytes/s since t0 would be reached. */
static void pace(uint64_t t0, uint64_t done, uint64_t rate)
{
	uint64_t due, t;
	struct timespec ts;

	if (!rate)
		return;
	due = t0 + (uint64_t)(done * 1e9 / rate);
	t = now_ns();
	if (due <= t)
		return;
	ts.tv_sec = (due - t) / 1000000000ull;
	ts.tv_nsec = (due - t) % 1000000000ull;
	nanosleep(&ts, NULL);
}

/* Bytes [off, end) of the state, paced from the start of this part. */
static int dev_save_range(struct guest_dev *d, struct vmig_dev_io *io, uint64_t off,
			  uint64_t end)
{
	uint64_t seed = dev_seed(d), start = off, t0 = now_ns();
	uint64_t *buf = malloc(VMIG_DEV_CHUNK_MAX);
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (off < end) {
		size_t n = end - off < VMIG_DEV_CHUNK_MAX ? end - off : VMIG_DEV_CHUNK_MAX;
		size_t i;

		if (d->fail_save && off >= d->size / 2) {
			fprintf(stderr, "guest: device %s.%u: save fails (as asked)\n", d->name,
				d->instance);
			r = -EIO;
			break;
		}
		for (i = 0; i < (n + 7) / 8; i++)
			buf[i] = dev_word(seed, off + i * 8);
		pace(t0, off + n - start, d->save_rate);
		r = vmig_dev_put(io, buf, n);
		if (r)
			break;
		off += n;
	}
	free(buf);
	return r;
}

/* Precopy part: the first precopy_pct % (a multiple of 8 bytes). */
static int dev_save_precopy(void *opaque, struct vmig_dev_io *io)
{
	struct guest_dev *d = opaque;
	uint64_t end = __atomic_load_n(&d->size, __ATOMIC_RELAXED) * d->precopy_pct / 100 / 8 * 8;
	int r = dev_save_range(d, io, 0, end);

	d->precopy_end = r ? 0 : end;
	return r;
}

/* At switchover: what the precopy part left, or everything if there was none. */
static int dev_save(void *opaque, struct vmig_dev_io *io)
{
	struct guest_dev *d = opaque;

	return dev_save_range(d, io, vmig_dev_io_after_precopy(io) ? d->precopy_end : 0,
			      __atomic_load_n(&d->size, __ATOMIC_RELAXED));
}

static int dev_load(void *opaque, struct vmig_dev_io *io)
{
	struct guest_dev *d = opaque;
	uint64_t seed = dev_seed(d), off = 0, t0 = now_ns();
	uint64_t *buf = malloc(VMIG_DEV_CHUNK_MAX + 8);
	long n;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	d->verified = false;
	while ((n = vmig_dev_get(io, buf, VMIG_DEV_CHUNK_MAX)) > 0) {
		long i;

		if (off % 8 || off + n > d->size) {
			r = -EBADMSG;
			break;
		}
		for (i = 0; i < n / 8; i++) {
			if (buf[i] != dev_word(seed, off + i * 8)) {
				fprintf(stderr, "guest: device %s.%u: wrong state at byte %llu\n",
					d->name, d->instance,
					(unsigned long long)(off + i * 8));
				r = -EBADMSG;
				break;
			}
		}
		if (r)
			break;
		off += n;
		if (d->fail_load && off >= d->size / 2) {
			fprintf(stderr, "guest: device %s.%u: load fails (as asked)\n", d->name,
				d->instance);
			r = -EIO;
			break;
		}
		pace(t0, off, d->load_rate);
	}
	if (!r && n < 0)
		r = (int)n;
	if (!r && off != d->size) {
		fprintf(stderr, "guest: device %s.%u: %llu bytes of state, %llu expected\n",
			d->name, d->instance, (unsigned long long)off, (unsigned long long)d->size);
		r = -EBADMSG;
	}
	d->loaded = off;
	if (!r) {
		d->verified = true;
		fprintf(stderr, "guest: device %s.%u: %llu bytes loaded in %.0f ms, verified\n",
			d->name, d->instance, (unsigned long long)off, (now_ns() - t0) / 1e6);
	}
	if (r) {
		/* take the rest so the helper's write does not hang on us */
		while (vmig_dev_get(io, buf, VMIG_DEV_CHUNK_MAX) > 0)
			;
	}
	free(buf);
	return r;
}

static const struct vmig_dev_ops guest_dev_ops = { .save = dev_save, .load = dev_load };
static const struct vmig_dev_ops guest_dev_ops_precopy = {
	.save = dev_save, .load = dev_load, .save_precopy = dev_save_precopy,
};

int guest_dev_parse(const char *spec, struct guest_dev *d, char *err, unsigned int errlen)
{
	char *s = strdup(spec), *tok, *save = NULL;
	int r = 0;

	memset(d, 0, sizeof(*d));
	if (!s)
		return -ENOMEM;
	for (tok = strtok_r(s, ",", &save); tok && !r; tok = strtok_r(NULL, ",", &save)) {
		char *v = strchr(tok, '=');
		int64_t x;

		if (!v) {
			r = -EINVAL;
			break;
		}
		*v++ = 0;
		if (!strcmp(tok, "name")) {
			if (!*v || strlen(v) >= sizeof(d->name))
				r = -EINVAL;
			else
				strcpy(d->name, v);
		} else if (!strcmp(tok, "instance")) {
			uint64_t u;

			if (!parse_uint(v, 0, UINT32_MAX, &u))
				r = -EINVAL;
			d->instance = u;
		} else if (!strcmp(tok, "size") || !strcmp(tok, "save-rate") ||
			   !strcmp(tok, "load-rate") || !strcmp(tok, "resize")) {
			x = parse_size(v);
			if (x < 0 || ((!strcmp(tok, "size") || !strcmp(tok, "resize")) &&
				      (x < 8 || x % 8)))
				r = -EINVAL;
			else if (!strcmp(tok, "size"))
				d->size = x;
			else if (!strcmp(tok, "resize"))
				d->resize = x;
			else if (!strcmp(tok, "save-rate"))
				d->save_rate = x;
			else
				d->load_rate = x;
		} else if (!strcmp(tok, "precopy")) {
			uint64_t u;
			size_t l = strlen(v);

			if (l && v[l - 1] == '%')
				v[l - 1] = 0;
			if (!parse_uint(v, 0, 100, &u))
				r = -EINVAL;
			d->precopy_pct = u;
		} else if (!strcmp(tok, "fail")) {
			if (!strcmp(v, "save"))
				d->fail_save = true;
			else if (!strcmp(v, "load"))
				d->fail_load = true;
			else
				r = -EINVAL;
		} else {
			r = -EINVAL;
		}
		if (r)
			snprintf(err, errlen, "bad '%s=%s'", tok, v);
	}
	if (!r && (!d->name[0] || !d->size)) {
		snprintf(err, errlen, "name= and size= are required");
		r = -EINVAL;
	}
	free(s);
	return r;
}

int guest_dev_register(struct vmig_vmm *vmm, struct guest_dev *d)
{
	int r;

	if (d->precopy_pct)
		r = vmig_vmm_add_device(vmm, d->name, d->instance, d->size, VMIG_DEV_PRECOPY,
					&guest_dev_ops_precopy, d);
	else
		r = vmig_vmm_add_device(vmm, d->name, d->instance, d->size, 0, &guest_dev_ops, d);
	return r ? r : vmig_vmm_set_device_rates(vmm, d->name, d->instance, d->save_rate,
						 d->load_rate);
}

int guest_dev_resize(struct vmig_vmm *vmm, struct guest_dev *d)
{
	__atomic_store_n(&d->size, d->resize, __ATOMIC_RELAXED);
	return vmig_vmm_set_device_size(vmm, d->name, d->instance, d->resize);
}
