/* SPDX-License-Identifier: GPL-2.0 */
/* Small helpers shared by the commands: clocks and argument parsing. */
#ifndef VMIG_UTIL_H
#define VMIG_UTIL_H

#include <stdbool.h>
#include <stdint.h>

uint64_t now_ns(void);
/* "256M", "1G", "4096", "2k": bytes; -1 on a bad string. */
int64_t parse_size(const char *s);
/* A non-negative integer within [min, max]; false if not. */
bool parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Human-readable bytes ("1.5 GiB") into buf. */
const char *fmt_bytes(double bytes, char *buf, unsigned int len);

/* With VMIG_TRACE set in the environment: a timestamped line on stderr. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
