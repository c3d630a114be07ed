/* SPDX-License-Identifier: GPL-2.0 */
/* Zero-page detection: a zero page is sent as a flag, or not at all. */
#ifndef VMIG_ZERO_H
#define VMIG_ZERO_H

#include <stdbool.h>

/* True if the 4 KiB page at p is all zero.  Non-zero pages usually exit at once. */
bool page_is_zero(const void *p);

#endif
